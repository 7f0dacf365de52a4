build-clang/obj/tests/t.o: tests/unit/t.c tests/unit/t.h

tests/unit/t.h:
