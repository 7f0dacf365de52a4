/* test_hnsw.c -- the HNSW index against a double-precision brute force:
 * recall on random and clustered data for every metric, edge cases (empty
 * index, k > count, ef < k, dim 1 and odd dims, NaN), ids and deletes
 * (including recall after deleting 30%), filtered search, save/load round
 * trips and corrupted files, memory accounting. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hnsw_util.h"
#include "index/hnsw.h"
#include "nearly.h"
#include "t.h"

static ny_hnsw *build(size_t dim, ny_metric m, size_t M, size_t efc, const float *v, size_t n, int threads)
{
    ny_hnsw_params p;
    ny_hnsw_params_init(&p, dim, m);
    p.m = M;
    p.ef_construction = efc;
    ny_hnsw *h = NULL;
    int rc = ny_hnsw_new(&p, &h);
    if (rc) {
        t_fail(__FILE__, __LINE__, "ny_hnsw_new: %s", ny_errmsg());
        return NULL;
    }
    rc = ny_hnsw_add_batch(h, NULL, 0, v, n, threads);
    if (rc) t_fail(__FILE__, __LINE__, "add_batch: %s", ny_errmsg());
    return h;
}

/* Mean recall@k of HNSW search over nq queries against brute force over
 * the ids with ok[id] set (ok NULL: all of 0..n).  Also checks that every
 * result is allowed and that there are no duplicates. */
static double measure_recall(ny_hnsw *h, ny_metric m, size_t dim, const float *base, size_t n,
                             const unsigned char *ok, const float *qs, size_t nq, size_t k, size_t ef,
                             const ny_filter *f)
{
    uint32_t *got = malloc(k * sizeof *got), *truth = malloc(k * sizeof *truth);
    float *gd = malloc(k * sizeof *gd);
    double *td = malloc(k * sizeof *td);
    size_t hits = 0, total = 0, bad = 0;
    for (size_t i = 0; i < nq; i++) {
        const float *q = qs + i * dim;
        size_t nt = brute_force(m, dim, base, NULL, n, ok, q, k, truth, td);
        int ng = ny_hnsw_search(h, q, k, ef, f, got, gd);
        if (ng < 0) {
            t_fail(__FILE__, __LINE__, "search: %s", ny_errmsg());
            break;
        }
        for (int a = 0; a < ng; a++) {
            if (got[a] >= n || (ok && !ok[got[a]])) bad++;
            for (int b = 0; b < a; b++)
                if (got[a] == got[b]) bad++;
            if (a && gd[a] < gd[a - 1]) bad++;
        }
        if (bad) break;
        hits += count_hits(m, dim, base, q, got, (size_t)ng, td, nt);
        total += nt;
    }
    CHECKF(bad == 0, "search returned disallowed, duplicate or unsorted results (%zu)", bad);
    free(got);
    free(truth);
    free(gd);
    free(td);
    return total ? (double)hits / (double)total : 1.0;
}

static void recall_case(ny_metric m, int clustered, double want)
{
    size_t n = t_n(4000, 1000), dim = 24, nq = 60;
    float *v = clustered ? gen_clustered(n, dim, 20, 7 + m) : gen_random(n, dim, 11 + m);
    float *q = clustered ? gen_clustered2(nq, dim, 20, 7 + m, 1234) : gen_random(nq, dim, 99 + m);
    ny_hnsw *h = build(dim, m, 16, 100, v, n, 1); /* deterministic: recall thresholds */
    REQUIRE(h);
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    double r = measure_recall(h, m, dim, v, n, NULL, q, nq, 10, 128, NULL);
    printf("    %s %s: recall@10 (ef=128) = %.4f\n", ny_metric_name(m), clustered ? "clustered" : "random", r);
    CHECKF(r >= want, "%s %s recall %.4f < %.2f", ny_metric_name(m), clustered ? "clustered" : "random", r, want);
    /* Exact search equals brute force. */
    uint32_t ids[10], tid[10];
    float d[10];
    double td[10];
    for (size_t i = 0; i < 5; i++) {
        int ng = ny_hnsw_search_exact(h, q + i * dim, 10, NULL, ids, d);
        size_t nt = brute_force(m, dim, v, NULL, n, NULL, q + i * dim, 10, tid, td);
        CHECK(ng == (int)nt);
        CHECK(count_hits(m, dim, v, q + i * dim, ids, (size_t)ng, td, nt) == nt);
        for (int a = 0; a < ng; a++) CHECKF(fabs(d[a] - td[a]) < 1e-4 * (1 + fabs(td[a])), "exact dist %g vs %g", d[a], td[a]);
    }
    ny_hnsw_free(h);
    free(v);
    free(q);
}

TEST(recall_random_l2) { recall_case(NY_L2, 0, 0.95); }
TEST(recall_random_cosine) { recall_case(NY_COSINE, 0, 0.95); }
TEST(recall_random_dot) { recall_case(NY_DOT, 0, 0.90); }
TEST(recall_clustered_l2) { recall_case(NY_L2, 1, 0.95); }
TEST(recall_clustered_cosine) { recall_case(NY_COSINE, 1, 0.95); }
TEST(recall_clustered_dot) { recall_case(NY_DOT, 1, 0.90); }

TEST(params_and_bad_input)
{
    ny_hnsw_params p;
    ny_hnsw *h = NULL;
    ny_hnsw_params_init(&p, 0, NY_L2);
    CHECK_RC(ny_hnsw_new(&p, &h), NY_EINVAL);
    ny_hnsw_params_init(&p, 70000, NY_L2);
    CHECK_RC(ny_hnsw_new(&p, &h), NY_EINVAL);
    ny_hnsw_params_init(&p, 4, NY_L2);
    p.m = 1;
    CHECK_RC(ny_hnsw_new(&p, &h), NY_EINVAL);
    ny_hnsw_params_init(&p, 4, (ny_metric)7);
    CHECK_RC(ny_hnsw_new(&p, &h), NY_EINVAL);
    ny_hnsw_params_init(&p, 4, NY_L2);
    CHECK(p.m == 16 && p.ef_construction == 200);
    REQUIRE(ny_hnsw_new(&p, &h) == NY_OK);
    float good[4] = {1, 2, 3, 4}, nan4[4] = {1, NAN, 3, 4}, inf4[4] = {1, 2, INFINITY, 4};
    CHECK_RC(ny_hnsw_add(h, 1, nan4), NY_EINVAL);
    CHECK_RC(ny_hnsw_add(h, 1, inf4), NY_EINVAL);
    CHECK_RC(ny_hnsw_add(h, UINT32_MAX, good), NY_EINVAL);
    CHECK(!ny_hnsw_contains(h, 1));
    CHECK_RC(ny_hnsw_add(h, 1, good), NY_OK);
    CHECK_RC(ny_hnsw_add(h, 1, good), NY_EEXIST);
    uint32_t ids[4];
    CHECK_RC(ny_hnsw_search(h, nan4, 1, 0, NULL, ids, NULL), NY_EINVAL);
    CHECK_RC(ny_hnsw_search_exact(h, nan4, 1, NULL, ids, NULL), NY_EINVAL);
    CHECK_RC(ny_hnsw_search(NULL, good, 1, 0, NULL, ids, NULL), NY_EINVAL);
    ny_hnsw_stats st;
    ny_hnsw_get_stats(h, &st);
    CHECK(st.count == 1 && st.max_id == 2 && st.dim == 4);
    ny_hnsw_free(h);
    ny_hnsw_free(NULL);
}

TEST(empty_index)
{
    ny_hnsw_params p;
    ny_hnsw *h;
    ny_hnsw_params_init(&p, 8, NY_COSINE);
    REQUIRE(ny_hnsw_new(&p, &h) == NY_OK);
    float q[8] = {1, 0, 0, 0, 0, 0, 0, 0};
    uint32_t ids[5];
    float d[5];
    CHECK(ny_hnsw_search(h, q, 5, 10, NULL, ids, d) == 0);
    CHECK(ny_hnsw_search_exact(h, q, 5, NULL, ids, d) == 0);
    CHECK_RC(ny_hnsw_delete(h, 3), NY_ENOTFOUND);
    CHECK_RC(ny_hnsw_get_vector(h, 3, q), NY_ENOTFOUND);
    CHECK_RC(ny_hnsw_search_batch(h, q, 1, 5, 10, NULL, 1, ids, d), NY_OK);
    for (int i = 0; i < 5; i++) CHECK(ids[i] == UINT32_MAX && isinf(d[i]));
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/empty.hnsw", t_tmpdir());
    CHECK_RC(ny_hnsw_save(h, path), NY_OK);
    ny_hnsw *g = NULL;
    CHECK_RC(ny_hnsw_load(path, &g), NY_OK);
    if (g) CHECK(ny_hnsw_search(g, q, 5, 10, NULL, ids, d) == 0);
    ny_hnsw_free(g);
    /* Everything deleted: search returns nothing. */
    CHECK_RC(ny_hnsw_add(h, 7, q), NY_OK);
    CHECK(ny_hnsw_search(h, q, 5, 10, NULL, ids, d) == 1 && ids[0] == 7);
    CHECK_RC(ny_hnsw_delete(h, 7), NY_OK);
    CHECK(ny_hnsw_search(h, q, 5, 10, NULL, ids, d) == 0);
    CHECK_RC(ny_hnsw_vacuum(h), NY_OK);
    CHECK(ny_hnsw_search(h, q, 5, 10, NULL, ids, d) == 0);
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    CHECK_RC(ny_hnsw_add(h, 7, q), NY_OK);
    CHECK(ny_hnsw_search(h, q, 5, 10, NULL, ids, d) == 1 && ids[0] == 7);
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    ny_hnsw_free(h);
}

TEST(k_above_count_and_small_ef)
{
    size_t dim = 5, n = 7;
    float *v = gen_random(n, dim, 3);
    ny_hnsw *h = build(dim, NY_L2, 4, 10, v, n, 1);
    REQUIRE(h);
    uint32_t ids[20], tid[20];
    float d[20];
    double td[20];
    float q[5] = {0.1f, 0.2f, -0.3f, 0.4f, 0};
    int ng = ny_hnsw_search(h, q, 20, 0, NULL, ids, d);
    size_t nt = brute_force(NY_L2, dim, v, NULL, n, NULL, q, 20, tid, td);
    CHECK(ng == (int)n && nt == n);
    for (size_t i = 0; i < nt && ng == (int)n; i++) CHECKF(ids[i] == tid[i], "rank %zu: %u vs %u", i, ids[i], tid[i]);
    /* ef < k is raised to k. */
    size_t n2 = t_n(2000, 500);
    float *v2 = gen_random(n2, 8, 5);
    ny_hnsw *h2 = build(8, NY_L2, 8, 64, v2, n2, 2);
    REQUIRE(h2);
    uint32_t big[50];
    float bd[50];
    ng = ny_hnsw_search(h2, v2, 50, 2, NULL, big, bd);
    CHECK(ng == 50);
    CHECK(big[0] == 0 && bd[0] == 0);
    /* Batch search: missing slots get UINT32_MAX / inf. */
    uint32_t bids[3 * 10];
    float bdd[3 * 10];
    CHECK_RC(ny_hnsw_search_batch(h, v, 3, 10, 0, NULL, 2, bids, bdd), NY_OK);
    for (int qi = 0; qi < 3; qi++) {
        CHECK(bids[qi * 10] == (uint32_t)qi);
        for (int j = 7; j < 10; j++) CHECK(bids[qi * 10 + j] == UINT32_MAX && isinf(bdd[qi * 10 + j]));
    }
    ny_hnsw_free(h);
    ny_hnsw_free(h2);
    free(v);
    free(v2);
}

TEST(dim1_and_odd_dims)
{
    size_t dims[] = {1, 3, 17, 33, 100};
    for (size_t di = 0; di < sizeof dims / sizeof *dims; di++) {
        size_t dim = dims[di], n = t_n(1500, 400), nq = 30;
        for (int m = 0; m < 3; m++) {
            if (dim == 1 && m != NY_L2) continue; /* 1-d cosine/dot have only two directions */
            float *v = dim < 8 ? gen_random(n, dim, 17 * dim + m) : gen_clustered2(n, dim, 10, 17 * dim + m, 1),
                  *q = dim < 8 ? gen_random(nq, dim, 1000 + dim) : gen_clustered2(nq, dim, 10, 17 * dim + m, 2);
            ny_hnsw *h = build(dim, (ny_metric)m, 8, 64, v, n, 1);
            REQUIRE(h);
            double r = measure_recall(h, (ny_metric)m, dim, v, n, NULL, q, nq, 10, 64, NULL);
            CHECKF(r >= 0.93, "dim %zu %s recall %.3f", dim, ny_metric_name((ny_metric)m), r);
            float got[100];
            CHECK_RC(ny_hnsw_get_vector(h, 5, got), NY_OK);
            if (m == NY_COSINE) {
                double nn = 0;
                for (size_t j = 0; j < dim; j++) nn += (double)got[j] * got[j];
                CHECKF(fabs(nn - 1) < 1e-4, "stored cosine vector not unit: %g", nn);
            } else {
                CHECK(memcmp(got, v + 5 * dim, dim * sizeof(float)) == 0);
            }
            CHECK_RC(ny_hnsw_validate(h), NY_OK);
            ny_hnsw_free(h);
            free(v);
            free(q);
        }
    }
}

static int allow_cb(uint32_t id, void *ctx)
{
    const unsigned char *ok = ctx;
    return ok[id];
}

TEST(delete_semantics)
{
    size_t n = t_n(3000, 800), dim = 12;
    float *v = gen_clustered(n, dim, 10, 21);
    ny_hnsw *h = build(dim, NY_L2, 12, 80, v, n, 1); /* deterministic */
    REQUIRE(h);
    unsigned char *gone = calloc(n, 1);
    size_t nd = 0;
    for (size_t i = 0; i < n; i += 7) {
        CHECK_RC(ny_hnsw_delete(h, (uint32_t)i), NY_OK);
        gone[i] = 1;
        nd++;
    }
    CHECK_RC(ny_hnsw_delete(h, 0), NY_ENOTFOUND);
    CHECK_RC(ny_hnsw_delete(h, (uint32_t)n + 5), NY_ENOTFOUND);
    CHECK(!ny_hnsw_contains(h, 0) && ny_hnsw_contains(h, 1));
    float tmp[12];
    CHECK_RC(ny_hnsw_get_vector(h, 7, tmp), NY_ENOTFOUND);
    ny_hnsw_stats st;
    ny_hnsw_get_stats(h, &st);
    CHECK(st.count == n - nd);
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    /* A deleted id never comes back: query with the deleted vectors. */
    uint32_t ids[20];
    size_t leaks = 0;
    for (size_t i = 0; i < n; i += 7) {
        int ng = ny_hnsw_search(h, v + i * dim, 20, 40, NULL, ids, NULL);
        for (int a = 0; a < ng; a++) leaks += gone[ids[a]];
        ng = ny_hnsw_search_exact(h, v + i * dim, 20, NULL, ids, NULL);
        for (int a = 0; a < ng; a++) leaks += gone[ids[a]];
    }
    CHECK(leaks == 0);
    unsigned char *ok = malloc(n);
    for (size_t i = 0; i < n; i++) ok[i] = !gone[i];
    double r = measure_recall(h, NY_L2, dim, v, n, ok, v + dim, 40, 10, 64, NULL);
    printf("    recall with tombstones %.3f\n", r);
    CHECKF(r >= 0.95, "recall with tombstones %.3f", r);
    /* Filters over a range holding deleted ids: the bitmap (a scan, being
     * selective) and the callback (graph search) both skip them and agree
     * with brute force over the allowed live ids. */
    {
        unsigned char *ok70 = calloc(n, 1);
        uint64_t *bm = calloc((n + 63) / 64, 8);
        for (size_t i = 0; i < 70; i++)
            if (!gone[i]) ok70[i] = 1;
        for (size_t i = 0; i < 70; i++) bm[i / 64] |= 1ull << (i % 64);
        ny_filter fb = {.bitmap = bm, .nbits = n}, fc = {.allow = allow_cb, .ctx = ok70};
        double rb = measure_recall(h, NY_L2, dim, v, n, ok70, v + 5 * dim, 20, 10, 64, &fb);
        double rc2 = measure_recall(h, NY_L2, dim, v, n, ok70, v + 5 * dim, 20, 10, 200, &fc);
        CHECKF(rb == 1.0 && rc2 >= 0.95, "filtered recall with tombstones: bitmap %.3f callback %.3f", rb, rc2);
        free(ok70);
        free(bm);
    }
    /* Reinsert a deleted id with a new vector: found at once. */
    float nv[12];
    for (size_t j = 0; j < dim; j++) nv[j] = v[100 * dim + j] + 0.01f;
    CHECK_RC(ny_hnsw_add(h, 14, nv), NY_OK);
    CHECK_RC(ny_hnsw_add(h, 14, nv), NY_EEXIST);
    CHECK(ny_hnsw_search(h, nv, 1, 20, NULL, ids, NULL) == 1 && ids[0] == 14);
    CHECK_RC(ny_hnsw_get_vector(h, 14, tmp), NY_OK);
    CHECK(memcmp(tmp, nv, sizeof nv) == 0);
    /* Vacuum: tombstones gone, structure sound, slots reused. */
    CHECK_RC(ny_hnsw_vacuum(h), NY_OK);
    ny_hnsw_get_stats(h, &st);
    CHECK(st.deleted == 0 && st.count == n - nd + 1);
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    CHECKF(ny_hnsw_reachable(h) >= st.count * 99 / 100, "%zu of %zu reachable after vacuum", ny_hnsw_reachable(h),
           st.count);
    size_t nodes = ny_hnsw_node_count(h);
    for (size_t i = 21; i < n; i += 7) CHECK_RC(ny_hnsw_add(h, (uint32_t)i, v + i * dim), NY_OK);
    CHECK(ny_hnsw_node_count(h) == nodes); /* reused the freed nodes */
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    for (size_t i = 21; i < n; i += 7) ok[i] = 1;
    r = measure_recall(h, NY_L2, dim, v, n, ok, v + 3 * dim, 40, 10, 64, NULL);
    printf("    recall after vacuum and reinsert %.3f\n", r);
    CHECKF(r >= 0.95, "recall after vacuum and reinsert %.3f", r);
    ny_hnsw_free(h);
    free(v);
    free(gone);
    free(ok);
}

/* Recall after deleting 30% stays within 2 points of a fresh build on the
 * remaining points. */
TEST(delete_30pct_recall)
{
    size_t n = t_n(8000, 2000), dim = 16, nq = 200;
    for (int clustered = 0; clustered < 2; clustered++) {
        float *v = clustered ? gen_clustered(n, dim, 30, 31) : gen_random(n, dim, 33);
        float *q = clustered ? gen_clustered2(nq, dim, 30, 31, 4321) : gen_random(nq, dim, 34);
        ny_hnsw *h = build(dim, NY_L2, 12, 100, v, n, 1); /* deterministic */
        REQUIRE(h);
        unsigned long long s = 5;
        unsigned char *ok = malloc(n);
        for (size_t i = 0; i < n; i++) ok[i] = 1;
        size_t nd = 0;
        while (nd < n * 3 / 10) {
            size_t i = (size_t)(t_rand(&s) % n);
            if (!ok[i]) continue;
            CHECK_RC(ny_hnsw_delete(h, (uint32_t)i), NY_OK);
            ok[i] = 0;
            nd++;
        }
        CHECK_RC(ny_hnsw_validate(h), NY_OK);
        /* Fresh build on the remaining points (same ids). */
        ny_hnsw_params p;
        ny_hnsw_params_init(&p, dim, NY_L2);
        p.m = 12;
        p.ef_construction = 100;
        ny_hnsw *f;
        REQUIRE(ny_hnsw_new(&p, &f) == NY_OK);
        for (size_t i = 0; i < n; i++)
            if (ok[i]) CHECK_RC(ny_hnsw_add(f, (uint32_t)i, v + i * dim), NY_OK);
        size_t efs[] = {16, 40};
        for (size_t e = 0; e < 2; e++) {
            double rd = measure_recall(h, NY_L2, dim, v, n, ok, q, nq, 10, efs[e], NULL);
            double rf = measure_recall(f, NY_L2, dim, v, n, ok, q, nq, 10, efs[e], NULL);
            printf("    %s ef=%zu: after deleting 30%% %.4f, fresh build %.4f\n", clustered ? "clustered" : "random",
                   efs[e], rd, rf);
            CHECKF(rd >= rf - 0.02, "recall after delete %.4f vs fresh %.4f", rd, rf);
        }
        ny_hnsw_free(h);
        ny_hnsw_free(f);
        free(v);
        free(q);
        free(ok);
    }
}

TEST(filtered_search)
{
    size_t n = t_n(10000, 3000), dim = 16, nq = 50;
    float *v = gen_clustered(n, dim, 25, 41), *q = gen_clustered2(nq, dim, 25, 41, 42);
    ny_hnsw *h = build(dim, NY_COSINE, 16, 100, v, n, 1); /* deterministic */
    REQUIRE(h);
    unsigned char *ok = malloc(n);
    uint64_t *bm = calloc((n + 63) / 64, 8);
    double pct[] = {0.5, 0.1, 0.01};
    size_t efs[] = {64, 128, 256};
    unsigned long long s = 77;
    for (int pi = 0; pi < 3; pi++) {
        memset(bm, 0, (n + 63) / 64 * 8);
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++) {
            ok[i] = (double)(t_rand(&s) % 100000) / 100000.0 < pct[pi];
            if (ok[i]) bm[i / 64] |= 1ull << (i % 64), cnt++;
        }
        ny_filter fb = {.bitmap = bm, .nbits = n};
        ny_filter fc = {.allow = allow_cb, .ctx = ok};
        double rb = measure_recall(h, NY_COSINE, dim, v, n, ok, q, nq, 10, efs[pi], &fb);
        double rc = measure_recall(h, NY_COSINE, dim, v, n, ok, q, nq, 10, efs[pi], &fc);
        printf("    %.0f%% allowed (%zu ids), ef=%zu: recall bitmap %.4f callback %.4f\n", pct[pi] * 100, cnt,
               efs[pi], rb, rc);
        CHECKF(rb >= 0.95 && rc >= 0.95, "filtered recall at %.0f%%: %.3f / %.3f", pct[pi] * 100, rb, rc);
        /* Exact search with the filter equals brute force. */
        uint32_t ids[10], tid[10];
        double td[10];
        int ng = ny_hnsw_search_exact(h, q, 10, &fb, ids, NULL);
        size_t nt = brute_force(NY_COSINE, dim, v, NULL, n, ok, q, 10, tid, td);
        CHECK(ng == (int)nt && count_hits(NY_COSINE, dim, v, q, ids, (size_t)ng, td, nt) == nt);
    }
    /* A bitmap shorter than the ids disallows the rest; both parts combine. */
    memset(bm, 0xff, (n + 63) / 64 * 8);
    for (size_t i = 0; i < n; i++) ok[i] = (i % 2) == 0;
    ny_filter both = {.bitmap = bm, .nbits = n / 2, .allow = allow_cb, .ctx = ok};
    uint32_t ids[30];
    int ng = ny_hnsw_search(h, q, 30, 100, &both, ids, NULL);
    CHECK(ng == 30);
    for (int a = 0; a < ng; a++) CHECK(ids[a] < n / 2 && ids[a] % 2 == 0);
    /* Nothing allowed. */
    ny_filter none = {.bitmap = bm, .nbits = 0};
    CHECK(ny_hnsw_search(h, q, 10, 50, &none, ids, NULL) == 0);
    ny_hnsw_free(h);
    free(v);
    free(q);
    free(ok);
    free(bm);
}

static size_t file_size(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (size_t)st.st_size : 0;
}

static void copy_prefix(const char *src, const char *dst, size_t len, long flip_at)
{
    FILE *f = fopen(src, "rb");
    unsigned char *buf = malloc(len ? len : 1);
    size_t r = fread(buf, 1, len, f);
    fclose(f);
    if (flip_at >= 0 && (size_t)flip_at < r) buf[flip_at] ^= 0x5a;
    f = fopen(dst, "wb");
    fwrite(buf, 1, r, f);
    fclose(f);
    free(buf);
}

TEST(save_load_roundtrip_and_corruption)
{
    size_t n = t_n(3000, 800), dim = 20, nq = 30;
    float *v = gen_clustered(n, dim, 10, 51), *q = gen_random(nq, dim, 52);
    ny_hnsw *h = build(dim, NY_COSINE, 10, 60, v, n, 2);
    REQUIRE(h);
    for (size_t i = 0; i < n; i += 11) CHECK_RC(ny_hnsw_delete(h, (uint32_t)i), NY_OK);
    const char *dir = t_tmpdir();
    char path[512], bad[600];
    snprintf(path, sizeof path, "%s/idx.hnsw", dir);
    snprintf(bad, sizeof bad, "%s/bad.hnsw", dir);
    CHECK_RC(ny_hnsw_save(h, path), NY_OK);
    ny_hnsw *g = NULL;
    REQUIRE(ny_hnsw_load(path, &g) == NY_OK);
    CHECK_RC(ny_hnsw_validate(g), NY_OK);
    ny_hnsw_stats a, b;
    ny_hnsw_get_stats(h, &a);
    ny_hnsw_get_stats(g, &b);
    CHECK(a.count == b.count && a.deleted == b.deleted && a.max_id == b.max_id && a.max_level == b.max_level &&
          a.m == b.m && a.metric == b.metric && a.dim == b.dim);
    uint32_t i1[10], i2[10];
    float d1[10], d2[10];
    for (size_t i = 0; i < nq; i++) {
        int n1 = ny_hnsw_search(h, q + i * dim, 10, 50, NULL, i1, d1);
        int n2 = ny_hnsw_search(g, q + i * dim, 10, 50, NULL, i2, d2);
        CHECK(n1 == n2 && n1 == 10);
        CHECK(memcmp(i1, i2, sizeof i1) == 0 && memcmp(d1, d2, sizeof d1) == 0);
    }
    /* The loaded index keeps working: inserts, deletes, reinserts. */
    CHECK(!ny_hnsw_contains(g, 0));
    CHECK_RC(ny_hnsw_add(g, 0, v), NY_OK);
    CHECK(ny_hnsw_contains(g, 0));
    CHECK_RC(ny_hnsw_add(g, 2, v), NY_EEXIST);
    CHECK_RC(ny_hnsw_add(g, (uint32_t)n + 1, v + dim), NY_OK);
    CHECK_RC(ny_hnsw_delete(g, 1), NY_OK);
    CHECK_RC(ny_hnsw_validate(g), NY_OK);
    ny_hnsw_free(g);

    /* Truncation at many offsets, and flipped bytes: NY_ECORRUPT. */
    size_t sz = file_size(path);
    REQUIRE(sz > 1000);
    size_t bad_trunc = 0, bad_flip = 0, tries = 0;
    for (size_t cut = 0; cut < sz; cut += (cut < 300 ? 1 : sz / 97 + 1)) {
        copy_prefix(path, bad, cut, -1);
        g = NULL;
        int rc = ny_hnsw_load(bad, &g);
        if (rc != NY_ECORRUPT || g) {
            bad_trunc++;
            if (bad_trunc < 3) printf("    truncated at %zu: rc=%d %s\n", cut, rc, ny_errmsg());
        }
        ny_hnsw_free(g);
        tries++;
    }
    for (size_t pos = 0; pos < sz; pos += (pos < 400 ? 3 : sz / 151 + 1)) {
        copy_prefix(path, bad, sz, (long)pos);
        g = NULL;
        int rc = ny_hnsw_load(bad, &g);
        if (rc != NY_ECORRUPT || g) {
            bad_flip++;
            if (bad_flip < 3) printf("    flipped byte %zu: rc=%d %s\n", pos, rc, ny_errmsg());
        }
        ny_hnsw_free(g);
        tries++;
    }
    CHECKF(bad_trunc == 0 && bad_flip == 0, "%zu truncations and %zu flips not detected (of %zu)", bad_trunc, bad_flip,
           tries);
    /* An extra byte at the end is rejected too; a missing file is NOTFOUND. */
    copy_prefix(path, bad, sz, -1);
    FILE *f = fopen(bad, "ab");
    fputc(0, f);
    fclose(f);
    g = NULL;
    CHECK_RC(ny_hnsw_load(bad, &g), NY_ECORRUPT);
    snprintf(bad, sizeof bad, "%s/missing.hnsw", dir);
    CHECK_RC(ny_hnsw_load(bad, &g), NY_ENOTFOUND);
    /* Saving over an existing file replaces it atomically (no temp left). */
    CHECK_RC(ny_hnsw_save(h, path), NY_OK);
    char tmpname[700];
    snprintf(tmpname, sizeof tmpname, "%s.tmp.%ld", path, (long)getpid());
    CHECK(access(tmpname, F_OK) != 0);
    ny_hnsw_free(h);
    free(v);
    free(q);
}

TEST(memory_per_vector)
{
    size_t n = 20000, dim = 4;
    float *v = gen_random(n, dim, 61);
    ny_hnsw *h = build(dim, NY_L2, 16, 24, v, n, 2);
    REQUIRE(h);
    ny_hnsw_stats st;
    ny_hnsw_get_stats(h, &st);
    double per = (double)(st.bytes_graph + st.bytes_other) / (double)st.count;
    /* hnswlib, M=16: 2M*4+4 links + 8 label + 40 mutex + hash map entry. */
    double hnswlib = 2 * 16 * 4 + 4 + 8 + 40;
    printf("    per vector excluding the vector: %.1f B (hnswlib >= %.0f B plus its hash map)\n", per, hnswlib);
    CHECKF(per < hnswlib, "memory per vector %.1f >= %.0f", per, hnswlib);
    CHECK(st.bytes_vectors >= n * 16 * sizeof(float));
    ny_hnsw_free(h);
    free(v);
}
