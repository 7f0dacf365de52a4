build-clang/obj/cli/main.o: src/cli/main.c src/cli/cli.h include/nearly.h

src/cli/cli.h:

include/nearly.h:
