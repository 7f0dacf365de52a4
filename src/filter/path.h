/*
 * path.h -- compiled payload paths (internal to src/filter).
 *
 * Grammar (Qdrant's JSON path):
 *     path  := key item*
 *     item  := '.' key | '[' digits ']' | '[]'
 *     key   := raw | '"' any character but '"' and '\' '"'
 *     raw   := one or more of [A-Za-z0-9_-] or non-ASCII (UTF-8) bytes
 * Evaluation follows Qdrant: a key step only descends into objects, "[i]"
 * and "[]" only into arrays; nothing is flattened implicitly, so "a.b" on
 * {"a": [{"b": 1}]} yields no value (that needs "a[].b").
 */
#ifndef NY_FILTER_PATH_H
#define NY_FILTER_PATH_H

#include <jansson.h>
#include <stddef.h>

enum { NY_SEG_KEY = 0, NY_SEG_INDEX = 1, NY_SEG_ALL = 2 };

typedef struct ny_seg {
    int kind;
    size_t len;      /* NY_SEG_KEY: key length */
    size_t index;    /* NY_SEG_INDEX */
    const char *key; /* NY_SEG_KEY: NUL-terminated, points into the path's buffer */
} ny_seg;

typedef struct ny_path {
    size_t n;
    ny_seg *segs;
    char *buf;
} ny_path;

/* Parses s.  On error returns NY_EINVAL (or NY_ENOMEM) and writes the reason
 * (without any prefix) into why; ny_error is not called. */
int ny_path_parse(const char *s, ny_path *out, char *why, size_t whylen);
void ny_path_free(ny_path *p);
/* Appends a "[]" step unless the path already ends with one. */
int ny_path_append_all(ny_path *p);

/* Calls fn for every value at segs[0..n) below v (v itself when n == 0),
 * without flattening the final values.  Stops at and returns the first
 * non-zero return of fn; 0 otherwise.  Allocation-free. */
typedef int (*ny_visit_fn)(const json_t *v, void *ctx);
int ny_path_walk(const ny_seg *segs, size_t n, const json_t *v, ny_visit_fn fn, void *ctx);

/* 1 if the two steps are equal (same kind and key/index). */
int ny_seg_eq(const ny_seg *a, const ny_seg *b);

#endif
