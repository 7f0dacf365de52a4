build-clang/obj/tests/test_collection.o: tests/unit/test_collection.c \
  include/nearly.h src/collection/coll.h src/common/common.h \
  src/storage/wal.h src/storage/fileio.h tests/unit/t.h

include/nearly.h:

src/collection/coll.h:

src/common/common.h:

src/storage/wal.h:

src/storage/fileio.h:

tests/unit/t.h:
