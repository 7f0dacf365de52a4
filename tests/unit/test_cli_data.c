/* test_cli_data.c -- the benchmark tools' data layer: .fvecs/.ivecs
 * round trips (whole-file and streaming), clear errors on malformed files,
 * `nearly gen` (determinism, prefix stability, exact ground truth), and the
 * JSON shape of `nearly bench` / `nearly bench-scan`. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/dataset.h"
#include "cli/fvecs.h"
#include "nearly.h"
#include "t.h"

static void write_raw(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, len, f);
    fclose(f);
}

static int files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

TEST(fvecs_roundtrip_whole_and_streaming)
{
    const char *dir = t_tmpdir();
    char p[512];
    snprintf(p, sizeof p, "%s/a.fvecs", dir);
    size_t n = 1000, dim = 13;
    float *v = malloc(n * dim * sizeof(float));
    unsigned long long s = 3;
    for (size_t i = 0; i < n * dim; i++) v[i] = t_randf(&s);
    CHECK_RC(fvecs_save(p, v, n, dim), NY_OK);
    float *r;
    size_t rn, rd;
    CHECK_RC(fvecs_load(p, 0, &r, &rn, &rd), NY_OK);
    CHECK(rn == n && rd == dim && memcmp(r, v, n * dim * sizeof(float)) == 0);
    free(r);
    CHECK_RC(fvecs_load(p, 10, &r, &rn, &rd), NY_OK);
    CHECK(rn == 10 && rd == dim && memcmp(r, v, 10 * dim * sizeof(float)) == 0);
    free(r);
    /* streaming in odd batches, written in batches too */
    vecs_writer w;
    snprintf(p, sizeof p, "%s/b.fvecs", dir);
    CHECK_RC(vecs_create(p, &w), NY_OK);
    CHECK_RC(vecs_write(&w, v, 300, dim), NY_OK);
    CHECK_RC(vecs_write(&w, v + 300 * dim, 700, dim), NY_OK);
    CHECK_RC(vecs_write(&w, v, 1, dim + 1), NY_EINVAL);
    CHECK_RC(vecs_finish(&w), NY_OK);
    vecs_reader rd2;
    CHECK_RC(vecs_open(p, &rd2), NY_OK);
    CHECK(rd2.dim == dim && rd2.n == n);
    float *buf = malloc(77 * dim * sizeof(float));
    size_t got, total = 0;
    int same = 1;
    do {
        CHECK_RC(vecs_read(&rd2, buf, 77, &got), NY_OK);
        if (memcmp(buf, v + total * dim, got * dim * sizeof(float))) same = 0;
        total += got;
    } while (got > 0);
    vecs_close(&rd2);
    CHECK(total == n && same);
    /* ivecs */
    int32_t iv[6] = {1, -2, 3, 4, 5, 2147483647};
    snprintf(p, sizeof p, "%s/c.ivecs", dir);
    CHECK_RC(ivecs_save(p, iv, 2, 3), NY_OK);
    int32_t *ir;
    CHECK_RC(ivecs_load(p, 0, &ir, &rn, &rd), NY_OK);
    CHECK(rn == 2 && rd == 3 && memcmp(ir, iv, sizeof iv) == 0);
    free(ir);
    free(buf);
    free(v);
}

TEST(malformed_files_give_clear_errors)
{
    const char *dir = t_tmpdir();
    char p[512];
    float *r;
    size_t n, d;
    /* empty file: valid, no records */
    snprintf(p, sizeof p, "%s/empty.fvecs", dir);
    write_raw(p, "", 0);
    CHECK_RC(fvecs_load(p, 0, &r, &n, &d), NY_OK);
    CHECK(n == 0 && d == 0);
    free(r);
    /* missing file */
    snprintf(p, sizeof p, "%s/missing.fvecs", dir);
    CHECK_RC(fvecs_load(p, 0, &r, &n, &d), NY_ENOTFOUND);
    CHECK(strstr(ny_errmsg(), "missing.fvecs") != NULL);
    /* second record with another dimension */
    int32_t bad[] = {2, 0, 0, 3, 0, 0, 0};
    snprintf(p, sizeof p, "%s/dims.fvecs", dir);
    write_raw(p, bad, sizeof bad);
    CHECK_RC(fvecs_load(p, 0, &r, &n, &d), NY_ECORRUPT);
    CHECKF(strstr(ny_errmsg(), "record 1 has dimension 3, expected 2") != NULL, "msg: %s", ny_errmsg());
    /* truncated inside the values of record 1 */
    int32_t tr[] = {2, 0, 0, 2, 0};
    snprintf(p, sizeof p, "%s/trunc.fvecs", dir);
    write_raw(p, tr, sizeof tr);
    CHECK_RC(fvecs_load(p, 0, &r, &n, &d), NY_ECORRUPT);
    CHECKF(strstr(ny_errmsg(), "truncated") && strstr(ny_errmsg(), "record 1"), "msg: %s", ny_errmsg());
    /* truncated inside a header */
    unsigned char th[14] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0};
    snprintf(p, sizeof p, "%s/trunch.fvecs", dir);
    write_raw(p, th, sizeof th);
    CHECK_RC(fvecs_load(p, 0, &r, &n, &d), NY_ECORRUPT);
    CHECKF(strstr(ny_errmsg(), "truncated") != NULL, "msg: %s", ny_errmsg());
    /* nonsense first dimension */
    int32_t neg[] = {-5, 0};
    snprintf(p, sizeof p, "%s/neg.fvecs", dir);
    write_raw(p, neg, sizeof neg);
    CHECK_RC(fvecs_load(p, 0, &r, &n, &d), NY_ECORRUPT);
    CHECKF(strstr(ny_errmsg(), "dimension -5") != NULL, "msg: %s", ny_errmsg());
    /* a truncated file read with a limit that stops before the damage is fine */
    CHECK_RC(fvecs_load(strcat(strcpy(p, dir), "/trunc.fvecs"), 1, &r, &n, &d), NY_OK);
    CHECK(n == 1 && d == 2);
    free(r);
}

static int run_gen(const char *out, const char *n, const char *dim, const char *metric, const char *threads)
{
    char *argv[] = {"gen", "--out", (char *)out, "--n", (char *)n, "--dim", (char *)dim, "--nq", "25", "--metric",
                    (char *)metric, "--k", "20", "--threads", (char *)threads, "--clusters", "30", NULL};
    return cmd_gen(17, argv);
}

TEST(gen_is_deterministic_prefix_stable_and_exact)
{
    char a[512], b[512], c[512], pa[600], pb[600];
    snprintf(a, sizeof a, "%s/a", t_tmpdir());
    snprintf(b, sizeof b, "%s/b", t_tmpdir());
    snprintf(c, sizeof c, "%s/c", t_tmpdir());
    REQUIRE(run_gen(a, "3000", "40", "cosine", "1") == 0);
    REQUIRE(run_gen(b, "3000", "40", "cosine", "2") == 0);
    REQUIRE(run_gen(c, "2000", "40", "l2", "2") == 0);
    static const char *files[] = {"base.fvecs", "query.fvecs", "groundtruth.ivecs", "groundtruth.dist.fvecs"};
    for (int i = 0; i < 4; i++) {
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        CHECKF(files_equal(pa, pb), "%s differs between 1 and 2 threads", files[i]);
    }
    dataset ds, dl;
    REQUIRE(dataset_load("test", a, 0, 1, &ds) == 0);
    CHECK(ds.n == 3000 && ds.dim == 40 && ds.nq == 25 && ds.gt_k == 20);
    /* unit norm, and the ground truth is the exact top-k by inner product */
    for (size_t i = 0; i < ds.n; i += 97) {
        double s = 0;
        for (size_t j = 0; j < ds.dim; j++) s += (double)ds.base[i * ds.dim + j] * ds.base[i * ds.dim + j];
        CHECKF(fabs(s - 1) < 1e-5, "row %zu norm^2 %g", i, s);
    }
    double *sc = malloc(ds.n * sizeof(double));
    for (size_t q = 0; q < ds.nq; q++) {
        for (size_t i = 0; i < ds.n; i++) {
            double s = 0;
            for (size_t j = 0; j < ds.dim; j++) s += (double)ds.queries[q * ds.dim + j] * ds.base[i * ds.dim + j];
            sc[i] = s;
        }
        for (size_t r = 0; r < ds.gt_k; r++) {
            /* count how many score strictly better than the rank-r answer (with float tolerance) */
            double v = sc[ds.gt[q * ds.gt_k + r]];
            size_t better = 0;
            for (size_t i = 0; i < ds.n; i++) better += sc[i] > v + 1e-5;
            CHECKF(better <= r, "query %zu rank %zu: %zu vectors score higher", q, r, better);
        }
    }
    free(sc);
    /* a smaller base with the same options is a prefix of the larger one;
     * the l2 set keeps un-normalised vectors */
    REQUIRE(dataset_load("test", c, 0, 1, &dl) == 0);
    char d2[512];
    snprintf(d2, sizeof d2, "%s/d", t_tmpdir());
    REQUIRE(run_gen(d2, "1000", "40", "cosine", "2") == 0);
    dataset dp;
    REQUIRE(dataset_load("test", d2, 0, 0, &dp) == 0);
    CHECK(memcmp(dp.base, ds.base, 1000 * 40 * sizeof(float)) == 0);
    CHECK(memcmp(dp.queries, ds.queries, 25 * 40 * sizeof(float)) == 0);
    double norm0 = 0;
    for (size_t j = 0; j < dl.dim; j++) norm0 += (double)dl.base[j] * dl.base[j];
    CHECK(fabs(norm0 - 1) > 1e-3);
    ny_metric m;
    const char *how;
    CHECK(dataset_metric(c, &m, &how) == 0 && m == NY_L2);
    CHECK(dataset_metric(a, &m, &how) == 0 && m == NY_COSINE);
    dataset_free(&ds);
    dataset_free(&dl);
    dataset_free(&dp);
}

TEST(gen_rejects_bad_options)
{
    char *a1[] = {"gen", "--n", "10", "--dim", "4", NULL};                                  /* no --out */
    char *a2[] = {"gen", "--out", "/tmp/x", "--n", "ten", "--dim", "4", NULL};              /* bad number */
    char *a3[] = {"gen", "--out", "/tmp/x", "--n", "10", "--dim", "4", "--metric", "dot", NULL};
    char *a4[] = {"gen", "--out", "/tmp/x", "--n", "10", "--dim", "0", NULL};
    char *a5[] = {"gen", "--out", "/tmp/x", "--n", "10", "--dim", "4", "--bogus", NULL};
    CHECK(cmd_gen(5, a1) == 2);
    CHECK(cmd_gen(7, a2) == 2);
    CHECK(cmd_gen(9, a3) == 2);
    CHECK(cmd_gen(7, a4) == 2);
    CHECK(cmd_gen(8, a5) == 2);
}

TEST(dataset_checks_consistency)
{
    const char *dir = t_tmpdir();
    char p[600];
    float b[6] = {1, 2, 3, 4, 5, 6}, q[3] = {1, 1, 1};
    int32_t gt[2] = {0, 7};
    snprintf(p, sizeof p, "%s/base.fvecs", dir);
    fvecs_save(p, b, 2, 3);
    snprintf(p, sizeof p, "%s/query.fvecs", dir);
    fvecs_save(p, q, 1, 3);
    snprintf(p, sizeof p, "%s/groundtruth.ivecs", dir);
    ivecs_save(p, gt, 1, 2);
    dataset ds;
    CHECK(dataset_load("test", dir, 0, 0, &ds) == 0);
    dataset_free(&ds);
    CHECK(dataset_load("test", dir, 0, 1, &ds) != 0); /* id 7 outside the base */
    snprintf(p, sizeof p, "%s/query.fvecs", dir);
    fvecs_save(p, q, 1, 2);
    CHECK(dataset_load("test", dir, 0, 0, &ds) != 0); /* dimension mismatch */
}

TEST(bench_json_has_the_agreed_shape_and_sane_recall)
{
    char d[512], js[600];
    snprintf(d, sizeof d, "%s/set", t_tmpdir());
    char *g[] = {"gen", "--out", d, "--n", "3000", "--dim", "16", "--nq", "50", "--k", "10", "--threads", "2", NULL};
    REQUIRE(cmd_gen(13, g) == 0);
    snprintf(js, sizeof js, "%s/r.json", d);
    char *b[] = {"bench", "--data", d, "--ef", "10,64", "--threads", "2", "--m", "8", "--ef-construction", "64",
                 "--json", js, NULL};
    REQUIRE(cmd_bench(13, b) == 0);
    json_t *j = json_load_file(js, 0, NULL);
    REQUIRE(j != NULL);
    static const char *keys[] = {"n", "dim", "metric", "m", "ef_construction", "threads", "build_s",
                                 "peak_rss_bytes", "results", "bytes_per_vector_index"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) CHECKF(json_object_get(j, keys[i]), "no %s", keys[i]);
    CHECK(json_integer_value(json_object_get(j, "n")) == 3000);
    CHECK(json_integer_value(json_object_get(j, "m")) == 8);
    CHECK(!strcmp(json_string_value(json_object_get(j, "metric")), "cosine"));
    json_t *res = json_object_get(j, "results");
    REQUIRE(json_array_size(res) == 2);
    json_t *r1 = json_array_get(res, 1);
    CHECK(json_integer_value(json_object_get(r1, "ef")) == 64);
    double rec = json_number_value(json_object_get(r1, "recall"));
    CHECKF(rec >= 0.9 && rec <= 1.0, "recall at ef=64: %g", rec);
    static const char *rk[] = {"qps_1t", "qps_nt", "p50_us", "p99_us"};
    for (size_t i = 0; i < 4; i++) CHECKF(json_number_value(json_object_get(r1, rk[i])) > 0, "%s not > 0", rk[i]);
    json_decref(j);
    /* a missing ground truth is a clear error, not a crash */
    char *bad[] = {"bench", "--data", "/nonexistent-dir", NULL};
    CHECK(cmd_bench(3, bad) != 0);
}

static double bench_recall(const char *js, size_t at)
{
    json_t *j = json_load_file(js, 0, NULL);
    double r = j ? json_number_value(json_object_get(json_array_get(json_object_get(j, "results"), at), "recall")) : -1;
    json_decref(j);
    return r;
}

/* --index FILE: the first run builds and saves, the next ones load it
 * (base.fvecs is then not read) -- in RAM, or straight to the on-disk files
 * with --on-disk DIR --graph-on-disk: the same float recall. */
TEST(bench_saved_index_loaded_to_disk)
{
    char d[512], idx[600], dd[600], j1[600], j2[600], j3[600];
    snprintf(d, sizeof d, "%s/set2", t_tmpdir());
    char *g[] = {"gen", "--out", d, "--n", "2000", "--dim", "24", "--nq", "40", "--k", "10", "--threads", "2", NULL};
    REQUIRE(cmd_gen(13, g) == 0);
    snprintf(idx, sizeof idx, "%s/i.hnsw", d);
    snprintf(dd, sizeof dd, "%s/disk", d);
    REQUIRE(mkdir(dd, 0700) == 0);
    snprintf(j1, sizeof j1, "%s/1.json", d);
    snprintf(j2, sizeof j2, "%s/2.json", d);
    snprintf(j3, sizeof j3, "%s/3.json", d);
    char *b1[] = {"bench", "--data", d, "--ef", "32", "--threads", "2", "--m", "8", "--index", idx, "--json", j1, NULL};
    REQUIRE(cmd_bench(13, b1) == 0);
    REQUIRE(access(idx, F_OK) == 0);
    char *b2[] = {"bench", "--data", d, "--ef", "32", "--threads", "2", "--m", "8", "--index", idx, "--json", j2,
                  "--on-disk", dd, "--graph-on-disk", NULL};
    REQUIRE(cmd_bench(16, b2) == 0);
    char *b3[] = {"bench", "--data", d, "--ef", "32", "--threads", "2", "--m", "8", "--index", idx, "--json", j3,
                  "--on-disk", dd, "--graph-on-disk", "--quant", "int8", "--oversampling", "4", NULL};
    REQUIRE(cmd_bench(20, b3) == 0);
    double r1 = bench_recall(j1, 0), r2 = bench_recall(j2, 0), r3 = bench_recall(j3, 0);
    printf("  recall: built %.4f, loaded to disk %.4f, int8 on disk %.4f\n", r1, r2, r3);
    CHECK(r1 >= 0.9 && r1 == r2);
    CHECK(r3 >= r1 - 0.05);
}

TEST(bench_scan_reports_bandwidth_and_scan_rate)
{
    char js[600];
    snprintf(js, sizeof js, "%s/s.json", t_tmpdir());
    char *a[] = {"bench-scan", "--n", "20000", "--dim", "24", "--threads", "2", "--bw-mib", "16", "--seconds", "0",
                 "--batch", "8", "--json", js, NULL};
    REQUIRE(cmd_bench_scan(15, a) == 0);
    json_t *j = json_load_file(js, 0, NULL);
    REQUIRE(j != NULL);
    static const char *keys[] = {"membw_gbs_1t", "membw_gbs_nt", "scan_gbs_1t", "scan_gbs_nt", "batch_qps_nt"};
    for (size_t i = 0; i < 5; i++) CHECKF(json_number_value(json_object_get(j, keys[i])) > 0, "%s", keys[i]);
    CHECK(json_string_value(json_object_get(j, "bandwidth_method")) != NULL);
    json_decref(j);
}
