/* test_quant.c -- quantization: every kernel level against a scalar
 * reference (dims 1..1024, every remainder, unaligned rows); estimated
 * distances against double-precision references rebuilt from the
 * serialized parameters; encode/decode error bounds; quantile clipping;
 * recall@10 of SQ8 and binary codes (with and without rescoring) against
 * float brute force; serialization round trip and corruption. */
#include <math.h>
#include <string.h>

#include "common/common.h"
#include "nearly.h"
#include "quant/quant.h"
#include "t.h"

/* ===== Helpers ========================================================== */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct { float d; uint32_t id; } pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Parameters read back from a serialized quantizer (format in quant.h). */
typedef struct {
    uint32_t kind, metric, dim, per_dim, centered, qbits, np;
    float quantile;
    float *params;
    void *buf;
} qparams;

static void read_params(const ny_quant *q, qparams *p)
{
    size_t n = ny_quant_serialized_size(q);
    p->buf = malloc(n);
    CHECK_RC(ny_quant_serialize(q, p->buf, n), NY_OK);
    const uint8_t *b = p->buf;
    uint32_t f[10];
    memcpy(f, b + 8, 40);
    p->kind = f[1];
    p->metric = f[2];
    p->dim = f[3];
    p->per_dim = f[4];
    p->centered = f[5];
    p->qbits = f[6];
    memcpy(&p->quantile, &f[7], 4);
    p->np = f[8];
    p->params = (float *)(void *)(b + 44);
}

static float par_lo(const qparams *p, size_t j)
{
    return p->params[p->per_dim ? j : 0];
}

static float par_step(const qparams *p, size_t j)
{
    size_t r = p->per_dim ? p->dim : 1;
    return p->params[r + (p->per_dim ? j : 0)];
}

static float par_mean(const qparams *p, size_t j)
{
    return p->centered ? p->params[j] : 0.0f;
}

/* Clustered data: `nc` random centres in [-1,1]^d, points = centre +
 * uniform noise of amplitude `noise`. */
static float *clustered(size_t n, size_t d, size_t nc, float noise, unsigned long long seed)
{
    float *c = malloc(nc * d * sizeof(float)), *x = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < nc * d; i++) c[i] = t_randf(&seed);
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)(t_rand(&seed) % nc);
        for (size_t j = 0; j < d; j++) x[i * d + j] = c[k * d + j] + noise * t_randf(&seed);
    }
    free(c);
    return x;
}

/* Embedding-like data: clustered points in a `lat`-dimensional latent
 * space mapped to d dimensions by a fixed random matrix (real embeddings
 * have a low intrinsic dimension; i.i.d. noise in 768 dimensions makes
 * every cluster member nearly equidistant, which no 1-bit code ranks). */
static float *embedded(size_t n, size_t d, size_t lat, unsigned long long mseed, unsigned long long seed)
{
    float *a = malloc(lat * d * sizeof(float)), *z = clustered(n, lat, 32, 0.5f, seed);
    float *x = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < lat * d; i++) a[i] = t_randf(&mseed);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            float s = 0;
            for (size_t l = 0; l < lat; l++) s += z[i * lat + l] * a[l * d + j];
            x[i * d + j] = s;
        }
    free(a);
    free(z);
    return x;
}

static double dref(ny_metric m, const float *a, const float *b, size_t d)
{
    double s = 0, na = 0, nb = 0;
    for (size_t j = 0; j < d; j++) {
        if (m == NY_L2) {
            double t = (double)a[j] - b[j];
            s += t * t;
        } else {
            s += (double)a[j] * b[j];
            na += (double)a[j] * a[j];
            nb += (double)b[j] * b[j];
        }
    }
    if (m == NY_L2) return s;
    if (m == NY_COSINE) return -(s / (sqrt(na) * sqrt(nb) + 1e-300));
    return -s;
}

/* ===== Kernels ========================================================== */

TEST(sq8_kernel_all_levels_exact)
{
    size_t maxd = 1024;
    unsigned long long seed = 7;
    int8_t *wb = malloc(maxd + 64);
    uint8_t *cb = malloc(maxd + 64);
    for (size_t i = 0; i < maxd + 64; i++) {
        wb[i] = (int8_t)(int)(t_rand(&seed) % 256 - 128);
        cb[i] = (uint8_t)(t_rand(&seed) % 256);
    }
    for (int lv = NY_QK_SCALAR; lv <= NY_QK_AVX512X; lv++) {
        ny_sq8_dot_fn f = ny_sq8_dot_kernel((ny_qk_level)lv);
        if (!f) {
            printf("    (level %s not supported here: skipped)\n", ny_qk_name((ny_qk_level)lv));
            continue;
        }
        static const size_t offs[][2] = {{0, 0}, {1, 3}, {5, 0}, {0, 7}, {33, 17}};
        int bad = 0;
        for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++) {
            const int8_t *w = wb + offs[o][0];
            const uint8_t *c = cb + offs[o][1];
            for (size_t d = 1; d <= maxd && bad < 5; d++) {
                int64_t ref = 0;
                for (size_t i = 0; i < d; i++) ref += (int64_t)w[i] * c[i];
                int32_t got = f(w, c, d);
                if (got != ref) {
                    bad++;
                    CHECKF(0, "%s d=%zu off=%zu/%zu: %d vs %lld", ny_qk_name((ny_qk_level)lv), d, offs[o][0],
                           offs[o][1], got, (long long)ref);
                }
            }
        }
        /* Extremes at the largest supported dimension: no overflow. */
        size_t big = 65536;
        int8_t *w = malloc(big);
        uint8_t *c = malloc(big);
        memset(w, 127, big);
        memset(c, 255, big);
        CHECKF(f(w, c, big) == 127 * 255 * (int64_t)big, "%s max", ny_qk_name((ny_qk_level)lv));
        memset(w, 0x80, big); /* -128 */
        CHECKF(f(w, c, big) == -128LL * 255 * (int64_t)big,
               "%s min", ny_qk_name((ny_qk_level)lv));
        free(w);
        free(c);
    }
    free(wb);
    free(cb);
}

TEST(sq4_kernel_all_levels_exact)
{
    size_t maxb = 512; /* 1024 dimensions */
    unsigned long long seed = 8;
    int8_t *wb = malloc(2 * maxb + 64);
    uint8_t *cb = malloc(maxb + 64);
    for (size_t i = 0; i < 2 * maxb + 64; i++) wb[i] = (int8_t)(int)(t_rand(&seed) % 256 - 128);
    for (size_t i = 0; i < maxb + 64; i++) cb[i] = (uint8_t)(t_rand(&seed) % 256);
    for (int lv = NY_QK_SCALAR; lv <= NY_QK_AVX512X; lv++) {
        ny_sq4_dot_fn f = ny_sq4_dot_kernel((ny_qk_level)lv);
        if (!f) continue;
        int bad = 0;
        static const size_t offs[][2] = {{0, 0}, {1, 3}, {5, 0}, {0, 7}};
        for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++) {
            const int8_t *w = wb + offs[o][0];
            const uint8_t *c = cb + offs[o][1];
            for (size_t nb = 1; nb <= maxb && bad < 5; nb++) {
                int64_t ref = 0;
                for (size_t i = 0; i < nb; i++) ref += (int64_t)w[i] * (c[i] & 15) + (int64_t)w[nb + i] * (c[i] >> 4);
                int32_t got = f(w, c, nb);
                if (got != ref) {
                    bad++;
                    CHECKF(0, "sq4 %s nb=%zu off=%zu/%zu: %d vs %lld", ny_qk_name((ny_qk_level)lv), nb, offs[o][0],
                           offs[o][1], got, (long long)ref);
                }
            }
        }
    }
    free(wb);
    free(cb);
}

TEST(binary_kernels_all_levels_exact)
{
    size_t maxw = 64; /* 4096 bits */
    unsigned long long seed = 11;
    size_t nplanes = 8;
    uint8_t *ab = malloc((maxw + 2) * 8 * nplanes), *bb = malloc((maxw + 2) * 8);
    for (size_t i = 0; i < (maxw + 2) * 8 * nplanes; i++) ab[i] = (uint8_t)t_rand(&seed);
    for (size_t i = 0; i < (maxw + 2) * 8; i++) bb[i] = (uint8_t)t_rand(&seed);
    for (int lv = NY_QK_SCALAR; lv <= NY_QK_AVX512X; lv++) {
        ny_hamming_fn h = ny_hamming_kernel((ny_qk_level)lv);
        ny_bin_asym_fn as = ny_bin_asym_kernel((ny_qk_level)lv);
        if (!h || !as) {
            printf("    (level %s not supported here: skipped)\n", ny_qk_name((ny_qk_level)lv));
            continue;
        }
        int bad = 0;
        for (size_t off = 0; off < 8 && bad < 5; off += 3) {
            /* Unaligned on purpose: rows need no alignment. */
            const uint64_t *a = (const uint64_t *)(const void *)(ab + off);
            const uint64_t *b = (const uint64_t *)(const void *)(bb + (off * 5) % 8);
            for (size_t n = 1; n <= maxw && bad < 5; n++) {
                uint64_t ref = 0;
                for (size_t i = 0; i < n; i++) {
                    uint64_t x, y;
                    memcpy(&x, (const uint8_t *)a + 8 * i, 8);
                    memcpy(&y, (const uint8_t *)b + 8 * i, 8);
                    ref += (uint64_t)__builtin_popcountll(x ^ y);
                }
                uint64_t got = h(a, b, n);
                if (got != ref) {
                    bad++;
                    CHECKF(0, "%s hamming n=%zu off=%zu: %llu vs %llu", ny_qk_name((ny_qk_level)lv), n, off,
                           (unsigned long long)got, (unsigned long long)ref);
                }
                for (size_t np = 1; np <= nplanes; np += 3) {
                    uint64_t r2 = 0;
                    for (size_t k = 0; k < np; k++)
                        for (size_t i = 0; i < n; i++) {
                            uint64_t x, y;
                            memcpy(&x, (const uint8_t *)a + 8 * (k * n + i), 8);
                            memcpy(&y, (const uint8_t *)b + 8 * i, 8);
                            r2 += (uint64_t)__builtin_popcountll(x & y) << k;
                        }
                    uint64_t g2 = as(a, np, b, n);
                    if (g2 != r2) {
                        bad++;
                        CHECKF(0, "%s asym n=%zu planes=%zu: %llu vs %llu", ny_qk_name((ny_qk_level)lv), n, np,
                               (unsigned long long)g2, (unsigned long long)r2);
                    }
                }
            }
        }
    }
    free(ab);
    free(bb);
}

TEST(dispatch_levels)
{
    ny_qk_level s = ny_qk_sq8_level(), b = ny_qk_bin_level();
    CHECK(ny_sq8_dot_kernel(s) != NULL);
    CHECK(ny_hamming_kernel(b) != NULL);
    CHECK(ny_sq8_dot_kernel(NY_QK_SCALAR) == ny_sq8_dot_scalar);
    /* The active level never exceeds the NEARLY_SIMD cap. */
    if (ny_simd_active() == NY_SIMD_SCALAR) CHECK(s == NY_QK_SCALAR && b == NY_QK_SCALAR);
    if (ny_simd_active() == NY_SIMD_AVX2) CHECK(s <= NY_QK_AVX2 && b <= NY_QK_AVX2);
    printf("    sq8 level %s, binary level %s\n", ny_qk_name(s), ny_qk_name(b));
}

/* ===== Estimated distances against references =========================== */

/* SQ8, every mode, dims 1..1024 (a dense sweep up to 80 then the
 * boundaries of the SIMD widths). */
static const size_t k_dims[] = {1,   2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  15,  16,  17,
                                 19,  23,  24,  31,  32,  33,  40,  47,  48,  49,  63,  64,  65,  66,  79,  80,
                                 95,  96,  97,  127, 128, 129, 191, 192, 193, 255, 256, 257, 300, 319, 320, 383,
                                 384, 385, 511, 512, 513, 700, 767, 768, 769, 1000, 1023, 1024};

static int code_at(ny_quant_kind kind, const uint8_t *c, size_t j)
{
    return kind == NY_QUANT_SQ8 ? c[j] : (c[j / 2] >> (4 * (j & 1))) & 15;
}

static void check_sq8_estimates(ny_quant_kind kind, ny_metric m, int per_dim, size_t d)
{
    double center = kind == NY_QUANT_SQ8 ? 128 : 8;
    size_t n = 40;
    unsigned long long seed = 100 + d;
    float *x = clustered(n, d, 4, 0.3f, seed);
    ny_quant_config cfg;
    ny_quant_config_init(&cfg, kind);
    cfg.per_dim = per_dim;
    cfg.quantile = 1.0f;
    ny_quant *q = NULL;
    CHECK_RC(ny_quant_train(&cfg, m, d, x, n, &q), NY_OK);
    if (!q) {
        free(x);
        return;
    }
    qparams p;
    read_params(q, &p);
    size_t cs = ny_quant_code_size(q);
    /* Unaligned rows: stride cs + 3 and an odd base offset. */
    size_t stride = cs + 3;
    uint8_t *codes = malloc(n * stride + 1), *base = codes + 1, *qcode = malloc(cs);
    float *xh = malloc(d * sizeof(float)), *qn = malloc(d * sizeof(float)), *qh = malloc(d * sizeof(float));
    CHECK_RC(ny_quant_encode_batch(q, x, n, base, stride), NY_OK);
    ny_quant_query *qq = NULL;
    CHECK_RC(ny_quant_query_new(q, &qq), NY_OK);
    float *query = clustered(1, d, 4, 0.3f, seed + 1);
    memcpy(qn, query, d * sizeof(float));
    if (m == NY_COSINE) ny_normalize(qn, d);
    CHECK_RC(ny_quant_query_prepare(qq, query), NY_OK);
    CHECK_RC(ny_quant_encode(q, query, qcode), NY_OK);
    ny_quant_decode(q, qcode, qh);
    /* alpha of the dot-product query: max |q_j step_j| / 127. */
    double alpha = 0;
    for (size_t j = 0; j < d; j++) alpha = fmax(alpha, fabs((double)qn[j] * par_step(&p, j)));
    alpha /= 127.0;
    int bad = 0;
    for (size_t i = 0; i < n && bad < 3; i++) {
        const uint8_t *c = base + i * stride;
        ny_quant_decode(q, c, xh);
        float got = ny_quant_dist(qq, c);
        double ref, tol;
        if (m == NY_L2 && !per_dim) {
            /* Exact identity on the query's own codes (SQ8), or on the
             * query at 1/16 of a step (SQ4). */
            ref = 0;
            for (size_t j = 0; j < d; j++) {
                double t = qh[j];
                if (kind == NY_QUANT_SQ4) {
                    float lo = par_lo(&p, 0), st = par_step(&p, 0), u = (qn[j] - lo) / st * 16.0f;
                    double a = !(u > 0) ? 0 : u >= 240 ? 240 : (double)lrintf(u);
                    t = lo + st * a / 16.0;
                }
                ref += (t - xh[j]) * (t - xh[j]);
            }
            tol = 1e-5 * ref + 1e-4 * (double)par_step(&p, 0) * par_step(&p, 0) * d;
        } else {
            /* <q, x_hat> up to the query rounding: |e_j| <= alpha / 2
             * multiplying (c_j - 128). */
            double ip = 0, xn = 0, qq2 = 0, bound = 0, mag = 0;
            for (size_t j = 0; j < d; j++) {
                ip += (double)qn[j] * xh[j];
                xn += (double)xh[j] * xh[j];
                qq2 += (double)qn[j] * qn[j];
                bound += 0.5 * alpha * fabs((double)code_at(kind, c, j) - center);
                mag += fabs((double)qn[j] * xh[j]);
            }
            ref = m == NY_L2 ? qq2 + xn - 2 * ip : -ip;
            tol = (m == NY_L2 ? 2 : 1) * bound * 1.001 + 1e-5 * (mag + qq2 + xn) + 1e-6;
        }
        if (!(fabs(got - ref) <= tol)) {
            bad++;
            CHECKF(0, "sq%d %s per_dim=%d d=%zu i=%zu: got %.9g want %.9g (tol %.3g)", kind == NY_QUANT_SQ8 ? 8 : 4,
                   ny_metric_name(m), per_dim, d, i, got, ref, tol);
        }
        /* Decode error: within half a step (no clipping at quantile 1). */
        const float *xi = x + i * d;
        float tmp[1024];
        memcpy(tmp, xi, d * sizeof(float));
        if (m == NY_COSINE) ny_normalize(tmp, d);
        for (size_t j = 0; j < d; j++) {
            double e = fabs((double)tmp[j] - xh[j]), lim = 0.5 * par_step(&p, j) * 1.0001 + 1e-6;
            if (e > lim) {
                bad++;
                CHECKF(0, "sq8 decode d=%zu j=%zu: |%g - %g| > %g", d, j, tmp[j], xh[j], lim);
                break;
            }
        }
    }
    /* dist_batch agrees with dist. */
    uint32_t ids[5] = {3, 0, 7, 7, 39};
    float out[5];
    ny_quant_dist_batch(qq, base, stride, ids, 5, out);
    for (int i = 0; i < 5; i++) CHECK(out[i] == ny_quant_dist(qq, base + ids[i] * stride));
    ny_quant_query_free(qq);
    ny_quant_free(q);
    free(p.buf);
    free(codes);
    free(qcode);
    free(xh);
    free(qn);
    free(qh);
    free(query);
    free(x);
}

TEST(sq8_estimates_match_reference)
{
    ny_metric ms[] = {NY_L2, NY_DOT, NY_COSINE};
    for (size_t k = 0; k < sizeof k_dims / sizeof k_dims[0]; k++)
        for (int mi = 0; mi < 3; mi++)
            for (int pd = 0; pd < 2; pd++) {
                check_sq8_estimates(NY_QUANT_SQ8, ms[mi], pd, k_dims[k]);
                check_sq8_estimates(NY_QUANT_SQ4, ms[mi], pd, k_dims[k]);
            }
}

static void check_binary_estimates(ny_metric m, int centered, int qbits, size_t d)
{
    size_t n = 30;
    unsigned long long seed = 500 + d;
    float *x = clustered(n, d, 3, 0.5f, seed);
    ny_quant_config cfg;
    ny_quant_config_init(&cfg, NY_QUANT_BINARY);
    cfg.centered = centered;
    cfg.query_bits = qbits;
    ny_quant *q = NULL;
    CHECK_RC(ny_quant_train(&cfg, m, d, x, n, &q), NY_OK);
    if (!q) {
        free(x);
        return;
    }
    qparams p;
    read_params(q, &p);
    size_t cs = ny_quant_code_size(q), stride = cs + 5;
    uint8_t *codes = malloc(n * stride + 3), *base = codes + 3;
    CHECK_RC(ny_quant_encode_batch(q, x, n, base, stride), NY_OK);
    ny_quant_query *qq = NULL;
    CHECK_RC(ny_quant_query_new(q, &qq), NY_OK);
    float *query = clustered(1, d, 3, 0.5f, seed + 9), *v = malloc(d * sizeof(float));
    float *xn = malloc(d * sizeof(float)), *xh = malloc(d * sizeof(float));
    CHECK_RC(ny_quant_query_prepare(qq, query), NY_OK);
    if (m == NY_COSINE) ny_normalize(query, d);
    double base_c = 0;
    float vmin = INFINITY, vmax = -INFINITY;
    for (size_t j = 0; j < d; j++) {
        float mj = par_mean(&p, j);
        if (m == NY_L2) {
            v[j] = query[j] - mj;
            base_c += (double)v[j] * v[j];
        } else {
            v[j] = query[j];
            base_c += (double)query[j] * mj;
        }
        vmin = fminf(vmin, v[j]);
        vmax = fmaxf(vmax, v[j]);
    }
    double delta = vmax > vmin ? ((double)vmax - vmin) / ((1 << qbits) - 1) : 0;
    int bad = 0;
    for (size_t i = 0; i < n && bad < 3; i++) {
        memcpy(xn, x + i * d, d * sizeof(float));
        if (m == NY_COSINE) ny_normalize(xn, d);
        double l1 = 0, l2 = 0, vs = 0;
        for (size_t j = 0; j < d; j++) {
            double r = (double)xn[j] - par_mean(&p, j);
            l1 += fabs(r);
            l2 += r * r;
            vs += r > 0 ? v[j] : -v[j];
        }
        double f = l1 > 0 ? l2 / l1 : 0;
        double ref = m == NY_L2 ? base_c + l2 - 2 * f * vs : -(base_c + f * vs);
        /* Query rounding moves <v, s> by at most d * delta / 2. */
        double tol = (m == NY_L2 ? 2 : 1) * f * (0.5 * delta * d * 1.001) + 1e-4 * (fabs(base_c) + l2 + f * l1) + 1e-5;
        float got = ny_quant_dist(qq, base + i * stride);
        if (!(fabs(got - ref) <= tol)) {
            bad++;
            CHECKF(0, "binary %s centered=%d bits=%d d=%zu i=%zu: got %.9g want %.9g (tol %.3g)", ny_metric_name(m),
                   centered, qbits, d, i, got, ref, tol);
        }
        /* Decode: mean +- f with the right signs. */
        ny_quant_decode(q, base + i * stride, xh);
        for (size_t j = 0; j < d; j++) {
            double r = (double)xn[j] - par_mean(&p, j);
            double want = par_mean(&p, j) + (r > 0 ? f : -f);
            if (fabs(xh[j] - want) > 1e-4 * (fabs(want) + 1)) {
                bad++;
                CHECKF(0, "binary decode d=%zu j=%zu: %g vs %g", d, j, xh[j], want);
                break;
            }
        }
    }
    /* With 8 query bits and a query equal to a stored vector (L2), the
     * estimate of its own distance is close to 0 relative to |r|^2. */
    ny_quant_query_free(qq);
    ny_quant_free(q);
    free(p.buf);
    free(codes);
    free(query);
    free(v);
    free(xn);
    free(xh);
    free(x);
}

TEST(binary_estimates_match_reference)
{
    ny_metric ms[] = {NY_L2, NY_DOT, NY_COSINE};
    for (size_t k = 0; k < sizeof k_dims / sizeof k_dims[0]; k++)
        for (int mi = 0; mi < 3; mi++) {
            check_binary_estimates(ms[mi], 1, 4, k_dims[k]);
            check_binary_estimates(ms[mi], (int)(k & 1), 8, k_dims[k]);
            if (k % 7 == 0) check_binary_estimates(ms[mi], 1, 1, k_dims[k]);
        }
}

/* ===== Training ========================================================= */

TEST(sq8_quantile_clips_outliers)
{
    size_t n = 2000, d = 16;
    unsigned long long seed = 3;
    float *x = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < n * d; i++) x[i] = t_randf(&seed); /* uniform [-1, 1) */
    for (size_t i = 0; i < 10; i++) x[(size_t)(t_rand(&seed) % (n * d))] = (i & 1) ? 1000.0f : -1000.0f;
    ny_quant_config cfg;
    ny_quant_config_init(&cfg, NY_QUANT_SQ8);
    for (int pd = 0; pd < 2; pd++) {
        cfg.per_dim = pd;
        cfg.quantile = 0.99f;
        ny_quant *q = NULL;
        CHECK_RC(ny_quant_train(&cfg, NY_L2, d, x, n, &q), NY_OK);
        REQUIRE(q);
        qparams p;
        read_params(q, &p);
        for (size_t j = 0; j < d; j++) {
            double lo = par_lo(&p, j), hi = lo + 255.0 * par_step(&p, j);
            /* 0.5 % / 99.5 % quantiles of U(-1,1) are -+0.99. */
            CHECKF(lo > -1.0 && lo < -0.95 && hi < 1.0 && hi > 0.95, "per_dim=%d j=%zu range [%g, %g]", pd, j, lo,
                   hi);
        }
        /* Out-of-range values clip to the range ends. */
        float big[16], dec[16];
        uint8_t code[64];
        for (size_t j = 0; j < d; j++) big[j] = (j & 1) ? 1000.0f : -1000.0f;
        CHECK_RC(ny_quant_encode(q, big, code), NY_OK);
        ny_quant_decode(q, code, dec);
        for (size_t j = 0; j < d; j++) {
            CHECK(code[j] == ((j & 1) ? 255 : 0));
            double want = (j & 1) ? par_lo(&p, j) + 255.0 * par_step(&p, j) : par_lo(&p, j);
            CHECK(fabs(dec[j] - want) < 1e-5);
        }
        free(p.buf);
        ny_quant_free(q);
        /* Without clipping, the outliers set the range. */
        cfg.quantile = 1.0f;
        CHECK_RC(ny_quant_train(&cfg, NY_L2, d, x, n, &q), NY_OK);
        REQUIRE(q);
        read_params(q, &p);
        if (!pd) CHECK(par_lo(&p, 0) == -1000.0f && fabs(par_lo(&p, 0) + 255.0 * par_step(&p, 0) - 1000.0) < 0.1);
        free(p.buf);
        ny_quant_free(q);
    }
    free(x);
}

TEST(sq8_per_dim_ranges_follow_scales)
{
    size_t n = 500, d = 8;
    unsigned long long seed = 5;
    float *x = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) x[i * d + j] = (float)(j + 1) * t_randf(&seed) + (float)j * 10.0f;
    ny_quant_config cfg;
    ny_quant_config_init(&cfg, NY_QUANT_SQ8);
    cfg.per_dim = 1;
    cfg.quantile = 1.0f;
    ny_quant *q = NULL;
    CHECK_RC(ny_quant_train(&cfg, NY_L2, d, x, n, &q), NY_OK);
    REQUIRE(q);
    qparams p;
    read_params(q, &p);
    for (size_t j = 0; j < d; j++) {
        double w = 255.0 * par_step(&p, j), c = par_lo(&p, j) + w / 2;
        CHECKF(fabs(w - 2.0 * (j + 1)) < 0.05 * (j + 1) && fabs(c - 10.0 * j) < 0.1 * (j + 1),
               "j=%zu width %g centre %g", j, w, c);
    }
    free(p.buf);
    ny_quant_free(q);
    free(x);
}

TEST(constant_component_and_single_sample)
{
    float x[4] = {0.5f, 0.5f, -2.0f, 0.0f};
    ny_quant_config cfg;
    ny_quant_config_init(&cfg, NY_QUANT_SQ8);
    for (int pd = 0; pd < 2; pd++) {
        cfg.per_dim = pd;
        ny_quant *q = NULL;
        CHECK_RC(ny_quant_train(&cfg, NY_L2, 4, x, 1, &q), NY_OK);
        REQUIRE(q);
        uint8_t code[8];
        float dec[4];
        CHECK_RC(ny_quant_encode(q, x, code), NY_OK);
        ny_quant_decode(q, code, dec);
        for (int j = 0; j < 4; j++) CHECKF(fabs(dec[j] - x[j]) < (pd ? 1e-3 : 0.01), "pd=%d j=%d %g", pd, j, dec[j]);
        ny_quant_query *qq = NULL;
        CHECK_RC(ny_quant_query_new(q, &qq), NY_OK);
        CHECK_RC(ny_quant_query_prepare(qq, x), NY_OK);
        CHECKF(fabs(ny_quant_dist(qq, code)) < 1e-3, "self distance %g", ny_quant_dist(qq, code));
        ny_quant_query_free(qq);
        ny_quant_free(q);
    }
}

TEST(invalid_arguments)
{
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ny_quant_config cfg;
    ny_quant *q = NULL;
    ny_quant_config_init(&cfg, NY_QUANT_SQ8);
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 0, x, 1, &q), NY_EINVAL);
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 70000, x, 1, &q), NY_EINVAL);
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 4, x, 0, &q), NY_EINVAL);
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 4, NULL, 2, &q), NY_EINVAL);
    CHECK_RC(ny_quant_train(NULL, NY_L2, 4, x, 2, &q), NY_EINVAL);
    CHECK_RC(ny_quant_train(&cfg, (ny_metric)9, 4, x, 2, &q), NY_EINVAL);
    cfg.quantile = 1.5f;
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 4, x, 2, &q), NY_EINVAL);
    cfg.quantile = NAN;
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 4, x, 2, &q), NY_EINVAL);
    ny_quant_config_init(&cfg, NY_QUANT_BINARY);
    cfg.query_bits = 9;
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 4, x, 2, &q), NY_EINVAL);
    cfg.kind = (ny_quant_kind)7;
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 4, x, 2, &q), NY_EINVAL);
    ny_quant_config_init(&cfg, NY_QUANT_SQ8);
    x[5] = NAN;
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 4, x, 2, &q), NY_EINVAL);
    CHECK(q == NULL);
    x[5] = 6;
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 4, x, 2, &q), NY_OK);
    REQUIRE(q);
    uint8_t code[16];
    float bad[4] = {1, INFINITY, 0, 0};
    CHECK_RC(ny_quant_encode(q, bad, code), NY_EINVAL);
    CHECK_RC(ny_quant_encode_batch(q, x, 2, code, 3), NY_EINVAL);
    CHECK_RC(ny_quant_encode(NULL, x, code), NY_EINVAL);
    CHECK_RC(ny_quant_encode(q, x, NULL), NY_EINVAL);
    CHECK_RC(ny_quant_query_new(NULL, NULL), NY_EINVAL);
    ny_quant_query *qq = NULL;
    CHECK_RC(ny_quant_query_new(q, &qq), NY_OK);
    CHECK_RC(ny_quant_query_prepare(qq, bad), NY_EINVAL);
    CHECK_RC(ny_quant_query_prepare(qq, NULL), NY_EINVAL);
    ny_quant_query_free(qq);
    ny_quant_query_free(NULL);
    ny_quant_free(q);
    ny_quant_free(NULL);
}

/* ===== Serialization ==================================================== */

TEST(serialize_round_trip_and_corruption)
{
    size_t n = 300, d = 37;
    float *x = clustered(n, d, 5, 0.2f, 77);
    ny_quant_config cfgs[5];
    ny_quant_config_init(&cfgs[0], NY_QUANT_SQ8);
    ny_quant_config_init(&cfgs[1], NY_QUANT_SQ8);
    cfgs[1].per_dim = 1;
    ny_quant_config_init(&cfgs[4], NY_QUANT_SQ4);
    ny_quant_config_init(&cfgs[2], NY_QUANT_BINARY);
    ny_quant_config_init(&cfgs[3], NY_QUANT_BINARY);
    cfgs[3].centered = 0;
    cfgs[3].query_bits = 2;
    ny_metric ms[5] = {NY_L2, NY_L2, NY_COSINE, NY_DOT, NY_L2};
    for (int c = 0; c < 5; c++) {
        ny_quant *q = NULL, *r = NULL;
        CHECK_RC(ny_quant_train(&cfgs[c], ms[c], d, x, n, &q), NY_OK);
        REQUIRE(q);
        size_t sz = ny_quant_serialized_size(q);
        uint8_t *buf = malloc(sz + 10);
        CHECK_RC(ny_quant_serialize(q, buf, sz - 1), NY_EINVAL);
        CHECK_RC(ny_quant_serialize(q, buf, sz), NY_OK);
        size_t used = 0;
        CHECK_RC(ny_quant_deserialize(buf, sz + 10, &r, &used), NY_OK); /* trailing bytes allowed */
        CHECK(used == sz);
        REQUIRE(r);
        ny_quant_config a, b;
        ny_quant_get_config(q, &a);
        ny_quant_get_config(r, &b);
        CHECK(a.kind == b.kind && a.per_dim == b.per_dim && a.quantile == b.quantile && a.centered == b.centered &&
              a.query_bits == b.query_bits);
        CHECK(ny_quant_metric(r) == ms[c] && ny_quant_dim(r) == d && ny_quant_code_size(r) == ny_quant_code_size(q));
        /* Same codes and same distances. */
        size_t cs = ny_quant_code_size(q);
        uint8_t *c1 = malloc(cs * 20), *c2 = malloc(cs * 20);
        CHECK_RC(ny_quant_encode_batch(q, x, 20, c1, cs), NY_OK);
        CHECK_RC(ny_quant_encode_batch(r, x, 20, c2, cs), NY_OK);
        CHECK(memcmp(c1, c2, cs * 20) == 0);
        ny_quant_query *q1, *q2;
        CHECK_RC(ny_quant_query_new(q, &q1), NY_OK);
        CHECK_RC(ny_quant_query_new(r, &q2), NY_OK);
        CHECK_RC(ny_quant_query_prepare(q1, x + 50 * d), NY_OK);
        CHECK_RC(ny_quant_query_prepare(q2, x + 50 * d), NY_OK);
        for (int i = 0; i < 20; i++) CHECK(ny_quant_dist(q1, c1 + i * cs) == ny_quant_dist(q2, c1 + i * cs));
        ny_quant_query_free(q1);
        ny_quant_query_free(q2);
        ny_quant_free(r);
        r = NULL;
        /* Any flipped bit, and any truncation, is detected. */
        for (size_t i = 0; i < sz; i += (sz > 64 ? 7 : 1)) {
            buf[i] ^= 0x10;
            CHECK_RC(ny_quant_deserialize(buf, sz, &r, NULL), NY_ECORRUPT);
            buf[i] ^= 0x10;
        }
        for (size_t len = 0; len < sz; len += 5) CHECK_RC(ny_quant_deserialize(buf, len, &r, NULL), NY_ECORRUPT);
        CHECK(r == NULL);
        CHECK_RC(ny_quant_deserialize(NULL, sz, &r, NULL), NY_EINVAL);
        free(buf);
        free(c1);
        free(c2);
        ny_quant_free(q);
    }
    free(x);
}

/* ===== Recall against float brute force ================================= */

/* Float distance for metric m (cosine: normalises copies). */
static float fdist(ny_metric m, const float *a, const float *b, size_t d)
{
    if (m != NY_COSINE) return ny_distance(m, a, b, d);
    return (float)dref(m, a, b, d);
}

/* Exact top-k ids (sorted by id) of every query: the ground truth. */
static uint32_t *truth_topk(ny_metric m, const float *base, size_t n, const float *queries, size_t nq, size_t d,
                            size_t k)
{
    uint32_t *t = malloc(nq * k * sizeof(uint32_t));
    pair *ex = malloc(n * sizeof(pair));
    for (size_t iq = 0; iq < nq; iq++) {
        for (size_t i = 0; i < n; i++) {
            ex[i].d = fdist(m, queries + iq * d, base + i * d, d);
            ex[i].id = (uint32_t)i;
        }
        qsort(ex, n, sizeof(pair), cmp_pair);
        for (size_t i = 0; i < k; i++) t[iq * k + i] = ex[i].id;
        qsort(t + iq * k, k, sizeof(uint32_t), cmp_u32);
    }
    free(ex);
    return t;
}

/* recall@k of ranking by quantized distance, optionally rescoring the best
 * `cand` candidates with float distances. */
static double recall(ny_quant *q, ny_metric m, const float *base, size_t n, const float *queries, size_t nq,
                     size_t d, size_t k, size_t cand, const uint32_t *truth)
{
    size_t cs = ny_quant_code_size(q);
    uint8_t *codes = malloc(n * cs);
    CHECK_RC(ny_quant_encode_batch(q, base, n, codes, cs), NY_OK);
    ny_quant_query *qq;
    CHECK_RC(ny_quant_query_new(q, &qq), NY_OK);
    pair *ap = malloc(n * sizeof(pair));
    uint32_t *got = malloc(k * sizeof(uint32_t));
    size_t hit = 0;
    for (size_t iq = 0; iq < nq; iq++) {
        const float *qv = queries + iq * d;
        CHECK_RC(ny_quant_query_prepare(qq, qv), NY_OK);
        for (size_t i = 0; i < n; i++) {
            ap[i].d = ny_quant_dist(qq, codes + i * cs);
            ap[i].id = (uint32_t)i;
        }
        qsort(ap, n, sizeof(pair), cmp_pair);
        if (cand > k) {
            for (size_t i = 0; i < cand; i++) ap[i].d = fdist(m, qv, base + ap[i].id * d, d);
            qsort(ap, cand, sizeof(pair), cmp_pair);
        }
        for (size_t i = 0; i < k; i++) got[i] = ap[i].id;
        qsort(got, k, sizeof(uint32_t), cmp_u32);
        const uint32_t *tr = truth + iq * k;
        for (size_t i = 0, j = 0; i < k && j < k;) {
            if (tr[i] == got[j]) {
                hit++;
                i++;
                j++;
            } else if (tr[i] < got[j]) i++;
            else j++;
        }
    }
    ny_quant_query_free(qq);
    free(codes);
    free(ap);
    free(got);
    return (double)hit / (double)(nq * k);
}

TEST(sq8_recall_at_10)
{
    size_t d = 128, n = t_n(10000, 2500), nq = t_n(60, 30);
    float *base = clustered(n, d, 64, 0.35f, 2024);
    float *queries = clustered(nq, d, 64, 0.35f, 2025);
    struct { ny_metric m; int per_dim; } cases[] = {
        {NY_L2, 0}, {NY_L2, 1}, {NY_COSINE, 0}, {NY_DOT, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ny_quant_config cfg;
        ny_quant_config_init(&cfg, NY_QUANT_SQ8);
        cfg.per_dim = cases[c].per_dim;
        ny_quant *q = NULL;
        /* Train on the first 10 %, as an index would at its first seal. */
        CHECK_RC(ny_quant_train(&cfg, cases[c].m, d, base, n / 10, &q), NY_OK);
        REQUIRE(q);
        uint32_t *truth = truth_topk(cases[c].m, base, n, queries, nq, d, 10);
        double r0 = recall(q, cases[c].m, base, n, queries, nq, d, 10, 0, truth);
        double r3 = recall(q, cases[c].m, base, n, queries, nq, d, 10, 30, truth);
        free(truth);
        printf("    sq8 %s per_dim=%d n=%zu: recall@10 %.4f, rescored x3 %.4f\n", ny_metric_name(cases[c].m),
               cases[c].per_dim, n, r0, r3);
        CHECKF(r0 >= 0.90, "sq8 %s per_dim=%d recall %.4f", ny_metric_name(cases[c].m), cases[c].per_dim, r0);
        CHECKF(r3 >= 0.99, "sq8 %s per_dim=%d rescored recall %.4f", ny_metric_name(cases[c].m), cases[c].per_dim,
               r3);
        ny_quant_free(q);
    }
    free(base);
    free(queries);
}

TEST(sq8_recall_768_embeddings)
{
    size_t d = 768, n = t_n(6000, 1500), nq = t_n(30, 20);
    float *base = embedded(n, d, 48, 1, 199);
    float *queries = embedded(nq, d, 48, 1, 198);
    ny_metric ms[] = {NY_COSINE, NY_L2};
    for (int mi = 0; mi < 2; mi++) {
        uint32_t *truth = truth_topk(ms[mi], base, n, queries, nq, d, 10);
        for (int pd = 0; pd < 2; pd++) {
            ny_quant_config cfg;
            ny_quant_config_init(&cfg, NY_QUANT_SQ8);
            cfg.per_dim = pd;
            ny_quant *q = NULL;
            CHECK_RC(ny_quant_train(&cfg, ms[mi], d, base, n / 10, &q), NY_OK);
            REQUIRE(q);
            double r0 = recall(q, ms[mi], base, n, queries, nq, d, 10, 0, truth);
            double r3 = recall(q, ms[mi], base, n, queries, nq, d, 10, 30, truth);
            printf("    sq8 768-d %s per_dim=%d n=%zu: recall@10 %.4f, rescored x3 %.4f\n", ny_metric_name(ms[mi]), pd, n,
                   r0, r3);
            CHECKF(r0 >= 0.90 && r3 >= 0.99, "sq8 768-d %s per_dim=%d recall %.4f / %.4f", ny_metric_name(ms[mi]), pd,
                   r0, r3);
            ny_quant_free(q);
        }
        free(truth);
    }
    free(base);
    free(queries);
}

TEST(sq4_recall_rescored)
{
    /* 4-bit codes are for traversal with a rerank stage. */
    size_t dims[2] = {128, 768};
    for (int di = 0; di < 2; di++) {
        size_t d = dims[di], n = t_n(di ? 6000 : 10000, 1500), nq = t_n(30, 20);
        float *base = di ? embedded(n, d, 48, 1, 299) : clustered(n, d, 64, 0.35f, 2024);
        float *queries = di ? embedded(nq, d, 48, 1, 298) : clustered(nq, d, 64, 0.35f, 2025);
        ny_metric ms[] = {NY_L2, NY_COSINE};
        for (int mi = 0; mi < 2; mi++) {
            uint32_t *truth = truth_topk(ms[mi], base, n, queries, nq, d, 10);
            for (int pd = 0; pd < 2; pd++) {
                ny_quant_config cfg;
                ny_quant_config_init(&cfg, NY_QUANT_SQ4);
                cfg.per_dim = pd;
                ny_quant *q = NULL;
                CHECK_RC(ny_quant_train(&cfg, ms[mi], d, base, n / 10, &q), NY_OK);
                REQUIRE(q);
                double r0 = recall(q, ms[mi], base, n, queries, nq, d, 10, 0, truth);
                double r3 = recall(q, ms[mi], base, n, queries, nq, d, 10, 30, truth);
                double r10 = recall(q, ms[mi], base, n, queries, nq, d, 10, 100, truth);
                printf("    sq4 %zu-d %s per_dim=%d n=%zu: recall@10 %.4f, rescored x3 %.4f, x10 %.4f\n", d,
                       ny_metric_name(ms[mi]), pd, n, r0, r3, r10);
                CHECKF(r3 >= 0.95 && r10 >= 0.99, "sq4 %zu-d %s per_dim=%d recall %.4f / %.4f", d,
                       ny_metric_name(ms[mi]), pd, r3, r10);
                ny_quant_free(q);
            }
            free(truth);
        }
        free(base);
        free(queries);
    }
}

TEST(binary_recall_768_rescored)
{
    size_t d = 768, n = t_n(8000, 2000), nq = t_n(40, 20);
    float *base = embedded(n, d, 48, 1, 99);
    float *queries = embedded(nq, d, 48, 1, 98);
    for (size_t i = 0; i < n; i++) ny_normalize(base + i * d, d);
    for (size_t i = 0; i < nq; i++) ny_normalize(queries + i * d, d);
    ny_metric ms[] = {NY_COSINE, NY_L2};
    for (int mi = 0; mi < 2; mi++) {
        uint32_t *truth = truth_topk(ms[mi], base, n, queries, nq, d, 10);
        for (int bits = 1; bits <= 8; bits *= 4) {
            ny_quant_config cfg;
            ny_quant_config_init(&cfg, NY_QUANT_BINARY);
            cfg.query_bits = bits == 1 ? 1 : 4;
            ny_quant *q = NULL;
            CHECK_RC(ny_quant_train(&cfg, ms[mi], d, base, n / 10, &q), NY_OK);
            REQUIRE(q);
            double r0 = recall(q, ms[mi], base, n, queries, nq, d, 10, 0, truth);
            double r10 = recall(q, ms[mi], base, n, queries, nq, d, 10, 100, truth);
            printf("    binary %s query_bits=%d n=%zu: recall@10 %.4f, rescored x10 %.4f\n", ny_metric_name(ms[mi]),
                   cfg.query_bits, n, r0, r10);
            if (cfg.query_bits == 4) CHECKF(r10 >= 0.90, "binary %s rescored recall %.4f", ny_metric_name(ms[mi]), r10);
            ny_quant_free(q);
        }
        free(truth);
    }
    free(base);
    free(queries);
}

/* ===== Qdrant's quantization_config ===================================== */

TEST(config_json)
{
    ny_quant_config c;
    int ram = -1;
    CHECK_RC(ny_quant_config_from_json("{\"scalar\": {\"type\": \"int8\", \"quantile\": 0.99, \"always_ram\": true}}",
                                       &c, &ram),
             NY_OK);
    CHECK(c.kind == NY_QUANT_SQ8 && fabsf(c.quantile - 0.99f) < 1e-7f && ram == 1 && c.per_dim == 0);
    CHECK_RC(ny_quant_config_from_json("{\"scalar\": {\"type\": \"int8\", \"per_dimension\": true}}", &c, &ram), NY_OK);
    CHECK(c.kind == NY_QUANT_SQ8 && c.quantile == 1.0f && ram == 0 && c.per_dim == 1);
    char *s = NULL;
    CHECK_RC(ny_quant_config_to_json(&c, 1, &s), NY_OK);
    CHECKF(s && !strcmp(s, "{\"scalar\":{\"type\":\"int8\",\"quantile\":1.0,\"always_ram\":true,\"per_dimension\":true}}"),
           "%s", s ? s : "(null)");
    ny_quant_config c2;
    CHECK_RC(ny_quant_config_from_json(s, &c2, &ram), NY_OK);
    CHECK(c2.kind == c.kind && c2.quantile == c.quantile && c2.per_dim == c.per_dim && ram == 1);
    free(s);
    const char *qe[] = {"default", "binary", "scalar4bits", "scalar8bits"};
    int bits[] = {4, 1, 4, 8};
    for (int i = 0; i < 4; i++) {
        char buf[200];
        snprintf(buf, sizeof buf, "{\"binary\": {\"always_ram\": false, \"encoding\": \"one_bit\", \"query_encoding\": \"%s\"}}",
                 qe[i]);
        CHECK_RC(ny_quant_config_from_json(buf, &c, &ram), NY_OK);
        CHECK(c.kind == NY_QUANT_BINARY && c.query_bits == bits[i] && ram == 0 && c.centered == 1);
        CHECK_RC(ny_quant_config_to_json(&c, 0, &s), NY_OK);
        CHECK_RC(ny_quant_config_from_json(s, &c2, NULL), NY_OK);
        CHECK(c2.kind == NY_QUANT_BINARY && c2.query_bits == bits[i]);
        free(s);
    }
    CHECK_RC(ny_quant_config_from_json("{\"scalar\": {\"type\": \"int4\", \"quantile\": 0.98}}", &c, NULL), NY_OK);
    CHECK(c.kind == NY_QUANT_SQ4 && fabsf(c.quantile - 0.98f) < 1e-7f);
    CHECK_RC(ny_quant_config_to_json(&c, 0, &s), NY_OK);
    CHECKF(s && strstr(s, "\"int4\""), "%s", s ? s : "(null)");
    free(s);
    CHECK_RC(ny_quant_config_from_json("{\"binary\": {}}", &c, NULL), NY_OK);
    CHECK(c.query_bits == 4);
    const char *bad[] = {"", "[]", "{}", "{\"scalar\": {}}", "{\"scalar\": {\"type\": \"int2\"}}",
                         "{\"scalar\": {\"type\": \"int8\", \"quantile\": 0.2}}",
                         "{\"scalar\": {\"type\": \"int8\", \"quantile\": \"x\"}}",
                         "{\"scalar\": {\"type\": \"int8\", \"qantile\": 0.9}}",
                         "{\"scalar\": {\"type\": \"int8\", \"always_ram\": 1}}",
                         "{\"product\": {\"compression\": \"x16\"}}", "{\"binary\": {\"encoding\": \"two_bits\"}}",
                         "{\"binary\": {\"query_encoding\": \"scalar2bits\"}}", "{\"binary\": 3}",
                         "{\"scalar\": {\"type\": \"int8\"}, \"binary\": {}}", "{\"other\": {}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECKF(ny_quant_config_from_json(bad[i], &c, NULL) == NY_EINVAL, "accepted %s", bad[i]);
    CHECK_RC(ny_quant_config_from_json(NULL, &c, NULL), NY_EINVAL);
}

/* ===== Rescoring, batches, crafted blocks ================================ */

typedef struct { const float *base; size_t d; uint32_t gone; } vec_ctx;

static const float *get_vec(void *ctx, uint32_t id)
{
    vec_ctx *c = ctx;
    return id == c->gone ? NULL : c->base + (size_t)id * c->d;
}

TEST(rescore_matches_brute_force)
{
    size_t n = 500, d = 33;
    float *x = clustered(n, d, 4, 0.3f, 31), *qv = clustered(1, d, 4, 0.3f, 32);
    ny_metric ms[] = {NY_L2, NY_DOT, NY_COSINE};
    uint32_t *ids = malloc(n * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++) ids[i] = (uint32_t)(n - 1 - i);
    for (int mi = 0; mi < 3; mi++) {
        float *base = malloc(n * d * sizeof(float));
        memcpy(base, x, n * d * sizeof(float));
        if (ms[mi] == NY_COSINE)
            for (size_t i = 0; i < n; i++) ny_normalize(base + i * d, d);
        vec_ctx ctx = {base, d, 7};
        uint32_t out[20];
        float od[20];
        int got = ny_quant_rescore(ms[mi], d, qv, ids, n, get_vec, &ctx, 20, out, od);
        CHECK(got == 20);
        /* Brute force without id 7. */
        pair *ex = malloc(n * sizeof(pair));
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (i == 7) continue;
            ex[m].d = (float)dref(ms[mi], qv, base + i * d, d);
            ex[m].id = (uint32_t)i;
            m++;
        }
        qsort(ex, m, sizeof(pair), cmp_pair);
        for (int i = 0; i < got; i++) {
            CHECKF(fabs(od[i] - ex[i].d) <= 1e-4 * (1 + fabs(ex[i].d)), "%s rank %d: %g vs %g", ny_metric_name(ms[mi]),
                   i, od[i], ex[i].d);
            CHECK(out[i] != 7);
            if (i) CHECK(od[i] >= od[i - 1]);
        }
        CHECK(out[0] == ex[0].id);
        /* Fewer candidates than k. */
        CHECK(ny_quant_rescore(ms[mi], d, qv, ids, 5, get_vec, &ctx, 20, out, NULL) == 5);
        CHECK(ny_quant_rescore(ms[mi], d, qv, ids, 0, get_vec, &ctx, 20, out, NULL) == 0);
        free(ex);
        free(base);
    }
    CHECK(ny_quant_rescore(NY_L2, d, NULL, ids, n, get_vec, NULL, 5, ids, NULL) == NY_EINVAL);
    CHECK(ny_quant_rescore(NY_L2, 0, qv, ids, n, get_vec, NULL, 5, ids, NULL) == NY_EINVAL);
    free(ids);
    free(x);
    free(qv);
}

TEST(binary_batch_equals_single)
{
    size_t n = 100, d = 200;
    float *x = clustered(n, d, 4, 0.3f, 41);
    ny_quant_config cfg;
    ny_quant_config_init(&cfg, NY_QUANT_BINARY);
    ny_quant *q = NULL;
    CHECK_RC(ny_quant_train(&cfg, NY_DOT, d, x, n, &q), NY_OK);
    REQUIRE(q);
    size_t cs = ny_quant_code_size(q);
    CHECK(cs == 4 * 8 + 12);
    uint8_t *codes = malloc(n * cs);
    CHECK_RC(ny_quant_encode_batch(q, x, n, codes, cs), NY_OK);
    ny_quant_query *qq;
    CHECK_RC(ny_quant_query_new(q, &qq), NY_OK);
    CHECK_RC(ny_quant_query_prepare(qq, x + 5 * d), NY_OK);
    uint32_t ids[64];
    float out[64];
    for (int i = 0; i < 64; i++) ids[i] = (uint32_t)((i * 37) % n);
    ny_quant_dist_batch(qq, codes, cs, ids, 64, out);
    for (int i = 0; i < 64; i++) CHECK(out[i] == ny_quant_dist(qq, codes + ids[i] * cs));
    ny_quant_query_free(qq);
    ny_quant_free(q);
    free(codes);
    free(x);
}

/* Blocks with a valid checksum but invalid contents are rejected. */
static void reseal(uint8_t *buf, size_t len)
{
    uint64_t h = ny_hash64(buf, len - 8);
    memcpy(buf + len - 8, &h, 8);
}

TEST(deserialize_rejects_crafted_blocks)
{
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 9};
    ny_quant_config cfg;
    ny_quant_config_init(&cfg, NY_QUANT_SQ8);
    cfg.per_dim = 1;
    ny_quant *q = NULL, *r = NULL;
    CHECK_RC(ny_quant_train(&cfg, NY_L2, 4, x, 2, &q), NY_OK);
    REQUIRE(q);
    size_t sz = ny_quant_serialized_size(q);
    uint8_t *good = malloc(sz), *b = malloc(sz);
    CHECK_RC(ny_quant_serialize(q, good, sz), NY_OK);
    struct { size_t off; uint32_t val; } edits[] = {
        {8, 2},           /* version */
        {12, 0},          /* kind none */
        {12, 9},          /* kind unknown */
        {16, 5},          /* metric */
        {20, 0},          /* dim 0 */
        {20, 3},          /* dim disagrees with nparams */
        {24, 2},          /* per_dim flag */
        {28, 7},          /* centered flag */
        {32, 9},          /* query bits */
        {36, 0x7fc00000}, /* quantile NaN */
        {36, 0x40000000}, /* quantile 2.0 */
        {40, 4},          /* nparams disagrees */
        {44 + 16, 0},     /* step 0 */
        {44 + 16, 0xbf800000}, /* step -1 */
        {44, 0x7f800000}, /* lo inf */
    };
    for (size_t e = 0; e < sizeof edits / sizeof edits[0]; e++) {
        memcpy(b, good, sz);
        memcpy(b + edits[e].off, &edits[e].val, 4);
        reseal(b, sz);
        CHECKF(ny_quant_deserialize(b, sz, &r, NULL) == NY_ECORRUPT, "edit %zu accepted", e);
        CHECK(r == NULL);
    }
    memcpy(b, good, sz);
    memcpy(b, "NYQUANT2", 8);
    reseal(b, sz);
    CHECK_RC(ny_quant_deserialize(b, sz, &r, NULL), NY_ECORRUPT);
    memcpy(b, good, sz);
    CHECK_RC(ny_quant_deserialize(b, sz, &r, NULL), NY_OK);
    ny_quant_free(r);
    free(good);
    free(b);
    ny_quant_free(q);
}
