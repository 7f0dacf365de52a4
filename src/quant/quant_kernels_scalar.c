/* quant_kernels_scalar.c -- portable reference kernels for quantized codes.
 * Also the hardware-popcnt variants (x86-64-v2 and later: every AVX2 CPU
 * has POPCNT), which are plain loops compiled with target("popcnt"). */
#include <string.h>

#include "quant/quant.h"

int32_t ny_sq8_dot_scalar(const int8_t *w, const uint8_t *c, size_t d)
{
    int64_t s = 0;
    for (size_t i = 0; i < d; i++) s += (int32_t)w[i] * (int32_t)c[i];
    return (int32_t)s;
}

static inline uint64_t load64(const uint64_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v); /* rows need not be 8-byte aligned */
    return v;
}

uint64_t ny_hamming_scalar(const uint64_t *a, const uint64_t *b, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s += (uint64_t)__builtin_popcountll(load64(a + i) ^ load64(b + i));
    return s;
}

uint64_t ny_bin_asym_scalar(const uint64_t *p, size_t np, const uint64_t *b, size_t n)
{
    uint64_t s = 0;
    for (size_t k = 0; k < np; k++) {
        uint64_t t = 0;
        for (size_t i = 0; i < n; i++) t += (uint64_t)__builtin_popcountll(load64(p + k * n + i) & load64(b + i));
        s += t << k;
    }
    return s;
}

#define POPCNT __attribute__((target("popcnt")))

POPCNT uint64_t ny_hamming_popcnt(const uint64_t *a, const uint64_t *b, size_t n)
{
    uint64_t s0 = 0, s1 = 0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        s0 += (uint64_t)__builtin_popcountll(load64(a + i) ^ load64(b + i));
        s1 += (uint64_t)__builtin_popcountll(load64(a + i + 1) ^ load64(b + i + 1));
    }
    if (i < n) s0 += (uint64_t)__builtin_popcountll(load64(a + i) ^ load64(b + i));
    return s0 + s1;
}

/* Plane count as a compile-time constant (see quant_kernels_avx512.c). */
#define ASYM_POPCNT_BODY(NP)                                                                  \
    do {                                                                                      \
        uint64_t acc[NP] = {0};                                                               \
        for (size_t i = 0; i < n; i++) {                                                      \
            uint64_t x = load64(b + i);                                                       \
            for (int k = 0; k < NP; k++) acc[k] += (uint64_t)__builtin_popcountll(load64(p + k * n + i) & x); \
        }                                                                                     \
        uint64_t s = 0;                                                                       \
        for (int k = 0; k < NP; k++) s += acc[k] << k;                                        \
        return s;                                                                             \
    } while (0)

POPCNT uint64_t ny_bin_asym_popcnt(const uint64_t *p, size_t np, const uint64_t *b, size_t n)
{
    switch (np) {
    case 1: ASYM_POPCNT_BODY(1);
    case 2: ASYM_POPCNT_BODY(2);
    case 3: ASYM_POPCNT_BODY(3);
    case 4: ASYM_POPCNT_BODY(4);
    case 5: ASYM_POPCNT_BODY(5);
    case 6: ASYM_POPCNT_BODY(6);
    case 7: ASYM_POPCNT_BODY(7);
    default: ASYM_POPCNT_BODY(8);
    }
}

/* SQ4: byte j of c holds dimension 2j in its low nibble and 2j+1 in its
 * high nibble; w holds the even-dimension weights (nb) then the odd ones
 * (nb). */
int32_t ny_sq4_dot_scalar(const int8_t *w, const uint8_t *c, size_t nb)
{
    int32_t s = 0;
    for (size_t j = 0; j < nb; j++) s += (int32_t)w[j] * (c[j] & 15) + (int32_t)w[nb + j] * (c[j] >> 4);
    return s;
}
