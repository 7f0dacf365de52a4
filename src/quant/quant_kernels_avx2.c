/* quant_kernels_avx2.c -- AVX2 SQ8 kernel: bytes widened to 16 bits
 * (vpmovzxbw / vpmovsxbw) and multiplied pairwise into 32-bit lanes
 * (vpmaddwd).  vpmaddubsw would be one instruction shorter but saturates
 * at 16 bits (255 * 127 * 2 > 32767), so it is not used. */
#include <immintrin.h>

#include "quant/quant.h"

#define AVX2 __attribute__((target("avx2")))

AVX2 int32_t ny_sq8_dot_avx2(const int8_t *w, const uint8_t *c, size_t d)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m256i c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
        __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i)));
        __m256i c1 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i + 16)));
        __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i + 16)));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(c0, w0));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(c1, w1));
    }
    if (i + 16 <= d) {
        __m256i c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
        __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i)));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(c0, w0));
        i += 16;
    }
    __m256i s = _mm256_add_epi32(s0, s1);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t r = _mm_cvtsi128_si32(h);
    for (; i < d; i++) r += (int32_t)w[i] * (int32_t)c[i];
    return r;
}

/* SQ4 (layout in quant_kernels_scalar.c): 16 code bytes = 32 dimensions
 * per step; nibbles split after widening to 16 bits. */
AVX2 int32_t ny_sq4_dot_avx2(const int8_t *w, const uint8_t *c, size_t nb)
{
    const __m256i lo4 = _mm256_set1_epi16(15);
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    const int8_t *wo = w + nb;
    size_t i = 0;
    for (; i + 16 <= nb; i += 16) {
        __m256i cw = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(c + i)));
        __m256i we = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + i)));
        __m256i wd = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wo + i)));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_and_si256(cw, lo4), we));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_srli_epi16(cw, 4), wd));
    }
    __m256i s = _mm256_add_epi32(s0, s1);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t r = _mm_cvtsi128_si32(h);
    for (; i < nb; i++) r += (int32_t)w[i] * (c[i] & 15) + (int32_t)wo[i] * (c[i] >> 4);
    return r;
}
