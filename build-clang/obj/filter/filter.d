build-clang/obj/filter/filter.o: src/filter/filter.c src/common/common.h \
  include/nearly.h src/filter/filter.h src/filter/path.h \
  src/filter/values.h

src/common/common.h:

include/nearly.h:

src/filter/filter.h:

src/filter/path.h:

src/filter/values.h:
