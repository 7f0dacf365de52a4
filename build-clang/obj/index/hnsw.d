build-clang/obj/index/hnsw.o: src/index/hnsw.c src/index/hnsw.h \
  include/nearly.h src/common/common.h src/distance/distance.h

src/index/hnsw.h:

include/nearly.h:

src/common/common.h:

src/distance/distance.h:
