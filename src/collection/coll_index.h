/*
 * coll_index.h -- payload indexes of a collection and the filter-aware
 * search planner (coll_index.c).  Internal.
 */
#ifndef NY_COLL_INDEX_H
#define NY_COLL_INDEX_H

#include <jansson.h>
#include <stdint.h>

#include "filter/filter.h"
#include "nearly.h"

/* Creates the (empty) indexes named in the configuration's payload_schema;
 * call before the checkpoint is loaded, so that loading fills them. */
int ny_coll_index_init(ny_collection *c);
/* The collection finished loading (checkpoint and log): compacts the
 * indexes filled during the load. */
void ny_coll_index_loaded(ny_collection *c);
void ny_coll_index_free(ny_collection *c);
/* vid's payload changed (NULL: deleted or empty); rw held exclusively. */
void ny_coll_index_set(ny_collection *c, uint32_t vid, const json_t *payload);
/* Builds the index on field over the existing points (takes wmu and rw). */
int ny_coll_index_build(ny_collection *c, const char *field, const json_t *entry);
void ny_coll_index_drop(ny_collection *c, const char *field);

/* Filtered top-k with the planner (rw held shared).  Returns the number of
 * results (>= 0) or an error; *planned = 0 when the indexes cannot narrow
 * the filter (then nothing was done and the caller runs its own plan).
 * exact: params.exact.  ef: requested ef (0: default).  fst: full-scan
 * threshold in vectors.  m: the index's M (read under cfg_mu). */
int ny_coll_index_search(ny_collection *c, const ny_fexpr *f, const float *q, size_t k, size_t ef, int exact,
                         size_t fst, size_t m, uint32_t *ids, float *dists, int *planned);
/* Number of live points matching f via the indexes; *planned = 0 when they
 * cannot narrow f (rw held shared). */
size_t ny_coll_index_count(ny_collection *c, const ny_fexpr *f, int *planned);

/* Live vids that may match f, from the indexes: a dense bitset over
 * [0, nvid) words (free with free()) and *n, their count; NULL when the
 * indexes cannot narrow f or memory ran out (then scan everything).  A
 * superset: re-check each with ny_filter_match.  rw held shared, or wmu
 * held (no index update can run). */
uint64_t *ny_coll_index_candidates(ny_collection *c, const ny_fexpr *f, uint64_t *n);

/* Statistics of the last planned searches (for tests and benchmarks). */
typedef struct ny_plan_stats {
    uint64_t exact_plans, hnsw_plans, fallbacks, unplanned;
    uint64_t rechecks; /* HNSW plans that walked again re-checking every node */
} ny_plan_stats;
void ny_coll_plan_stats(ny_plan_stats *out);

#endif
