/*
 * filter_bench.c -- filtered search at several selectivities.
 *
 *   build/filter_bench [N] [DIM] [NQ] [DATA_OUT] [EF]
 *
 * Data: N clustered random vectors (256 Gaussian clusters, unit noise; DIM, L2), payload {"sel": uniform
 * integer in [0, 1000000)}; the filter sel < s * 1e6 matches a share s.
 * For each s in 50%, 10%, 1%, 0.1%, 0.01%, single-threaded QPS and
 * recall@10 against exact filtered brute force of:
 *   planner   integer payload index on "sel", planned search (hnsw_ef EF)
 *   postfilt  plain HNSW without filter, top k/s*2 (cap 5000, ef = max(EF,
 *             that)),
 *             then filtered (post-filtering)
 *   scan      exact filtered scan without payload index (params.exact)
 * With DATA_OUT, writes vectors, sel values, queries and the true top-10 of
 * each selectivity for bench/filter_compare.py (hnswlib with a filter).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collection/coll_index.h"
#include "nearly.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x12345678abcdefull;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double nrand(void)
{
    double u = urand(), v = urand();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

static void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, ny_errmsg());
    exit(1);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    size_t dim = argc > 2 ? strtoul(argv[2], NULL, 10) : 128;
    size_t nq = argc > 3 ? strtoul(argv[3], NULL, 10) : 200;
    const char *out = argc > 4 && strcmp(argv[4], "-") ? argv[4] : NULL;
    const size_t EF = argc > 5 ? strtoul(argv[5], NULL, 10) : 128;
    const size_t K = 10, NCENT = 256;
    static const double sels[] = {0.5, 0.1, 0.01, 0.001, 0.0001};
    float *cent = malloc(NCENT * dim * sizeof(float));
    float *vecs = malloc(n * dim * sizeof(float));
    float *qs = malloc(nq * dim * sizeof(float));
    uint32_t *sel = malloc(n * sizeof *sel);
    for (size_t i = 0; i < NCENT * dim; i++) cent[i] = (float)nrand();
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)(urand() * NCENT);
        for (size_t d = 0; d < dim; d++) vecs[i * dim + d] = cent[c * dim + d] + 1.0f * (float)nrand();
        sel[i] = (uint32_t)(urand() * 1000000);
    }
    for (size_t i = 0; i < nq; i++) {
        size_t c = (size_t)(urand() * NCENT);
        for (size_t d = 0; d < dim; d++) qs[i * dim + d] = cent[c * dim + d] + 1.0f * (float)nrand();
    }
    char dir[] = "/tmp/ny_filter_bench_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    ny_db *db;
    if (ny_db_open(dir, &db) != NY_OK) die("open");
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"vectors\": {\"size\": %zu, \"distance\": \"Euclid\"}, \"hnsw_config\": {\"m\": 16, \"ef_construct\": 100}}", dim);
    if (ny_db_create_collection(db, "b", cfg) != NY_OK) die("create");
    ny_collection *c;
    if (ny_db_get_collection(db, "b", &c) != NY_OK) die("get");
    double t0 = now();
    size_t batch = 10000;
    ny_point *pts = calloc(batch, sizeof *pts);
    char (*pl)[32] = malloc(batch * 32);
    for (size_t s = 0; s < n; s += batch) {
        size_t m = n - s < batch ? n - s : batch;
        for (size_t i = 0; i < m; i++) {
            memset(&pts[i].id, 0, sizeof pts[i].id);
            pts[i].id.num = s + i;
            pts[i].vector = vecs + (s + i) * dim;
            snprintf(pl[i], 32, "{\"sel\": %u}", sel[s + i]);
            pts[i].payload_json = pl[i];
        }
        if (ny_collection_upsert(c, pts, m, 0) != NY_OK) die("upsert");
    }
    double t_build = now() - t0;
    t0 = now();
    if (ny_collection_create_payload_index(c, "sel", "\"integer\"", 1) != NY_OK) die("index");
    double t_idx = now() - t0;
    printf("# filter_bench: n=%zu dim=%zu nq=%zu k=%zu ef=%zu; HNSW build %.1fs, payload index build %.3fs\n", n, dim, nq, K, EF,
           t_build, t_idx);
    printf("%-11s %-9s %10s %8s   %s\n", "selectivity", "method", "QPS", "recall", "notes");

    uint64_t *truth = malloc(5 * nq * K * sizeof *truth);
    size_t *ntruth = calloc(5 * nq, sizeof *ntruth);
    for (int pass = 0; pass < 2; pass++) { /* 0: with the index, 1: without */
        if (pass == 1 && ny_collection_delete_payload_index(c, "sel", 1) != NY_OK) die("drop index");
        for (int si = 0; si < 5; si++) {
            uint32_t lim = (uint32_t)(sels[si] * 1000000);
            char filter[128];
            snprintf(filter, sizeof filter, "{\"must\": [{\"key\": \"sel\", \"range\": {\"lt\": %u}}]}", lim);
            if (pass == 0) { /* ground truth: exact, through the index */
                for (size_t qi = 0; qi < nq; qi++) {
                    ny_search_params p = {.vector = qs + qi * dim, .limit = K, .filter_json = filter, .exact = 1};
                    ny_records r;
                    if (ny_collection_search(c, &p, &r) != NY_OK) die("search");
                    ntruth[si * nq + qi] = r.n;
                    for (size_t j = 0; j < r.n; j++) truth[(si * nq + qi) * K + j] = r.items[j].id.num;
                    ny_records_free(&r);
                }
            }
            const char *methods[2][2] = {{"planner", "postfilt"}, {"scan", NULL}};
            for (int mi = 0; mi < 2 && methods[pass][mi]; mi++) {
                int post = pass == 0 && mi == 1;
                size_t kk = K;
                if (post) {
                    kk = (size_t)ceil((double)K / sels[si] * 2);
                    if (kk > 5000) kk = 5000;
                }
                ny_plan_stats s0, s1;
                ny_coll_plan_stats(&s0);
                size_t hits = 0, want = 0;
                double t = now();
                for (size_t qi = 0; qi < nq; qi++) {
                    ny_search_params p = {.vector = qs + qi * dim, .limit = kk, .hnsw_ef = post && kk > EF ? kk : EF};
                    if (!post) p.filter_json = filter;
                    if (pass == 1) p.exact = 1;
                    ny_records r;
                    if (ny_collection_search(c, &p, &r) != NY_OK) die("search");
                    uint64_t got[16];
                    size_t ng = 0;
                    for (size_t j = 0; j < r.n && ng < K; j++)
                        if (!post || sel[r.items[j].id.num] < lim) got[ng++] = r.items[j].id.num;
                    const uint64_t *tr = truth + (si * nq + qi) * K;
                    want += ntruth[si * nq + qi];
                    for (size_t a = 0; a < ntruth[si * nq + qi]; a++)
                        for (size_t b = 0; b < ng; b++)
                            if (got[b] == tr[a]) {
                                hits++;
                                break;
                            }
                    ny_records_free(&r);
                }
                double el = now() - t;
                ny_coll_plan_stats(&s1);
                char notes[128] = "";
                if (pass == 0 && !post)
                    snprintf(notes, sizeof notes, "plans: %llu exact, %llu hnsw (%llu rewalk), %llu fallback",
                             (unsigned long long)(s1.exact_plans - s0.exact_plans),
                             (unsigned long long)(s1.hnsw_plans - s0.hnsw_plans),
                             (unsigned long long)(s1.rechecks - s0.rechecks),
                             (unsigned long long)(s1.fallbacks - s0.fallbacks));
                if (post) snprintf(notes, sizeof notes, "top %zu, ef %zu", kk, kk > EF ? kk : EF);
                printf("%-11g %-9s %10.0f %8.4f   %s\n", sels[si] * 100, methods[pass][mi], (double)nq / el,
                       want ? (double)hits / (double)want : 1.0, notes);
                fflush(stdout);
            }
        }
    }
    if (out) {
        FILE *fp = fopen(out, "wb");
        if (!fp) die("data out");
        uint64_t hdr[3] = {n, dim, nq};
        fwrite(hdr, sizeof hdr, 1, fp);
        fwrite(vecs, sizeof(float), n * dim, fp);
        fwrite(sel, sizeof(uint32_t), n, fp);
        fwrite(qs, sizeof(float), nq * dim, fp);
        for (size_t i = 0; i < 5 * nq; i++) {
            int64_t row[10];
            for (size_t j = 0; j < K; j++) row[j] = j < ntruth[i] ? (int64_t)truth[i * K + j] : -1;
            fwrite(row, sizeof row, 1, fp);
        }
        fclose(fp);
    }
    ny_collection_release(c);
    ny_db_drop_collection(db, "b");
    ny_db_close(db);
    rmdir(dir);
    free(cent);
    free(vecs);
    free(qs);
    free(sel);
    free(pts);
    free(pl);
    free(truth);
    free(ntruth);
    return 0;
}
