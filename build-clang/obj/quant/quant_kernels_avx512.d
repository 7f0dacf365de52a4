build-clang/obj/quant/quant_kernels_avx512.o: \
  src/quant/quant_kernels_avx512.c src/quant/quant.h include/nearly.h

src/quant/quant.h:

include/nearly.h:
