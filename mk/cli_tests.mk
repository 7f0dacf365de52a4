# Tests of the `nearly` program's helpers (src/cli) link the objects they
# test in addition to libnearly.
CLI_TEST_OBJ = $(BUILD)/obj/cli/fvecs.o $(BUILD)/obj/cli/args.o $(BUILD)/obj/cli/dataset.o $(BUILD)/obj/cli/gen.o \
               $(BUILD)/obj/cli/bench.o $(BUILD)/obj/cli/scan.o

$(BUILD)/tests/test_cli_data: $(BUILD)/obj/tests/test_cli_data.o $(SUPPORT_OBJ) $(CLI_TEST_OBJ) $(BUILD)/libnearly.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(SUPPORT_OBJ) $(CLI_TEST_OBJ) $(BUILD)/libnearly.a $(LDLIBS)
