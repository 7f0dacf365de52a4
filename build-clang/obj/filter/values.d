build-clang/obj/filter/values.o: src/filter/values.c src/filter/values.h

src/filter/values.h:
