build-clang/obj/storage/fileio.o: src/storage/fileio.c \
  src/storage/fileio.h src/common/common.h include/nearly.h

src/storage/fileio.h:

src/common/common.h:

include/nearly.h:
