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
/* Exact top-k over the listed external ids only (ids not in the index or
 * deleted are skipped; filter applies on top).  Used by filtered search
 * when a payload index narrows the candidates to a few. */
int ny_hnsw_search_exact_ids(const ny_hnsw *h, const float *query, size_t k,
                             const uint32_t *cand, size_t ncand,
                             const ny_filter *filter, uint32_t *ids, float *dists);
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

/* Reclaims deleted vectors: removes every link to a deleted node
 * (reconnecting its neighbours through the deleted node's neighbours),
 * waits until no search can still see those nodes, and puts their slots
 * back for reuse.  Runs automatically inside ny_hnsw_delete once deleted
 * nodes reach 1/4 of the live ones.  Blocks inserts and deletes while it
 * runs; searches continue.  Must not be called from a filter callback. */
int ny_hnsw_vacuum(ny_hnsw *h);

/* Saves to path (written to a temporary file, fsynced, then renamed).
 * Safe to call concurrently with searches; inserts are blocked meanwhile. */
int ny_hnsw_save(ny_hnsw *h, const char *path);
/* Loads an index written by ny_hnsw_save.  NY_ECORRUPT with a message that
 * says what is wrong on a truncated or corrupt file. */
int ny_hnsw_load(const char *path, ny_hnsw **out);

/* ===== Quantization (HNSW) ============================================= *
 * Compact codes (src/quant) kept next to the float vectors: the graph walk
 * scores neighbours on codes, then the best oversampling * k candidates are
 * re-ranked with the float vectors (Qdrant's params.quantization).
 * See docs/quantization.md. */

/* Minimum live vectors before the quantizer is trained automatically. */
#define NY_HNSW_QUANT_MIN_TRAIN 1000

/* Configures quantization from Qdrant's quantization_config JSON
 * ({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}} or
 * {"binary": {...}}); NULL or "null" removes it.  Trains on the index's
 * vectors (a sample of at most 100,000 and at most 32 MiB of floats) and encodes them all when it holds
 * at least NY_HNSW_QUANT_MIN_TRAIN live vectors; otherwise training happens
 * at ny_hnsw_quant_train_if_due, or at the first quantized search, once
 * there are enough (before that such searches use the float vectors).  Inserts are encoded as they are added.
 * Blocks inserts while it runs; searches continue.  Persisted by
 * ny_hnsw_save (in path + ".quant"; codes are re-encoded on load). */
int ny_hnsw_set_quantization(ny_hnsw *h, const char *json);
/* The configuration in Qdrant's schema (free with ny_free), or *out = NULL
 * if none. */
int ny_hnsw_get_quantization(const ny_hnsw *h, char **out);
/* (Re)trains the quantizer on the current vectors (any count >= 1) and
 * re-encodes every vector.  NY_EINVAL without a configuration. */
int ny_hnsw_quant_train(ny_hnsw *h);
/* Trains now if a configuration is set, not yet trained, and the index
 * holds at least NY_HNSW_QUANT_MIN_TRAIN live vectors: returns 1 if it
 * trained, 0 if nothing was due, or a negative error.  Collections and the
 * Python Index call it after inserts, so that the first quantized search
 * does not pay for training. */
int ny_hnsw_quant_train_if_due(ny_hnsw *h);
/* 1 if a trained quantizer is attached, else 0. */
int ny_hnsw_quant_ready(const ny_hnsw *h);
/* Bytes of RAM held by the codes (0 if none). */
size_t ny_hnsw_quant_bytes(const ny_hnsw *h);
/* Approximate k-NN on codes.  rescore: 1 re-ranks the best
 * max(k, oversampling * k) candidates (the beam is widened to hold them)
 * with exact float distances, 0 returns code-estimated distances, -1 means
 * the default (1).  oversampling <= 0 means 1.  Without a trained
 * quantizer this is ny_hnsw_search.  Output contract as ny_hnsw_search. */
int ny_hnsw_search_quant(const ny_hnsw *h, const float *query, size_t k, size_t ef,
                         const ny_filter *filter, int rescore, float oversampling,
                         uint32_t *ids, float *dists);
/* ny_hnsw_search_quant for nq queries (rows of dim floats) on up to
 * `threads` threads (0: all CPUs); output as ny_hnsw_search_batch. */
int ny_hnsw_search_quant_batch(const ny_hnsw *h, const float *queries, size_t nq, size_t k, size_t ef,
                               const ny_filter *filter, int rescore, float oversampling, int threads,
                               uint32_t *ids, float *dists);
/* vectors.on_disk: moves the float rows of the vectors indexed so far into
 * an unnamed memory-mapped file created in dir (same addresses, searches
 * may run meanwhile; inserts wait).  The kernel may then evict them, and
 * with quantized search only rescoring reads rows.  Rows added later stay
 * in RAM until the next call, which appends them to the same file (dir is
 * used by the first call only).  *bytes (may be NULL) gets the bytes now
 * held in the file. */
int ny_hnsw_vectors_to_disk(ny_hnsw *h, const char *dir, size_t *bytes);
/* hnsw_config.on_disk: the same for the graph -- the level-0 link lists
 * and the upper-level link arena go to unnamed memory-mapped files in dir.
 * Links written later by inserts, deletes and vacuum land in the mapping;
 * lists of nodes added later stay in RAM until the next call.  *bytes (may
 * be NULL) gets the graph bytes now held in files.  The files are not a
 * durable copy (ny_hnsw_save is); they are gone when the index is freed. */
int ny_hnsw_graph_to_disk(ny_hnsw *h, const char *dir, size_t *bytes);
/* Bytes of vector rows and of graph links currently held in mapped files
 * (either pointer may be NULL). */
void ny_hnsw_disk_usage(const ny_hnsw *h, size_t *vectors, size_t *graph);
/* Drops the pages of the regions moved to files from this process and from
 * the page cache (written back first), as memory pressure would: later
 * searches read them back from disk on demand.  For tests and cold-cache
 * benchmarks; no effect on what searches return. */
int ny_hnsw_disk_evict(ny_hnsw *h);

/* Loading straight to disk: ny_hnsw_load reads the whole file into RAM
 * first, so a process whose memory limit is below the index size cannot
 * load it.  ny_hnsw_load_ex with disk_dir set and vectors_on_disk and/or
 * graph_on_disk reads those sections in chunks of chunk_bytes (0: 32 MiB)
 * and moves each chunk to the unnamed files at once (as
 * ny_hnsw_vectors_to_disk / ny_hnsw_graph_to_disk, which may still be
 * called later for rows added afterwards): the anonymous memory the load
 * needs is then one chunk plus the sections kept in RAM (levels, flags,
 * offsets, id maps: about 14 bytes per node) and the quantization codes.  Checksums and
 * validation as ny_hnsw_load; opts NULL is ny_hnsw_load. */
typedef struct ny_hnsw_load_opts {
    const char *disk_dir; /* directory for the files; required if either flag is set */
    int vectors_on_disk;
    int graph_on_disk;
    size_t chunk_bytes;
} ny_hnsw_load_opts;
int ny_hnsw_load_ex(const char *path, const ny_hnsw_load_opts *opts, ny_hnsw **out);

/* ===== Collections: points, payloads, durability ======================== *
 *
 * A database is a data directory holding named collections.  A collection
 * stores points -- (id, vector, JSON payload) -- durably (write-ahead log +
 * checkpoints) and indexes their vectors with HNSW.  Configuration, filters,
 * payloads and payload selectors are exchanged as JSON text in Qdrant's
 * schema, so that the server and the Python module pass them through.
 *
 * Every ny_db / ny_collection function is thread-safe.
 */

typedef struct ny_db ny_db;
typedef struct ny_collection ny_collection;

/* A point id: an unsigned 64-bit integer or a UUID (as Qdrant accepts). */
typedef struct ny_point_id {
    int is_uuid;           /* 0: num is the id; 1: uuid is the id */
    uint64_t num;
    unsigned char uuid[16];
} ny_point_id;

/* Parses a decimal integer or a UUID string (hyphenated, simple, braced or
 * urn:uuid:).  NY_EINVAL with a message otherwise. */
int ny_point_id_parse(const char *s, ny_point_id *out);
/* Formats as decimal or lower-case hyphenated UUID; buf needs 37 bytes. */
void ny_point_id_format(const ny_point_id *id, char buf[37]);
/* Total order: all integer ids before all UUIDs, then numeric/bytewise. */
int ny_point_id_cmp(const ny_point_id *a, const ny_point_id *b);

/* Opens (creating if needed) a data directory.  Takes an exclusive lock on
 * it: a second process gets NY_EBUSY. */
int ny_db_open(const char *dir, ny_db **out);
/* Checkpoints and closes every collection, then frees the handle. */
void ny_db_close(ny_db *db);

/* Creates a collection.  config_json is Qdrant's CreateCollection body, e.g.
 * {"vectors": {"size": 128, "distance": "Cosine"}, "hnsw_config": {"m": 16}}.
 * Names: 1..255 chars of [A-Za-z0-9_.-], not starting with '.'.  Returns
 * NY_EEXIST, or NY_EINVAL with a message naming the bad field. */
int ny_db_create_collection(ny_db *db, const char *name, const char *config_json);
/* Deletes a collection and its files.  NY_ENOTFOUND if absent. */
int ny_db_drop_collection(ny_db *db, const char *name);
/* Returns a counted reference (release with ny_collection_release).  name
 * may also be an alias. */
int ny_db_get_collection(ny_db *db, const char *name, ny_collection **out);
void ny_collection_release(ny_collection *c);
/* JSON array of collection names, e.g. ["a","b"]; free with ny_free. */
int ny_db_list_collections(ny_db *db, char **json_out);

/* Aliases: alias -> collection name, persisted in the data directory. */
int ny_db_alias_create(ny_db *db, const char *alias, const char *collection);
int ny_db_alias_delete(ny_db *db, const char *alias);
int ny_db_alias_rename(ny_db *db, const char *old_alias, const char *new_alias);
/* JSON array [{"alias_name": "...", "collection_name": "..."}], optionally
 * only those of one collection (collection may be NULL). */
int ny_db_alias_list(ny_db *db, const char *collection, char **json_out);

/* Snapshots: one self-checking file holding a consistent copy of the
 * collection (taken while writes continue). */
int ny_collection_snapshot(ny_collection *c, const char *path);
/* Creates (or, with overwrite, replaces) collection `name` from a snapshot
 * file.  The file is verified before anything existing is touched. */
int ny_db_restore_snapshot(ny_db *db, const char *name, const char *path, int overwrite);

/* Frees memory returned by this API (JSON strings, ...). */
void ny_free(void *p);

/* ---- Writes.  `wait` != 0: return only when the change is durable (on
 * disk, fsynced; concurrent writers share one sync).  wait == 0: return once
 * the change is applied and logged; it reaches disk within a short delay. */

typedef struct ny_point {
    ny_point_id id;
    const float *vector;      /* dim floats */
    const char *payload_json; /* a JSON object, or NULL for {} */
} ny_point;

/* Inserts or replaces points (replacing vector and payload).  The batch is
 * validated first (dimension, NaN/inf, payload is an object): on error
 * nothing is applied.  On return the points are visible to every read and
 * search; their vectors enter the HNSW graph in the background (status
 * "yellow" until then; searches scan them exactly meanwhile).  If
 * NEARLY_PENDING_MAX (default 20000) vectors are waiting to be indexed,
 * the call first waits for the indexer (flow control). */
int ny_collection_upsert(ny_collection *c, const ny_point *pts, size_t n, int wait);
/* Replaces only the vectors of existing points (NY_ENOTFOUND, nothing
 * applied, if one is missing). */
int ny_collection_update_vectors(ny_collection *c, const ny_point_id *ids,
                                 const float *vectors, size_t n, int wait);

/* A selection of points for payload operations and deletes: either a list
 * of ids or a Qdrant Filter (JSON), not both. */
typedef struct ny_selector {
    const ny_point_id *ids;
    size_t n_ids;
    const char *filter_json;
} ny_selector;

/* Deletes the selected points; *deleted (if not NULL) gets the count. */
int ny_collection_delete(ny_collection *c, const ny_selector *sel, int wait, size_t *deleted);
/* Merges payload_json's keys into the selected points' payloads; with key
 * (a path such as "a.b" or "a[0].b") the merge happens at that nested
 * object. */
int ny_collection_set_payload(ny_collection *c, const ny_selector *sel,
                              const char *payload_json, const char *key, int wait);
/* Replaces the selected points' payloads. */
int ny_collection_overwrite_payload(ny_collection *c, const ny_selector *sel,
                                    const char *payload_json, int wait);
/* Removes keys (paths) from the selected points' payloads. */
int ny_collection_delete_payload_keys(ny_collection *c, const ny_selector *sel,
                                      const char *const *keys, size_t nkeys, int wait);
/* Empties the selected points' payloads. */
int ny_collection_clear_payload(ny_collection *c, const ny_selector *sel, int wait);

/* ---- Reads.  Results come back as a ny_records set. */

typedef struct ny_record {
    ny_point_id id;
    float score;        /* search only: Qdrant's score (see ny_score) */
    float *vector;      /* NULL unless requested; original scale for L2/DOT, normalised for COSINE */
    char *payload_json; /* NULL unless requested; the selected keys as a JSON object */
} ny_record;

typedef struct ny_records {
    ny_record *items;
    size_t n;
    int has_next;          /* scroll: there are more points */
    ny_point_id next;      /* scroll: the offset that continues after this page */
} ny_records;

void ny_records_free(ny_records *r);

/* What to return with each record.  with_payload_json is Qdrant's
 * with_payload value as JSON: true, false, ["a","b"], {"include": [...]},
 * {"exclude": [...]}; NULL means false. */
typedef struct ny_read_opts {
    const char *with_payload_json;
    int with_vector;
} ny_read_opts;

/* Records of the given ids that exist, in the order asked. */
int ny_collection_retrieve(ny_collection *c, const ny_point_id *ids, size_t n,
                           const ny_read_opts *opts, ny_records *out);
/* Points in id order starting at *offset (inclusive; NULL: from the first),
 * at most limit, matching filter_json (may be NULL). */
int ny_collection_scroll(ny_collection *c, const ny_point_id *offset, size_t limit,
                         const char *filter_json, const ny_read_opts *opts, ny_records *out);
/* Number of points matching filter_json (NULL: all). */
int ny_collection_count(ny_collection *c, const char *filter_json, size_t *out);

typedef struct ny_search_params {
    const float *vector;      /* the query, dim floats */
    size_t limit;             /* k, >= 1 */
    size_t offset;            /* skip this many best results */
    const char *filter_json;  /* Qdrant Filter or NULL */
    size_t hnsw_ef;           /* 0: collection default */
    int exact;                /* 1: brute force */
    int has_score_threshold;
    float score_threshold;    /* drop results scoring worse than this */
    /* Quantization parameters (Qdrant's params.quantization). */
    int quant_ignore;
    int quant_rescore;        /* -1: default */
    float quant_oversampling; /* 0: default */
    ny_read_opts read;
} ny_search_params;

/* k-NN search; records are ordered best first with Qdrant scores. */
int ny_collection_search(ny_collection *c, const ny_search_params *p, ny_records *out);

/* ---- Information and configuration (Qdrant-shaped JSON). */

/* Qdrant's CollectionInfo object: status ("green"/"yellow"),
 * optimizer_status, points_count, indexed_vectors_count, segments_count,
 * config {params, hnsw_config, optimizer_config, wal_config,
 * quantization_config}, payload_schema.  Free with ny_free. */
int ny_collection_info_json(ny_collection *c, char **json_out);
/* Applies Qdrant's UpdateCollection body (hnsw_config, optimizers_config,
 * params, quantization_config, vectors).  Validated first. */
int ny_collection_update_config(ny_collection *c, const char *patch_json);
/* Vector dimension and metric. */
size_t ny_collection_dim(const ny_collection *c);
ny_metric ny_collection_metric(const ny_collection *c);
/* The collection's name. */
const char *ny_collection_name(const ny_collection *c);

/* Payload indexes: schema_json is Qdrant's field_schema ("keyword",
 * "integer", {"type": "keyword", "is_tenant": true}, ...). */
int ny_collection_create_payload_index(ny_collection *c, const char *field,
                                       const char *schema_json, int wait);
int ny_collection_delete_payload_index(ny_collection *c, const char *field, int wait);

/* Forces a checkpoint (persist index and state, truncate the log). */
int ny_collection_checkpoint(ny_collection *c);

/* ===== Utilities ======================================================== */

/* Number of online CPUs. */
int ny_cpu_count(void);
/* Peak resident set size of this process in bytes (0 if unknown). */
size_t ny_peak_rss(void);

#ifdef __cplusplus
}
#endif

#endif /* NEARLY_H */
