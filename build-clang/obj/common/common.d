build-clang/obj/common/common.o: src/common/common.c src/common/common.h \
  include/nearly.h

src/common/common.h:

include/nearly.h:
