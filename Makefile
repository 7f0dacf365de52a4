# Nearly -- build.  `make` builds everything into build/; `make test` installs
# what is missing, builds and runs every test; `make run` starts Nearly.
#
# Sources are picked up by directory, so adding a file needs no edit here:
#   src/{common,distance,quant,index,storage,filter,collection}/*.c -> libnearly
#   src/{server,cli}/*.c                                           -> build/nearly
#   tests/unit/test_*.c                                            -> build/tests/test_*
#
# Variants: `make SAN=asan` (ASan+UBSan, into build-asan/), `make SAN=tsan`
# (ThreadSanitizer, into build-tsan/), `CC=clang make`.

CC ?= cc
SAN ?=
ifeq ($(SAN),asan)
  BUILD ?= build-asan
  SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
  OPT = -O1
else ifeq ($(SAN),tsan)
  BUILD ?= build-tsan
  SANFLAGS = -fsanitize=thread -fno-omit-frame-pointer
  OPT = -O1
else
  BUILD ?= build
  SANFLAGS =
  OPT = -O3
endif

WARN = -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS ?= $(OPT) -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -pthread $(WARN) $(CFLAGS) $(SANFLAGS) -Iinclude -Isrc
LDLIBS = -pthread -lm -lxxhash -ljansson -lroaring
SERVER_LDLIBS = -lmicrohttpd

LIB_DIRS = common distance quant index storage filter collection
LIB_SRC = $(foreach d,$(LIB_DIRS),$(wildcard src/$(d)/*.c))
APP_SRC = $(wildcard src/server/*.c src/cli/*.c)
TEST_SRC = $(wildcard tests/unit/test_*.c)
TEST_SUPPORT = $(filter-out tests/unit/test_%.c,$(wildcard tests/unit/*.c))

LIB_OBJ = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
APP_OBJ = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(APP_SRC))
TEST_BIN = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
SUPPORT_OBJ = $(patsubst tests/unit/%.c,$(BUILD)/obj/tests/%.o,$(TEST_SUPPORT))

# Sub-makefiles of optional parts (python module, js tests, ...); they may
# add targets to EXTRA_ALL, which `make` builds too.
-include mk/*.mk

.SECONDARY:

.PHONY: all lib test test-unit test-asan test-tsan run bench clean setup python
.DEFAULT_GOAL := all

all: lib $(BUILD)/nearly $(TEST_BIN) $(EXTRA_ALL)

lib: $(BUILD)/libnearly.a $(BUILD)/libnearly.so

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -MMD -MP -c $< -o $@

$(BUILD)/libnearly.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/libnearly.so: $(LIB_OBJ)
	$(CC) -shared $(ALL_CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/nearly: $(APP_OBJ) $(BUILD)/libnearly.a
	$(CC) $(ALL_CFLAGS) -o $@ $(APP_OBJ) $(BUILD)/libnearly.a $(LDLIBS) $(SERVER_LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(SUPPORT_OBJ) $(BUILD)/libnearly.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(SUPPORT_OBJ) $(BUILD)/libnearly.a $(LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

setup:
	@scripts/setup.sh

# The whole suite: unit tests (normal, ASan+UBSan, TSan for concurrency
# tests), a clang build (warnings are errors there too) and the
# language/client suites, ending with one summary line.
test: setup
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SAN=asan all
	@$(MAKE) --no-print-directory SAN=tsan all
	@if command -v clang >/dev/null; then $(MAKE) --no-print-directory CC=clang BUILD=build-clang all >/dev/null && echo 'clang build: ok'; fi
	@scripts/run_tests.sh

test-unit: all
	@scripts/run_tests.sh --only normal

test-asan:
	@$(MAKE) --no-print-directory SAN=asan all
	@scripts/run_tests.sh --only asan

test-tsan:
	@$(MAKE) --no-print-directory SAN=tsan all
	@scripts/run_tests.sh --only tsan

run: setup
	@$(MAKE) --no-print-directory all
	@scripts/run.sh

clean:
	rm -rf build build-asan build-tsan
