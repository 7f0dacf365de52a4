# Unit tests of the REST server's helpers (tests/server/test_*.c), linked with
# the server objects; built as $(BUILD)/tests/test_server_* so that
# scripts/run_tests.sh runs them with the C unit tests.  The end-to-end
# server tests are tests/js (official Qdrant JS client).
SERVER_TEST_SRC = $(wildcard tests/server/test_*.c)
SERVER_TEST_BIN = $(patsubst tests/server/test_%.c,$(BUILD)/tests/test_server_%,$(SERVER_TEST_SRC))
SERVER_LIB_OBJ = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(wildcard src/server/*.c))
EXTRA_ALL += $(SERVER_TEST_BIN)

$(BUILD)/tests/test_server_%: tests/server/test_%.c $(SERVER_LIB_OBJ) $(SUPPORT_OBJ) $(BUILD)/libnearly.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(SERVER_LIB_OBJ) $(SUPPORT_OBJ) $(BUILD)/libnearly.a $(LDLIBS) $(SERVER_LDLIBS)
