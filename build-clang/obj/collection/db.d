build-clang/obj/collection/db.o: src/collection/db.c \
  src/collection/coll.h src/common/common.h include/nearly.h \
  src/storage/wal.h src/storage/fileio.h

src/collection/coll.h:

src/common/common.h:

include/nearly.h:

src/storage/wal.h:

src/storage/fileio.h:
