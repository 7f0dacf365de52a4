# tests/unit/test_import.c drives `nearly import` / `nearly export` in
# process, so it links their objects in addition to libnearly.
IMPORT_TEST_OBJ = $(BUILD)/obj/cli/import.o $(BUILD)/obj/cli/export.o $(BUILD)/obj/cli/ingest.o \
                  $(BUILD)/obj/cli/httpc.o $(BUILD)/obj/cli/args.o

$(BUILD)/tests/test_import: $(BUILD)/obj/tests/test_import.o $(SUPPORT_OBJ) $(IMPORT_TEST_OBJ) $(BUILD)/libnearly.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(SUPPORT_OBJ) $(IMPORT_TEST_OBJ) $(BUILD)/libnearly.a $(LDLIBS)
