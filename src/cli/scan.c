/*
 * scan.c -- `nearly bench-scan`: how fast ny_exact_search scans, compared
 * with this machine's memory read bandwidth measured in the same run.
 *
 * Bandwidth: a buffer much larger than the last-level cache (default
 * 1 GiB, 2 MiB-aligned, transparent hugepages advised, touched first) is
 * split into one contiguous slice per thread; every thread sums its slice
 * with 256-bit loads (128-bit without AVX2) into 8 independent
 * accumulators.  Best of several passes, in GB/s (1e9 bytes/s), for 1 and
 * for N threads.
 *
 * Scan: (a) one query per call, so the base is streamed once per query:
 * GB/s = base bytes / seconds per query; (b) a batch of queries per call,
 * which reuses each cached tile of the base for many queries: reported as
 * QPS and as "effective" GB/s (batch x base bytes / seconds), which may
 * exceed the memory bandwidth by design.
 */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/dataset.h"
#include "common/common.h"

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* With one thread, ny_parallel_for and ny_exact_search run in the calling
 * thread, so its CPU time is the work's: figures per CPU second are not
 * inflated by time spent descheduled on a shared machine. */

/* ===== Memory read bandwidth ============================================ */

__attribute__((target("avx2"))) static uint64_t sum_avx2(const void *p, size_t bytes)
{
    const __m256i *v = p;
    size_t n = bytes / 32;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256(v + i));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256(v + i + 1));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256(v + i + 2));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256(v + i + 3));
        a4 = _mm256_add_epi64(a4, _mm256_load_si256(v + i + 4));
        a5 = _mm256_add_epi64(a5, _mm256_load_si256(v + i + 5));
        a6 = _mm256_add_epi64(a6, _mm256_load_si256(v + i + 6));
        a7 = _mm256_add_epi64(a7, _mm256_load_si256(v + i + 7));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)),
                          _mm256_add_epi64(_mm256_add_epi64(a4, a5), _mm256_add_epi64(a6, a7)));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, a0);
    return out[0] + out[1] + out[2] + out[3];
}

static uint64_t sum_generic(const void *p, size_t bytes)
{
    const uint64_t *v = p;
    size_t n = bytes / 8;
    uint64_t a[8] = {0};
    for (size_t i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] += v[i + j];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

typedef struct bw_ctx {
    const char *buf;
    size_t slice;
    int use_avx2;
    uint64_t sink[64];
} bw_ctx;

static void bw_task(void *vctx, size_t i, int worker)
{
    bw_ctx *c = vctx;
    const char *p = c->buf + i * c->slice;
    c->sink[worker & 63] += c->use_avx2 ? sum_avx2(p, c->slice) : sum_generic(p, c->slice);
}

static void touch_task(void *vctx, size_t i, int worker)
{
    (void)worker;
    bw_ctx *c = vctx;
    memset((char *)c->buf + i * c->slice, (int)(i & 0xff) | 1, c->slice);
}

/* Best-of-`reps` read bandwidth in GB/s with `threads` threads; *cpu_gbs
 * (threads == 1) per second of thread CPU time. */
static double read_bandwidth(bw_ctx *c, size_t bytes, int threads, int reps, double *cpu_gbs)
{
    c->slice = (bytes / (size_t)threads) & ~(size_t)255;
    double best = 0, bestc = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = ny_now(), c0 = thread_cpu();
        ny_parallel_for((size_t)threads, 1, threads, bw_task, c);
        double dt = ny_now() - t0, dc = thread_cpu() - c0;
        double gbs = (double)(c->slice * (size_t)threads) / dt / 1e9;
        if (gbs > best) best = gbs;
        if (dc > 0 && (double)c->slice / dc / 1e9 > bestc) bestc = (double)c->slice / dc / 1e9;
    }
    if (cpu_gbs) *cpu_gbs = bestc;
    return best;
}

/* ===== Scan timing ======================================================= */

typedef struct scan_res {
    double gbs, ms_per_query, cpu_gbs;
} scan_res;

static int time_single(ny_metric m, const dataset *ds, size_t k, int threads, double seconds, scan_res *out,
                       uint32_t *ids, float *dists)
{
    double base_bytes = (double)ds->n * (double)ds->dim * 4;
    /* one warm-up call */
    if (ny_exact_search(m, ds->dim, ds->base, ds->n, ds->queries, 1, k, NULL, threads, ids, dists)) return -1;
    size_t calls = 0;
    double t0 = ny_now(), c0 = thread_cpu(), dt;
    do {
        const float *q = ds->queries + (calls % ds->nq) * ds->dim;
        if (ny_exact_search(m, ds->dim, ds->base, ds->n, q, 1, k, NULL, threads, ids, dists)) return -1;
        calls++;
        dt = ny_now() - t0;
    } while (dt < seconds || calls < 3);
    out->ms_per_query = dt / (double)calls * 1e3;
    out->gbs = base_bytes * (double)calls / dt / 1e9;
    out->cpu_gbs = base_bytes * (double)calls / (thread_cpu() - c0) / 1e9;
    return 0;
}

typedef struct batch_res {
    double qps, eff_gbs, cpu_qps;
} batch_res;

static int time_batch(ny_metric m, const dataset *ds, size_t batch, size_t k, int threads, double seconds,
                      batch_res *out, uint32_t *ids, float *dists)
{
    double base_bytes = (double)ds->n * (double)ds->dim * 4, best = 1e300, bestc = 1e300;
    size_t reps = 0;
    double t_all = ny_now();
    do {
        double t0 = ny_now(), c0 = thread_cpu();
        if (ny_exact_search(m, ds->dim, ds->base, ds->n, ds->queries, batch, k, NULL, threads, ids, dists)) return -1;
        double dt = ny_now() - t0, dc = thread_cpu() - c0;
        if (dt < best) best = dt;
        if (dc > 0 && dc < bestc) bestc = dc;
        reps++;
    } while (reps < 2 || (ny_now() - t_all < seconds && reps < 20));
    out->qps = (double)batch / best;
    out->eff_gbs = base_bytes * (double)batch / best / 1e9;
    out->cpu_qps = (double)batch / bestc;
    return 0;
}

/* ===== The command ======================================================= */

static void scan_usage(FILE *f)
{
    fprintf(f,
            "usage: nearly bench-scan [--data DIR | --n 1000000 --dim 128] [--metric l2|cosine|dot]\n"
            "                         [--threads N] [--k 10] [--batch 64] [--seconds 1] [--bw-mib 1024]\n"
            "                         [--json FILE]\n"
            "Measures ny_exact_search scan throughput (GB/s of base vectors streamed per\n"
            "query) against the memory read bandwidth measured in the same run by a\n"
            "multi-threaded streaming-read kernel.  Without --data the base is uniform\n"
            "random vectors (normalised for cosine).\n");
}

static void rand_task(void *vctx, size_t i, int worker)
{
    (void)worker;
    float *v = vctx;
    uint64_t x = 0x12345678ull + i * 0x9E3779B97F4A7C15ull;
    float *p = v + i * 65536;
    for (size_t j = 0; j < 65536; j++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[j] = (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
    }
}

int cmd_bench_scan(int argc, char **argv)
{
    const char *data = NULL, *json = NULL, *v;
    size_t n = 1000000, dim = 128, threads = (size_t)ny_cpu_count(), k = 10, batch = 64, bw_mib = 1024;
    double seconds = 1.0;
    ny_metric metric = NY_L2;
    int have_metric = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        size_t tmp;
#define OPT(name) ((r = arg_opt(argc, argv, &i, name, &v)) != 0)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            scan_usage(stdout);
            return 0;
        } else if (OPT("--data")) {
            if (r < 0) goto missing;
            data = v;
        } else if (OPT("--json")) {
            if (r < 0) goto missing;
            json = v;
        } else if (OPT("--n")) {
            if (r < 0 || arg_size("bench-scan", "--n", v, 1, UINT32_MAX - 1u, &n)) goto bad;
        } else if (OPT("--dim")) {
            if (r < 0 || arg_size("bench-scan", "--dim", v, 1, 65536, &dim)) goto bad;
        } else if (OPT("--threads")) {
            if (r < 0 || arg_size("bench-scan", "--threads", v, 1, 1024, &threads)) goto bad;
        } else if (OPT("--k")) {
            if (r < 0 || arg_size("bench-scan", "--k", v, 1, 10000, &k)) goto bad;
        } else if (OPT("--batch")) {
            if (r < 0 || arg_size("bench-scan", "--batch", v, 1, 100000, &batch)) goto bad;
        } else if (OPT("--bw-mib")) {
            if (r < 0 || arg_size("bench-scan", "--bw-mib", v, 16, 65536, &bw_mib)) goto bad;
        } else if (OPT("--seconds")) {
            if (r < 0 || arg_size("bench-scan", "--seconds", v, 0, 600, &tmp)) goto bad;
            seconds = (double)tmp;
        } else if (OPT("--metric")) {
            if (r < 0 || arg_metric("bench-scan", v, &metric)) goto bad;
            have_metric = 1;
        } else {
            fprintf(stderr, "bench-scan: unknown option '%s'\n", argv[i]);
            scan_usage(stderr);
            return 2;
        }
        continue;
    missing:
        fprintf(stderr, "bench-scan: %s needs a value\n", argv[i]);
        return 2;
    bad:
        if (r < 0) fprintf(stderr, "bench-scan: %s needs a value\n", argv[i]);
        return 2;
#undef OPT
    }

    dataset ds;
    const char *source;
    char srcbuf[4300];
    if (data) {
        const char *how;
        if (!have_metric && dataset_metric(data, &metric, &how) != 0) {
            fprintf(stderr, "bench-scan: cannot infer the metric of %s: pass --metric\n", data);
            return 2;
        }
        if (dataset_load("bench-scan", data, 0, 0, &ds) != 0) return 1;
        snprintf(srcbuf, sizeof srcbuf, "%s", data);
        source = srcbuf;
    } else {
        memset(&ds, 0, sizeof ds);
        size_t chunks = (n * dim + 65535) / 65536;
        ds.base = malloc(chunks * 65536 * sizeof(float));
        size_t nq = NY_MAX(batch, (size_t)16);
        ds.queries = malloc(nq * dim * sizeof(float));
        if (!ds.base || !ds.queries) {
            fprintf(stderr, "bench-scan: out of memory for %zu x %zu vectors\n", n, dim);
            dataset_free(&ds);
            return 1;
        }
        ny_parallel_for(chunks, 1, (int)threads, rand_task, ds.base);
        memcpy(ds.queries, ds.base + (n / 2) * dim, NY_MIN(nq, n - n / 2) * dim * sizeof(float));
        for (size_t i = NY_MIN(nq, n - n / 2); i < nq; i++)
            memcpy(ds.queries + i * dim, ds.base + (i % n) * dim, dim * sizeof(float));
        for (size_t i = 0; i < nq * dim; i++) ds.queries[i] += 0.01f * (float)((i * 7919) % 13) - 0.06f;
        ds.n = n, ds.dim = dim, ds.nq = nq;
        if (metric == NY_COSINE)
            for (size_t i = 0; i < n; i++) ny_normalize(ds.base + i * dim, dim);
        source = "uniform random";
    }
    if (batch > ds.nq) batch = ds.nq;
    int T = (int)threads;
    uint32_t *ids = malloc(batch * k * sizeof(uint32_t));
    float *dists = malloc(batch * k * sizeof(float));
    size_t bw_bytes = bw_mib << 20;
    bw_ctx *bc = calloc(1, sizeof *bc);
    char *buf = ny_aalloc(bw_bytes);
    if (!ids || !dists || !bc || !buf) {
        fprintf(stderr, "bench-scan: out of memory\n");
        free(ids), free(dists), free(bc), dataset_free(&ds);
        ny_afree(buf, bw_bytes);
        return 1;
    }
    bc->buf = buf;
    bc->use_avx2 = ny_simd_supported() >= NY_SIMD_AVX2;
    bc->slice = bw_bytes / 64;
    ny_parallel_for(64, 1, T, touch_task, bc);

    double bw1c, bw1 = read_bandwidth(bc, bw_bytes, 1, 5, &bw1c), bwn = read_bandwidth(bc, bw_bytes, T, 5, NULL);
    ny_afree(buf, bw_bytes);
    scan_res s1, sn;
    batch_res b1, bn;
    int rc = 0;
    if (time_single(metric, &ds, k, 1, seconds, &s1, ids, dists) || time_single(metric, &ds, k, T, seconds, &sn, ids, dists) ||
        time_batch(metric, &ds, batch, k, 1, seconds, &b1, ids, dists) ||
        time_batch(metric, &ds, batch, k, T, seconds, &bn, ids, dists)) {
        fprintf(stderr, "bench-scan: %s\n", ny_errmsg());
        rc = 1;
        goto out;
    }
    double base_mb = (double)ds.n * (double)ds.dim * 4 / 1e6;
    const char *bw_method = bc->use_avx2 ? "streaming read, 256-bit loads, 8 accumulators, contiguous slice per thread"
                                         : "streaming read, 64-bit adds, 8 accumulators, contiguous slice per thread";
    printf("nearly bench-scan  (simd %s, base %s: n=%zu dim=%zu metric=%s, %.1f MB; k=%zu)\n",
           ny_simd_name(ny_simd_active()), source, ds.n, ds.dim, ny_metric_name(metric), base_mb, k);
    printf("memory read bandwidth: %s over %zu MiB, best of 5\n\n", bw_method, bw_mib);
    char hdr[32];
    snprintf(hdr, sizeof hdr, "%d threads", T);
    printf("%-34s %12s %12s\n", "", "1 thread", hdr);
    printf("%-34s %12.2f %12.2f\n", "memory read bandwidth (GB/s)", bw1, bwn);
    printf("%-34s %12.2f %12.2f\n", "scan, 1 query/call (GB/s)", s1.gbs, sn.gbs);
    printf("%-34s %11.0f%% %11.0f%%\n", "  as % of memory bandwidth", 100 * s1.gbs / bw1, 100 * sn.gbs / bwn);
    printf("%-34s %12.3f %12.3f\n", "  ms per query", s1.ms_per_query, sn.ms_per_query);
    printf("%-34s %12.1f %12.1f\n", "scan, batch QPS", b1.qps, bn.qps);
    printf("%-34s %12.2f %12.2f\n", "  effective GB/s (batch x base)", b1.eff_gbs, bn.eff_gbs);
    printf("(batch = %zu queries per call; a base that fits in the %s cache scans faster than memory)\n", batch,
           "last-level");
    printf("1 thread per second of thread CPU time (not inflated by time spent descheduled):\n"
           "  memory read %.2f GB/s, scan 1 query/call %.2f GB/s (%.0f%%), batch %.1f QPS\n",
           bw1c, s1.cpu_gbs, 100 * s1.cpu_gbs / bw1c, b1.cpu_qps);
    printf("\ncommand:");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "bench-scan: cannot create %s\n", json);
            rc = 1;
            goto out;
        }
        fprintf(f,
                "{\"n\": %zu, \"dim\": %zu, \"metric\": \"%s\", \"threads\": %d, \"k\": %zu, \"simd\": \"%s\",\n"
                " \"base_bytes\": %zu, \"bandwidth_method\": \"%s over %zu MiB, best of 5\",\n"
                " \"membw_gbs_1t\": %.3f, \"membw_gbs_nt\": %.3f,\n"
                " \"scan_gbs_1t\": %.3f, \"scan_gbs_nt\": %.3f, \"scan_ms_per_query_1t\": %.4f, \"scan_ms_per_query_nt\": %.4f,\n"
                " \"batch\": %zu, \"batch_qps_1t\": %.2f, \"batch_qps_nt\": %.2f, \"batch_eff_gbs_1t\": %.3f, \"batch_eff_gbs_nt\": %.3f,\n"
                " \"membw_gbs_1t_cpu\": %.3f, \"scan_gbs_1t_cpu\": %.3f, \"batch_qps_1t_cpu\": %.2f}\n",
                ds.n, ds.dim, ny_metric_name(metric), T, k, ny_simd_name(ny_simd_active()), ds.n * ds.dim * 4,
                bw_method, bw_mib, bw1, bwn, s1.gbs, sn.gbs, s1.ms_per_query, sn.ms_per_query, batch, b1.qps, bn.qps,
                b1.eff_gbs, bn.eff_gbs, bw1c, s1.cpu_gbs, b1.cpu_qps);
        if (fclose(f) != 0) {
            fprintf(stderr, "bench-scan: cannot write %s\n", json);
            rc = 1;
        }
    }
out:
    free(ids);
    free(dists);
    free(bc);
    dataset_free(&ds);
    return rc;
}
