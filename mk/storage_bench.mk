# bench/storage_bench.c: durable upsert throughput, ingest, recovery time
# and disk usage figures (docs/storage.md).
EXTRA_ALL += $(BUILD)/storage_bench

$(BUILD)/storage_bench: bench/storage_bench.c $(BUILD)/libnearly.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libnearly.a $(LDLIBS)
