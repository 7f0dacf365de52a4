build-clang/obj/common/point_id.o: src/common/point_id.c \
  src/common/common.h include/nearly.h

src/common/common.h:

include/nearly.h:
