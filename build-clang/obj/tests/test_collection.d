build-clang/obj/tests/test_collection.o: tests/unit/test_collection.c \
  include/nearly.h src/storage/fileio.h src/common/common.h \
  tests/unit/t.h

include/nearly.h:

src/storage/fileio.h:

src/common/common.h:

tests/unit/t.h:
