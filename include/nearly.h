/*
 * nearly.h -- public API of libnearly, the Nearly vector database engine.
 *
 * Conventions used throughout this header:
 *
 *   - Every function that can fail returns an int: NY_OK (0) on success, or
 *     a negative NY_E* code.  Functions that return a count return it as a
 *     non-negative int, or a negative NY_E* code.  A human-readable message
 *     describing the last failure in the calling thread is available from
 *     ny_errmsg(); it is only meaningful right after a failing call.
 *   - Objects are opaque handles created by ny_*_new / ny_*_open / *_load and
 *     released by the matching *_free / *_close.  Passing NULL to a free or
 *     close function is a no-op.
 *   - Vector ids at the engine level (indexes) are dense uint32_t "slots"
 *     chosen by the caller.  Indexes know nothing about points or payloads:
 *     the collection layer maps point ids (u64 / UUID) to vector ids.
 *   - Distances returned by indexes are "lower is closer":
 *        NY_L2      squared Euclidean distance
 *        NY_DOT     -<a,b>
 *        NY_COSINE  -<a,b> of the unit-normalised vectors (vectors are
 *                   normalised once, at insert; queries at search time)
 *     ny_score() converts such a distance into the score Qdrant reports.
 *
 * Thread safety: unless a function says otherwise, an object may be used by
 * several threads at once only for read operations.  The HNSW index is
 * fully concurrent: inserts from several threads and searches concurrent
 * with inserts and deletes are allowed.
 */
#ifndef NEARLY_H
#define NEARLY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NEARLY_VERSION "0.1.0"

/* ===== Errors ========================================================== */

enum {
    NY_OK = 0,
    NY_EINVAL = -1,    /* invalid argument (bad parameter, NaN, bad name) */
    NY_ENOMEM = -2,    /* out of memory */
    NY_EIO = -3,       /* I/O error reading or writing a file */
    NY_ECORRUPT = -4,  /* file failed a checksum or format check */
    NY_ENOTFOUND = -5, /* no such id / collection / file */
    NY_EEXIST = -6,    /* already exists */
    NY_EFULL = -7,     /* disk full or capacity exhausted */
    NY_EDIM = -8,      /* vector has the wrong dimension */
    NY_ECLOSED = -9,   /* object already closed */
    NY_EBUSY = -10,    /* resource locked by another user/process */
    NY_EREADONLY = -11,/* write attempted on a read-only object */
    NY_EINTERNAL = -12 /* bug: an internal invariant failed */
};

/* Static description of an error code ("invalid argument", ...). */
const char *ny_strerror(int rc);
/* Detailed message of the last failing call made by this thread. */
const char *ny_errmsg(void);

/* ===== Metrics and distance kernels ==================================== */

typedef enum { NY_L2 = 0, NY_DOT = 1, NY_COSINE = 2 } ny_metric;

/* Parses "l2", "euclid", "euclidean", "dot", "ip", "cosine", "angular"
 * (case-insensitive).  Returns NY_OK or NY_EINVAL. */
int ny_metric_parse(const char *name, ny_metric *out);
/* "l2", "dot" or "cosine". */
const char *ny_metric_name(ny_metric m);
/* Converts an index distance to the user-facing score (Qdrant convention):
 * L2 -> Euclidean distance (sqrt), DOT -> dot product, COSINE -> cosine. */
float ny_score(ny_metric m, float dist);

/* SIMD levels.  The active level is chosen once, at the first call, as the
 * best the CPU supports, capped by the environment variable NEARLY_SIMD
 * ("scalar", "avx2", "avx512"). */
typedef enum { NY_SIMD_SCALAR = 0, NY_SIMD_AVX2 = 1, NY_SIMD_AVX512 = 2 } ny_simd;

ny_simd ny_simd_active(void);
/* Highest level this CPU supports. */
ny_simd ny_simd_supported(void);
const char *ny_simd_name(ny_simd level);

/* Distance kernels at the active level. */
float ny_dot(const float *a, const float *b, size_t dim);
float ny_l2sq(const float *a, const float *b, size_t dim);
/* Index distance (see the convention above) at the active level.  For
 * NY_COSINE both vectors must already be normalised. */
float ny_distance(ny_metric m, const float *a, const float *b, size_t dim);
/* Normalises v in place to unit length; a zero vector is left as is.
 * Returns the original norm. */
float ny_normalize(float *v, size_t dim);

/* A specific kernel, for tests and benchmarks.  op is 0 for dot, 1 for l2sq.
 * Returns NULL if the CPU does not support that level. */
typedef float (*ny_kernel_fn)(const float *a, const float *b, size_t dim);
ny_kernel_fn ny_kernel(int op, ny_simd level);

/* ===== Filters on vector ids =========================================== */

/* Restricts a search to an allowed set of vector ids.  Both parts are
 * optional; an id is allowed when it passes every part that is set:
 *   bitmap: id allowed iff id < nbits and bit (bitmap[id/64] >> id%64) & 1
 *   allow:  id allowed iff allow(id, ctx) != 0
 * A NULL ny_filter pointer allows every id. */
