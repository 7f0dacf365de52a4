# bench/filter_bench.c: filtered search by selectivity, planner vs
# post-filtered HNSW vs exact filtered scan (docs/BENCHMARKS.md).
EXTRA_ALL += $(BUILD)/filter_bench

$(BUILD)/filter_bench: bench/filter_bench.c $(BUILD)/libnearly.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libnearly.a $(LDLIBS)
