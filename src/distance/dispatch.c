/*
 * dispatch.c -- run-time choice of the kernel level, metric helpers.
 *
 * The level is resolved once (first use) from CPUID, capped by the
 * NEARLY_SIMD environment variable, and then read without locks: the
 * resolution is idempotent, so a race only repeats the same work.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/common.h"
#include "distance/distance.h"

static _Atomic int g_level = -1;

ny_simd ny_simd_supported(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return NY_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return NY_SIMD_AVX2;
    return NY_SIMD_SCALAR;
}

ny_simd ny_simd_active(void)
{
    int lv = atomic_load_explicit(&g_level, memory_order_relaxed);
    if (NY_LIKELY(lv >= 0)) return (ny_simd)lv;
    lv = ny_simd_supported();
    const char *env = getenv("NEARLY_SIMD");
    if (env && *env) {
        int cap = lv;
        if (!strcasecmp(env, "scalar") || !strcmp(env, "0")) cap = NY_SIMD_SCALAR;
        else if (!strcasecmp(env, "avx2") || !strcmp(env, "1")) cap = NY_SIMD_AVX2;
        else if (!strcasecmp(env, "avx512") || !strcmp(env, "2")) cap = NY_SIMD_AVX512;
        if (cap < lv) lv = cap;
    }
    atomic_store_explicit(&g_level, lv, memory_order_relaxed);
    return (ny_simd)lv;
}

const char *ny_simd_name(ny_simd level)
{
    switch (level) {
    case NY_SIMD_SCALAR: return "scalar";
    case NY_SIMD_AVX2: return "avx2";
    case NY_SIMD_AVX512: return "avx512";
    }
    return "unknown";
}

ny_kernel_fn ny_kernel(int op, ny_simd level)
{
    if (level > ny_simd_supported()) return NULL;
    switch (level) {
    case NY_SIMD_AVX512: return op == 0 ? ny_dot_avx512 : ny_l2sq_avx512;
    case NY_SIMD_AVX2: return op == 0 ? ny_dot_avx2 : ny_l2sq_avx2;
    case NY_SIMD_SCALAR: return op == 0 ? ny_dot_scalar : ny_l2sq_scalar;
    }
    return NULL;
}

float ny_dot(const float *a, const float *b, size_t dim)
{
    return ny_kernel(0, ny_simd_active())(a, b, dim);
}

float ny_l2sq(const float *a, const float *b, size_t dim)
{
    return ny_kernel(1, ny_simd_active())(a, b, dim);
}

static float neg_dot_scalar(const float *a, const float *b, size_t d) { return -ny_dot_scalar(a, b, d); }
static float neg_dot_avx2(const float *a, const float *b, size_t d) { return -ny_dot_avx2(a, b, d); }
static float neg_dot_avx512(const float *a, const float *b, size_t d) { return -ny_dot_avx512(a, b, d); }

ny_dist_fn ny_dist_get(ny_metric m)
{
    ny_simd lv = ny_simd_active();
    if (m == NY_L2) return ny_kernel(1, lv);
    switch (lv) {
    case NY_SIMD_AVX512: return neg_dot_avx512;
    case NY_SIMD_AVX2: return neg_dot_avx2;
    default: return neg_dot_scalar;
    }
}

float ny_distance(ny_metric m, const float *a, const float *b, size_t dim)
{
    return ny_dist_get(m)(a, b, dim);
}

float ny_normalize(float *v, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += (double)v[i] * v[i];
    double n = sqrt(s);
    if (n > 0) {
        float inv = (float)(1.0 / n);
        for (size_t i = 0; i < dim; i++) v[i] *= inv;
    }
    return (float)n;
}

int ny_metric_parse(const char *name, ny_metric *out)
{
    if (!name) return ny_error(NY_EINVAL, "metric name is missing");
    if (!strcasecmp(name, "l2") || !strcasecmp(name, "euclid") || !strcasecmp(name, "euclidean")) {
        *out = NY_L2;
        return NY_OK;
    }
    if (!strcasecmp(name, "dot") || !strcasecmp(name, "ip")) {
        *out = NY_DOT;
        return NY_OK;
    }
    if (!strcasecmp(name, "cosine") || !strcasecmp(name, "angular")) {
        *out = NY_COSINE;
        return NY_OK;
    }
    return ny_error(NY_EINVAL, "unknown metric '%s' (expected l2, dot, cosine)", name);
}

const char *ny_metric_name(ny_metric m)
{
    switch (m) {
    case NY_L2: return "l2";
    case NY_DOT: return "dot";
    case NY_COSINE: return "cosine";
    }
    return "unknown";
}

float ny_score(ny_metric m, float dist)
{
    if (m == NY_L2) return dist > 0 ? sqrtf(dist) : 0.0f;
    return -dist;
}
