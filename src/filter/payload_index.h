/*
 * payload_index.h -- payload indexes of a collection (internal): one per
 * indexed field, keyed by vector id, answering the lookups that
 * ny_filter_candidates asks for.
 *
 *   keyword, uuid  value string          -> roaring bitmap of vids
 *   bool           true / false          -> bitmap
 *   text           token (index params)  -> bitmap
 *   geo            0.1 and 1 degree cells -> bitmap
 *   integer, float, datetime: sorted (value, vid) array plus a small
 *                  unsorted tail of recent writes; range -> bitmap
 *
 * Lookups answer with dense bitsets over the vid range (see filter.h).
 * Every index also keeps, per vid, the keys/values it indexed, so an update
 * removes exactly what was added.  Lookups return supersets (hash keys,
 * inclusive bounds, stale entries of the numeric array, whole cells):
 * callers re-check candidates with ny_filter_match.
 *
 * Concurrency: updates need exclusive access (the collection's rw lock held
 * for writing); lookups may run concurrently with each other.
 */
#ifndef NY_PAYLOAD_INDEX_H
#define NY_PAYLOAD_INDEX_H

#include <jansson.h>
#include <roaring/roaring.h>
#include <stdint.h>

#include "filter/filter.h"

typedef struct ny_pindex ny_pindex;

int ny_pindex_new(ny_pindex **out);
void ny_pindex_free(ny_pindex *px);
/* Adds (or replaces) an empty index on `field` for a payload-schema entry
 * ({"data_type": "keyword", "params": {...}} or "keyword" or {"type": ...}).
 * NY_EINVAL for an unknown type or a bad path.  Fill it with
 * ny_pindex_update_field. */
int ny_pindex_add_field(ny_pindex *px, const char *field, const json_t *entry);
/* Removes the index on field; 1 if there was one. */
int ny_pindex_drop_field(ny_pindex *px, const char *field);
int ny_pindex_has_field(const ny_pindex *px, const char *field);
size_t ny_pindex_nfields(const ny_pindex *px);
/* Sets the indexed values of vid from payload (NULL: vid deleted or has no
 * payload) in every index / in the index on field.  On allocation failure
 * the affected index is disabled (lookups on it answer "unknown", so results
 * stay correct, only slower) and NY_ENOMEM is returned. */
int ny_pindex_update(ny_pindex *px, uint32_t vid, const json_t *payload);
int ny_pindex_update_field(ny_pindex *px, const char *field, uint32_t vid, const json_t *payload);
/* Candidate vids (< nbits) for f as a dense bitset of (nbits + 63) / 64
 * words (superset of the matches, to be re-checked; free with free()), or
 * NULL when the indexes cannot narrow f.  ids: has_id resolver (may be
 * NULL). */
uint64_t *ny_pindex_candidates(const ny_pindex *px, const ny_fexpr *f, size_t nbits, ny_fids_fn ids, void *ids_ctx);
/* For a filter that is one indexed match.value or range condition: the
 * number of index entries it selects (an upper bound on the matches, as
 * it may count stale numeric entries and points with several values),
 * without building a set.  -1 for other filters. */
int64_t ny_pindex_count(const ny_pindex *px, const ny_fexpr *f);
/* Merges every numeric index's unsorted tail of recent writes into its
 * sorted array (dropping stale entries).  Lookups scan the tail linearly,
 * and after a bulk fill (index built over existing points, collection
 * loaded) it can hold up to 1/8 of the entries.  On allocation failure the
 * field keeps its tail (still correct) and NY_ENOMEM is returned. */
int ny_pindex_compact(ny_pindex *px);
/* 1 if field has a keyword index marked is_tenant. */
int ny_pindex_is_tenant(const ny_pindex *px, const char *field);

#endif
