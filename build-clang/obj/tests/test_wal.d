build-clang/obj/tests/test_wal.o: tests/unit/test_wal.c \
  src/common/common.h include/nearly.h src/storage/fileio.h \
  src/storage/wal.h tests/unit/t.h

src/common/common.h:

include/nearly.h:

src/storage/fileio.h:

src/storage/wal.h:

tests/unit/t.h:
