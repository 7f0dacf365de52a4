/*
 * quant.h -- vector quantization: compact codes for traversal, scored
 * against a query prepared once per search (see docs/quantization.md).
 *
 * Three codecs:
 *
 *   SQ8     one byte per dimension.  x_j ~ lo_j + step_j * c_j, c_j in
 *           0..255, with one global range or one range per dimension,
 *           fitted on a sample and optionally clipped at a quantile.
 *           Every metric reduces to one integer kernel, sum(w_j * c_j)
 *           with w signed 8-bit (the prepared query) and c the code, which
 *           maps to AVX-512 VNNI vpdpbusd.  L2 with a global range is the
 *           exact integer sum((a_j - c_j)^2) of the query's own codes a.
 *           (Full 8-bit codes: the query side is the signed operand, so
 *           no 7-bit "s7" restriction is needed for vpdpbusd.)
 *   SQ4     the same with 4-bit codes (0..15), two dimensions per byte:
 *           half the bytes of SQ8 for traversal, coarser (rescore more).
 *   BINARY  one bit per dimension: b_j = (x_j > mean_j) (mean trained, or
 *           0), packed little-endian into uint64 words.  The query is kept
 *           at 1..8 bits per dimension (bit planes) and scored against the
 *           bits with AND + popcount, with per-vector factors (RaBitQ-like
 *           estimator without the random rotation).
 *
 * A code ("row") is ny_quant_code_size() bytes: the packed codes followed,
 * where the scheme needs it, by per-vector correction terms.  Rows need no
 * alignment.
 *
 * Metric conventions follow nearly.h: estimated distances are "lower is
 * closer" (L2: squared distance, DOT/COSINE: minus the dot product).  For
 * NY_COSINE, training samples, encoded vectors and queries are normalised
 * internally (normalising an already unit vector changes nothing).
 *
 * Thread safety: a trained ny_quant is immutable and may be shared by any
 * number of threads.  A ny_quant_query is per thread (prepare it once per
 * search, then score candidates with it).
 */
#ifndef NY_QUANT_H
#define NY_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "nearly.h"

/* ===== Configuration and training ======================================= */

typedef enum { NY_QUANT_NONE = 0, NY_QUANT_SQ8 = 1, NY_QUANT_BINARY = 2, NY_QUANT_SQ4 = 3 } ny_quant_kind;

typedef struct ny_quant_config {
    ny_quant_kind kind;
    /* SQ8/SQ4: 1 = one range per dimension, 0 = one range for all dimensions
     * (Qdrant's scheme; gives exact integer L2). */
    int per_dim;
    /* SQ8/SQ4: fraction of values kept inside the range, in (0, 1].  0.99 takes
     * the range from the 0.5 % and 99.5 % quantiles; 1 (or 0: default)
     * takes the min and max. */
    float quantile;
    /* BINARY: 1 = bits relative to the trained per-dimension mean, 0 =
     * sign of each component. */
    int centered;
    /* BINARY: bits per query component for asymmetric scoring, 1..8;
     * 0 means the default, 4. */
    int query_bits;
} ny_quant_config;

/* Defaults: SQ8/SQ4 global range, quantile 0.99; BINARY centered, 4-bit
 * query. */
void ny_quant_config_init(ny_quant_config *cfg, ny_quant_kind kind);

typedef struct ny_quant ny_quant;

/* Trains a quantizer on n sample vectors (row-major, dim floats each, all
 * finite).  A global SQ8/SQ4 quantile is computed over at most 2^21 values
 * (a pseudo-random subsample).  *out must be freed with ny_quant_free. */
int ny_quant_train(const ny_quant_config *cfg, ny_metric metric, size_t dim,
                   const float *sample, size_t n, ny_quant **out);
void ny_quant_free(ny_quant *q);

ny_quant_kind ny_quant_get_kind(const ny_quant *q);
ny_metric ny_quant_metric(const ny_quant *q);
size_t ny_quant_dim(const ny_quant *q);
/* The configuration it was trained with (defaults filled in). */
void ny_quant_get_config(const ny_quant *q, ny_quant_config *cfg);
/* Bytes per encoded vector (codes + correction terms). */
size_t ny_quant_code_size(const ny_quant *q);

/* Encodes one vector into code (ny_quant_code_size bytes).  Components out
 * of the trained range are clipped.  NY_EINVAL on NaN/inf. */
int ny_quant_encode(const ny_quant *q, const float *vec, uint8_t *code);
/* Encodes n vectors into codes[i * stride] (stride >= code_size). */
int ny_quant_encode_batch(const ny_quant *q, const float *vecs, size_t n,
                          uint8_t *codes, size_t stride);
/* Reconstructs the vector a code stands for (normalised space for COSINE).
 * BINARY: mean_j +- f where f = |r|^2 / |r|_1, r = x - mean. */
void ny_quant_decode(const ny_quant *q, const uint8_t *code, float *out);

/* ===== Prepared queries ================================================= */

typedef struct ny_quant_query ny_quant_query;

/* Allocates the per-thread scratch for queries against q (q must outlive
 * it).  Free with ny_quant_query_free. */
int ny_quant_query_new(const ny_quant *q, ny_quant_query **out);
void ny_quant_query_free(ny_quant_query *qq);
/* Encodes a query (NY_EINVAL on NaN/inf).  Afterwards ny_quant_dist costs
 * one kernel call per code. */
int ny_quant_query_prepare(ny_quant_query *qq, const float *query);
/* Estimated index distance between the prepared query and a code. */
float ny_quant_dist(const ny_quant_query *qq, const uint8_t *code);
/* out[i] = distance to the code at base + ids[i] * stride, for i < n; the
 * rows are prefetched a few candidates ahead (a node's neighbour list). */
void ny_quant_dist_batch(const ny_quant_query *qq, const uint8_t *base, size_t stride,
                         const uint32_t *ids, size_t n, float *out);

/* ===== Rescoring ======================================================== */

/* Returns the float vector of id as the index stores it (normalised for
 * COSINE), or NULL if id is gone (it is then skipped). */
typedef const float *(*ny_vec_get_fn)(void *ctx, uint32_t id);

/* Re-ranks n candidates (typically oversampling * k ids found on codes) by
 * exact float distance to query (normalised internally for COSINE) and
 * writes the best min(k, found) nearest first, ties by id.  Returns that
 * count, or a negative NY_E* code.  out_dists may be NULL. */
int ny_quant_rescore(ny_metric metric, size_t dim, const float *query, const uint32_t *ids, size_t n,
                     ny_vec_get_fn get, void *ctx, size_t k, uint32_t *out_ids, float *out_dists);

/* ===== Serialization ==================================================== *
 * Little-endian: "NYQUANT1", u32 version, u32 kind, u32 metric, u32 dim,
 * u32 per_dim, u32 centered, u32 query_bits, f32 quantile, u32 nparams,
 * f32 params[nparams], u64 ny_hash64 of every preceding byte.
 * SQ8/SQ4 params: lo[r], step[r] (r = dim per-dimension, else 1); BINARY:
 * mean[dim] when centered, else none. */

#define NY_QUANT_FORMAT_VERSION 1

size_t ny_quant_serialized_size(const ny_quant *q);
/* Writes ny_quant_serialized_size(q) bytes; NY_EINVAL if cap is smaller. */
int ny_quant_serialize(const ny_quant *q, void *buf, size_t cap);
/* Reads a quantizer; NY_ECORRUPT with a message on a truncated, corrupt
 * or unsupported buffer.  *used (may be NULL) gets the bytes consumed. */
int ny_quant_deserialize(const void *buf, size_t len, ny_quant **out, size_t *used);

/* ===== Qdrant's quantization_config (JSON) ============================= *
 * Accepted (one key):
 *   {"scalar": {"type": "int8" | "int4", "quantile": 0.5..1,
 *               "always_ram": bool, "per_dimension": bool}}
 *                          ("int4" and per_dimension are Nearly's extensions)
 *   {"binary": {"always_ram": bool, "encoding": "one_bit",
 *               "query_encoding": "default" | "binary" | "scalar4bits" |
 *                                 "scalar8bits"}}
 * "product" and the binary encodings "two_bits" / "one_and_half_bits" give
 * NY_EINVAL ("not supported").  query_encoding maps to query_bits 4 / 1 /
 * 4 / 8 ("default" is 4 bits: the asymmetric estimate is cheap and more
 * accurate).  Unknown fields give NY_EINVAL naming the field. */

/* Parses a quantization_config object (text).  always_ram may be NULL. */
int ny_quant_config_from_json(const char *json, ny_quant_config *cfg, int *always_ram);
/* Writes cfg back in Qdrant's schema (malloc'd string, free with free()). */
int ny_quant_config_to_json(const ny_quant_config *cfg, int always_ram, char **out);

/* ===== Kernels (for tests and benchmarks) =============================== */

/* Kernel levels; AVX512 needs AVX-512F+BW+VL, AVX512X adds VNNI (SQ8/SQ4) or
 * VPOPCNTDQ (binary). */
typedef enum {
    NY_QK_SCALAR = 0,
    NY_QK_AVX2 = 1,
    NY_QK_AVX512 = 2,
    NY_QK_AVX512X = 3
} ny_qk_level;

/* sum_j w[j] * c[j] over d bytes; |result| < 2^31 for d <= 65536. */
typedef int32_t (*ny_sq8_dot_fn)(const int8_t *w, const uint8_t *c, size_t d);
/* SQ4: sum_j w[j] * (c[j] & 15) + w[nb + j] * (c[j] >> 4) over nb code
 * bytes (byte j holds dimension 2j low, 2j+1 high). */
typedef int32_t (*ny_sq4_dot_fn)(const int8_t *w, const uint8_t *c, size_t nb);
/* popcount(a ^ b) over nwords 64-bit words (any alignment). */
typedef uint64_t (*ny_hamming_fn)(const uint64_t *a, const uint64_t *b, size_t nwords);
/* sum_k 2^k * popcount(planes[k * nwords + i] & b[i]) for k < nplanes. */
typedef uint64_t (*ny_bin_asym_fn)(const uint64_t *planes, size_t nplanes, const uint64_t *b,
                                   size_t nwords);

/* The kernels of one level, NULL if this CPU lacks it. */
ny_sq8_dot_fn ny_sq8_dot_kernel(ny_qk_level lv);
ny_sq4_dot_fn ny_sq4_dot_kernel(ny_qk_level lv);
ny_hamming_fn ny_hamming_kernel(ny_qk_level lv);
ny_bin_asym_fn ny_bin_asym_kernel(ny_qk_level lv);
/* Best level of this CPU for SQ8 / binary kernels, capped by NEARLY_SIMD
 * (ny_simd_active()): scalar -> SCALAR, avx2 -> AVX2, avx512 -> AVX512X
 * when the extension is present. */
ny_qk_level ny_qk_sq8_level(void);
ny_qk_level ny_qk_bin_level(void);
const char *ny_qk_name(ny_qk_level lv);

/* Level-specific kernels (quant_kernels_*.c). */
int32_t ny_sq8_dot_scalar(const int8_t *w, const uint8_t *c, size_t d);
int32_t ny_sq8_dot_avx2(const int8_t *w, const uint8_t *c, size_t d);
int32_t ny_sq8_dot_avx512(const int8_t *w, const uint8_t *c, size_t d);
int32_t ny_sq8_dot_vnni(const int8_t *w, const uint8_t *c, size_t d);
int32_t ny_sq4_dot_scalar(const int8_t *w, const uint8_t *c, size_t nb);
int32_t ny_sq4_dot_avx2(const int8_t *w, const uint8_t *c, size_t nb);
int32_t ny_sq4_dot_avx512(const int8_t *w, const uint8_t *c, size_t nb);
int32_t ny_sq4_dot_vnni(const int8_t *w, const uint8_t *c, size_t nb);
uint64_t ny_hamming_scalar(const uint64_t *a, const uint64_t *b, size_t n);
uint64_t ny_hamming_popcnt(const uint64_t *a, const uint64_t *b, size_t n);
uint64_t ny_hamming_vpopcnt(const uint64_t *a, const uint64_t *b, size_t n);
uint64_t ny_bin_asym_scalar(const uint64_t *p, size_t np, const uint64_t *b, size_t n);
uint64_t ny_bin_asym_popcnt(const uint64_t *p, size_t np, const uint64_t *b, size_t n);
uint64_t ny_bin_asym_vpopcnt(const uint64_t *p, size_t np, const uint64_t *b, size_t n);

#endif
