/* hnsw_util.h -- data generators and a double-precision brute-force
 * reference shared by the HNSW tests (header-only, static functions). */
#ifndef NY_TEST_HNSW_UTIL_H
#define NY_TEST_HNSW_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nearly.h"
#include "t.h"

/* Uniform vectors in [-1, 1)^dim. */
static inline float *gen_random(size_t n, size_t dim, unsigned long long seed)
{
    float *v = malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < n * dim; i++) v[i] = t_randf(&seed);
    return v;
}

/* n vectors around `nc` random centres in [-1, 1) (chosen by cseed),
 * spread 0.15 around them; pseed picks the points, so queries drawn with
 * the same cseed and another pseed follow the data's distribution. */
static inline float *gen_clustered2(size_t n, size_t dim, size_t nc, unsigned long long cseed, unsigned long long seed)
{
    float *c = gen_random(nc, dim, cseed ^ 0x55);
    float *v = malloc(n * dim * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(t_rand(&seed) % nc);
        for (size_t j = 0; j < dim; j++) v[i * dim + j] = c[k * dim + j] + 0.15f * t_randf(&seed);
    }
    free(c);
    return v;
}

static inline float *gen_clustered(size_t n, size_t dim, size_t nc, unsigned long long seed)
{
    return gen_clustered2(n, dim, nc, seed, seed);
}

/* The index distance computed in double precision from scratch. */
static inline double ref_dist(ny_metric m, const float *a, const float *b, size_t dim)
{
    if (m == NY_L2) {
        double s = 0;
        for (size_t i = 0; i < dim; i++) { double t = (double)a[i] - b[i]; s += t * t; }
        return s;
    }
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < dim; i++) { dot += (double)a[i] * b[i]; na += (double)a[i] * a[i]; nb += (double)b[i] * b[i]; }
    if (m == NY_DOT) return -dot;
    if (na == 0 || nb == 0) return -0.0;
    return -dot / (sqrt(na) * sqrt(nb));
}

typedef struct bf_item { double d; uint32_t id; } bf_item;

static inline int bf_cmp(const void *a, const void *b)
{
    const bf_item *x = a, *y = b;
    if (x->d < y->d) return -1;
    if (x->d > y->d) return 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Exact top-k among ids[0..n) (vectors base + ids[i]*dim) whose `ok` flag
 * is set (ok may be NULL).  Writes up to k ids/dists, returns the count. */
static inline size_t brute_force(ny_metric m, size_t dim, const float *base, const uint32_t *ids, size_t n,
                                 const unsigned char *ok, const float *q, size_t k, uint32_t *out_ids,
                                 double *out_d)
{
    bf_item *it = malloc((n ? n : 1) * sizeof *it);
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids ? ids[i] : (uint32_t)i;
        if (ok && !ok[id]) continue;
        it[c].d = ref_dist(m, q, base + (size_t)id * dim, dim);
        it[c].id = id;
        c++;
    }
    qsort(it, c, sizeof *it, bf_cmp);
    size_t r = c < k ? c : k;
    for (size_t i = 0; i < r; i++) {
        out_ids[i] = it[i].id;
        if (out_d) out_d[i] = it[i].d;
    }
    free(it);
    return r;
}

/* Recall of got[0..ng) against the exact top-k (ties counted by distance:
 * a result at distance <= the k-th true distance + tol counts). */
static inline size_t count_hits(ny_metric m, size_t dim, const float *base, const float *q, const uint32_t *got,
                                size_t ng, const double *true_d, size_t nt)
{
    if (nt == 0) return 0;
    double kth = true_d[nt - 1];
    double tol = 1e-5 * (fabs(kth) + 1);
    size_t hits = 0;
    for (size_t i = 0; i < ng; i++) {
        double d = ref_dist(m, q, base + (size_t)got[i] * dim, dim);
        if (d <= kth + tol) hits++;
    }
    return hits < nt ? hits : nt;
}

#endif
