build-clang/obj/quant/quant_kernels_scalar.o: \
  src/quant/quant_kernels_scalar.c src/quant/quant.h include/nearly.h

src/quant/quant.h:

include/nearly.h:
