build-clang/obj/filter/payload.o: src/filter/payload.c \
  src/common/common.h include/nearly.h src/filter/filter.h \
  src/filter/path.h

src/common/common.h:

include/nearly.h:

src/filter/filter.h:

src/filter/path.h:
