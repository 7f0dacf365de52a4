build-clang/obj/tests/test_filter.o: tests/unit/test_filter.c \
  src/common/common.h include/nearly.h src/filter/filter.h \
  src/filter/values.h tests/unit/t.h

src/common/common.h:

include/nearly.h:

src/filter/filter.h:

src/filter/values.h:

tests/unit/t.h:
