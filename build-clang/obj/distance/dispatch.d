build-clang/obj/distance/dispatch.o: src/distance/dispatch.c \
  src/common/common.h include/nearly.h src/distance/distance.h

src/common/common.h:

include/nearly.h:

src/distance/distance.h:
