/*
 * quant_bench.c -- nanoseconds per distance: float32 (ny_kernel at the
 * active level), SQ8 and binary codes (ny_quant_dist), at 128 and 768
 * dimensions, in two regimes:
 *
 *   random   ids drawn uniformly over a large array (memory-bound, what a
 *            graph traversal sees); one-by-one, and in groups of 32 through
 *            ny_quant_dist_batch (prefetches rows ahead, as an HNSW
 *            expansion would score a node's neighbours)
 *   hot      ids over the first 256 vectors (in cache: compute cost)
 *
 * plus the raw SQ8 kernel at each level (hot).  Arrays come from ny_aalloc
 * (2 MiB aligned, MADV_HUGEPAGE).
 *
 * The codecs: SQ8 and SQ4 (global range, L2) and binary (4-bit and 1-bit
 * query).
 *
 *   build/bench/quant_bench [vectors_128 [vectors_768 [lookups]]]
 *   defaults: 1000000 200000 200000 (each figure is the best of 15 runs: short runs, so that the minimum misses preemption on a shared machine)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "quant/quant.h"

static volatile float g_sink;

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float frand(uint64_t *s)
{
    return (float)((rng(s) >> 40) * (1.0 / (1 << 23))) - 1.0f;
}

/* Best of `reps` runs of ns per distance. */
#define REPS 15

static double bench_float(const float *base, size_t d, const float *q, const uint32_t *ids, size_t m)
{
    ny_kernel_fn k = ny_kernel(1, ny_simd_active());
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        float acc = 0;
        double t = ny_now();
        for (size_t i = 0; i < m; i++) acc += k(q, base + (size_t)ids[i] * d, d);
        t = ny_now() - t;
        g_sink = acc;
        if (t < best) best = t;
    }
    return best * 1e9 / (double)m;
}

static double bench_quant(const ny_quant_query *qq, const uint8_t *codes, size_t cs, const uint32_t *ids, size_t m,
                          int batch)
{
    double best = 1e30;
    float out[32];
    for (int r = 0; r < REPS; r++) {
        float acc = 0;
        double t = ny_now();
        if (batch) {
            for (size_t i = 0; i + 32 <= m; i += 32) {
                ny_quant_dist_batch(qq, codes, cs, ids + i, 32, out);
                acc += out[0] + out[31];
            }
        } else {
            for (size_t i = 0; i < m; i++) acc += ny_quant_dist(qq, codes + (size_t)ids[i] * cs);
        }
        t = ny_now() - t;
        g_sink = acc;
        if (t < best) best = t;
    }
    return best * 1e9 / (double)(batch ? m / 32 * 32 : m);
}

static void run_dim(size_t d, size_t n, size_t m)
{
    uint64_t s = 42 + d;
    size_t fbytes = n * d * sizeof(float);
    float *base = ny_aalloc(fbytes), *q = malloc(d * sizeof(float));
    uint32_t *rnd = malloc(m * sizeof(uint32_t)), *hot = malloc(m * sizeof(uint32_t));
    if (!base || !q || !rnd || !hot) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n * d; i++) base[i] = frand(&s);
    for (size_t j = 0; j < d; j++) q[j] = frand(&s);
    for (size_t i = 0; i < m; i++) {
        rnd[i] = (uint32_t)(rng(&s) % n);
        hot[i] = (uint32_t)(rng(&s) % 256);
    }
    printf("\n%zu-d, %zu vectors (float array %.0f MB), %zu lookups, best of %d\n", d, n, fbytes / 1e6, m, REPS);
    printf("  %-24s %8s %10s %10s %8s\n", "codec", "bytes", "random", "random/32", "hot");
    double fr = bench_float(base, d, q, rnd, m), fh = bench_float(base, d, q, hot, m);
    printf("  %-24s %8zu %10.1f %10s %8.1f\n", "float32 (ny_kernel l2)", d * sizeof(float), fr, "-", fh);

    ny_quant_config cfgs[4];
    const char *names[4] = {"sq8 (l2, global)", "sq4 (l2, global)", "binary (l2, 4-bit q)", "binary (l2, 1-bit q)"};
    ny_quant_config_init(&cfgs[0], NY_QUANT_SQ8);
    ny_quant_config_init(&cfgs[1], NY_QUANT_SQ4);
    ny_quant_config_init(&cfgs[2], NY_QUANT_BINARY);
    ny_quant_config_init(&cfgs[3], NY_QUANT_BINARY);
    cfgs[3].query_bits = 1;
    for (int c = 0; c < 4; c++) {
        ny_quant *qz;
        size_t ns = n < 10000 ? n : 10000;
        if (ny_quant_train(&cfgs[c], NY_L2, d, base, ns, &qz) != NY_OK) {
            fprintf(stderr, "train: %s\n", ny_errmsg());
            exit(1);
        }
        size_t cs = ny_quant_code_size(qz);
        uint8_t *codes = ny_aalloc(n * cs);
        ny_quant_query *qq;
        if (!codes || ny_quant_encode_batch(qz, base, n, codes, cs) != NY_OK || ny_quant_query_new(qz, &qq) != NY_OK ||
            ny_quant_query_prepare(qq, q) != NY_OK) {
            fprintf(stderr, "encode: %s\n", ny_errmsg());
            exit(1);
        }
        double r1 = bench_quant(qq, codes, cs, rnd, m, 0), rb = bench_quant(qq, codes, cs, rnd, m, 1);
        double h = bench_quant(qq, codes, cs, hot, m, 0);
        printf("  %-24s %8zu %10.1f %10.1f %8.1f\n", names[c], cs, r1, rb, h);
        ny_quant_query_free(qq);
        ny_afree(codes, n * cs);
        ny_quant_free(qz);
    }

    /* Raw SQ8 kernels, hot. */
    int8_t *w = malloc(d);
    uint8_t *cb = malloc(d * 256);
    for (size_t j = 0; j < d; j++) w[j] = (int8_t)(rng(&s) % 255 - 127);
    for (size_t j = 0; j < d * 256; j++) cb[j] = (uint8_t)rng(&s);
    printf("  raw sq8 kernel, hot:");
    for (int lv = NY_QK_SCALAR; lv <= NY_QK_AVX512X; lv++) {
        ny_sq8_dot_fn f = ny_sq8_dot_kernel((ny_qk_level)lv);
        if (!f) continue;
        double best = 1e30;
        for (int r = 0; r < REPS; r++) {
            int64_t acc = 0;
            double t = ny_now();
            for (size_t i = 0; i < m; i++) acc += f(w, cb + (size_t)hot[i] * d, d);
            t = ny_now() - t;
            g_sink = (float)acc;
            if (t < best) best = t;
        }
        printf("  %s %.1f", lv == NY_QK_AVX512X ? "vnni" : ny_qk_name((ny_qk_level)lv), best * 1e9 / (double)m);
    }
    printf(" ns\n");
    free(w);
    free(cb);
    ny_afree(base, fbytes);
    free(q);
    free(rnd);
    free(hot);
}

int main(int argc, char **argv)
{
    size_t n128 = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t n768 = argc > 2 ? strtoul(argv[2], NULL, 10) : 200000;
    size_t m = argc > 3 ? strtoul(argv[3], NULL, 10) : 200000;
    if (n128 < 256 || n768 < 256 || m < 32) {
        fprintf(stderr, "usage: %s [vectors_128 >= 256 [vectors_768 >= 256 [lookups >= 32]]]\n", argv[0]);
        return 2;
    }
    char load[64] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(load, sizeof load, f)) strcpy(load, "?");
        fclose(f);
        load[strcspn(load, "\n")] = 0;
    }
    printf("quant_bench: float kernels %s, sq8 kernel %s, binary kernel %s; ns per distance; loadavg %s on %d CPUs\n",
           ny_simd_name(ny_simd_active()), ny_qk_name(ny_qk_sq8_level()), ny_qk_name(ny_qk_bin_level()), load,
           ny_cpu_count());
    run_dim(128, n128, m);
    run_dim(768, n768, m);
    return 0;
}
