/* quant_kernels_avx512.c -- AVX-512 kernels for quantized codes.
 *   ny_sq8_dot_avx512   F+BW+VL: widen to 16 bits, vpmaddwd, 32 dims/step
 *   ny_sq8_dot_vnni     + VNNI: vpdpbusd (u8 code x s8 query), 64 dims/step
 *   ny_hamming_vpopcnt  + VPOPCNTDQ: 8 words per step
 * Tails use masked loads, so no scalar loop and no read past the end. */
#include <immintrin.h>
#include <string.h>

#include "quant/quant.h"

#define AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl")))
#define AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define AVX512POP __attribute__((target("avx512f,avx512vpopcntdq")))

AVX512BW int32_t ny_sq8_dot_avx512(const int8_t *w, const uint8_t *c, size_t d)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    size_t i = 0;
    for (; i + 64 <= d; i += 64) {
        __m512i c0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(c + i)));
        __m512i w0 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(w + i)));
        __m512i c1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(c + i + 32)));
        __m512i w1 = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(w + i + 32)));
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(c0, w0));
        s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(c1, w1));
    }
    for (; i < d; i += 32) {
        size_t r = d - i;
        __mmask32 m = r >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << r) - 1);
        __m512i c0 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c + i));
        __m512i w0 = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, w + i));
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(c0, w0));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

AVX512VNNI int32_t ny_sq8_dot_vnni(const int8_t *w, const uint8_t *c, size_t d)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 256 <= d; i += 256) {
        s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(c + i), _mm512_loadu_si512(w + i));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_loadu_si512(c + i + 64), _mm512_loadu_si512(w + i + 64));
        s2 = _mm512_dpbusd_epi32(s2, _mm512_loadu_si512(c + i + 128), _mm512_loadu_si512(w + i + 128));
        s3 = _mm512_dpbusd_epi32(s3, _mm512_loadu_si512(c + i + 192), _mm512_loadu_si512(w + i + 192));
    }
    for (; i + 64 <= d; i += 64)
        s0 = _mm512_dpbusd_epi32(s0, _mm512_loadu_si512(c + i), _mm512_loadu_si512(w + i));
    if (i < d) {
        __mmask64 m = ((__mmask64)1 << (d - i)) - 1;
        s1 = _mm512_dpbusd_epi32(s1, _mm512_maskz_loadu_epi8(m, c + i), _mm512_maskz_loadu_epi8(m, w + i));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3)));
}

/* SQ4 (layout in quant_kernels_scalar.c). */
AVX512BW int32_t ny_sq4_dot_avx512(const int8_t *w, const uint8_t *c, size_t nb)
{
    const __m512i lo4 = _mm512_set1_epi16(15);
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    const int8_t *wo = w + nb;
    for (size_t i = 0; i < nb; i += 32) {
        size_t r = nb - i;
        __mmask32 m = r >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << r) - 1);
        __m512i cw = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, c + i));
        __m512i we = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, w + i));
        __m512i wd = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, wo + i));
        s0 = _mm512_add_epi32(s0, _mm512_madd_epi16(_mm512_and_si512(cw, lo4), we));
        s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(_mm512_srli_epi16(cw, 4), wd));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1));
}

/* SQ4 with VNNI: 64 code bytes = 128 dimensions per step. */
AVX512VNNI int32_t ny_sq4_dot_vnni(const int8_t *w, const uint8_t *c, size_t nb)
{
    const __m512i lo4 = _mm512_set1_epi8(15);
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    const int8_t *wo = w + nb;
    size_t i = 0;
    for (; i + 128 <= nb; i += 128) {
        __m512i c0 = _mm512_loadu_si512(c + i), c1 = _mm512_loadu_si512(c + i + 64);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(c0, lo4), _mm512_loadu_si512(w + i));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(c0, 4), lo4), _mm512_loadu_si512(wo + i));
        s2 = _mm512_dpbusd_epi32(s2, _mm512_and_si512(c1, lo4), _mm512_loadu_si512(w + i + 64));
        s3 = _mm512_dpbusd_epi32(s3, _mm512_and_si512(_mm512_srli_epi16(c1, 4), lo4), _mm512_loadu_si512(wo + i + 64));
    }
    for (; i < nb; i += 64) {
        size_t r = nb - i;
        __mmask64 m = r >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << r) - 1;
        __m512i c0 = _mm512_maskz_loadu_epi8(m, c + i);
        s0 = _mm512_dpbusd_epi32(s0, _mm512_and_si512(c0, lo4), _mm512_maskz_loadu_epi8(m, w + i));
        s1 = _mm512_dpbusd_epi32(s1, _mm512_and_si512(_mm512_srli_epi16(c0, 4), lo4), _mm512_maskz_loadu_epi8(m, wo + i));
    }
    return _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3)));
}

AVX512POP uint64_t ny_hamming_vpopcnt(const uint64_t *a, const uint64_t *b, size_t n)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
        __m512i x1 = _mm512_xor_si512(_mm512_loadu_si512(a + i + 8), _mm512_loadu_si512(b + i + 8));
        s0 = _mm512_add_epi64(s0, _mm512_popcnt_epi64(x0));
        s1 = _mm512_add_epi64(s1, _mm512_popcnt_epi64(x1));
    }
    for (; i < n; i += 8) {
        size_t r = n - i;
        __mmask8 m = r >= 8 ? (__mmask8)0xff : (__mmask8)((1u << r) - 1);
        __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, a + i), _mm512_maskz_loadu_epi64(m, b + i));
        s0 = _mm512_add_epi64(s0, _mm512_popcnt_epi64(x));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(s0, s1));
}

/* Plane count as a compile-time constant, so each plane keeps its own
 * accumulator register and the weights 2^k apply once, at the end. */
#define ASYM_BODY(NP)                                                                           \
    do {                                                                                        \
        __m512i acc[NP];                                                                        \
        for (int k = 0; k < NP; k++) acc[k] = _mm512_setzero_si512();                           \
        for (size_t i = 0; i < n; i += 8) {                                                     \
            size_t r = n - i;                                                                   \
            __mmask8 m = r >= 8 ? (__mmask8)0xff : (__mmask8)((1u << r) - 1);                   \
            __m512i x = _mm512_maskz_loadu_epi64(m, b + i);                                     \
            for (int k = 0; k < NP; k++)                                                        \
                acc[k] = _mm512_add_epi64(                                                      \
                    acc[k], _mm512_popcnt_epi64(_mm512_and_si512(_mm512_maskz_loadu_epi64(m, p + k * n + i), x))); \
        }                                                                                       \
        __m512i t = acc[0];                                                                     \
        for (int k = 1; k < NP; k++) t = _mm512_add_epi64(t, _mm512_sll_epi64(acc[k], _mm_cvtsi32_si128(k))); \
        return (uint64_t)_mm512_reduce_add_epi64(t);                                            \
    } while (0)

AVX512POP uint64_t ny_bin_asym_vpopcnt(const uint64_t *p, size_t np, const uint64_t *b, size_t n)
{
    switch (np) {
    case 1: ASYM_BODY(1);
    case 2: ASYM_BODY(2);
    case 3: ASYM_BODY(3);
    case 4: ASYM_BODY(4);
    case 5: ASYM_BODY(5);
    case 6: ASYM_BODY(6);
    case 7: ASYM_BODY(7);
    default: ASYM_BODY(8);
    }
}
