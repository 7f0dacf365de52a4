build-clang/obj/tests/test_distance.o: tests/unit/test_distance.c \
  include/nearly.h tests/unit/t.h

include/nearly.h:

tests/unit/t.h:
