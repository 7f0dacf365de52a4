build-clang/obj/quant/quant_json.o: src/quant/quant_json.c \
  src/common/common.h include/nearly.h src/quant/quant.h

src/common/common.h:

include/nearly.h:

src/quant/quant.h:
