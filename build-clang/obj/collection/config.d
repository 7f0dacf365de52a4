build-clang/obj/collection/config.o: src/collection/config.c \
  src/collection/coll.h src/common/common.h include/nearly.h \
  src/storage/wal.h src/storage/fileio.h

src/collection/coll.h:

src/common/common.h:

include/nearly.h:

src/storage/wal.h:

src/storage/fileio.h:
