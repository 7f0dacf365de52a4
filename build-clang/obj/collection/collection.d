build-clang/obj/collection/collection.o: src/collection/collection.c \
  src/collection/coll.h src/common/common.h include/nearly.h \
  src/storage/wal.h src/filter/filter.h src/storage/fileio.h

src/collection/coll.h:

src/common/common.h:

include/nearly.h:

src/storage/wal.h:

src/filter/filter.h:

src/storage/fileio.h:
