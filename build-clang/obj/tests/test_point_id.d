build-clang/obj/tests/test_point_id.o: tests/unit/test_point_id.c \
  include/nearly.h tests/unit/t.h

include/nearly.h:

tests/unit/t.h:
