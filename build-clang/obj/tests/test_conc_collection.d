build-clang/obj/tests/test_conc_collection.o: \
  tests/unit/test_conc_collection.c include/nearly.h tests/unit/t.h

include/nearly.h:

tests/unit/t.h:
