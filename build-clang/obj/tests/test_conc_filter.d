build-clang/obj/tests/test_conc_filter.o: tests/unit/test_conc_filter.c \
  src/filter/filter.h include/nearly.h tests/unit/t.h

src/filter/filter.h:

include/nearly.h:

tests/unit/t.h:
