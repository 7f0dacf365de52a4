build-clang/obj/quant/quant_kernels_avx2.o: \
  src/quant/quant_kernels_avx2.c src/quant/quant.h include/nearly.h

src/quant/quant.h:

include/nearly.h:
