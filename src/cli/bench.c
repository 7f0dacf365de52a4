/*
 * bench.c -- `nearly bench`: builds an HNSW index over DIR/base.fvecs and
 * measures, for each ef: recall@k against DIR/groundtruth.ivecs, QPS with 1
 * thread (one query per call) and with N threads (ny_hnsw_search_batch),
 * p50/p99 single-query latency (1 thread); plus the build time (N threads),
 * index memory per vector and the process peak RSS.  On a shared machine
 * wall-clock figures include time spent descheduled, so the 1-thread pass
 * is also reported per second of thread CPU time (qps_1t_cpu) and the
 * build in process CPU seconds (build_cpu_s).
 *
 * bench/hnswlib_bench.cpp and bench/faiss_bench.py make the same
 * measurements in the same order (warm-up, then per ef: the 1-thread pass,
 * then the N-thread pass) and print the same JSON, so that
 * bench/compare.sh can put them side by side.
 *
 * --quant int8|int4|binary searches on quantized codes (ny_hnsw_search_quant)
 * with rescoring of oversampling * k candidates (--oversampling, default
 * 2; --no-rescore returns the code estimates); the codes are trained on
 * the indexed vectors after the build.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/dataset.h"
#include "common/common.h"

#define MAX_EF 64

/* The N-thread pass on codes (ny_hnsw_search_batch has no quantized
 * variant). */
typedef struct qbatch {
    const ny_hnsw *h;
    const float *queries;
    size_t dim, k, ef;
    int rescore;
    float os;
    uint32_t *ids;
    float *dists;
    _Atomic int rc;
} qbatch;

static void qbatch_task(void *ctx, size_t q, int worker)
{
    (void)worker;
    qbatch *b = ctx;
    int got = ny_hnsw_search_quant(b->h, b->queries + q * b->dim, b->k, b->ef, NULL, b->rescore, b->os,
                                   b->ids + q * b->k, b->dists + q * b->k);
    if (got < 0) atomic_store(&b->rc, got);
    for (size_t j = got < 0 ? 0 : (size_t)got; j < b->k; j++) b->ids[q * b->k + j] = UINT32_MAX;
}

/* A current memory figure of /proc/self/status in bytes ("VmRSS:",
 * "RssAnon:"), 0 if unknown. */
static size_t proc_status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) kb = (size_t)strtoull(line + strlen(key), NULL, 10);
    fclose(f);
    return kb * 1024;
}

typedef struct ef_result {
    size_t ef;
    double recall, qps_1t, qps_nt, p50_us, p99_us, qps_1t_cpu;
} ef_result;

/* CPU time of the calling thread / of the whole process, in seconds: on a
 * shared machine these are not inflated by time spent descheduled. */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double process_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0) return 0;
    double pos = p * (double)(n - 1);
    size_t i = (size_t)pos;
    double f = pos - (double)i;
    return i + 1 < n ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[n - 1];
}

static void bench_usage(FILE *f)
{
    fprintf(f,
            "usage: nearly bench --data DIR [--ef 10,20,40,80,160] [--threads N] [--m 16]\n"
            "                    [--ef-construction 200] [--metric cosine|dot|l2|angular]\n"
            "                    [--k 10] [--limit-queries N] [--repeat 1] [--json FILE]\n"
            "                    [--quant none|int8|int4|binary [--oversampling 2] [--no-rescore]]\n"
            "                    [--on-disk DIR [--graph-on-disk] [--cold]] [--index FILE]\n"
            "DIR holds base.fvecs, query.fvecs and groundtruth.ivecs.  The metric is\n"
            "inferred from DIR's name (...-angular, ...-euclidean) or DIR/meta.json when\n"
            "not given.  --threads defaults to the number of CPUs; --repeat R keeps the\n"
            "best QPS of R passes.  --quant searches on quantized codes (trained on the\n"
            "indexed vectors after the build) and rescores oversampling*k candidates\n"
            "with the float vectors.  --on-disk DIR moves the float vectors into a\n"
            "memory-mapped file in DIR after the build (vectors.on_disk); with\n"
            "--graph-on-disk the graph's links go there too (hnsw_config.on_disk);\n"
            "--cold drops those pages from memory before each timed pass.\n"
            "--index FILE loads the index from FILE if it exists (build time is then\n"
            "the load time; base.fvecs is not read), else builds it and saves it\n"
            "there.  With --on-disk the load moves vectors (and graph) to DIR chunk\n"
            "by chunk, so it runs in less memory than the index takes\n"
            "(bench/memlimit_run.sh runs it under a cgroup memory limit).\n");
}

int cmd_bench(int argc, char **argv)
{
    const char *data = NULL, *json = NULL, *v;
    size_t efs[MAX_EF] = {10, 20, 40, 80, 160}, nef = 5;
    size_t threads = (size_t)ny_cpu_count(), m = 16, efc = 200, k = 10, limit = 0, repeat = 1;
    ny_metric metric = NY_COSINE;
    int have_metric = 0, rescore = 1;
    const char *quant = "none", *on_disk = NULL, *index_file = NULL;
    int graph_on_disk = 0, cold = 0;
    double oversampling = 2;
    for (int i = 1; i < argc; i++) {
        int r;
#define OPT(name) ((r = arg_opt(argc, argv, &i, name, &v)) != 0)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            bench_usage(stdout);
            return 0;
        } else if (OPT("--data")) {
            if (r < 0) goto missing;
            data = v;
        } else if (OPT("--json")) {
            if (r < 0) goto missing;
            json = v;
        } else if (OPT("--ef-construction")) {
            if (r < 0 || arg_size("bench", "--ef-construction", v, 1, 100000, &efc)) goto bad;
        } else if (OPT("--ef")) {
            if (r < 0 || arg_size_list("bench", "--ef", v, 1, 100000, efs, MAX_EF, &nef)) goto bad;
        } else if (OPT("--threads")) {
            if (r < 0 || arg_size("bench", "--threads", v, 1, 1024, &threads)) goto bad;
        } else if (OPT("--m")) {
            if (r < 0 || arg_size("bench", "--m", v, 2, 1024, &m)) goto bad;
        } else if (OPT("--k")) {
            if (r < 0 || arg_size("bench", "--k", v, 1, 10000, &k)) goto bad;
        } else if (OPT("--limit-queries")) {
            if (r < 0 || arg_size("bench", "--limit-queries", v, 1, SIZE_MAX, &limit)) goto bad;
        } else if (OPT("--repeat")) {
            if (r < 0 || arg_size("bench", "--repeat", v, 1, 100, &repeat)) goto bad;
        } else if (OPT("--quant")) {
            if (r < 0) goto missing;
            if (strcmp(v, "none") && strcmp(v, "int8") && strcmp(v, "int4") && strcmp(v, "binary")) {
                fprintf(stderr, "bench: --quant must be none, int8, int4 or binary (got '%s')\n", v);
                return 2;
            }
            quant = v;
        } else if (OPT("--oversampling")) {
            if (r < 0) goto missing;
            char *end;
            oversampling = strtod(v, &end);
            if (*end || !(oversampling >= 1 && oversampling <= 1000)) {
                fprintf(stderr, "bench: --oversampling must be a number in 1..1000 (got '%s')\n", v);
                return 2;
            }
        } else if (OPT("--on-disk")) {
            if (r < 0) goto missing;
            on_disk = v;
        } else if (OPT("--index")) {
            if (r < 0) goto missing;
            index_file = v;
        } else if (!strcmp(argv[i], "--cold")) {
            cold = 1;
        } else if (!strcmp(argv[i], "--graph-on-disk")) {
            graph_on_disk = 1;
        } else if (!strcmp(argv[i], "--no-rescore")) {
            rescore = 0;
        } else if (OPT("--metric")) {
            if (r < 0 || arg_metric("bench", v, &metric)) goto bad;
            have_metric = 1;
        } else {
            fprintf(stderr, "bench: unknown option '%s'\n", argv[i]);
            bench_usage(stderr);
            return 2;
        }
        continue;
    missing:
        fprintf(stderr, "bench: %s needs a value\n", argv[i]);
        return 2;
    bad:
        if (r < 0) fprintf(stderr, "bench: %s needs a value\n", argv[i]);
        return 2;
#undef OPT
    }
    if (graph_on_disk && !on_disk) {
        fprintf(stderr, "bench: --graph-on-disk needs --on-disk DIR\n");
        return 2;
    }
    if (!data) {
        fprintf(stderr, "bench: --data DIR is required\n");
        bench_usage(stderr);
        return 2;
    }
    const char *how = "from --metric";
    if (!have_metric && dataset_metric(data, &metric, &how) != 0) {
        fprintf(stderr, "bench: cannot infer the metric of %s from its name or meta.json: pass --metric\n", data);
        return 2;
    }

    dataset ds;
    /* With a saved index only the queries and the ground truth are needed:
     * base.fvecs is not read (so that the process can run with less memory
     * than the vectors take, see --on-disk). */
    int loaded = index_file && access(index_file, F_OK) == 0;
    if (dataset_load_ex("bench", data, limit, 1, loaded, &ds) != 0) return 1;
    if (ds.gt_k < k) {
        fprintf(stderr, "bench: groundtruth.ivecs has %zu neighbours per query, fewer than --k %zu\n", ds.gt_k, k);
        dataset_free(&ds);
        return 2;
    }
    size_t rss_loaded = ny_peak_rss();
    int T = (int)threads, rc = 1;
    ny_hnsw *h = NULL;
    uint32_t *ids = malloc(ds.nq * k * sizeof(uint32_t));
    float *dists = malloc(ds.nq * k * sizeof(float));
    double *lat = malloc(ds.nq * sizeof(double));
    ef_result res[MAX_EF];
    if (!ids || !dists || !lat) {
        fprintf(stderr, "bench: out of memory\n");
        goto out;
    }

    ny_hnsw_params p;
    ny_hnsw_params_init(&p, ds.dim, metric);
    p.m = m;
    p.ef_construction = efc;
    p.capacity = ds.n;
    double t0 = ny_now(), c0 = process_cpu();
    if (loaded) {
        /* With --on-disk the vectors (and with --graph-on-disk the graph)
         * go to the mapped files chunk by chunk while the file is read. */
        ny_hnsw_load_opts lo = {.disk_dir = on_disk, .vectors_on_disk = on_disk != NULL, .graph_on_disk = graph_on_disk};
        if (ny_hnsw_load_ex(index_file, &lo, &h) != NY_OK) goto fail;
        ny_hnsw_stats st0;
        ny_hnsw_get_stats(h, &st0);
        if (st0.dim != ds.dim || st0.count != ds.n || st0.metric != metric || st0.m != m) {
            fprintf(stderr, "bench: %s holds another index (n=%zu dim=%zu M=%zu); remove it\n", index_file,
                    st0.count, st0.dim, st0.m);
            goto out;
        }
    } else {
        if (ny_hnsw_new(&p, &h) != NY_OK) goto fail;
        if (ny_hnsw_add_batch(h, NULL, 0, ds.base, ds.n, T) != NY_OK) goto fail;
        if (index_file && ny_hnsw_save(h, index_file) != NY_OK) goto fail;
    }
    double build_s = ny_now() - t0, build_cpu_s = process_cpu() - c0;
    ny_hnsw_stats st;
    ny_hnsw_get_stats(h, &st);
    double bpv_index = st.count ? (double)(st.bytes_graph + st.bytes_other) / (double)st.count : 0;
    double bpv_vec = st.count ? (double)st.bytes_vectors / (double)st.count : 0;
    int use_q = strcmp(quant, "none") != 0;
    double train_s = 0, bpv_codes = 0;
    if (use_q) {
        char qj[128];
        if (!strcmp(quant, "binary")) snprintf(qj, sizeof qj, "{\"binary\": {\"always_ram\": true}}");
        else snprintf(qj, sizeof qj, "{\"scalar\": {\"type\": \"%s\", \"quantile\": 0.99, \"always_ram\": true}}", quant);
        double tq = ny_now();
        /* set_quantization trains at once when the index is large enough;
         * train again only if it did not (a retrain would hold two sets of
         * codes at once). */
        if (ny_hnsw_set_quantization(h, qj) != NY_OK) goto fail;
        if (!ny_hnsw_quant_ready(h) && ny_hnsw_quant_train(h) != NY_OK) goto fail;
        train_s = ny_now() - tq;
        bpv_codes = st.count ? (double)ny_hnsw_quant_bytes(h) / (double)st.count : 0;
    }
    size_t disk_bytes = 0, graph_disk_bytes = 0;
    if (on_disk && ny_hnsw_vectors_to_disk(h, on_disk, &disk_bytes) != NY_OK) goto fail;
    if (graph_on_disk && ny_hnsw_graph_to_disk(h, on_disk, &graph_disk_bytes) != NY_OK) goto fail;
    /* The base vectors are not needed any more (recall uses the ground
     * truth): free them so that the RSS at the end is the index's. */
    free(ds.base);
    ds.base = NULL;
    qbatch qb = {.h = h, .queries = ds.queries, .dim = ds.dim, .k = k, .rescore = rescore, .os = (float)oversampling,
                 .ids = ids, .dists = dists};

    /* Warm-up: touch the graph once (untimed), as the peer programs do. */
    if (ny_hnsw_search_batch(h, ds.queries, NY_MIN(ds.nq, (size_t)200), k, efs[0], NULL, T, ids, dists) != NY_OK)
        goto fail;

    for (size_t e = 0; e < nef; e++) {
        ef_result *r = &res[e];
        memset(r, 0, sizeof *r);
        r->ef = efs[e];
        for (size_t rep = 0; rep < repeat; rep++) {
            if (cold && on_disk && ny_hnsw_disk_evict(h) != NY_OK) goto fail;
            double tp = ny_now(), cp = thread_cpu();
            for (size_t q = 0; q < ds.nq; q++) {
                double tq = ny_now();
                int got = use_q ? ny_hnsw_search_quant(h, ds.queries + q * ds.dim, k, efs[e], NULL, rescore,
                                                       (float)oversampling, ids + q * k, dists + q * k)
                                : ny_hnsw_search(h, ds.queries + q * ds.dim, k, efs[e], NULL, ids + q * k, dists + q * k);
                lat[q] = ny_now() - tq;
                if (got < 0) goto fail;
                for (size_t j = (size_t)got; j < k; j++) ids[q * k + j] = UINT32_MAX;
            }
            double qps1 = (double)ds.nq / (ny_now() - tp), qps1c = (double)ds.nq / (thread_cpu() - cp);
            if (qps1c > r->qps_1t_cpu) r->qps_1t_cpu = qps1c;
            if (qps1 > r->qps_1t) {
                r->qps_1t = qps1;
                qsort(lat, ds.nq, sizeof(double), cmp_double);
                r->p50_us = percentile(lat, ds.nq, 0.50) * 1e6;
                r->p99_us = percentile(lat, ds.nq, 0.99) * 1e6;
            }
            if (rep == 0) {
                size_t hits = 0;
                for (size_t q = 0; q < ds.nq; q++)
                    for (size_t j = 0; j < k; j++) {
                        uint32_t id = ids[q * k + j];
                        if (id == UINT32_MAX) continue;
                        for (size_t g = 0; g < k; g++)
                            if ((uint32_t)ds.gt[q * ds.gt_k + g] == id) {
                                hits++;
                                break;
                            }
                    }
                r->recall = (double)hits / (double)(ds.nq * k);
            }
            if (cold && on_disk && ny_hnsw_disk_evict(h) != NY_OK) goto fail;
            tp = ny_now();
            if (use_q) {
                qb.ef = efs[e];
                atomic_store(&qb.rc, 0);
                ny_parallel_for(ds.nq, 16, T, qbatch_task, &qb);
                if (atomic_load(&qb.rc) != NY_OK) goto fail;
            } else if (ny_hnsw_search_batch(h, ds.queries, ds.nq, k, efs[e], NULL, T, ids, dists) != NY_OK) {
                goto fail;
            }
            double qpsn = (double)ds.nq / (ny_now() - tp);
            if (qpsn > r->qps_nt) r->qps_nt = qpsn;
        }
    }
    size_t peak = ny_peak_rss(), rss_end = proc_status_bytes("VmRSS:"), anon_end = proc_status_bytes("RssAnon:"),
           file_end = proc_status_bytes("RssFile:");

    printf("nearly bench  data=%s  n=%zu dim=%zu nq=%zu metric=%s (%s)  simd=%s\n", data, ds.n, ds.dim, ds.nq,
           ny_metric_name(metric), how, ny_simd_name(ny_simd_active()));
    if (loaded) printf("index loaded from %s in %.2f s\n", index_file, build_s);
    else
        printf("M=%zu ef_construction=%zu threads=%d  build %.2f s (%.0f vectors/s; %.2f s CPU)\n", m, efc, T, build_s,
               (double)ds.n / build_s, build_cpu_s);
    printf("index memory per vector: %.1f B graph+metadata (excluding the vector), %.1f B vector rows\n",
           bpv_index, bpv_vec);
    if (use_q)
        printf("quantization %s: %s, codes %.1f B/vector, trained and encoded in %.2f s\n", quant,
               rescore ? "rescoring oversampling x k candidates" : "no rescoring", bpv_codes, train_s);
    if (use_q && rescore) printf("oversampling %g\n", oversampling);
    if (on_disk) printf("vectors on disk: %.1f MiB moved to a memory-mapped file in %s\n", (double)disk_bytes / 1048576.0, on_disk);
    if (graph_on_disk) printf("graph on disk: %.1f MiB of links moved to memory-mapped files in %s\n", (double)graph_disk_bytes / 1048576.0, on_disk);
    printf("RSS at the end %.1f MiB: anonymous %.1f MiB, file-backed %.1f MiB (index + queries; base vectors freed\n"
           "after the build; file pages of on-disk vectors/graph count while mapped but the kernel can evict them)\n",
           (double)rss_end / 1048576.0, (double)anon_end / 1048576.0, (double)file_end / 1048576.0);
    printf("peak RSS %.1f MiB (%.1f MiB after loading the data files)\n\n", (double)peak / 1048576.0,
           (double)rss_loaded / 1048576.0);
    char rh[32], qh[32];
    snprintf(rh, sizeof rh, "recall@%zu", k);
    snprintf(qh, sizeof qh, "QPS %dt", T);
    printf("%6s %9s %11s %11s %9s %9s %13s\n", "ef", rh, "QPS 1t", qh, "p50 us", "p99 us", "QPS/CPU-s 1t");
    for (size_t e = 0; e < nef; e++)
        printf("%6zu %9.4f %11.0f %11.0f %9.1f %9.1f %13.0f\n", res[e].ef, res[e].recall, res[e].qps_1t,
               res[e].qps_nt, res[e].p50_us, res[e].p99_us, res[e].qps_1t_cpu);
    printf("(latency: single queries, 1 thread; QPS/CPU-s: 1-thread queries per second of thread CPU time)\n\ncommand: nearly");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");

    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            fprintf(stderr, "bench: cannot create %s\n", json);
            goto out;
        }
        fprintf(f,
                "{\"library\": \"nearly\", \"n\": %zu, \"dim\": %zu, \"nq\": %zu, \"k\": %zu, \"metric\": \"%s\", "
                "\"m\": %zu, \"ef_construction\": %zu, \"threads\": %d, \"build_s\": %.4f, "
                "\"build_cpu_s\": %.4f, \"peak_rss_bytes\": %zu, \"rss_after_load_bytes\": %zu, "
                "\"bytes_per_vector_index\": %.1f, \"bytes_per_vector_vectors\": %.1f, \"simd\": \"%s\", "
                "\"quant\": \"%s\", \"rescore\": %d, \"oversampling\": %g, \"bytes_per_vector_codes\": %.1f, "
                "\"on_disk\": %d, \"graph_on_disk\": %d, \"disk_bytes\": %zu, \"rss_end_bytes\": %zu, "
                "\"rss_anon_end_bytes\": %zu, \"rss_file_end_bytes\": %zu, \"loaded\": %d, \"cold\": %d,\n \"results\": [",
                ds.n, ds.dim, ds.nq, k, ny_metric_name(metric), m, efc, T, build_s, build_cpu_s, peak, rss_loaded, bpv_index,
                bpv_vec, ny_simd_name(ny_simd_active()), quant, rescore, use_q ? oversampling : 0, bpv_codes, on_disk != NULL, graph_on_disk,
                disk_bytes + graph_disk_bytes, rss_end, anon_end, file_end, loaded, cold);
        for (size_t e = 0; e < nef; e++)
            fprintf(f,
                    "%s\n  {\"ef\": %zu, \"recall\": %.5f, \"qps_1t\": %.1f, \"qps_nt\": %.1f, \"p50_us\": %.2f, "
                    "\"p99_us\": %.2f, \"qps_1t_cpu\": %.1f}",
                    e ? "," : "", res[e].ef, res[e].recall, res[e].qps_1t, res[e].qps_nt, res[e].p50_us,
                    res[e].p99_us, res[e].qps_1t_cpu);
        fprintf(f, "]}\n");
        if (fclose(f) != 0) {
            fprintf(stderr, "bench: cannot write %s\n", json);
            goto out;
        }
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "bench: %s\n", ny_errmsg());
out:
    ny_hnsw_free(h);
    free(ids);
    free(dists);
    free(lat);
    dataset_free(&ds);
    return rc;
}
