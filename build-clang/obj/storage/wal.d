build-clang/obj/storage/wal.o: src/storage/wal.c src/storage/wal.h \
  src/common/common.h include/nearly.h src/storage/fileio.h

src/storage/wal.h:

src/common/common.h:

include/nearly.h:

src/storage/fileio.h:
