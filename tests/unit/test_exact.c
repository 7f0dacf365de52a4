/* test_exact.c -- ny_exact_search against a naive double-precision
 * reference: every metric, odd dimensions, ties, k > n, filters (bitmap,
 * callback, both), 1 and 2 threads, single queries (split-base path) and
 * batches; results must not depend on threads or batching. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nearly.h"
#include "t.h"

typedef struct { double d; uint32_t id; } ref_ent;

static int ref_cmp(const void *a, const void *b)
{
    const ref_ent *x = a, *y = b;
    if (x->d < y->d) return -1;
    if (x->d > y->d) return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static double ref_dist(ny_metric m, const float *q, const float *x, size_t dim)
{
    double s = 0, qn = 0;
    if (m == NY_L2) {
        for (size_t i = 0; i < dim; i++) { double t = (double)q[i] - x[i]; s += t * t; }
        return s;
    }
    for (size_t i = 0; i < dim; i++) { s += (double)q[i] * x[i]; qn += (double)q[i] * q[i]; }
    if (m == NY_COSINE && qn > 0) s /= sqrt(qn);
    return -s;
}

static int allowed_ref(const ny_filter *f, uint32_t id)
{
    if (!f) return 1;
    if (f->bitmap && (id >= f->nbits || !((f->bitmap[id / 64] >> (id % 64)) & 1))) return 0;
    if (f->allow && !f->allow(id, f->ctx)) return 0;
    return 1;
}

/* Reference top-k for one query; returns how many allowed vectors exist. */
static size_t ref_topk(ny_metric m, size_t dim, const float *base, size_t n, const float *q,
                       const ny_filter *f, ref_ent *all)
{
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (!allowed_ref(f, (uint32_t)i)) continue;
        all[cnt].d = ref_dist(m, q, base + i * dim, dim);
        all[cnt].id = (uint32_t)i;
        cnt++;
    }
    qsort(all, cnt, sizeof(ref_ent), ref_cmp);
    return cnt;
}

static void fill(float *v, size_t n, unsigned long long *seed)
{
    for (size_t i = 0; i < n; i++) v[i] = t_randf(seed);
}

static void normalise_rows(float *v, size_t n, size_t dim)
{
    for (size_t i = 0; i < n; i++) ny_normalize(v + i * dim, dim);
}

/* Checks one result set against the reference, allowing float rounding:
 * the distance at each rank must match the reference's at that rank, and
 * every returned id must be allowed, distinct, and truly at that distance. */
static int check_query(ny_metric m, size_t dim, const float *base, size_t n, const float *q,
                       const ny_filter *f, size_t k, const uint32_t *ids, const float *dists,
                       ref_ent *all, const char *what)
{
    size_t cnt = ref_topk(m, dim, base, n, q, f, all);
    size_t want = cnt < k ? cnt : k;
    int bad = 0;
    for (size_t j = 0; j < k && !bad; j++) {
        if (j >= want) {
            if (ids[j] != UINT32_MAX || !isinf(dists[j])) {
                CHECKF(0, "%s: rank %zu should be empty, got id %u dist %g", what, j, ids[j], dists[j]);
                bad = 1;
            }
            continue;
        }
        double tol = 1e-4 * (1 + fabs(all[j].d));
        if (ids[j] >= n || !allowed_ref(f, ids[j])) {
            CHECKF(0, "%s: rank %zu id %u not allowed/out of range", what, j, ids[j]);
            bad = 1;
            continue;
        }
        double true_d = ref_dist(m, q, base + (size_t)ids[j] * dim, dim);
        if (fabs(dists[j] - all[j].d) > tol || fabs(true_d - all[j].d) > tol) {
            CHECKF(0, "%s: rank %zu id %u dist %.7g (true %.7g), reference id %u dist %.7g", what, j, ids[j],
                   dists[j], true_d, all[j].id, all[j].d);
            bad = 1;
        }
        for (size_t i = 0; i < j; i++)
            if (ids[i] == ids[j]) { CHECKF(0, "%s: id %u returned twice", what, ids[j]); bad = 1; }
        if (j > 0 && dists[j] < dists[j - 1]) { CHECKF(0, "%s: results not sorted at rank %zu", what, j); bad = 1; }
    }
    return !bad;
}

static int odd_ids(uint32_t id, void *ctx)
{
    (void)ctx;
    return id % 3 != 1;
}

static void run_case(ny_metric m, size_t dim, size_t n, size_t nq, size_t k, int filter_kind, int threads)
{
    unsigned long long seed = 1000 + dim * 7 + n + nq * 3 + k + (size_t)filter_kind * 11 + (size_t)m;
    float *base = malloc(n * dim * sizeof(float) + 1), *q = malloc(nq * dim * sizeof(float));
    fill(base, n * dim, &seed);
    fill(q, nq * dim, &seed);
    if (m == NY_COSINE) normalise_rows(base, n, dim);
    uint64_t *bits = calloc((n + 63) / 64 + 1, 8);
    for (size_t i = 0; i < n; i++)
        if (t_rand(&seed) % 4 != 0) bits[i / 64] |= 1ull << (i % 64);
    ny_filter f = {0};
    if (filter_kind & 1) { f.bitmap = bits; f.nbits = n > 10 ? n - 7 : n; } /* nbits < n: tail excluded */
    if (filter_kind & 2) f.allow = odd_ids;
    const ny_filter *fp = filter_kind ? &f : NULL;

    uint32_t *ids = malloc(nq * k * sizeof(uint32_t)), *ids1 = malloc(k * sizeof(uint32_t));
    float *dists = malloc(nq * k * sizeof(float)), *d1 = malloc(k * sizeof(float));
    ref_ent *all = malloc((n + 1) * sizeof(ref_ent));
    char what[160];
    snprintf(what, sizeof what, "%s dim=%zu n=%zu nq=%zu k=%zu filter=%d threads=%d", ny_metric_name(m), dim, n,
             nq, k, filter_kind, threads);
    CHECK_RC(ny_exact_search(m, dim, base, n, q, nq, k, fp, threads, ids, dists), NY_OK);
    int ok = 1;
    for (size_t i = 0; i < nq && ok; i++)
        ok = check_query(m, dim, base, n, q + i * dim, fp, k, ids + i * k, dists + i * k, all, what);
    /* The same query alone (split-base path when n is large) gives bitwise
     * the same answer as in the batch. */
    for (size_t i = 0; i < nq && ok; i += 1 + nq / 3) {
        CHECK_RC(ny_exact_search(m, dim, base, n, q + i * dim, 1, k, fp, threads, ids1, d1), NY_OK);
        if (memcmp(ids1, ids + i * k, k * sizeof(uint32_t)) || memcmp(d1, dists + i * k, k * sizeof(float))) {
            CHECKF(0, "%s: query %zu alone differs from the batch", what, i);
            ok = 0;
        }
    }
    free(base); free(q); free(bits); free(ids); free(ids1); free(dists); free(d1); free(all);
}

TEST(all_metrics_odd_dims_threads)
{
    static const size_t dims[] = {1, 3, 8, 17, 100, 129};
    for (int m = 0; m < 3; m++)
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++)
            for (int th = 1; th <= 2; th++) {
                run_case((ny_metric)m, dims[di], t_n(700, 50), 37, 10, 0, th);
                run_case((ny_metric)m, dims[di], t_n(300, 40), 5, 7, 0, th);
            }
}

TEST(single_query_splits_the_base)
{
    /* n large enough that one query is scanned by several parts. */
    for (int m = 0; m < 3; m++)
        for (int th = 1; th <= 2; th++) {
            run_case((ny_metric)m, 16, t_n(9000, 4500), 1, 20, 0, th);
            run_case((ny_metric)m, 16, t_n(9000, 4500), 3, 20, 3, th);
        }
}

TEST(k_larger_than_n)
{
    for (int m = 0; m < 3; m++)
        for (int th = 1; th <= 2; th++) {
            run_case((ny_metric)m, 5, 13, 9, 20, 0, th);
            run_case((ny_metric)m, 5, 13, 9, 20, 1, th);
            run_case((ny_metric)m, 33, 1, 2, 3, 0, th);
        }
}

TEST(filters_bitmap_callback_both)
{
    for (int m = 0; m < 3; m++)
        for (int fk = 1; fk <= 3; fk++)
            for (int th = 1; th <= 2; th++) run_case((ny_metric)m, 24, t_n(1200, 100), 21, 15, fk, th);
}

static int none_allowed(uint32_t id, void *ctx)
{
    (void)id;
    (void)ctx;
    return 0;
}

TEST(filter_excluding_everything_gives_empty_results)
{
    float base[4 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, q[3] = {0, 0, 1};
    uint32_t ids[5];
    float d[5];
    ny_filter f = {.allow = none_allowed};
    CHECK_RC(ny_exact_search(NY_L2, 3, base, 4, q, 1, 5, &f, 1, ids, d), NY_OK);
    for (int j = 0; j < 5; j++) CHECK(ids[j] == UINT32_MAX && isinf(d[j]) && d[j] > 0);
    uint64_t zero = 0;
    ny_filter fb = {.bitmap = &zero, .nbits = 64};
    CHECK_RC(ny_exact_search(NY_DOT, 3, base, 4, q, 1, 2, &fb, 2, ids, NULL), NY_OK);
    CHECK(ids[0] == UINT32_MAX && ids[1] == UINT32_MAX);
}

/* Integer-valued data makes every float distance exact, so ids can be
 * compared exactly with the reference, including its tie order (lower id
 * first among equal distances). */
TEST(ties_go_to_the_lower_id)
{
    size_t dim = 7, n = t_n(3000, 600), nq = 19, k = 50;
    unsigned long long seed = 77;
    float *base = malloc(n * dim * sizeof(float)), *q = malloc(nq * dim * sizeof(float));
    for (size_t i = 0; i < n * dim; i++) base[i] = (float)((long)(t_rand(&seed) % 3) - 1);
    for (size_t i = 0; i < nq * dim; i++) q[i] = (float)((long)(t_rand(&seed) % 5) - 2);
    uint32_t *ids = malloc(nq * k * sizeof(uint32_t));
    float *d = malloc(nq * k * sizeof(float));
    ref_ent *all = malloc(n * sizeof(ref_ent));
    for (int m = 0; m < 2; m++)
        for (int th = 1; th <= 2; th++)
            for (size_t batch = 1; batch <= nq; batch += nq - 1) {
                for (size_t q0 = 0; q0 < nq; q0 += batch) {
                    size_t nb = q0 + batch <= nq ? batch : nq - q0;
                    CHECK_RC(ny_exact_search((ny_metric)m, dim, base, n, q + q0 * dim, nb, k, NULL, th,
                                             ids + q0 * k, d + q0 * k), NY_OK);
                }
                int bad = 0;
                for (size_t i = 0; i < nq && !bad; i++) {
                    ref_topk((ny_metric)m, dim, base, n, q + i * dim, NULL, all);
                    for (size_t j = 0; j < k && !bad; j++)
                        if (ids[i * k + j] != all[j].id || d[i * k + j] != (float)all[j].d) {
                            CHECKF(0, "%s th=%d batch=%zu q=%zu rank %zu: id %u d %g, want id %u d %g",
                                   ny_metric_name((ny_metric)m), th, batch, i, j, ids[i * k + j], d[i * k + j],
                                   all[j].id, all[j].d);
                            bad = 1;
                        }
                }
            }
    /* Cosine: 6 distinct vectors repeated; duplicates get bitwise equal
     * distances, so within a group ids must come out ascending. */
    float protos[6 * 7];
    fill(protos, sizeof protos / sizeof protos[0], &seed);
    normalise_rows(protos, 6, dim);
    for (size_t i = 0; i < n; i++) memcpy(base + i * dim, protos + (i % 6) * dim, dim * sizeof(float));
    for (int th = 1; th <= 2; th++) {
        CHECK_RC(ny_exact_search(NY_COSINE, dim, base, n, q, nq, k, NULL, th, ids, d), NY_OK);
        for (size_t i = 0; i < nq; i++) {
            ref_topk(NY_COSINE, dim, base, n, q + i * dim, NULL, all);
            for (size_t j = 0; j < k; j++)
                if (ids[i * k + j] != all[j].id) {
                    CHECKF(0, "cosine ties th=%d q=%zu rank %zu: id %u want %u", th, i, j, ids[i * k + j], all[j].id);
                    break;
                }
        }
    }
    free(base); free(q); free(ids); free(d); free(all);
}

TEST(cosine_does_not_modify_queries_and_ignores_query_norm)
{
    size_t dim = 9, n = 200;
    unsigned long long seed = 5;
    float *base = malloc(n * dim * sizeof(float)), q[9], q2[9], keep[9];
    fill(base, n * dim, &seed);
    normalise_rows(base, n, dim);
    fill(q, dim, &seed);
    memcpy(keep, q, sizeof q);
    for (size_t i = 0; i < dim; i++) q2[i] = q[i] * 37.5f;
    uint32_t a[10], b[10];
    float da[10], db[10];
    CHECK_RC(ny_exact_search(NY_COSINE, dim, base, n, q, 1, 10, NULL, 1, a, da), NY_OK);
    CHECK_RC(ny_exact_search(NY_COSINE, dim, base, n, q2, 1, 10, NULL, 1, b, db), NY_OK);
    CHECK(memcmp(q, keep, sizeof q) == 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
    for (int j = 0; j < 10; j++) CHECK(fabsf(da[j] - db[j]) < 1e-5f && da[j] >= -1.0001f && da[j] <= 1.0001f);
    free(base);
}

TEST(nan_inf_in_base_never_ranks_above_finite)
{
    float base[5 * 2] = {0, 0, NAN, 1, 3, 3, 1, 1, INFINITY, 0};
    float q[2] = {0, 0};
    uint32_t ids[5];
    float d[5];
    CHECK_RC(ny_exact_search(NY_L2, 2, base, 5, q, 1, 5, NULL, 1, ids, d), NY_OK);
    CHECK(ids[0] == 0 && ids[1] == 3 && ids[2] == 2);
}

TEST(bad_arguments_are_rejected)
{
    float base[4] = {1, 2, 3, 4}, q[2] = {1, 2}, qn[2] = {NAN, 1};
    uint32_t ids[2];
    CHECK_RC(ny_exact_search(NY_L2, 0, base, 2, q, 1, 1, NULL, 1, ids, NULL), NY_EINVAL);
    CHECK_RC(ny_exact_search(NY_L2, 2, base, 2, q, 1, 0, NULL, 1, ids, NULL), NY_EINVAL);
    CHECK_RC(ny_exact_search((ny_metric)9, 2, base, 2, q, 1, 1, NULL, 1, ids, NULL), NY_EINVAL);
    CHECK_RC(ny_exact_search(NY_L2, 2, base, 2, qn, 1, 1, NULL, 1, ids, NULL), NY_EINVAL);
    CHECK(strstr(ny_errmsg(), "NaN") != NULL);
    CHECK_RC(ny_exact_search(NY_L2, 2, NULL, 2, q, 1, 1, NULL, 1, ids, NULL), NY_EINVAL);
    CHECK_RC(ny_exact_search(NY_L2, 2, base, 2, q, 1, 1, NULL, 1, NULL, NULL), NY_EINVAL);
    /* n == 0: every slot empty; nq == 0: nothing to do. */
    float d[2];
    CHECK_RC(ny_exact_search(NY_DOT, 2, NULL, 0, q, 1, 2, NULL, 1, ids, d), NY_OK);
    CHECK(ids[0] == UINT32_MAX && ids[1] == UINT32_MAX && isinf(d[0]));
    CHECK_RC(ny_exact_search(NY_DOT, 2, base, 2, NULL, 0, 2, NULL, 1, NULL, NULL), NY_OK);
}

TEST(wide_dim_range)
{
    for (size_t dim = 1; dim <= 70; dim += 3) {
        run_case(NY_L2, dim, 60, 6, 5, 0, 1);
        run_case(NY_DOT, dim, 60, 1, 5, 0, 2);
        run_case(NY_COSINE, dim, 60, 9, 5, 2, 2);
    }
}

/* The kernel level is fixed per process: run the reference comparisons
 * again in child processes capped at the lower levels. */
TEST(lower_simd_levels_agree_with_reference)
{
    if (getenv("NY_EXACT_CHILD")) return;
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    REQUIRE(len > 0);
    exe[len] = 0;
    static const char *levels[] = {"scalar", "avx2"};
    static const char *tests[] = {"wide_dim_range", "ties_go_to_the_lower_id", "single_query_splits_the_base"};
    for (size_t l = 0; l < 2; l++)
        for (size_t t = 0; t < 3; t++) {
            char cmd[4300];
            snprintf(cmd, sizeof cmd, "NY_EXACT_CHILD=1 NEARLY_SIMD=%s '%s' %s > /dev/null 2>&1", levels[l], exe, tests[t]);
            int rc = system(cmd);
            CHECKF(rc == 0, "%s at NEARLY_SIMD=%s failed (rc %d)", tests[t], levels[l], rc);
        }
}
