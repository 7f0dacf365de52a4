/*
 * filter.h -- Qdrant Filter objects: compile once from JSON, evaluate against
 * a point's id and payload.  Also the payload path helpers shared by the
 * collection layer (nested keys "a.b", "a[].b", "a[0]") and the with_payload
 * selector.  Internal to libnearly (payloads are jansson values here).
 */
#ifndef NY_FILTER_H
#define NY_FILTER_H

#include <jansson.h>
#include <stdint.h>

#include "nearly.h"

struct ny_path;

typedef struct ny_fexpr ny_fexpr;

/* Compiles a Filter ({"must": [...], "should": [...], "must_not": [...],
 * "min_should": {...}}).  NY_EINVAL with a message naming the bad part
 * (e.g. "filter.must[1].range: 'gt' must be a number"). */
int ny_filter_compile(const char *filter_json, ny_fexpr **out);
int ny_filter_compile_json(const json_t *filter, ny_fexpr **out);
/* Same, with the collection's payload schema: an object mapping payload
 * keys to their field schema as given to create_payload_index ("keyword",
 * "text", {"type": "text", "tokenizer": "word", "lowercase": true,
 * "min_token_len": 2, ...}) or as reported in payload_schema
 * ({"data_type": "text", "params": {...}}).  For keys with a full-text
 * index, match.text / text_any / phrase use Qdrant's token semantics (all
 * tokens present / any token / consecutive tokens; tokenizer, lowercase
 * and token length honoured) instead of substring matching.  Keys inside
 * "nested" are looked up as "<nested key>[].<key>".  schema may be NULL. */
int ny_filter_compile_schema(const char *filter_json, const json_t *schema, ny_fexpr **out);
int ny_filter_compile_schema_json(const json_t *filter, const json_t *schema, ny_fexpr **out);
void ny_filter_free(ny_fexpr *f);
/* 1 if the point (id, payload object; payload may be NULL = {}) matches.
 * id may be NULL (has_id, has_vector and slice then never match).  A NULL
 * filter matches everything.  Allocation-free and thread-safe: one compiled
 * filter may be evaluated by many threads at once. */
int ny_filter_match(const ny_fexpr *f, const ny_point_id *id, const json_t *payload);
/* 1 if f has no condition at all (compiled from {}, null, NULL or only
 * empty must/must_not lists), so that callers can skip evaluation.  {"should": []} is not match-all: it matches
 * nothing (as in Qdrant). */
int ny_filter_is_match_all(const ny_fexpr *f);
/* If the filter can only match points listed by a has_id condition that
 * must hold (in "must", also within filters nested in "must"), returns 1
 * and that list (the shortest one if several), sorted by ny_point_id_cmp
 * and owned by f: callers may visit just those points (and still call
 * ny_filter_match).  Otherwise returns 0 with *ids = NULL, *n = 0. */
int ny_filter_ids(const ny_fexpr *f, const ny_point_id **ids, size_t *n);

/* Values at a payload path.  "a.b" follows objects; "a[].b" maps over an
 * array; "a[2]" indexes.  Arrays at the end of a path are flattened into
 * their elements (Qdrant semantics), so {"a": [1, 2]} at "a" gives 1, 2.
 * Calls fn for each value until it returns non-zero; returns that value or
 * 0.  Paths are validated by ny_path_check (NY_EINVAL + message). */
int ny_path_check(const char *path);
int ny_path_foreach(const json_t *payload, const char *path,
                    int (*fn)(const json_t *value, void *ctx), void *ctx);

/* The with_payload selector: true, false, ["a", "b"], {"include": [...]},
 * {"exclude": [...]}.  Returns a new reference to the selected payload
 * (an object; NULL when the selector is false/NULL). NY_EINVAL on a bad
 * selector via ny_payload_selector_check.
 *
 * Entries are paths; include keeps what lies on or below an entry ("a.b"
 * keeps {"a": {"b": ...}}), exclude drops it.  Array elements are reached
 * only through "[]" ("a[].b"), as in Qdrant.  With `true` the result is the
 * payload itself (incref'd, not copied: do not modify it); otherwise a new
 * object.  ny_payload_select returns NULL for an invalid selector too. */
int ny_payload_selector_check(const json_t *selector);
json_t *ny_payload_select(const json_t *payload, const json_t *selector);

/* Payload writes, with Qdrant's semantics (set_payload with "key",
 * delete_payload).
 *
 * ny_payload_set merges the keys of the object src (deep-copied; a null
 * value is stored as null) into the object at `path` of payload; path NULL
 * or "" means the payload itself.  Along the path, a missing or non-object
 * value under a key step is replaced by {}; "[i]" steps into element i when
 * it exists (nothing happens otherwise); "[]" steps into every element.
 * Where an array is expected but something else is found, Qdrant replaces
 * it with [] and stops; so does this.  NY_EINVAL on a bad path or if src or
 * payload is not an object.
 *
 * ny_payload_delete removes the value(s) at path: "a.b" removes key b of
 * object a; "a[].b" removes b from every element of a; "a[]" empties the
 * array a; a trailing index ("a[0]") removes nothing (as in Qdrant, where
 * index deletion is not idempotent).  Returns the number of values
 * removed, or NY_EINVAL on a bad path. */
int ny_payload_set(json_t *payload, const char *path, const json_t *src);
int ny_payload_delete(json_t *payload, const char *path);

/* ===== Index support (src/filter/payload_index.c) ======================== */

/* Full-text tokenizer parameters of a text index. */
enum { NY_TOK_WORD, NY_TOK_WHITESPACE, NY_TOK_PREFIX };
typedef struct ny_ftparams {
    int tokenizer, lowercase;
    size_t min_len, max_len; /* 0: no limit */
} ny_ftparams;

/* Reads the tokenizer parameters of a payload-schema entry ("text",
 * {"type": "text", ...} or {"data_type": "text", "params": {...}}).
 * Returns 1 for a text entry, 0 otherwise. */
int ny_ft_params(const json_t *entry, ny_ftparams *tp);
/* Calls fn for each token of s[0..len) as the filter sees them (lowercased
 * when tp->lowercase), until fn returns non-zero; returns that value or 0.
 * Tokens longer than 255 bytes are passed truncated to their first 255. */
int ny_ft_tokens(const ny_ftparams *tp, const char *s, size_t len,
                 int (*fn)(const char *tok, size_t len, void *ctx), void *ctx);

/* One index lookup asked for by ny_filter_candidates: the ids of points
 * having, at `path`, some value that may satisfy it.  Bounds are inclusive
 * (a superset of what the strict check accepts). */
enum { NY_FQ_STR, NY_FQ_INT, NY_FQ_BOOL, NY_FQ_RANGE, NY_FQ_DTRANGE, NY_FQ_TOKEN, NY_FQ_GEO };
typedef struct ny_fquery {
    int kind;
    const char *s;        /* STR, TOKEN (query tokens are already lowercased if tp.lowercase) */
    size_t len;
    long long i;          /* INT */
    int b;                /* BOOL */
    double lo, hi;        /* RANGE; DTRANGE in seconds since the epoch; +-inf when open */
    double lon_lo, lon_hi, lat_lo, lat_hi; /* GEO: bounding box in degrees, lon_lo <= lon_hi */
    ny_ftparams tp;       /* TOKEN */
} ny_fquery;

/* Id sets exchanged while planning are dense bitsets of nw = (nbits + 63) /
 * 64 words (bit i of word i / 64 = vector id i), malloc'd; NULL means
 * "unknown" (every id).  Dense sets make AND/OR a word loop and membership a
 * bit test; the indexes themselves keep CRoaring bitmaps. */
/* Returns a new set or NULL when the lookup cannot be answered (no index on
 * that path, or of the wrong type). */
typedef uint64_t *(*ny_fq_fn)(void *ctx, const struct ny_path *path, const ny_fquery *q);
/* Vector ids of the listed point ids (has_id); NULL if unknown. */
typedef uint64_t *(*ny_fids_fn)(void *ctx, const ny_point_id *ids, size_t n);

/* A superset of the vector ids (< nbits) whose point can match f, built
 * from index lookups (AND over "must", OR over "should" and "min_should",
 * "must_not" ignored), or NULL when no condition narrows it (then every
 * point is a candidate).  Callers must still evaluate ny_filter_match on
 * each candidate. */
/* If f is one field condition with one check (match.value or a numeric
 * range) and nothing else, fills *q and *path (owned by f) and returns 1:
 * callers can then ask an index how many points it matches before building
 * any set.  0 otherwise. */
int ny_filter_single_query(const ny_fexpr *f, const struct ny_path **path, ny_fquery *q);

uint64_t *ny_filter_candidates(const ny_fexpr *f, size_t nbits, ny_fq_fn fq, ny_fids_fn fids, void *ctx);

#endif
