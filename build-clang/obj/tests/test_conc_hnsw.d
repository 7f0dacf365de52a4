build-clang/obj/tests/test_conc_hnsw.o: tests/unit/test_conc_hnsw.c \
  tests/unit/hnsw_util.h include/nearly.h tests/unit/t.h \
  src/index/hnsw.h

tests/unit/hnsw_util.h:

include/nearly.h:

tests/unit/t.h:

src/index/hnsw.h:
