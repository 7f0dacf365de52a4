build-clang/obj/filter/path.o: src/filter/path.c src/common/common.h \
  include/nearly.h src/filter/filter.h src/filter/path.h

src/common/common.h:

include/nearly.h:

src/filter/filter.h:

src/filter/path.h:
