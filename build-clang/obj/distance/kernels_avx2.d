build-clang/obj/distance/kernels_avx2.o: src/distance/kernels_avx2.c \
  src/distance/distance.h include/nearly.h

src/distance/distance.h:

include/nearly.h:
