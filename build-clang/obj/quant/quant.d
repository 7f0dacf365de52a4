build-clang/obj/quant/quant.o: src/quant/quant.c src/common/common.h \
  include/nearly.h src/distance/distance.h src/quant/quant.h

src/common/common.h:

include/nearly.h:

src/distance/distance.h:

src/quant/quant.h:
