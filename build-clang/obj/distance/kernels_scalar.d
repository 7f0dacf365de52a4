build-clang/obj/distance/kernels_scalar.o: src/distance/kernels_scalar.c \
  src/distance/distance.h include/nearly.h

src/distance/distance.h:

include/nearly.h:
