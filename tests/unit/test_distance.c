/* test_distance.c -- every kernel level against a double-precision
 * reference, for every dimension 1..4096 (so every remainder length) and
 * on unaligned inputs; dispatch and metric helpers. */
#include <math.h>
#include <string.h>

#include "nearly.h"
#include "t.h"

static double ref_dot(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++) s += (double)a[i] * b[i];
    return s;
}

static double ref_l2(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++) { double t = (double)a[i] - b[i]; s += t * t; }
    return s;
}

/* Tolerance: float accumulation error is bounded by ~ d * eps * sum|terms|. */
static int close_enough(double got, double want, double absum, size_t d)
{
    double tol = 1e-6 + 4.0 * (double)(d > 16 ? 16 : d) * 1.2e-7 * absum + 1e-7 * absum * sqrt((double)d);
    return fabs(got - want) <= tol;
}

static void check_level(ny_simd lv, size_t maxd, size_t offset)
{
    ny_kernel_fn dot = ny_kernel(0, lv), l2 = ny_kernel(1, lv);
    if (!dot || !l2) { printf("    (level %s not supported here: skipped)\n", ny_simd_name(lv)); return; }
    unsigned long long seed = 1234 + lv;
    float *abuf = malloc((maxd + 16) * sizeof(float)), *bbuf = malloc((maxd + 16) * sizeof(float));
    float *a = abuf + offset, *b = bbuf + (offset * 3) % 16; /* misaligned differently */
    for (size_t i = 0; i < maxd; i++) { a[i] = t_randf(&seed) * 3; b[i] = t_randf(&seed) * 3; }
    int bad = 0;
    for (size_t d = 1; d <= maxd && bad < 5; d++) {
        double rd = ref_dot(a, b, d), rl = ref_l2(a, b, d), abs_d = 0, abs_l = rl;
        for (size_t i = 0; i < d; i++) abs_d += fabs((double)a[i] * b[i]);
        float gd = dot(a, b, d), gl = l2(a, b, d);
        if (!close_enough(gd, rd, abs_d, d)) { bad++; CHECKF(0, "%s dot d=%zu off=%zu: %.9g vs %.9g", ny_simd_name(lv), d, offset, gd, rd); }
        if (!close_enough(gl, rl, abs_l, d)) { bad++; CHECKF(0, "%s l2sq d=%zu off=%zu: %.9g vs %.9g", ny_simd_name(lv), d, offset, gl, rl); }
    }
    free(abuf);
    free(bbuf);
}

TEST(kernels_match_reference_all_dims)
{
    for (int lv = NY_SIMD_SCALAR; lv <= NY_SIMD_AVX512; lv++) {
        check_level((ny_simd)lv, 4096, 0);
        check_level((ny_simd)lv, 300, 1);
        check_level((ny_simd)lv, 300, 3);
        check_level((ny_simd)lv, 130, 7);
    }
}

TEST(kernels_tail_does_not_read_past_end)
{
    /* Vectors placed at the very end of an allocation: ASan flags any
     * out-of-bounds load in the tail handling. */
    for (int lv = NY_SIMD_SCALAR; lv <= NY_SIMD_AVX512; lv++) {
        ny_kernel_fn dot = ny_kernel(0, (ny_simd)lv), l2 = ny_kernel(1, (ny_simd)lv);
        if (!dot) continue;
        for (size_t d = 1; d <= 70; d++) {
            float *a = malloc(d * sizeof(float)), *b = malloc(d * sizeof(float));
            for (size_t i = 0; i < d; i++) { a[i] = 1.0f; b[i] = 2.0f; }
            CHECK(fabsf(dot(a, b, d) - 2.0f * d) < 1e-3f);
            CHECK(fabsf(l2(a, b, d) - (float)d) < 1e-3f);
            free(a);
            free(b);
        }
    }
}

TEST(kernels_special_values)
{
    float z[33] = {0}, one[33];
    for (int i = 0; i < 33; i++) one[i] = 1.0f;
    for (int lv = NY_SIMD_SCALAR; lv <= NY_SIMD_AVX512; lv++) {
        ny_kernel_fn dot = ny_kernel(0, (ny_simd)lv), l2 = ny_kernel(1, (ny_simd)lv);
        if (!dot) continue;
        CHECK(dot(z, one, 33) == 0.0f);
        CHECK(l2(one, one, 33) == 0.0f);
        CHECK(l2(z, one, 33) == 33.0f);
        CHECK(dot(z, one, 0) == 0.0f);
    }
}

TEST(dispatch_and_metrics)
{
    ny_simd act = ny_simd_active(), sup = ny_simd_supported();
    CHECK(act <= sup);
    CHECK(strcmp(ny_simd_name(act), "unknown") != 0);
    const char *env = getenv("NEARLY_SIMD");
    if (env && !strcmp(env, "scalar")) CHECK(act == NY_SIMD_SCALAR);
    ny_metric m;
    CHECK_RC(ny_metric_parse("angular", &m), NY_OK); CHECK(m == NY_COSINE);
    CHECK_RC(ny_metric_parse("Euclid", &m), NY_OK); CHECK(m == NY_L2);
    CHECK_RC(ny_metric_parse("Dot", &m), NY_OK); CHECK(m == NY_DOT);
    CHECK_RC(ny_metric_parse("manhattan", &m), NY_EINVAL);
    float a[3] = {3, 0, 4}, b[3] = {0, 0, 0};
    CHECK(fabsf(ny_score(NY_L2, ny_distance(NY_L2, a, b, 3)) - 5.0f) < 1e-6f);
    CHECK(fabsf(ny_normalize(a, 3) - 5.0f) < 1e-6f);
    CHECK(fabsf(ny_dot(a, a, 3) - 1.0f) < 1e-6f);
    CHECK(fabsf(ny_score(NY_COSINE, ny_distance(NY_COSINE, a, a, 3)) - 1.0f) < 1e-6f);
    CHECK(ny_normalize(b, 3) == 0.0f);
}
