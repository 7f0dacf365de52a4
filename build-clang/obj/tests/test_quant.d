build-clang/obj/tests/test_quant.o: tests/unit/test_quant.c \
  src/common/common.h include/nearly.h src/quant/quant.h tests/unit/t.h

src/common/common.h:

include/nearly.h:

src/quant/quant.h:

tests/unit/t.h:
