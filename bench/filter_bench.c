/*
 * filter_bench.c -- filtered search at several selectivities.
 *
 *   build/filter_bench [N] [DIM] [NQ] [DATA_OUT|-] [EFS] [RESULTS|-] [ROUNDS]
 *
 * Data: N clustered random vectors (256 Gaussian clusters, unit noise; DIM, L2), payload {"sel": uniform
 * integer in [0, 1000000)}; the filter sel < s * 1e6 matches a share s.
 * For each s in 50%, 10%, 1%, 0.1%, 0.01% and each ef in EFS (comma list,
 * default 128), single-threaded QPS and recall@10 against exact filtered
 * brute force of:
 *   planner   integer payload index on "sel", planned search (hnsw_ef ef)
 *   postfilt  plain HNSW without filter, top k' = min(ceil(2k/s), 5000) at
 *             ef' = max(ef, k'), then filtered (post-filtering); each query
 *             compiles the filter JSON (as any filtered request must) but
 *             tests results against the sel array, not their payloads
 *   scan      exact filtered scan without payload index (params.exact), on
 *             the first min(NQ, 50) queries (its recall is 1 by definition)
 * QPS is given per wall second and per CPU second of the searching thread
 * (CLOCK_THREAD_CPUTIME_ID; steadier on a shared machine).  With ROUNDS > 1
 * (default 1) the planner and postfilt passes of one (s, ef) alternate
 * ROUNDS times and the best of each is kept.
 * DATA_OUT: vectors, sel values, queries and the true top-10 of each
 * selectivity, for the peers (bench/hnswlib_filter.cpp, bench/filter_compare.py):
 *   u64 n, dim, nq; f32 vecs[n][dim]; u32 sel[n]; f32 queries[nq][dim];
 *   i64 truth[5][nq][10] (-1 pads when fewer than 10 points match).
 * RESULTS: one tab-separated line per row: lib method share ef qps qps_cpu
 * recall (for bench/filter_compare.py table).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ftw.h>
#include <unistd.h>

#include "collection/coll_index.h"
#include "filter/filter.h"
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

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
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
    size_t efs[32], nef = 0;
    for (const char *e = argc > 5 ? argv[5] : "128"; *e && nef < 32;) {
        char *end;
        unsigned long v = strtoul(e, &end, 10);
        if (end == e || v == 0) {
            fprintf(stderr, "filter_bench: bad ef list '%s'\n", argv[5]);
            return 2;
        }
        efs[nef++] = v;
        e = *end == ',' ? end + 1 : end;
    }
    const char *resf = argc > 6 && strcmp(argv[6], "-") ? argv[6] : NULL;
    int rounds = argc > 7 ? atoi(argv[7]) : 1;
    if (rounds < 1) rounds = 1;
    if (!n || !dim || !nq) {
        fprintf(stderr, "filter_bench: N, DIM and NQ must be positive\n");
        return 2;
    }
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
    printf("# filter_bench: n=%zu dim=%zu nq=%zu k=%zu rounds=%d; HNSW build %.1fs, payload index build %.3fs\n", n, dim,
           nq, K, rounds, t_build, t_idx);
    printf("%-11s %-9s %5s %10s %10s %8s   %s\n", "selectivity", "method", "ef", "QPS", "QPS/cpu", "recall", "notes");
    FILE *rf = resf ? fopen(resf, "w") : NULL;
    if (resf && !rf) die("results file");

    uint64_t *truth = malloc(5 * nq * K * sizeof *truth);
    size_t *ntruth = calloc(5 * nq, sizeof *ntruth);
    /* Ground truth: exact, through the index. */
    for (int si = 0; si < 5; si++) {
        char filter[128];
        snprintf(filter, sizeof filter, "{\"must\": [{\"key\": \"sel\", \"range\": {\"lt\": %u}}]}",
                 (uint32_t)(sels[si] * 1000000));
        for (size_t qi = 0; qi < nq; qi++) {
            ny_search_params p = {.vector = qs + qi * dim, .limit = K, .filter_json = filter, .exact = 1};
            ny_records r;
            if (ny_collection_search(c, &p, &r) != NY_OK) die("search");
            ntruth[si * nq + qi] = r.n;
            for (size_t j = 0; j < r.n; j++) truth[(si * nq + qi) * K + j] = r.items[j].id.num;
            ny_records_free(&r);
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
        if (fclose(fp) != 0) die("data out");
    }

    /* One pass of NQ' queries: method 0 planner, 1 postfilt, 2 scan. */
    typedef struct {
        double qps, qps_cpu, recall;
    } pass_res;
    for (int pass = 0; pass < 2; pass++) { /* 0: with the index, 1: without */
        if (pass == 1 && ny_collection_delete_payload_index(c, "sel", 1) != NY_OK) die("drop index");
        for (int si = 0; si < 5; si++) {
            uint32_t lim = (uint32_t)(sels[si] * 1000000);
            char filter[128];
            snprintf(filter, sizeof filter, "{\"must\": [{\"key\": \"sel\", \"range\": {\"lt\": %u}}]}", lim);
            size_t kk = (size_t)ceil((double)K / sels[si] * 2);
            if (kk > 5000) kk = 5000;
            size_t last_post_ef = 0;
            for (size_t ei = 0; ei < (pass ? 1 : nef); ei++) {
                size_t EF = efs[ei];
                int methods[2] = {pass ? 2 : 0, pass ? -1 : 1};
                size_t post_ef = kk > EF ? kk : EF;
                if (post_ef == last_post_ef) methods[1] = -1; /* same ef as the previous row */
                if (!pass) last_post_ef = post_ef;
                pass_res best[3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
                ny_plan_stats s0, s1 = {0};
                for (int round = 0; round < (pass ? 1 : rounds); round++)
                    for (int mi = 0; mi < 2; mi++) {
                        int m = methods[mi];
                        if (m < 0) continue;
                        int post = m == 1;
                        size_t nqm = m == 2 && nq > 50 ? 50 : nq;
                        ny_coll_plan_stats(&s0);
                        size_t hits = 0, want = 0;
                        double t = now(), tc = cpu_now();
                        for (size_t qi = 0; qi < nqm; qi++) {
                            ny_search_params p = {.vector = qs + qi * dim, .limit = post ? kk : K,
                                                  .hnsw_ef = post ? post_ef : EF};
                            if (!post) p.filter_json = filter;
                            if (m == 2) p.exact = 1;
                            /* A post-filter receives the filter too: it pays its
                             * parse (then applies it from the sel array, cheaper
                             * than reading payloads). */
                            ny_fexpr *pf = NULL;
                            if (post && ny_filter_compile(filter, &pf) != NY_OK) die("filter");
                            ny_filter_free(pf);
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
                        double el = now() - t, elc = cpu_now() - tc;
                        if (m == 0 && round == 0) {
                            ny_coll_plan_stats(&s1);
                            s1.exact_plans -= s0.exact_plans;
                            s1.hnsw_plans -= s0.hnsw_plans;
                            s1.rechecks -= s0.rechecks;
                            s1.fallbacks -= s0.fallbacks;
                        }
                        pass_res pr = {(double)nqm / el, (double)nqm / (elc > 1e-9 ? elc : 1e-9),
                                       want ? (double)hits / (double)want : 1.0};
                        if (pr.qps > best[m].qps) best[m].qps = pr.qps;
                        if (pr.qps_cpu > best[m].qps_cpu) best[m].qps_cpu = pr.qps_cpu;
                        best[m].recall = pr.recall;
                    }
                for (int mi = 0; mi < 2; mi++) {
                    int m = methods[mi];
                    if (m < 0) continue;
                    static const char *names[3] = {"planner", "postfilt", "scan"};
                    char notes[128] = "";
                    if (m == 0)
                        snprintf(notes, sizeof notes, "plans: %llu exact, %llu hnsw (%llu rewalk), %llu fallback",
                                 (unsigned long long)s1.exact_plans, (unsigned long long)s1.hnsw_plans,
                                 (unsigned long long)s1.rechecks, (unsigned long long)s1.fallbacks);
                    if (m == 1) snprintf(notes, sizeof notes, "top %zu", kk);
                    if (m == 2) snprintf(notes, sizeof notes, "%zu queries", nq > 50 ? (size_t)50 : nq);
                    size_t ef_shown = m == 1 ? post_ef : m == 2 ? 0 : EF;
                    printf("%-11g %-9s %5zu %10.0f %10.0f %8.4f   %s\n", sels[si] * 100, names[m], ef_shown, best[m].qps,
                           best[m].qps_cpu, best[m].recall, notes);
                    if (rf)
                        fprintf(rf, "nearly\t%s\t%g\t%zu\t%.1f\t%.1f\t%.4f\n", names[m], sels[si], ef_shown, best[m].qps,
                                best[m].qps_cpu, best[m].recall);
                    fflush(stdout);
                }
            }
        }
    }
    if (rf && fclose(rf) != 0) die("results file");
    ny_collection_release(c);
    ny_db_drop_collection(db, "b");
    ny_db_close(db);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); /* whatever the drop left */
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