typedef struct ny_filter {
    const uint64_t *bitmap;
    size_t nbits;
    int (*allow)(uint32_t id, void *ctx);
    void *ctx;
} ny_filter;

/* ===== Exact (brute-force) search ====================================== */

/* Exact top-k over a contiguous row-major array of n vectors.  Queries are
 * processed by `threads` threads (<= 0: all CPUs).  For each query i,
 * ids[i*k .. i*k+k) and dists[i*k ..] receive the results nearest first;
 * missing slots (fewer than k allowed vectors) get id UINT32_MAX and dist
 * +inf.  For NY_COSINE the base must be normalised; queries are normalised
 * internally.  dists may be NULL. */
int ny_exact_search(ny_metric metric, size_t dim, const float *base, size_t n,
                    const float *queries, size_t nq, size_t k,
                    const ny_filter *filter, int threads, uint32_t *ids,
                    float *dists);

/* ===== HNSW index ====================================================== */

typedef struct ny_hnsw ny_hnsw;

typedef struct ny_hnsw_params {
    size_t dim;             /* vector dimension, 1..65536 */
    ny_metric metric;
    size_t m;               /* max links per node on upper layers (2M on layer 0); default 16 */
    size_t ef_construction; /* default 200 */
    size_t capacity;        /* initial capacity hint in vectors; the index grows as needed */
    uint64_t seed;          /* level generator seed; default 42 */
} ny_hnsw_params;

/* Fills p with defaults for dim and metric. */
void ny_hnsw_params_init(ny_hnsw_params *p, size_t dim, ny_metric metric);

int ny_hnsw_new(const ny_hnsw_params *p, ny_hnsw **out);
void ny_hnsw_free(ny_hnsw *h);

/* Inserts vector `vec` under vector id `id`.  Thread-safe: may be called
 * from several threads at once and concurrently with searches and deletes.
 * Returns NY_EEXIST if id is live, NY_EINVAL on NaN/inf components.  An id
 * that was deleted may be inserted again. */
int ny_hnsw_add(ny_hnsw *h, uint32_t id, const float *vec);
/* Inserts n vectors (row-major) with ids[i] (or first_id + i when ids is
 * NULL) using `threads` threads (<= 0: all CPUs). */
int ny_hnsw_add_batch(ny_hnsw *h, const uint32_t *ids, uint32_t first_id,
                      const float *vecs, size_t n, int threads);
/* Deletes id: it never appears in results again.  NY_ENOTFOUND if absent. */
int ny_hnsw_delete(ny_hnsw *h, uint32_t id);
/* 1 if id is live, else 0. */
int ny_hnsw_contains(const ny_hnsw *h, uint32_t id);
/* Copies the stored vector (normalised for NY_COSINE) into out. */
int ny_hnsw_get_vector(const ny_hnsw *h, uint32_t id, float *out);

/* Approximate k-NN.  ef is the search beam (raised to k if smaller; 0 means
 * a default).  Writes up to k results nearest first and returns how many. */
int ny_hnsw_search(const ny_hnsw *h, const float *query, size_t k, size_t ef,
                   const ny_filter *filter, uint32_t *ids, float *dists);
/* Exact k-NN over the index's live vectors (same output contract). */
int ny_hnsw_search_exact(const ny_hnsw *h, const float *query, size_t k,
                         const ny_filter *filter, uint32_t *ids, float *dists);
/* Batch of nq queries with `threads` threads; output as ny_exact_search. */
int ny_hnsw_search_batch(const ny_hnsw *h, const float *queries, size_t nq,
                         size_t k, size_t ef, const ny_filter *filter,
                         int threads, uint32_t *ids, float *dists);

typedef struct ny_hnsw_stats {
    size_t count;          /* live vectors */
    size_t deleted;        /* deleted vectors still holding a slot */
    size_t capacity;       /* allocated slots */
    size_t max_id;         /* highest id ever inserted + 1 */
    size_t dim;
    ny_metric metric;
    size_t m, ef_construction;
    int max_level;
    size_t bytes_vectors;  /* memory held for vectors */
    size_t bytes_graph;    /* memory held for links (all layers) */
    size_t bytes_other;    /* locks, flags, level table, ... */
} ny_hnsw_stats;

void ny_hnsw_get_stats(const ny_hnsw *h, ny_hnsw_stats *st);

/* Saves to path (written to a temporary file, fsynced, then renamed).
 * Safe to call concurrently with searches; inserts are blocked meanwhile. */
int ny_hnsw_save(ny_hnsw *h, const char *path);
/* Loads an index written by ny_hnsw_save.  NY_ECORRUPT with a message that
 * says what is wrong on a truncated or corrupt file. */
int ny_hnsw_load(const char *path, ny_hnsw **out);

/* ===== Utilities ======================================================== */

/* Number of online CPUs. */
int ny_cpu_count(void);
/* Peak resident set size of this process in bytes (0 if unknown). */
size_t ny_peak_rss(void);

#ifdef __cplusplus
}
#endif

#endif /* NEARLY_H */
