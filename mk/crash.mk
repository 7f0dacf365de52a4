# The crash test (tests/crash/crash_test.c): a program that SIGKILLs a
# writing child at random moments and checks what survives.  Built as
# $(BUILD)/tests/test_crash so that scripts/run_tests.sh runs its short
# version (20 cycles) with the unit tests; see docs/storage.md for the
# long run.
EXTRA_ALL += $(BUILD)/tests/test_crash

$(BUILD)/tests/test_crash: tests/crash/crash_test.c $(BUILD)/libnearly.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libnearly.a $(LDLIBS)
