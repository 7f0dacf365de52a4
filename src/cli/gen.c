/*
 * gen.c -- `nearly gen`: deterministic synthetic data sets for benchmarks.
 *
 * The model follows /work/shared/tools/gen_data.py (same idea, not the same
 * bytes): a latent space of r = min(64, d) dimensions holding K Gaussian
 * clusters with Zipf-like weights, a shared mean direction (embeddings are
 * anisotropic: most cosines are positive), per-cluster spread and
 * per-cluster diagonal covariance; a fixed random orthonormal projection
 * into d dimensions plus small isotropic noise.  For --metric cosine every
 * vector is unit-normalised; for l2 the vectors keep their norms.
 *
 * Every row draws from its own random stream, keyed by (seed, stream, row),
 * so the output does not depend on the thread count, and the first n rows
 * of a larger base equal a smaller base with the same options.
 *
 * Output in DIR: base.fvecs, query.fvecs, groundtruth.ivecs (exact top-k ids
 * by ny_exact_search, ties to the lower id), groundtruth.dist.fvecs (L2
 * distance, or 1 - cos for cosine, as in /work/shared/data), meta.json.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/fvecs.h"
#include "common/common.h"

/* ===== Random numbers: splitmix64-seeded xoshiro256** ==================== */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_init(rng *r, uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (stream + 1) * 0xD1B54A32D192ED03ull ^ index * 0xABC98388FB8FAC03ull;
    x = splitmix(&x) ^ index;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

static double rng_unif(rng *r) /* (0, 1) */
{
    return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

static double rng_gauss(rng *r)
{
    /* Box-Muller; one value per call keeps the stream simple. */
    double u = rng_unif(r), v = rng_unif(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ===== The mixture ======================================================== */

typedef struct mixture {
    size_t d, r, k;
    float *proj;    /* r x d, orthonormal rows */
    float *mean;    /* r */
    float *centers; /* k x r */
    double *cdf;    /* k */
    float *spread;  /* k */
    float *axes;    /* k x r */
    float noise;
    int normalise;
    uint64_t seed;
} mixture;

static void mixture_free(mixture *m)
{
    free(m->proj);
    free(m->mean);
    free(m->centers);
    free(m->cdf);
    free(m->spread);
    free(m->axes);
}

static int mixture_init(mixture *m, size_t d, size_t r, size_t k, uint64_t seed, double spread, double noise,
                        double mean_strength, double zipf, int normalise)
{
    memset(m, 0, sizeof *m);
    m->d = d, m->r = r, m->k = k, m->noise = (float)noise, m->normalise = normalise, m->seed = seed;
    m->proj = malloc(r * d * sizeof(float));
    m->mean = malloc(r * sizeof(float));
    m->centers = malloc(k * r * sizeof(float));
    m->cdf = malloc(k * sizeof(double));
    m->spread = malloc(k * sizeof(float));
    m->axes = malloc(k * r * sizeof(float));
    double *g = malloc(r * d * sizeof(double));
    if (!m->proj || !m->mean || !m->centers || !m->cdf || !m->spread || !m->axes || !g) {
        free(g);
        mixture_free(m);
        return ny_error(NY_ENOMEM, "out of memory (mixture model)");
    }
    rng rg;
    rng_init(&rg, seed, 0, 0);
    /* Orthonormal projection: Gram-Schmidt (twice, for stability) on r
     * Gaussian vectors of R^d. */
    for (size_t i = 0; i < r * d; i++) g[i] = rng_gauss(&rg);
    for (size_t i = 0; i < r; i++) {
        double *v = g + i * d;
        for (int pass = 0; pass < 2; pass++)
            for (size_t j = 0; j < i; j++) {
                const double *u = g + j * d;
                double dot = 0;
                for (size_t t = 0; t < d; t++) dot += v[t] * u[t];
                for (size_t t = 0; t < d; t++) v[t] -= dot * u[t];
            }
        double nn = 0;
        for (size_t t = 0; t < d; t++) nn += v[t] * v[t];
        nn = sqrt(nn);
        for (size_t t = 0; t < d; t++) v[t] /= nn;
        for (size_t t = 0; t < d; t++) m->proj[i * d + t] = (float)v[t];
    }
    free(g);
    for (size_t i = 0; i < r; i++) m->mean[i] = (float)(rng_gauss(&rg) * mean_strength / sqrt((double)r));
    for (size_t i = 0; i < k * r; i++) m->centers[i] = (float)(rng_gauss(&rg) / sqrt((double)r));
    /* Zipf-like weights in a random order (Fisher-Yates). */
    double *w = m->cdf, sum = 0;
    for (size_t i = 0; i < k; i++) w[i] = 1.0 / pow((double)(i + 1), zipf);
    for (size_t i = k; i > 1; i--) {
        size_t j = rng_next(&rg) % i;
        double t = w[i - 1];
        w[i - 1] = w[j];
        w[j] = t;
    }
    for (size_t i = 0; i < k; i++) sum += w[i];
    double acc = 0;
    for (size_t i = 0; i < k; i++) {
        acc += w[i] / sum;
        m->cdf[i] = acc;
    }
    m->cdf[k - 1] = 1.0;
    for (size_t i = 0; i < k; i++) m->spread[i] = (float)(spread * exp(0.25 * rng_gauss(&rg)));
    for (size_t c = 0; c < k; c++) {
        float *a = m->axes + c * r;
        double ms = 0;
        for (size_t i = 0; i < r; i++) {
            a[i] = (float)exp(0.6 * rng_gauss(&rg));
            ms += (double)a[i] * a[i];
        }
        ms = sqrt(ms / (double)r);
        for (size_t i = 0; i < r; i++) a[i] = (float)(a[i] / ms);
    }
    return NY_OK;
}

/* Draws row `index` of `stream` into x (d floats); tmp holds r floats. */
static void mixture_sample(const mixture *m, uint64_t stream, uint64_t index, float *x, float *z)
{
    rng rg;
    rng_init(&rg, m->seed, stream, index);
    double u = rng_unif(&rg);
    size_t lo = 0, hi = m->k - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->cdf[mid] < u) lo = mid + 1;
        else hi = mid;
    }
    size_t c = lo, r = m->r, d = m->d;
    float isr = (float)(1.0 / sqrt((double)r)), sp = m->spread[c];
    for (size_t i = 0; i < r; i++)
        z[i] = m->mean[i] + m->centers[c * r + i] + sp * m->axes[c * r + i] * (float)rng_gauss(&rg) * isr;
    memset(x, 0, d * sizeof(float));
    for (size_t i = 0; i < r; i++) {
        const float *p = m->proj + i * d;
        float zi = z[i];
        for (size_t t = 0; t < d; t++) x[t] += zi * p[t];
    }
    float ns = m->noise / sqrtf((float)d);
    for (size_t t = 0; t < d; t++) x[t] += (float)rng_gauss(&rg) * ns;
    if (m->normalise) ny_normalize(x, d);
}

typedef struct gen_ctx {
    const mixture *m;
    uint64_t stream;
    float *out;
    size_t n;
} gen_ctx;

#define GEN_CHUNK 1024

static void gen_task(void *vctx, size_t t, int worker)
{
    (void)worker;
    gen_ctx *g = vctx;
    float z[4096];
    size_t end = NY_MIN((t + 1) * GEN_CHUNK, g->n);
    for (size_t i = t * GEN_CHUNK; i < end; i++) mixture_sample(g->m, g->stream, i, g->out + i * g->m->d, z);
}

static int generate(const mixture *m, uint64_t stream, size_t n, int threads, float **out)
{
    *out = malloc(NY_MAX(n, (size_t)1) * m->d * sizeof(float));
    if (!*out) return ny_error(NY_ENOMEM, "out of memory (%zu x %zu floats)", n, m->d);
    gen_ctx g = {m, stream, *out, n};
    ny_parallel_for((n + GEN_CHUNK - 1) / GEN_CHUNK, 1, threads, gen_task, &g);
    return NY_OK;
}

/* ===== The command ======================================================== */

static void gen_usage(FILE *f)
{
    fprintf(f,
            "usage: nearly gen --out DIR --n N --dim D [--nq 1000] [--metric cosine|l2]\n"
            "                  [--clusters K] [--seed S] [--k 100] [--threads T] [--intrinsic-dim 64]\n"
            "Writes a deterministic synthetic clustered, anisotropic data set to DIR:\n"
            "base.fvecs, query.fvecs, groundtruth.ivecs (exact top-k, ties to the lower id),\n"
            "groundtruth.dist.fvecs (L2 distance, or 1 - cos) and meta.json.\n"
            "Defaults: clusters min(1000, max(1, N/20)), seed 1234, threads = all CPUs.\n");
}

int cmd_gen(int argc, char **argv)
{
    const char *out = NULL, *v;
    size_t n = 0, dim = 0, nq = 1000, clusters = 0, seed = 1234, k = 100, threads = 0, rdim = 64;
    ny_metric metric = NY_COSINE;
    int have_n = 0, have_dim = 0;
    for (int i = 1; i < argc; i++) {
        int r;
#define OPT(name) ((r = arg_opt(argc, argv, &i, name, &v)) != 0)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            gen_usage(stdout);
            return 0;
        } else if (OPT("--out")) {
            if (r < 0) goto missing;
            out = v;
        } else if (OPT("--n")) {
            if (r < 0 || arg_size("gen", "--n", v, 1, UINT32_MAX - 1u, &n)) goto bad;
            have_n = 1;
        } else if (OPT("--dim")) {
            if (r < 0 || arg_size("gen", "--dim", v, 1, 65536, &dim)) goto bad;
            have_dim = 1;
        } else if (OPT("--nq")) {
            if (r < 0 || arg_size("gen", "--nq", v, 1, 10000000, &nq)) goto bad;
        } else if (OPT("--clusters")) {
            if (r < 0 || arg_size("gen", "--clusters", v, 1, 10000000, &clusters)) goto bad;
        } else if (OPT("--seed")) {
            if (r < 0 || arg_size("gen", "--seed", v, 0, SIZE_MAX, &seed)) goto bad;
        } else if (OPT("--k")) {
            if (r < 0 || arg_size("gen", "--k", v, 1, 10000, &k)) goto bad;
        } else if (OPT("--threads")) {
            if (r < 0 || arg_size("gen", "--threads", v, 0, 1024, &threads)) goto bad;
        } else if (OPT("--intrinsic-dim")) {
            if (r < 0 || arg_size("gen", "--intrinsic-dim", v, 1, 4096, &rdim)) goto bad;
        } else if (OPT("--metric")) {
            if (r < 0) goto missing;
            if (ny_metric_parse(v, &metric) != NY_OK || metric == NY_DOT) {
                fprintf(stderr, "gen: --metric must be cosine (or angular) or l2, not '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "gen: unknown option '%s'\n", argv[i]);
            gen_usage(stderr);
            return 2;
        }
        continue;
    missing:
        fprintf(stderr, "gen: %s needs a value\n", argv[i]);
        return 2;
    bad:
        if (r < 0) fprintf(stderr, "gen: %s needs a value\n", argv[i]);
        return 2;
#undef OPT
    }
    if (!out || !have_n || !have_dim) {
        fprintf(stderr, "gen: --out, --n and --dim are required\n");
        gen_usage(stderr);
        return 2;
    }
    if (!clusters) clusters = NY_MIN((size_t)1000, NY_MAX((size_t)1, n / 20));
    if (rdim > dim) rdim = dim;
    if (k > n) {
        fprintf(stderr, "gen: --k %zu is larger than --n %zu; using k = %zu\n", k, n, n);
        k = n;
    }
    if (make_dirs("gen", out) != 0) return 1;

    double t0 = ny_now();
    mixture m;
    float *base = NULL, *queries = NULL, *gd = NULL;
    uint32_t *gi = NULL;
    int rc = mixture_init(&m, dim, rdim, clusters, seed, 1.0, 0.3, 0.7, 0.8, metric == NY_COSINE);
    if (rc) goto fail_nomodel;
    if ((rc = generate(&m, 1, n, (int)threads, &base)) || (rc = generate(&m, 2, nq, (int)threads, &queries))) goto fail;
    double t_gen = ny_now() - t0;
    char path[4200];
    snprintf(path, sizeof path, "%s/base.fvecs", out);
    if ((rc = fvecs_save(path, base, n, dim))) goto fail;
    snprintf(path, sizeof path, "%s/query.fvecs", out);
    if ((rc = fvecs_save(path, queries, nq, dim))) goto fail;

    double t1 = ny_now();
    gi = malloc(nq * k * sizeof(uint32_t));
    gd = malloc(nq * k * sizeof(float));
    if (!gi || !gd) {
        rc = ny_error(NY_ENOMEM, "out of memory (ground truth)");
        goto fail;
    }
    if ((rc = ny_exact_search(metric, dim, base, n, queries, nq, k, NULL, (int)threads, gi, gd))) goto fail;
    double t_gt = ny_now() - t1;
    for (size_t i = 0; i < nq * k; i++) gd[i] = metric == NY_L2 ? sqrtf(NY_MAX(gd[i], 0.0f)) : 1.0f + gd[i];
    snprintf(path, sizeof path, "%s/groundtruth.ivecs", out);
    if ((rc = ivecs_save(path, (const int32_t *)gi, nq, k))) goto fail;
    snprintf(path, sizeof path, "%s/groundtruth.dist.fvecs", out);
    if ((rc = fvecs_save(path, gd, nq, k))) goto fail;
    snprintf(path, sizeof path, "%s/meta.json", out);
    FILE *f = fopen(path, "w");
    if (!f) {
        rc = ny_error_errno(NY_EIO, "cannot create %s", path);
        goto fail;
    }
    fprintf(f,
            "{\n  \"generator\": \"nearly gen\",\n  \"n\": %zu,\n  \"d\": %zu,\n  \"nq\": %zu,\n  \"metric\": \"%s\",\n"
            "  \"seed\": %zu,\n  \"clusters\": %zu,\n  \"intrinsic_dim\": %zu,\n  \"gt_k\": %zu,\n"
            "  \"gt_method\": \"ny_exact_search (float32, ties to the lower id)\",\n"
            "  \"seconds\": {\"generate\": %.2f, \"groundtruth\": %.2f}\n}\n",
            n, dim, nq, metric == NY_L2 ? "l2" : "cosine", seed, clusters, rdim, k, t_gen, t_gt);
    if (fclose(f) != 0) {
        rc = ny_error_errno(NY_EIO, "cannot write %s", path);
        goto fail;
    }
    printf("gen: %zu base + %zu query vectors of dim %zu (%s, %zu clusters, seed %zu) in %s\n"
           "gen: generated in %.2f s, ground truth (top-%zu, ny_exact_search) in %.2f s\n",
           n, nq, dim, metric == NY_L2 ? "l2" : "cosine", clusters, seed, out, t_gen, k, t_gt);
fail:
    mixture_free(&m);
fail_nomodel:
    free(base);
    free(queries);
    free(gi);
    free(gd);
    if (rc) {
        fprintf(stderr, "gen: %s\n", ny_errmsg());
        return 1;
    }
    return 0;
}
