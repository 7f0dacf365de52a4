build-clang/obj/distance/kernels_avx512.o: src/distance/kernels_avx512.c \
  src/distance/distance.h include/nearly.h

src/distance/distance.h:

include/nearly.h:
