# mk/quant.mk -- quantization micro-benchmark (bench/quant_bench.c), built
# with `make` into $(BUILD)/bench/quant_bench.
QUANT_BENCH = $(BUILD)/bench/quant_bench
EXTRA_ALL += $(QUANT_BENCH)

$(QUANT_BENCH): bench/quant_bench.c src/quant/quant.h $(BUILD)/libnearly.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(BUILD)/libnearly.a $(LDLIBS)
