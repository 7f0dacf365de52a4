/*
 * quant.c -- training, encoding, prepared queries and serialization of the
 * SQ8 and binary quantizers (see quant.h and docs/quantization.md).
 *
 * SQ8 math.  A code c_j in 0..255 stands for x_j = lo_j + s_j c_j.  With
 * mid_j = lo_j + 128 s_j:
 *
 *   <q, x> = sum q_j mid_j + sum w_j (c_j - 128),   w_j = q_j s_j
 *
 * The prepared query rounds w to signed 8 bits, w_j ~ alpha * w8_j with
 * alpha = max|w| / 127, so the per-candidate work is the integer kernel
 * K = sum w8_j c_j and
 *
 *   <q, x> ~ C + alpha * K,   C = sum q_j mid_j - 128 alpha sum w8_j.
 *
 * Centering on 128 matters: the query's rounding error e_j then multiplies
 * (c_j - 128), which is small, instead of c_j (the part 128 sum e_j is the
 * same for every candidate and is cancelled exactly by C).
 *
 * L2 with one global range (lo, s) quantizes the query onto the same grid,
 * a_j in 0..255, and uses the exact integer identity
 *
 *   sum (a_j - c_j)^2 = A + k_x - 2 K,   A = sum a_j^2,  w8_j = a_j - 128,
 *                                        k_x = sum c_j (c_j - 256)
 *
 * with k_x stored after the codes (int32, exact).  The estimate is
 * s^2 (A + k_x - 2K): symmetric, no cancellation error.  L2 with
 * per-dimension ranges has no such identity (the weights s_j^2 differ), so
 * it expands |q|^2 + |x|^2 - 2<q, x> with |x|^2 (of the decoded vector)
 * stored after the codes as a float.
 *
 * SQ4 is the same scheme with codes 0..15 (centre 8), two per byte (byte j:
 * dimension 2j in the low nibble, 2j+1 in the high one) and a query split
 * into even and odd weights.  Dot products keep an 8-bit query.  L2 with
 * a global range keeps the query at 1/16 of a code step, a_j in 0..240
 * (so t_j ~ a_j / 16), w8_j = a_j - 128, and
 *
 *   256 sum (t_j - c_j)^2 ~ A + 256 k_x - 32 K,   k_x = sum c_j (c_j - 16).
 *
 * Binary math.  r = x - m (m: trained mean or 0), bits b_j = r_j > 0,
 * signs s_j = 2 b_j - 1.  <v, r> is estimated as f_x <v, s> with
 * f_x = |r|^2 / |r|_1 (exact for v = r; RaBitQ's estimator without the
 * random rotation).  The query vector v (q - m for L2, q for DOT) is kept
 * at B bits: v_j ~ lo + D u_j, u_j in 0..2^B-1, stored as B bit planes, so
 *
 *   <v, s> = 2 (lo pc_x + D sum_k 2^k popcount(plane_k & bits)) - sum v
 *
 * where pc_x = popcount(bits).  Row: bits | f32 f_x | f32 |r|^2 | u32 pc_x.
 *   L2:  |q-m|^2 + |r|^2 - 2 f_x <q-m, s>
 *   DOT: -(<q, m> + f_x <q, s>)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "distance/distance.h"
#include "quant/quant.h"

#define SQ8_MAX_DIM 65536u
#define GLOBAL_SAMPLE_MAX ((size_t)1 << 21)

enum { SQ8_L2_EXACT = 0, SQ8_L2_EXPAND = 1, SQ8_DOT = 2 };

struct ny_quant {
    ny_quant_config cfg;
    ny_metric metric;
    size_t dim;
    size_t code_size;
    int mode;       /* SQ8_* (SQ4 too) */
    int bits;       /* SQ: 8 or 4 */
    int maxcode;    /* SQ: 255 or 15 */
    int center;     /* SQ: 128 or 8 */
    size_t nbytes;  /* SQ: code bytes before the correction term */
    size_t nr;      /* SQ8: number of ranges (1 or dim) */
    float *lo;      /* SQ8: nr */
    float *step;    /* SQ8: nr */
    float *mid;     /* SQ8: dim, lo_j + center step_j */
    float *sdim;    /* SQ8: dim, step_j */
    float *mean;    /* BINARY: dim (zeros when not centered) */
    size_t nwords;  /* BINARY */
};

struct ny_quant_query {
    const ny_quant *q;
    /* Copies of q's fields read per candidate (one less dependent load). */
    int kind, mode, metric, qbits;
    size_t dim, nwords, nbytes;
    float *v;          /* dim: the (normalised) query */
    int8_t *w;         /* SQ8: dim */
    uint64_t *planes;  /* BINARY: query_bits * nwords */
    ny_sq8_dot_fn dot;
    ny_bin_asym_fn asym;
    float alpha, cst, qn2, s2;
    int64_t a2;
    float lo, delta, sumv, base;
};

/* ===== Kernel dispatch ================================================== */

const char *ny_qk_name(ny_qk_level lv)
{
    switch (lv) {
    case NY_QK_SCALAR: return "scalar";
    case NY_QK_AVX2: return "avx2";
    case NY_QK_AVX512: return "avx512";
    case NY_QK_AVX512X: return "avx512x";
    }
    return "unknown";
}

static int has_avx512bw(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

static int has_popcnt(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt");
}

ny_sq8_dot_fn ny_sq8_dot_kernel(ny_qk_level lv)
{
    __builtin_cpu_init();
    switch (lv) {
    case NY_QK_SCALAR: return ny_sq8_dot_scalar;
    case NY_QK_AVX2: return __builtin_cpu_supports("avx2") ? ny_sq8_dot_avx2 : NULL;
    case NY_QK_AVX512: return has_avx512bw() ? ny_sq8_dot_avx512 : NULL;
    case NY_QK_AVX512X:
        return has_avx512bw() && __builtin_cpu_supports("avx512vnni") ? ny_sq8_dot_vnni : NULL;
    }
    return NULL;
}

ny_sq4_dot_fn ny_sq4_dot_kernel(ny_qk_level lv)
{
    ny_sq8_dot_fn f = ny_sq8_dot_kernel(lv);
    if (!f) return NULL;
    if (f == ny_sq8_dot_scalar) return ny_sq4_dot_scalar;
    if (f == ny_sq8_dot_avx2) return ny_sq4_dot_avx2;
    if (f == ny_sq8_dot_avx512) return ny_sq4_dot_avx512;
    return ny_sq4_dot_vnni;
}

ny_hamming_fn ny_hamming_kernel(ny_qk_level lv)
{
    __builtin_cpu_init();
    switch (lv) {
    case NY_QK_SCALAR: return ny_hamming_scalar;
    case NY_QK_AVX2: return __builtin_cpu_supports("avx2") && has_popcnt() ? ny_hamming_popcnt : NULL;
    case NY_QK_AVX512: return has_avx512bw() && has_popcnt() ? ny_hamming_popcnt : NULL;
    case NY_QK_AVX512X:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq")
                   ? ny_hamming_vpopcnt : NULL;
    }
    return NULL;
}

ny_bin_asym_fn ny_bin_asym_kernel(ny_qk_level lv)
{
    ny_hamming_fn h = ny_hamming_kernel(lv);
    if (!h) return NULL;
    if (h == ny_hamming_scalar) return ny_bin_asym_scalar;
    if (h == ny_hamming_popcnt) return ny_bin_asym_popcnt;
    return ny_bin_asym_vpopcnt;
}

static ny_qk_level best_level(int sq8)
{
    ny_simd s = ny_simd_active();
    int lv = s == NY_SIMD_AVX512 ? NY_QK_AVX512X : s == NY_SIMD_AVX2 ? NY_QK_AVX2 : NY_QK_SCALAR;
    for (; lv > NY_QK_SCALAR; lv--)
        if (sq8 ? ny_sq8_dot_kernel((ny_qk_level)lv) != NULL : ny_hamming_kernel((ny_qk_level)lv) != NULL)
            break;
    return (ny_qk_level)lv;
}

ny_qk_level ny_qk_sq8_level(void)
{
    return best_level(1);
}

ny_qk_level ny_qk_bin_level(void)
{
    return best_level(0);
}

/* ===== Configuration ==================================================== */

void ny_quant_config_init(ny_quant_config *cfg, ny_quant_kind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->per_dim = 0;
    cfg->quantile = 0.99f;
    cfg->centered = 1;
    cfg->query_bits = 4;
}

static int check_config(const ny_quant_config *in, ny_metric metric, size_t dim, ny_quant_config *out)
{
    if (!in) return ny_error(NY_EINVAL, "quantization config is missing");
    if (in->kind != NY_QUANT_SQ8 && in->kind != NY_QUANT_BINARY && in->kind != NY_QUANT_SQ4)
        return ny_error(NY_EINVAL, "quantization kind %d is not sq8 (1), binary (2) or sq4 (3)", (int)in->kind);
    if (metric != NY_L2 && metric != NY_DOT && metric != NY_COSINE)
        return ny_error(NY_EINVAL, "unknown metric %d", (int)metric);
    if (dim < 1 || dim > SQ8_MAX_DIM)
        return ny_error(NY_EINVAL, "dimension %zu out of range 1..%u", dim, SQ8_MAX_DIM);
    *out = *in;
    if (!(in->quantile >= 0.0f && in->quantile <= 1.0f))
        return ny_error(NY_EINVAL, "quantile %g is not in (0, 1]", (double)in->quantile);
    if (out->quantile == 0.0f) out->quantile = 1.0f;
    if (in->query_bits < 0 || in->query_bits > 8)
        return ny_error(NY_EINVAL, "query_bits %d is not in 1..8", in->query_bits);
    if (out->query_bits == 0) out->query_bits = 4;
    out->per_dim = in->per_dim ? 1 : 0;
    out->centered = in->centered ? 1 : 0;
    if (out->kind != NY_QUANT_BINARY) {
        out->centered = 0;
        out->query_bits = 0;
    } else {
        out->per_dim = 0;
        out->quantile = 1.0f;
    }
    return NY_OK;
}

/* Allocates q and derived arrays for an already validated configuration. */
static int quant_alloc(const ny_quant_config *cfg, ny_metric metric, size_t dim, ny_quant **out)
{
    ny_quant *q = calloc(1, sizeof *q);
    if (!q) return ny_error(NY_ENOMEM, "out of memory for quantizer");
    q->cfg = *cfg;
    q->metric = metric;
    q->dim = dim;
    if (cfg->kind != NY_QUANT_BINARY) {
        q->bits = cfg->kind == NY_QUANT_SQ4 ? 4 : 8;
        q->maxcode = (1 << q->bits) - 1;
        q->center = 1 << (q->bits - 1);
        q->nbytes = q->bits == 8 ? dim : (dim + 1) / 2;
        q->nr = cfg->per_dim ? dim : 1;
        q->mode = metric != NY_L2 ? SQ8_DOT : cfg->per_dim ? SQ8_L2_EXPAND : SQ8_L2_EXACT;
        q->code_size = q->nbytes + (q->mode == SQ8_DOT ? 0 : 4);
        q->lo = calloc(q->nr, sizeof(float));
        q->step = calloc(q->nr, sizeof(float));
        q->mid = calloc(dim, sizeof(float));
        q->sdim = calloc(dim, sizeof(float));
        if (!q->lo || !q->step || !q->mid || !q->sdim) goto oom;
    } else {
        q->nwords = (dim + 63) / 64;
        q->code_size = q->nwords * 8 + 12;
        q->mean = calloc(dim, sizeof(float));
        if (!q->mean) goto oom;
    }
    *out = q;
    return NY_OK;
oom:
    ny_quant_free(q);
    return ny_error(NY_ENOMEM, "out of memory for quantizer");
}

/* Fills mid/sdim from lo/step. */
static void sq8_derive(ny_quant *q)
{
    for (size_t j = 0; j < q->dim; j++) {
        size_t r = q->nr == 1 ? 0 : j;
        q->sdim[j] = q->step[r];
        q->mid[j] = q->lo[r] + (float)q->center * q->step[r];
    }
}

void ny_quant_free(ny_quant *q)
{
    if (!q) return;
    free(q->lo);
    free(q->step);
    free(q->mid);
    free(q->sdim);
    free(q->mean);
    free(q);
}

ny_quant_kind ny_quant_get_kind(const ny_quant *q)
{
    return q->cfg.kind;
}

ny_metric ny_quant_metric(const ny_quant *q)
{
    return q->metric;
}

size_t ny_quant_dim(const ny_quant *q)
{
    return q->dim;
}

void ny_quant_get_config(const ny_quant *q, ny_quant_config *cfg)
{
    *cfg = q->cfg;
}

size_t ny_quant_code_size(const ny_quant *q)
{
    return q->code_size;
}

/* ===== Training ========================================================= */

/* k-th smallest of a[0..n) (Wirth's selection; reorders a). */
static float select_kth(float *a, size_t n, size_t k)
{
    ptrdiff_t l = 0, r = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (l < r) {
        float x = a[kk];
        ptrdiff_t i = l, j = r;
        do {
            while (a[i] < x) i++;
            while (x < a[j]) j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < kk) l = i;
        if (kk < i) r = j;
    }
    return a[k];
}

/* Range [lo, hi] holding the central `quantile` fraction of a[0..n). */
static void quantile_range(float *a, size_t n, float quantile, float *lo, float *hi)
{
    double p = (1.0 - (double)quantile) / 2.0;
    size_t klo = (size_t)floor(p * (double)(n - 1));
    size_t khi = (size_t)ceil((1.0 - p) * (double)(n - 1));
    if (khi > n - 1) khi = n - 1;
    *lo = select_kth(a, n, klo);
    *hi = select_kth(a, n, khi);
    if (!(*hi > *lo)) {
        /* A constant component: give it a small range centred on it. */
        float e = fmaxf(fabsf(*lo) * 1e-3f, 1e-6f);
        *lo -= e;
        *hi += e;
    }
}

static const float *row_of(const ny_quant *q, const float *sample, size_t i, float *tmp)
{
    const float *x = sample + i * q->dim;
    if (q->metric != NY_COSINE) return x;
    memcpy(tmp, x, q->dim * sizeof(float));
    ny_normalize(tmp, q->dim);
    return tmp;
}

static int train_sq8(ny_quant *q, const float *sample, size_t n, float *tmp)
{
    size_t d = q->dim;
    float quant = q->cfg.quantile;
    if (q->nr == 1) {
        size_t total = n * d, m = total < GLOBAL_SAMPLE_MAX ? total : GLOBAL_SAMPLE_MAX;
        float *buf = malloc(m * sizeof(float));
        if (!buf) return ny_error(NY_ENOMEM, "out of memory training sq8");
        if (m == total) {
            for (size_t i = 0; i < n; i++) memcpy(buf + i * d, row_of(q, sample, i, tmp), d * sizeof(float));
        } else {
            /* Pseudo-random subsample (a constant stride could alias with
             * the dimension and see only a few components). */
            uint64_t s = 0x9E3779B97F4A7C15ull;
            for (size_t t = 0; t < m; t++) {
                s = s * 6364136223846793005ull + 1442695040888963407ull;
                size_t idx = (size_t)((s >> 11) % total);
                const float *x = row_of(q, sample, idx / d, tmp);
                buf[t] = x[idx % d];
            }
        }
        float lo, hi;
        quantile_range(buf, m, quant, &lo, &hi);
        free(buf);
        q->lo[0] = lo;
        q->step[0] = (hi - lo) / (float)q->maxcode;
    } else {
        float *col = malloc(n * d * sizeof(float));
        float *one = malloc(n * sizeof(float));
        if (!col || !one) {
            free(col);
            free(one);
            return ny_error(NY_ENOMEM, "out of memory training sq8");
        }
        /* Transpose once, so each dimension's values are contiguous. */
        for (size_t i = 0; i < n; i++) {
            const float *x = row_of(q, sample, i, tmp);
            for (size_t j = 0; j < d; j++) col[j * n + i] = x[j];
        }
        for (size_t j = 0; j < d; j++) {
            float lo, hi;
            memcpy(one, col + j * n, n * sizeof(float));
            quantile_range(one, n, quant, &lo, &hi);
            q->lo[j] = lo;
            q->step[j] = (hi - lo) / (float)q->maxcode;
        }
        free(col);
        free(one);
    }
    for (size_t r = 0; r < q->nr; r++)
        if (!(q->step[r] > 0) || !isfinite(q->step[r]) || !isfinite(q->lo[r]))
            return ny_error(NY_EINVAL, "sample range too large to quantize (dimension %zu)", r);
    sq8_derive(q);
    return NY_OK;
}

static int train_binary(ny_quant *q, const float *sample, size_t n, float *tmp)
{
    size_t d = q->dim;
    double *acc = calloc(d, sizeof(double));
    if (!acc) return ny_error(NY_ENOMEM, "out of memory training binary quantizer");
    for (size_t i = 0; i < n; i++) {
        const float *x = row_of(q, sample, i, tmp);
        for (size_t j = 0; j < d; j++) acc[j] += x[j];
    }
    for (size_t j = 0; j < d; j++) q->mean[j] = (float)(acc[j] / (double)n);
    free(acc);
    for (size_t j = 0; j < d; j++)
        if (!isfinite(q->mean[j])) return ny_error(NY_EINVAL, "sample mean overflows in dimension %zu", j);
    return NY_OK;
}

int ny_quant_train(const ny_quant_config *cfg, ny_metric metric, size_t dim,
                   const float *sample, size_t n, ny_quant **out)
{
    ny_quant_config c;
    int rc = check_config(cfg, metric, dim, &c);
    if (rc) return rc;
    if (!sample || n == 0) return ny_error(NY_EINVAL, "training needs at least one sample vector");
    if (!out) return ny_error(NY_EINVAL, "output pointer is NULL");
    if (n > SIZE_MAX / dim / sizeof(float)) return ny_error(NY_EINVAL, "training sample too large");
    for (size_t i = 0; i < n; i++)
        if (!ny_all_finite(sample + i * dim, dim))
            return ny_error(NY_EINVAL, "training vector %zu has a NaN or infinite component", i);
    ny_quant *q;
    rc = quant_alloc(&c, metric, dim, &q);
    if (rc) return rc;
    float *tmp = malloc(dim * sizeof(float));
    if (!tmp) {
        ny_quant_free(q);
        return ny_error(NY_ENOMEM, "out of memory for quantizer");
    }
    if (c.kind != NY_QUANT_BINARY) {
        rc = train_sq8(q, sample, n, tmp);
    } else if (c.centered) {
        rc = train_binary(q, sample, n, tmp);
    }
    free(tmp);
    if (rc) {
        ny_quant_free(q);
        return rc;
    }
    *out = q;
    return NY_OK;
}

/* ===== Encoding ========================================================= */

static inline int clamp_code(float t, int lo, int hi)
{
    /* t may be huge after clipping; compare before converting. */
    if (!(t > (float)lo)) return lo;
    if (t >= (float)hi) return hi;
    return (int)lrintf(t);
}

static void encode_one(const ny_quant *q, const float *x, uint8_t *code)
{
    size_t d = q->dim;
    if (q->cfg.kind != NY_QUANT_BINARY) {
        int64_t k = 0;
        double n2 = 0;
        if (q->bits == 4) memset(code, 0, q->nbytes);
        for (size_t j = 0; j < d; j++) {
            size_t r = q->nr == 1 ? 0 : j;
            int c = clamp_code((x[j] - q->lo[r]) / q->step[r], 0, q->maxcode);
            if (q->bits == 8) code[j] = (uint8_t)c;
            else code[j / 2] |= (uint8_t)(c << (4 * (j & 1)));
            k += (int64_t)c * (c - 2 * q->center);
            double xh = (double)q->lo[r] + (double)q->step[r] * c;
            n2 += xh * xh;
        }
        if (q->mode == SQ8_L2_EXACT) {
            int32_t k32 = (int32_t)k; /* |k| <= 16384 * 65536 < 2^31 */
            memcpy(code + q->nbytes, &k32, 4);
        } else if (q->mode == SQ8_L2_EXPAND) {
            float f = (float)n2;
            memcpy(code + q->nbytes, &f, 4);
        }
        return;
    }
    size_t nw = q->nwords;
    double l1 = 0, l2 = 0;
    uint32_t pc = 0;
    for (size_t w = 0; w < nw; w++) {
        uint64_t bits = 0;
        for (size_t j = w * 64; j < d && j < w * 64 + 64; j++) {
            float r = x[j] - q->mean[j];
            l1 += fabs((double)r);
            l2 += (double)r * r;
            if (r > 0) bits |= (uint64_t)1 << (j - w * 64);
        }
        pc += (uint32_t)__builtin_popcountll(bits);
        memcpy(code + w * 8, &bits, 8);
    }
    float f = l1 > 0 ? (float)(l2 / l1) : 0.0f, r2 = (float)l2;
    memcpy(code + nw * 8, &f, 4);
    memcpy(code + nw * 8 + 4, &r2, 4);
    memcpy(code + nw * 8 + 8, &pc, 4);
}

int ny_quant_encode(const ny_quant *q, const float *vec, uint8_t *code)
{
    if (!q || !vec || !code) return ny_error(NY_EINVAL, "NULL argument to ny_quant_encode");
    return ny_quant_encode_batch(q, vec, 1, code, q->code_size);
}

int ny_quant_encode_batch(const ny_quant *q, const float *vecs, size_t n, uint8_t *codes, size_t stride)
{
    if (!q || (!vecs && n) || (!codes && n)) return ny_error(NY_EINVAL, "NULL argument to encode");
    if (stride < q->code_size)
        return ny_error(NY_EINVAL, "code stride %zu is below the code size %zu", stride, q->code_size);
    float *tmp = NULL;
    if (q->metric == NY_COSINE && !(tmp = malloc(q->dim * sizeof(float))))
        return ny_error(NY_ENOMEM, "out of memory encoding");
    int rc = NY_OK;
    for (size_t i = 0; i < n; i++) {
        const float *x = vecs + i * q->dim;
        if (!ny_all_finite(x, q->dim)) {
            rc = ny_error(NY_EINVAL, "vector %zu has a NaN or infinite component", i);
            break;
        }
        if (tmp) {
            memcpy(tmp, x, q->dim * sizeof(float));
            ny_normalize(tmp, q->dim);
            x = tmp;
        }
        encode_one(q, x, codes + i * stride);
    }
    free(tmp);
    return rc;
}

void ny_quant_decode(const ny_quant *q, const uint8_t *code, float *out)
{
    size_t d = q->dim;
    if (q->cfg.kind != NY_QUANT_BINARY) {
        for (size_t j = 0; j < d; j++) {
            size_t r = q->nr == 1 ? 0 : j;
            int c = q->bits == 8 ? code[j] : (code[j / 2] >> (4 * (j & 1))) & 15;
            out[j] = q->lo[r] + q->step[r] * (float)c;
        }
        return;
    }
    float f;
    memcpy(&f, code + q->nwords * 8, 4);
    for (size_t j = 0; j < d; j++) {
        int b = (code[j / 8] >> (j % 8)) & 1; /* little-endian words */
        out[j] = q->mean[j] + (b ? f : -f);
    }
}

/* ===== Prepared queries ================================================= */

void ny_quant_query_free(ny_quant_query *qq)
{
    if (!qq) return;
    free(qq->v);
    free(qq->w);
    free(qq->planes);
    free(qq);
}

int ny_quant_query_new(const ny_quant *q, ny_quant_query **out)
{
    if (!q || !out) return ny_error(NY_EINVAL, "NULL argument to ny_quant_query_new");
    ny_quant_query *qq = calloc(1, sizeof *qq);
    if (!qq) return ny_error(NY_ENOMEM, "out of memory for a prepared query");
    qq->q = q;
    qq->kind = (int)q->cfg.kind;
    qq->mode = q->mode;
    qq->metric = (int)q->metric;
    qq->qbits = q->cfg.query_bits;
    qq->dim = q->dim;
    qq->nwords = q->nwords;
    qq->v = malloc(q->dim * sizeof(float));
    if (q->cfg.kind != NY_QUANT_BINARY) {
        qq->w = calloc(2 * q->nbytes, 1); /* SQ4: even then odd weights */
        qq->nbytes = q->nbytes;
        if (q->bits == 8) qq->dot = ny_sq8_dot_kernel(ny_qk_sq8_level());
        else qq->dot = ny_sq4_dot_kernel(ny_qk_sq8_level());
    } else {
        qq->planes = calloc((size_t)q->cfg.query_bits * q->nwords, sizeof(uint64_t));
        qq->asym = ny_bin_asym_kernel(ny_qk_bin_level());
    }
    if (!qq->v || (q->cfg.kind != NY_QUANT_BINARY ? !qq->w : !qq->planes)) {
        ny_quant_query_free(qq);
        return ny_error(NY_ENOMEM, "out of memory for a prepared query");
    }
    *out = qq;
    return NY_OK;
}

/* Position of dimension j's weight in qq->w: SQ8 in order, SQ4 even
 * dimensions first, then odd ones. */
static inline size_t wpos(const ny_quant *q, size_t j)
{
    return q->bits == 8 ? j : (j & 1) * q->nbytes + j / 2;
}

static void prepare_sq8(ny_quant_query *qq)
{
    const ny_quant *q = qq->q;
    size_t d = q->dim;
    const float *v = qq->v;
    if (q->mode == SQ8_L2_EXACT) {
        int64_t a2 = 0;
        float lo = q->lo[0], step = q->step[0];
        for (size_t j = 0; j < d; j++) {
            /* SQ8: same expression as encode_one, so a query equal to a
             * stored vector gets the same codes.  SQ4: 1/16 of a step. */
            int a = q->bits == 8 ? clamp_code((v[j] - lo) / step, 0, 255)
                                 : clamp_code((v[j] - lo) / step * 16.0f, 0, 240);
            qq->w[wpos(q, j)] = (int8_t)(a - 128);
            a2 += (int64_t)a * a;
        }
        qq->a2 = a2;
        qq->s2 = q->step[0] * q->step[0] / (q->bits == 8 ? 1.0f : 256.0f);
        return;
    }
    float mx = 0;
    double qn2 = 0, qm = 0;
    for (size_t j = 0; j < d; j++) {
        float wj = fabsf(v[j] * q->sdim[j]);
        if (wj > mx) mx = wj;
        qn2 += (double)v[j] * v[j];
        qm += (double)v[j] * q->mid[j];
    }
    float alpha = mx > 0 ? mx / 127.0f : 1.0f, inv = 1.0f / alpha;
    int64_t sw = 0;
    for (size_t j = 0; j < d; j++) {
        int w = clamp_code(v[j] * q->sdim[j] * inv, -127, 127);
        qq->w[wpos(q, j)] = (int8_t)w;
        sw += w;
    }
    qq->alpha = alpha;
    qq->cst = (float)(qm - (double)q->center * (double)alpha * (double)sw);
    qq->qn2 = (float)qn2;
}

static void prepare_binary(ny_quant_query *qq)
{
    const ny_quant *q = qq->q;
    size_t d = q->dim, nw = q->nwords;
    int bits = q->cfg.query_bits;
    float *v = qq->v;
    double base = 0;
    for (size_t j = 0; j < d; j++) {
        if (q->metric == NY_L2) {
            float t = v[j] - q->mean[j];
            base += (double)t * t;
            v[j] = t;
        } else {
            base += (double)v[j] * q->mean[j];
        }
    }
    float lo = v[0], hi = v[0];
    for (size_t j = 1; j < d; j++) {
        if (v[j] < lo) lo = v[j];
        if (v[j] > hi) hi = v[j];
    }
    int levels = (1 << bits) - 1;
    float delta = hi > lo ? (hi - lo) / (float)levels : 1.0f, inv = 1.0f / delta;
    memset(qq->planes, 0, (size_t)bits * nw * sizeof(uint64_t));
    int64_t su = 0;
    for (size_t j = 0; j < d; j++) {
        int u = clamp_code((v[j] - lo) * inv, 0, levels);
        su += u;
        for (int k = 0; k < bits; k++)
            if ((u >> k) & 1) qq->planes[(size_t)k * nw + j / 64] |= (uint64_t)1 << (j % 64);
    }
    qq->lo = lo;
    qq->delta = delta;
    qq->sumv = (float)((double)lo * (double)d + (double)delta * (double)su);
    qq->base = (float)base;
}

int ny_quant_query_prepare(ny_quant_query *qq, const float *query)
{
    if (!qq || !query) return ny_error(NY_EINVAL, "NULL argument to ny_quant_query_prepare");
    const ny_quant *q = qq->q;
    if (!ny_all_finite(query, q->dim)) return ny_error(NY_EINVAL, "query has a NaN or infinite component");
    memcpy(qq->v, query, q->dim * sizeof(float));
    if (q->metric == NY_COSINE) ny_normalize(qq->v, q->dim);
    if (q->cfg.kind != NY_QUANT_BINARY) prepare_sq8(qq);
    else prepare_binary(qq);
    return NY_OK;
}

float ny_quant_dist(const ny_quant_query *qq, const uint8_t *code)
{
    if (qq->kind != NY_QUANT_BINARY) {
        size_t nb = qq->nbytes;
        int32_t k = qq->dot(qq->w, code, nb);
        if (qq->mode == SQ8_L2_EXACT) {
            int32_t kx;
            memcpy(&kx, code + nb, 4);
            /* SQ8: A + k_x - 2K.  SQ4: A + 256 k_x - 32 K (s2 has the 1/256). */
            if (qq->kind == NY_QUANT_SQ8) return qq->s2 * (float)(qq->a2 + kx - 2 * (int64_t)k);
            return qq->s2 * (float)(qq->a2 + 256 * (int64_t)kx - 32 * (int64_t)k);
        }
        float ip = qq->cst + qq->alpha * (float)k;
        if (qq->mode == SQ8_DOT) return -ip;
        float xn2;
        memcpy(&xn2, code + nb, 4);
        return qq->qn2 + xn2 - 2.0f * ip;
    }
    size_t nw = qq->nwords;
    uint64_t p = qq->asym(qq->planes, (size_t)qq->qbits, (const uint64_t *)(const void *)code, nw);
    float f, r2;
    uint32_t pc;
    memcpy(&f, code + nw * 8, 4);
    memcpy(&r2, code + nw * 8 + 4, 4);
    memcpy(&pc, code + nw * 8 + 8, 4);
    float vs = 2.0f * (qq->lo * (float)pc + qq->delta * (float)p) - qq->sumv;
    if (qq->metric == NY_L2) return qq->base + r2 - 2.0f * f * vs;
    return -(qq->base + f * vs);
}

void ny_quant_dist_batch(const ny_quant_query *qq, const uint8_t *base, size_t stride,
                         const uint32_t *ids, size_t n, float *out)
{
    enum { AHEAD = 4 };
    size_t cs = qq->q->code_size;
    for (size_t i = 0; i < n && i < AHEAD; i++)
        for (size_t o = 0; o < cs; o += 64) __builtin_prefetch(base + (size_t)ids[i] * stride + o);
    for (size_t i = 0; i < n; i++) {
        if (i + AHEAD < n) {
            const uint8_t *p = base + (size_t)ids[i + AHEAD] * stride;
            for (size_t o = 0; o < cs; o += 64) __builtin_prefetch(p + o);
        }
        out[i] = ny_quant_dist(qq, base + (size_t)ids[i] * stride);
    }
}

/* ===== Rescoring ======================================================== */

typedef struct { float d; uint32_t id; } rs_pair;

static int rs_cmp(const void *a, const void *b)
{
    const rs_pair *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int ny_quant_rescore(ny_metric metric, size_t dim, const float *query, const uint32_t *ids, size_t n,
                     ny_vec_get_fn get, void *ctx, size_t k, uint32_t *out_ids, float *out_dists)
{
    if (!query || (!ids && n) || !get || (!out_ids && k))
        return ny_error(NY_EINVAL, "NULL argument to ny_quant_rescore");
    if (metric != NY_L2 && metric != NY_DOT && metric != NY_COSINE)
        return ny_error(NY_EINVAL, "unknown metric %d", (int)metric);
    if (dim == 0) return ny_error(NY_EINVAL, "dimension is 0");
    if (n > INT32_MAX) return ny_error(NY_EINVAL, "too many candidates (%zu)", n);
    if (n == 0 || k == 0) return 0;
    rs_pair *p = malloc(n * sizeof *p);
    float *qn = NULL;
    if (!p || (metric == NY_COSINE && !(qn = malloc(dim * sizeof(float))))) {
        free(p);
        return ny_error(NY_ENOMEM, "out of memory rescoring");
    }
    if (qn) {
        memcpy(qn, query, dim * sizeof(float));
        ny_normalize(qn, dim);
        query = qn;
    }
    ny_dist_fn dist = ny_dist_get(metric);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const float *v = get(ctx, ids[i]);
        if (!v) continue;
        p[m].d = dist(query, v, dim);
        p[m].id = ids[i];
        m++;
    }
    qsort(p, m, sizeof *p, rs_cmp);
    size_t out = m < k ? m : k;
    for (size_t i = 0; i < out; i++) {
        out_ids[i] = p[i].id;
        if (out_dists) out_dists[i] = p[i].d;
    }
    free(p);
    free(qn);
    return (int)out;
}

/* ===== Serialization ==================================================== */

#define HDR_BYTES (8 + 4 * 8 + 4)

static size_t nparams(const ny_quant *q)
{
    if (q->cfg.kind != NY_QUANT_BINARY) return 2 * q->nr;
    return q->cfg.centered ? q->dim : 0;
}

size_t ny_quant_serialized_size(const ny_quant *q)
{
    return HDR_BYTES + 4 * nparams(q) + 8;
}

static void put32(uint8_t **p, uint32_t v)
{
    memcpy(*p, &v, 4);
    *p += 4;
}

static uint32_t get32(const uint8_t **p)
{
    uint32_t v;
    memcpy(&v, *p, 4);
    *p += 4;
    return v;
}

int ny_quant_serialize(const ny_quant *q, void *buf, size_t cap)
{
    if (!q || !buf) return ny_error(NY_EINVAL, "NULL argument to ny_quant_serialize");
    size_t need = ny_quant_serialized_size(q);
    if (cap < need) return ny_error(NY_EINVAL, "buffer of %zu bytes, quantizer needs %zu", cap, need);
    uint8_t *p = buf;
    memcpy(p, "NYQUANT1", 8);
    p += 8;
    put32(&p, NY_QUANT_FORMAT_VERSION);
    put32(&p, (uint32_t)q->cfg.kind);
    put32(&p, (uint32_t)q->metric);
    put32(&p, (uint32_t)q->dim);
    put32(&p, (uint32_t)q->cfg.per_dim);
    put32(&p, (uint32_t)q->cfg.centered);
    put32(&p, (uint32_t)q->cfg.query_bits);
    memcpy(p, &q->cfg.quantile, 4);
    p += 4;
    size_t np = nparams(q);
    put32(&p, (uint32_t)np);
    if (q->cfg.kind != NY_QUANT_BINARY) {
        memcpy(p, q->lo, 4 * q->nr);
        memcpy(p + 4 * q->nr, q->step, 4 * q->nr);
    } else if (np) {
        memcpy(p, q->mean, 4 * np);
    }
    p += 4 * np;
    uint64_t h = ny_hash64(buf, (size_t)(p - (uint8_t *)buf));
    memcpy(p, &h, 8);
    return NY_OK;
}

int ny_quant_deserialize(const void *buf, size_t len, ny_quant **out, size_t *used)
{
    if (!buf || !out) return ny_error(NY_EINVAL, "NULL argument to ny_quant_deserialize");
    const uint8_t *p = buf;
    if (len < HDR_BYTES + 8) return ny_error(NY_ECORRUPT, "quantizer block truncated (%zu bytes)", len);
    if (memcmp(p, "NYQUANT1", 8) != 0) return ny_error(NY_ECORRUPT, "quantizer block has a bad magic");
    p += 8;
    uint32_t version = get32(&p);
    if (version != NY_QUANT_FORMAT_VERSION)
        return ny_error(NY_ECORRUPT, "quantizer format version %u is not supported (want %u)", version,
                        NY_QUANT_FORMAT_VERSION);
    ny_quant_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.kind = (ny_quant_kind)get32(&p);
    uint32_t metric = get32(&p), dim = get32(&p);
    cfg.per_dim = (int)get32(&p);
    cfg.centered = (int)get32(&p);
    uint32_t qb = get32(&p);
    memcpy(&cfg.quantile, p, 4);
    p += 4;
    uint32_t np = get32(&p);
    if (np > (len - HDR_BYTES - 8) / 4)
        return ny_error(NY_ECORRUPT, "quantizer block truncated (%u parameters, %zu bytes)", np, len);
    size_t total = HDR_BYTES + 4 * (size_t)np + 8;
    uint64_t want;
    memcpy(&want, (const uint8_t *)buf + total - 8, 8);
    if (ny_hash64(buf, total - 8) != want) return ny_error(NY_ECORRUPT, "quantizer block checksum mismatch");
    if (qb > 8 || cfg.per_dim > 1 || cfg.centered > 1)
        return ny_error(NY_ECORRUPT, "quantizer block has invalid flags");
    cfg.query_bits = (int)qb;
    ny_quant_config c;
    if (check_config(&cfg, (ny_metric)metric, dim, &c) != NY_OK) {
        char why[160]; /* ny_errmsg() is the buffer ny_error writes to */
        snprintf(why, sizeof why, "%s", ny_errmsg());
        return ny_error(NY_ECORRUPT, "quantizer block has an invalid configuration: %s", why);
    }
    ny_quant *q;
    int rc = quant_alloc(&c, (ny_metric)metric, dim, &q);
    if (rc) return rc;
    size_t want_np = nparams(q);
    if (np != want_np) {
        ny_quant_free(q);
        return ny_error(NY_ECORRUPT, "quantizer block has %u parameters, expected %zu", np, want_np);
    }
    if (c.kind != NY_QUANT_BINARY) {
        memcpy(q->lo, p, 4 * q->nr);
        memcpy(q->step, p + 4 * q->nr, 4 * q->nr);
        for (size_t r = 0; r < q->nr; r++)
            if (!isfinite(q->lo[r]) || !(q->step[r] > 0) || !isfinite(q->step[r])) {
                ny_quant_free(q);
                return ny_error(NY_ECORRUPT, "quantizer block has an invalid range in dimension %zu", r);
            }
        sq8_derive(q);
    } else if (np) {
        memcpy(q->mean, p, 4 * (size_t)np);
        if (!ny_all_finite(q->mean, dim)) {
            ny_quant_free(q);
            return ny_error(NY_ECORRUPT, "quantizer block has a non-finite mean");
        }
    }
    if (used) *used = total;
    *out = q;
    return NY_OK;
}
