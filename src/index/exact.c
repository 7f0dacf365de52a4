/*
 * exact.c -- brute-force (exact) top-k search over a row-major array.
 *
 * Layout of the work:
 *   - Queries are cut into blocks of QB (4..32) queries and the base into P
 *     parts; every (block, part) pair is one task for ny_parallel_for.  P > 1
 *     only when there are too few query blocks to keep every thread busy
 *     (e.g. a single query), so one query still scans at the speed of all
 *     threads; per-part top-k lists are merged at the end.
 *   - Inside a task the part is walked in tiles of about TILE_BYTES of
 *     vectors (L2-resident).  Each tile is visited once per group of 4
 *     queries, so memory traffic for the base is one pass per query block,
 *     not one per query.
 *   - The micro-kernel scores one base vector against 4 queries at once
 *     (one load of the base vector, four independent accumulators).  A
 *     single query uses the same kernel shape with one accumulator, so a
 *     query gets bitwise the same distances whatever its batch.
 *   - Each query keeps a bounded max-heap of its k best (dist, id) pairs,
 *     ordered lexicographically: equal distances go to the smaller id, and
 *     the result does not depend on the thread count or the partition.
 *   - A filter is applied once per tile (list of allowed rows), before any
 *     distance is computed.
 */
#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f")))

#define TILE_BYTES (128u << 10) /* base tile kept in L2 while queries pass over it */
#define QB_MAX 32               /* queries per block */
#define PART_MIN_BYTES (1u << 20) /* do not split the base into smaller parts */

/* ===== Micro-kernels ==================================================== *
 * Two shapes per op (dot, l2sq) and level:
 *   k4q(x, q[4]) -> out[j] = f(x, q[j])   one base vector, four queries
 *   k1 (x, q[1]) -> out[0] = f(x, q[0])
 * All shapes run, for each (x, q) pair, exactly the same sequence of float
 * operations (same chunking, same accumulator chains per pair, same final
 * reduction), so a pair's distance is bitwise the same whichever shape
 * computed it: results do not depend on batching or threads. */

typedef void (*kern_fn)(const float *a, const float *const *b, size_t d, float *out);

/* Operand selectors for the kernel bodies below. */
#define P_X(j) x
#define P_Q0(j) q0
#define P_QQ(j) qq[j]

#define SC_DOT(acc, xv, qv) acc += (xv) * (qv)
#define SC_L2(acc, xv, qv) do { float t_ = (xv) - (qv); acc += t_ * t_; } while (0)

#define DEF_SCALAR(OP, STEP)                                                              \
    static void OP##_1_scalar(const float *x, const float *const *q, size_t d, float *out) \
    {                                                                                     \
        float s = 0;                                                                      \
        for (size_t i = 0; i < d; i++) STEP(s, x[i], q[0][i]);                            \
        out[0] = s;                                                                       \
    }                                                                                     \
    static void OP##_4q_scalar(const float *x, const float *const *q, size_t d, float *out) \
    {                                                                                     \
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                             \
        const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];                       \
        for (size_t i = 0; i < d; i++) {                                                  \
            float v = x[i];                                                               \
            STEP(s0, v, q0[i]);                                                           \
            STEP(s1, v, q1[i]);                                                           \
            STEP(s2, v, q2[i]);                                                           \
            STEP(s3, v, q3[i]);                                                           \
        }                                                                                 \
        out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;                               \
    }                                                                                     \

DEF_SCALAR(dot, SC_DOT)
DEF_SCALAR(l2, SC_L2)

/* AVX2: per pair two 8-wide accumulators (lo, hi: 16 floats per step); an
 * 8-float remainder goes to lo, the last < 8 floats (masked loads, nothing
 * read past the end) to hi. */
AVX2 static inline float hsum8(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 sh = _mm_movehdup_ps(lo);
    lo = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, lo);
    lo = _mm_add_ss(lo, sh);
    return _mm_cvtss_f32(lo);
}

AVX2 static inline __m256i tailmask8(size_t r)
{
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - r));
}

#define V8_DOT(acc, xv, qv) acc = _mm256_fmadd_ps(xv, qv, acc)
#define V8_L2(acc, xv, qv) do { __m256 t_ = _mm256_sub_ps(xv, qv); acc = _mm256_fmadd_ps(t_, t_, acc); } while (0)
#define L8(p) _mm256_loadu_ps(p)
#define M8(p, m) _mm256_maskload_ps(p, m)

/* Kernel body for NP pairs: X(j, off) / Q(j, off) give pointers. */
#define AVX2_BODY(NP, STEP, XP, QP)                                                       \
    __m256 lo[NP], hi[NP];                                                                \
    for (int j = 0; j < NP; j++) lo[j] = hi[j] = _mm256_setzero_ps();                    \
    size_t i = 0;                                                                         \
    for (; i + 16 <= d; i += 16)                                                          \
        for (int j = 0; j < NP; j++) {                                                    \
            STEP(lo[j], L8(XP(j) + i), L8(QP(j) + i));                                    \
            STEP(hi[j], L8(XP(j) + i + 8), L8(QP(j) + i + 8));                            \
        }                                                                                 \
    if (i + 8 <= d) {                                                                     \
        for (int j = 0; j < NP; j++) STEP(lo[j], L8(XP(j) + i), L8(QP(j) + i));           \
        i += 8;                                                                           \
    }                                                                                     \
    if (i < d) {                                                                          \
        __m256i m = tailmask8(d - i);                                                     \
        for (int j = 0; j < NP; j++) STEP(hi[j], M8(XP(j) + i, m), M8(QP(j) + i, m));     \
    }                                                                                     \
    for (int j = 0; j < NP; j++) out[j] = hsum8(_mm256_add_ps(lo[j], hi[j]));

#define DEF_AVX2(OP, STEP)                                                                \
    AVX2 static void OP##_1_avx2(const float *x, const float *const *q, size_t d, float *out) \
    {                                                                                     \
        const float *q0 = q[0];                                                           \
        AVX2_BODY(1, STEP, P_X, P_Q0)                                         \
    }                                                                                     \
    AVX2 static void OP##_4q_avx2(const float *x, const float *const *q, size_t d, float *out) \
    {                                                                                     \
        const float *qq[4] = {q[0], q[1], q[2], q[3]};                                    \
        AVX2_BODY(4, STEP, P_X, P_QQ)                                                 \
    }                                                                                 

DEF_AVX2(dot, V8_DOT)
DEF_AVX2(l2, V8_L2)

/* AVX-512: per pair one 16-wide accumulator; the tail is one masked step. */
AVX512 static inline float hsum16(__m512 v)
{
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

#define V16_DOT(acc, xv, qv) acc = _mm512_fmadd_ps(xv, qv, acc)
#define V16_L2(acc, xv, qv) do { __m512 t_ = _mm512_sub_ps(xv, qv); acc = _mm512_fmadd_ps(t_, t_, acc); } while (0)

#define NCH 2 /* 2 measured better than 1 (latency-bound single query) and 4 (spills) */
/* Per pair NCH accumulator chains: 16-float chunk number c of the vector
 * goes to chain c % NCH (the masked tail chunk too), then they are summed
 * in a fixed order. */
#define AVX512_BODY(NP, STEP, XP, QP)                                                     \
    __m512 a[NP][NCH];                                                                    \
    for (int j = 0; j < NP; j++)                                                          \
        for (int c = 0; c < NCH; c++) a[j][c] = _mm512_setzero_ps();                      \
    size_t i = 0;                                                                         \
    for (; i + 16 * NCH <= d; i += 16 * NCH)                                              \
        for (int j = 0; j < NP; j++)                                                      \
            for (int c = 0; c < NCH; c++)                                                 \
                STEP(a[j][c], _mm512_loadu_ps(XP(j) + i + 16 * c), _mm512_loadu_ps(QP(j) + i + 16 * c)); \
    int c = 0;                                                                            \
    for (; i + 16 <= d; i += 16, c++)                                                     \
        for (int j = 0; j < NP; j++) STEP(a[j][c], _mm512_loadu_ps(XP(j) + i), _mm512_loadu_ps(QP(j) + i)); \
    if (i < d) {                                                                          \
        __mmask16 m = (__mmask16)((1u << (d - i)) - 1);                                   \
        for (int j = 0; j < NP; j++)                                                      \
            STEP(a[j][c], _mm512_maskz_loadu_ps(m, XP(j) + i), _mm512_maskz_loadu_ps(m, QP(j) + i)); \
    }                                                                                     \
    for (int j = 0; j < NP; j++) {                                                        \
        for (int h = NCH / 2; h >= 1; h /= 2)                                             \
            for (int c2 = 0; c2 < h; c2++) a[j][c2] = _mm512_add_ps(a[j][c2], a[j][c2 + h]); \
        out[j] = hsum16(a[j][0]);                                                         \
    }

#define DEF_AVX512(OP, STEP)                                                              \
    AVX512 static void OP##_1_avx512(const float *x, const float *const *q, size_t d, float *out) \
    {                                                                                     \
        const float *q0 = q[0];                                                           \
        AVX512_BODY(1, STEP, P_X, P_Q0)                                       \
    }                                                                                     \
    AVX512 static void OP##_4q_avx512(const float *x, const float *const *q, size_t d, float *out) \
    {                                                                                     \
        const float *qq[4] = {q[0], q[1], q[2], q[3]};                                    \
        AVX512_BODY(4, STEP, P_X, P_QQ)                                               \
    }                                                                                 

DEF_AVX512(dot, V16_DOT)
DEF_AVX512(l2, V16_L2)

typedef struct kernels {
    kern_fn k1, k4q;
} kernels;

static void pick_kernels(ny_metric m, kernels *k)
{
    int l2 = m == NY_L2;
    switch (ny_simd_active()) {
    case NY_SIMD_AVX512:
        *k = l2 ? (kernels){l2_1_avx512, l2_4q_avx512}
                : (kernels){dot_1_avx512, dot_4q_avx512};
        return;
    case NY_SIMD_AVX2:
        *k = l2 ? (kernels){l2_1_avx2, l2_4q_avx2} : (kernels){dot_1_avx2, dot_4q_avx2};
        return;
    default:
        *k = l2 ? (kernels){l2_1_scalar, l2_4q_scalar}
                : (kernels){dot_1_scalar, dot_4q_scalar};
        return;
    }
}

/* ===== Bounded top-k heap ================================================ *
 * A max-heap on (dist, id): the root is the worst kept result. */

typedef struct hent {
    float d;
    uint32_t id;
} hent;

static inline int worse(hent a, hent b) /* a ranks after b */
{
    return a.d > b.d || (a.d == b.d && a.id > b.id);
}

static void heap_sift_down(hent *h, size_t n, size_t i)
{
    hent v = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && worse(h[c + 1], h[c])) c++;
        if (!worse(h[c], v)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

/* Offers (d, id) to a heap holding *cnt of at most cap entries. */
static inline void heap_offer(hent *h, size_t *cnt, size_t cap, float d, uint32_t id)
{
    hent e = {d, id};
    if (*cnt < cap) {
        if (d != d) return; /* NaN never ranks */
        size_t i = (*cnt)++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!worse(e, h[p])) break;
            h[i] = h[p];
            i = p;
        }
        h[i] = e;
    } else if (worse(h[0], e)) {
        h[0] = e;
        heap_sift_down(h, *cnt, 0);
    }
}

/* Sorts the heap in place, nearest first. */
static void heap_sort(hent *h, size_t n)
{
    while (n > 1) {
        hent t = h[0];
        h[0] = h[n - 1];
        h[n - 1] = t;
        n--;
        heap_sift_down(h, n, 0);
    }
}

/* ===== The scan ========================================================== */

typedef struct scan_ctx {
    size_t dim, n, nq, k;
    const float *base, *queries;
    const ny_filter *filter;
    kernels kern;
    float sign;          /* +1 for L2 (l2sq), -1 for DOT/COSINE (-dot) */
    size_t qb, parts, part_rows, tile_rows, hk;
    uint32_t *ids;       /* final output (parts == 1) */
    float *dists;
    hent *part_out;      /* parts > 1: [nq][parts][hk] */
    size_t *part_cnt;    /* [nq][parts] */
    _Atomic int failed;
} scan_ctx;

static inline int allowed(const ny_filter *f, uint32_t id)
{
    if (f->bitmap && (id >= f->nbits || !((f->bitmap[id >> 6] >> (id & 63)) & 1))) return 0;
    if (f->allow && !f->allow(id, f->ctx)) return 0;
    return 1;
}

static void scan_task(void *vctx, size_t t, int worker)
{
    (void)worker;
    scan_ctx *c = vctx;
    size_t blk = t / c->parts, part = t % c->parts;
    size_t q0 = blk * c->qb, q1 = NY_MIN(q0 + c->qb, c->nq), nqb = q1 - q0;
    size_t b0 = part * c->part_rows, b1 = NY_MIN(b0 + c->part_rows, c->n);
    size_t hk = c->hk, dim = c->dim;
    hent *heaps = malloc(nqb * hk * sizeof(hent));
    size_t *cnt = calloc(nqb, sizeof(size_t));
    uint32_t *rows = c->filter ? malloc(c->tile_rows * sizeof(uint32_t)) : NULL;
    if (!heaps || !cnt || (c->filter && !rows)) {
        atomic_store(&c->failed, 1);
        free(heaps);
        free(cnt);
        free(rows);
        return;
    }
    for (size_t tb = b0; tb < b1; tb += c->tile_rows) {
        size_t te = NY_MIN(tb + c->tile_rows, b1), nrows = te - tb;
        if (c->filter) {
            size_t m = 0;
            for (size_t r = tb; r < te; r++)
                if (allowed(c->filter, (uint32_t)r)) rows[m++] = (uint32_t)r;
            nrows = m;
            if (!m) continue;
        }
        for (size_t g = 0; g < nqb; g += 4) {
            size_t ng = NY_MIN(4, nqb - g);
            const float *qp[4];
            for (size_t s = 0; s < 4; s++) qp[s] = c->queries + (q0 + g + NY_MIN(s, ng - 1)) * dim;
            kern_fn kern = ng == 1 ? c->kern.k1 : c->kern.k4q;
            hent *hg = heaps + g * hk;
            size_t *cg = cnt + g;
            float out[4];
            for (size_t r = 0; r < nrows; r++) {
                uint32_t id = c->filter ? rows[r] : (uint32_t)(tb + r);
                kern(c->base + (size_t)id * dim, qp, dim, out);
                for (size_t s = 0; s < ng; s++) {
                    float d = c->sign * out[s];
                    hent *h = hg + s * hk;
                    if (cg[s] < hk || d < h[0].d) heap_offer(h, &cg[s], hk, d, id);
                }
            }
        }
    }
    for (size_t s = 0; s < nqb; s++) {
        size_t qi = q0 + s;
        hent *h = heaps + s * hk;
        if (c->parts == 1) {
            heap_sort(h, cnt[s]);
            for (size_t j = 0; j < c->k; j++) {
                c->ids[qi * c->k + j] = j < cnt[s] ? h[j].id : UINT32_MAX;
                if (c->dists) c->dists[qi * c->k + j] = j < cnt[s] ? h[j].d : INFINITY;
            }
        } else {
            memcpy(c->part_out + (qi * c->parts + part) * hk, h, cnt[s] * sizeof(hent));
            c->part_cnt[qi * c->parts + part] = cnt[s];
        }
    }
    free(heaps);
    free(cnt);
    free(rows);
}

typedef struct merge_ctx {
    scan_ctx *sc;
    size_t merge_cap; /* min(k, n): entries kept per query */
} merge_ctx;

static void merge_task(void *vctx, size_t qi, int worker)
{
    (void)worker;
    merge_ctx *m = vctx;
    scan_ctx *c = m->sc;
    /* Merge into part 0's buffer region would not fit (it holds hk <
     * merge_cap), so use a small heap on the stack or heap. */
    size_t cap = m->merge_cap;
    hent stackbuf[256];
    hent *h = cap <= 256 ? stackbuf : malloc(cap * sizeof(hent));
    if (!h) {
        atomic_store(&c->failed, 1);
        return;
    }
    size_t cnt = 0;
    for (size_t p = 0; p < c->parts; p++) {
        const hent *src = c->part_out + (qi * c->parts + p) * c->hk;
        size_t ns = c->part_cnt[qi * c->parts + p];
        for (size_t j = 0; j < ns; j++) heap_offer(h, &cnt, cap, src[j].d, src[j].id);
    }
    heap_sort(h, cnt);
    for (size_t j = 0; j < c->k; j++) {
        c->ids[qi * c->k + j] = j < cnt ? h[j].id : UINT32_MAX;
        if (c->dists) c->dists[qi * c->k + j] = j < cnt ? h[j].d : INFINITY;
    }
    if (h != stackbuf) free(h);
}

int ny_exact_search(ny_metric metric, size_t dim, const float *base, size_t n,
                    const float *queries, size_t nq, size_t k,
                    const ny_filter *filter, int threads, uint32_t *ids,
                    float *dists)
{
    if (metric != NY_L2 && metric != NY_DOT && metric != NY_COSINE)
        return ny_error(NY_EINVAL, "exact search: unknown metric %d", (int)metric);
    if (dim == 0 || dim > 65536) return ny_error(NY_EINVAL, "exact search: dimension %zu out of range 1..65536", dim);
    if (k == 0) return ny_error(NY_EINVAL, "exact search: k must be >= 1");
    if (n > UINT32_MAX) return ny_error(NY_EINVAL, "exact search: %zu vectors exceed the 32-bit id space", n);
    if (nq == 0) return NY_OK;
    if (!queries || !ids) return ny_error(NY_EINVAL, "exact search: queries and ids must not be NULL");
    if (n > 0 && !base) return ny_error(NY_EINVAL, "exact search: base is NULL but n = %zu", n);
    if (k > SIZE_MAX / nq / sizeof(float)) return ny_error(NY_EINVAL, "exact search: nq * k overflows");
    if (filter && filter->bitmap == NULL && filter->allow == NULL) filter = NULL;
    for (size_t q = 0; q < nq; q++)
        if (!ny_all_finite(queries + q * dim, dim))
            return ny_error(NY_EINVAL, "exact search: query %zu has a NaN or infinite component", q);

    if (n == 0) {
        for (size_t i = 0; i < nq * k; i++) {
            ids[i] = UINT32_MAX;
            if (dists) dists[i] = INFINITY;
        }
        return NY_OK;
    }

    float *qcopy = NULL;
    size_t qbytes = nq * dim * sizeof(float);
    if (metric == NY_COSINE) {
        qcopy = ny_aalloc(qbytes);
        if (!qcopy) return ny_error(NY_ENOMEM, "exact search: out of memory (%zu bytes for normalised queries)", qbytes);
        memcpy(qcopy, queries, qbytes);
        for (size_t q = 0; q < nq; q++) ny_normalize(qcopy + q * dim, dim);
        queries = qcopy;
    }

    int T = threads > 0 ? threads : ny_cpu_count();
    size_t qb = QB_MAX;
    while (qb > 4 && (nq + qb - 1) / qb < (size_t)T) qb /= 2;
    size_t nblocks = (nq + qb - 1) / qb;
    size_t parts = 1;
    if (T > 1 && nblocks < 2 * (size_t)T) {
        size_t min_rows = NY_MAX((size_t)1024, PART_MIN_BYTES / (dim * sizeof(float)));
        parts = (2 * (size_t)T + nblocks - 1) / nblocks;
        parts = NY_MIN(parts, NY_MAX((size_t)1, n / min_rows));
    }
    size_t part_rows = (n + parts - 1) / parts;
    parts = (n + part_rows - 1) / part_rows;

    scan_ctx c = {
        .dim = dim, .n = n, .nq = nq, .k = k, .base = base, .queries = queries,
        .filter = filter, .sign = metric == NY_L2 ? 1.0f : -1.0f,
        .qb = qb, .parts = parts, .part_rows = part_rows,
        .tile_rows = NY_MAX((size_t)8, TILE_BYTES / (dim * sizeof(float))),
        .hk = NY_MIN(k, part_rows), .ids = ids, .dists = dists,
    };
    atomic_init(&c.failed, 0);
    pick_kernels(metric, &c.kern);
    int rc = NY_OK;
    if (parts > 1) {
        c.part_out = malloc(nq * parts * c.hk * sizeof(hent));
        c.part_cnt = calloc(nq * parts, sizeof(size_t));
        if (!c.part_out || !c.part_cnt) {
            rc = ny_error(NY_ENOMEM, "exact search: out of memory (partial results)");
            goto out;
        }
    }
    ny_parallel_for(nblocks * parts, 1, T, scan_task, &c);
    if (!atomic_load(&c.failed) && parts > 1) {
        merge_ctx m = {&c, NY_MIN(k, n)};
        ny_parallel_for(nq, 16, T, merge_task, &m);
    }
    if (atomic_load(&c.failed)) rc = ny_error(NY_ENOMEM, "exact search: out of memory (per-thread top-k heaps)");
out:
    free(c.part_out);
    free(c.part_cnt);
    if (qcopy) ny_afree(qcopy, qbytes);
    return rc;
}
