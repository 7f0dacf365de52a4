/*
 * filter.c -- Qdrant Filter objects: compiled once from JSON into a tree of
 * conditions with pre-parsed paths, sorted value sets and pre-parsed bounds;
 * evaluated against (point id, payload) without allocating.
 *
 * Semantics follow Qdrant's condition checker (see docs/filters.md):
 *   - must: all; should: at least one (an empty "should" matches nothing);
 *     must_not: none; min_should: at least min_count of its conditions.
 *   - A field condition looks at every value at its path (paths never
 *     flatten implicitly; "a[].b" maps over arrays).  A value that is an
 *     array matches when one of its elements matches.  No value at all
 *     matches nothing, except for is_empty / is_null / values_count, which
 *     look at the values as a whole.
 *   - Inside "nested", has_id / has_vector / slice never match (Qdrant does
 *     not support them there either).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "filter/filter.h"
#include "filter/path.h"
#include "filter/values.h"

#define MAX_DEPTH 100

/* ===== Compiled form ===================================================== */

typedef struct sstr {
    const char *s;
    size_t len;
} sstr;

enum {
    CK_VALUE_STR, CK_VALUE_INT, CK_VALUE_BOOL,
    CK_ANY_STR, CK_ANY_INT, CK_EXCEPT_STR, CK_EXCEPT_INT,
    CK_TEXT, CK_TEXT_ANY, CK_PREFIX,
    CK_FT_ALL, CK_FT_ANY, CK_FT_PHRASE, /* full-text index semantics (tokens) */
    CK_RANGE, CK_DT_RANGE,
    CK_GEO_BOX, CK_GEO_RADIUS, CK_GEO_POLY
};

enum { B_LT = 1, B_GT = 2, B_LTE = 4, B_GTE = 8 };

/* Full-text index parameters of a key (see text_index_of). */
enum { TOK_WORD = NY_TOK_WORD, TOK_WHITESPACE = NY_TOK_WHITESPACE, TOK_PREFIX = NY_TOK_PREFIX };
typedef ny_ftparams tparams;

typedef struct check {
    int kind;
    union {
        sstr str;               /* VALUE_STR, TEXT, PREFIX */
        long long i;            /* VALUE_INT */
        int b;                  /* VALUE_BOOL */
        struct { sstr *v; size_t n; } strs;           /* ANY_STR, EXCEPT_STR, TEXT_ANY tokens */
        struct { long long *v; size_t n; } ints;      /* ANY_INT, EXCEPT_INT */
        struct { double lt, gt, lte, gte; unsigned set; } range;
        struct { ny_dt lt, gt, lte, gte; unsigned set; } dt;
        struct { double left, top, right, bottom; } box;
        struct { double lon, lat, radius; } circle;
        struct { ny_ring *rings; size_t n; } poly;    /* rings[0]: exterior */
        struct { sstr *v; size_t n; tparams tp; } ft; /* FT_*: query tokens */
    } u;
} check;

typedef struct field_cond {
    ny_path path;
    check *checks;
    size_t n_checks;
    int has_vc;
    unsigned vc_set;
    size_t vc_lt, vc_gt, vc_lte, vc_gte;
    int is_empty; /* -1: absent, else the wanted value */
    int is_null;
    int simple;   /* the path has no "[]" step: at most one value */
} field_cond;

enum { K_FILTER, K_FIELD, K_IS_EMPTY, K_IS_NULL, K_HAS_ID, K_HAS_VECTOR, K_NESTED, K_SLICE };

typedef struct cond {
    int kind;
    union {
        ny_fexpr *filter;                        /* K_FILTER */
        field_cond *field;                       /* K_FIELD */
        ny_path path;                            /* K_IS_EMPTY, K_IS_NULL */
        struct { ny_point_id *v; size_t n; } ids; /* K_HAS_ID (sorted) */
        int vector_is_default;                   /* K_HAS_VECTOR */
        struct { ny_path path; ny_fexpr *filter; } nested;
        struct { uint32_t index, total; } slice;
    } u;
} cond;

typedef struct clist {
    cond **v;
    size_t n;
} clist;

struct ny_fexpr {
    clist must, should, must_not, min_should;
    int has_should, has_min;
    size_t min_count;
};

/* Strings referenced by checks are owned by the check (sstr.s malloc'd). */

/* ===== Freeing =========================================================== */

static void free_check(check *k)
{
    switch (k->kind) {
    case CK_VALUE_STR:
    case CK_TEXT:
    case CK_PREFIX:
        free((char *)k->u.str.s);
        break;
    case CK_ANY_STR:
    case CK_EXCEPT_STR:
    case CK_TEXT_ANY:
        for (size_t i = 0; i < k->u.strs.n; i++) free((char *)k->u.strs.v[i].s);
        free(k->u.strs.v);
        break;
    case CK_FT_ALL:
    case CK_FT_ANY:
    case CK_FT_PHRASE:
        for (size_t i = 0; i < k->u.ft.n; i++) free((char *)k->u.ft.v[i].s);
        free(k->u.ft.v);
        break;
    case CK_ANY_INT:
    case CK_EXCEPT_INT:
        free(k->u.ints.v);
        break;
    case CK_GEO_POLY:
        for (size_t i = 0; i < k->u.poly.n; i++) {
            free(k->u.poly.rings[i].lon);
            free(k->u.poly.rings[i].lat);
        }
        free(k->u.poly.rings);
        break;
    default:
        break;
    }
}

static void free_cond(cond *c);

static void free_clist(clist *l)
{
    for (size_t i = 0; i < l->n; i++) free_cond(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void ny_filter_free(ny_fexpr *f)
{
    if (!f) return;
    free_clist(&f->must);
    free_clist(&f->should);
    free_clist(&f->must_not);
    free_clist(&f->min_should);
    free(f);
}

static void free_cond(cond *c)
{
    if (!c) return;
    switch (c->kind) {
    case K_FILTER:
        ny_filter_free(c->u.filter);
        break;
    case K_FIELD:
        if (c->u.field) {
            ny_path_free(&c->u.field->path);
            for (size_t i = 0; i < c->u.field->n_checks; i++) free_check(&c->u.field->checks[i]);
            free(c->u.field->checks);
            free(c->u.field);
        }
        break;
    case K_IS_EMPTY:
    case K_IS_NULL:
        ny_path_free(&c->u.path);
        break;
    case K_HAS_ID:
        free(c->u.ids.v);
        break;
    case K_NESTED:
        ny_path_free(&c->u.nested.path);
        ny_filter_free(c->u.nested.filter);
        break;
    default:
        break;
    }
    free(c);
}

/* ===== Compile context: error messages with a path into the filter ====== */

typedef struct cctx {
    char where[1024];
    size_t len;
    int depth;
    const json_t *schema; /* payload schema (key -> field schema) or NULL */
    char prefix[512];     /* key prefix of the enclosing nested conditions ("a[].") */
    size_t plen;
} cctx;

static size_t cpush(cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t cpush(cctx *c, const char *fmt, ...)
{
    size_t old = c->len;
    if (c->len < sizeof c->where - 1) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(c->where + c->len, sizeof c->where - c->len, fmt, ap);
        va_end(ap);
        if (n > 0) c->len = NY_MIN(c->len + (size_t)n, sizeof c->where - 1);
    }
    return old;
}

static void cpop(cctx *c, size_t old)
{
    c->len = old;
    c->where[old] = '\0';
}

static int cerr(cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cerr(cctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->len > 200) /* keep the message readable: elide the middle of a deep path */
        return ny_error(NY_EINVAL, "%.60s...%s: %s", c->where, c->where + c->len - 120, msg);
    return ny_error(NY_EINVAL, "%s: %s", c->where, msg);
}

static int cnomem(void)
{
    return ny_error(NY_ENOMEM, "out of memory (compiling a filter)");
}

static const char *jtype(const json_t *j)
{
    if (!j) return "nothing";
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a float";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Rejects keys of object j not in the NULL-terminated list. */
static int check_keys(cctx *c, const json_t *j, const char *const *allowed, const char *what)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, k) == 0) { ok = 1; break; }
        if (!ok) {
            char list[256] = "";
            size_t off = 0;
            for (const char *const *a = allowed; *a && off < sizeof list; a++)
                off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", a == allowed ? "" : ", ", *a);
            return cerr(c, "unknown field '%.64s' in %s (expected %s)", k, what, list);
        }
    }
    return NY_OK;
}

/* Member that is present and not null, or NULL. */
static json_t *member(const json_t *j, const char *k)
{
    json_t *v = json_object_get(j, k);
    return v && !json_is_null(v) ? v : NULL;
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int compile_path(cctx *c, const json_t *j, ny_path *out)
{
    if (!json_is_string(j)) return cerr(c, "expected a string (payload key), got %s", jtype(j));
    char why[256];
    int rc = ny_path_parse(json_string_value(j), out, why, sizeof why);
    if (rc == NY_ENOMEM) return cnomem();
    if (rc) return cerr(c, "%s", why);
    return NY_OK;
}

/* Non-negative integer (a float with an integral value is accepted, as some
 * clients send one). */
static int get_count(cctx *c, const json_t *j, uint64_t max, uint64_t *out)
{
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (v < 0) return cerr(c, "expected a non-negative integer, got %lld", (long long)v);
        if ((uint64_t)v > max) return cerr(c, "value %lld is too large (max %llu)", (long long)v, (unsigned long long)max);
        *out = (uint64_t)v;
        return NY_OK;
    }
    if (json_is_real(j)) {
        double d = json_real_value(j);
        if (d >= 0 && d == floor(d) && d <= (double)max && d < 9007199254740992.0) {
            *out = (uint64_t)d;
            return NY_OK;
        }
        return cerr(c, "expected a non-negative integer, got %g", d);
    }
    return cerr(c, "expected a non-negative integer, got %s", jtype(j));
}

/* ===== Compile: match ==================================================== */

static int cmp_sstr(const void *a, const void *b)
{
    const sstr *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return memcmp(x->s, y->s, x->len);
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static int compile_value_list(cctx *c, const json_t *arr, check *k, int except)
{
    if (!json_is_array(arr)) return cerr(c, "expected an array of strings or of integers, got %s", jtype(arr));
    size_t n = json_array_size(arr);
    int strings = n == 0 || json_is_string(json_array_get(arr, 0));
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        if (strings ? !json_is_string(v) : !json_is_integer(v)) {
            size_t o = cpush(c, "[%zu]", i);
            int rc = cerr(c, "expected %s like the first element, got %s (lists hold only strings or only "
                             "integers)", strings ? "a string" : "an integer", jtype(v));
            cpop(c, o);
            return rc;
        }
    }
    if (strings) {
        k->kind = except ? CK_EXCEPT_STR : CK_ANY_STR;
        k->u.strs.v = calloc(n ? n : 1, sizeof(sstr));
        if (!k->u.strs.v) return cnomem();
        for (size_t i = 0; i < n; i++) {
            const json_t *v = json_array_get(arr, i);
            size_t len = json_string_length(v);
            char *s = dupn(json_string_value(v), len);
            if (!s) return cnomem();
            k->u.strs.v[k->u.strs.n++] = (sstr){s, len};
        }
        qsort(k->u.strs.v, n, sizeof(sstr), cmp_sstr);
    } else {
        k->kind = except ? CK_EXCEPT_INT : CK_ANY_INT;
        k->u.ints.v = calloc(n ? n : 1, sizeof(long long));
        if (!k->u.ints.v) return cnomem();
        for (size_t i = 0; i < n; i++) k->u.ints.v[i] = json_integer_value(json_array_get(arr, i));
        k->u.ints.n = n;
        qsort(k->u.ints.v, n, sizeof(long long), cmp_ll);
    }
    return NY_OK;
}

static int compile_text_any(cctx *c, const json_t *j, check *k)
{
    if (!json_is_string(j)) return cerr(c, "expected a string, got %s", jtype(j));
    const char *s = json_string_value(j);
    size_t len = json_string_length(j), ntok = 0;
    k->kind = CK_TEXT_ANY;
    k->u.strs.v = calloc(len / 2 + 1, sizeof(sstr));
    if (!k->u.strs.v) return cnomem();
    for (size_t i = 0; i < len;) {
        while (i < len && strchr(" \t\n\r\v\f", s[i]) && s[i]) i++;
        size_t start = i;
        while (i < len && !(strchr(" \t\n\r\v\f", s[i]) && s[i])) i++;
        if (i > start) {
            char *t = dupn(s + start, i - start);
            if (!t) return cnomem();
            k->u.strs.v[ntok++] = (sstr){t, i - start};
            k->u.strs.n = ntok;
        }
    }
    return NY_OK;
}

/* ===== Full-text index semantics ========================================
 * With a full-text index on the key (payload schema "text"), Qdrant matches
 * text/text_any/phrase on tokens rather than substrings: the tokenizer
 * splits on non-word characters ("word", "multilingual", "prefix") or on
 * whitespace, tokens may be lowercased (default) and filtered by length. */

static int word_byte(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch >= 0x80;
}

static int space_byte(unsigned char ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

/* Next token of s[*pos..len); 0 when there is none. */
static int next_tok(const tparams *p, const char *s, size_t len, size_t *pos, const char **t, size_t *tl)
{
    size_t i = *pos;
    for (;;) {
        size_t start;
        if (p->tokenizer == TOK_WHITESPACE) {
            while (i < len && space_byte((unsigned char)s[i])) i++;
            start = i;
            while (i < len && !space_byte((unsigned char)s[i])) i++;
        } else {
            while (i < len && !word_byte((unsigned char)s[i])) i++;
            start = i;
            while (i < len && word_byte((unsigned char)s[i])) i++;
        }
        if (i == start) {
            *pos = i;
            return 0;
        }
        size_t l = i - start;
        if ((p->min_len && l < p->min_len) || (p->max_len && l > p->max_len)) continue;
        *pos = i;
        *t = s + start;
        *tl = l;
        return 1;
    }
}

static unsigned char lower(unsigned char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

/* Query token q (already lowercased if needed) against document token d;
 * with the prefix tokenizer, q matches any document token it prefixes. */
static int tok_eq(const tparams *p, const sstr *q, const char *d, size_t dl, int allow_prefix)
{
    if (allow_prefix && p->tokenizer == TOK_PREFIX ? dl < q->len : dl != q->len) return 0;
    if (!p->lowercase) return memcmp(q->s, d, q->len) == 0;
    for (size_t i = 0; i < q->len; i++)
        if ((unsigned char)q->s[i] != lower((unsigned char)d[i])) return 0;
    return 1;
}

static int doc_has(const tparams *p, const sstr *q, const char *s, size_t len)
{
    size_t pos = 0, tl;
    const char *t;
    while (next_tok(p, s, len, &pos, &t, &tl))
        if (tok_eq(p, q, t, tl, 1)) return 1;
    return 0;
}

static int ft_match(const check *k, const char *s, size_t len)
{
    const tparams *p = &k->u.ft.tp;
    size_t n = k->u.ft.n;
    if (n == 0) return 0;
    if (k->kind == CK_FT_ALL) {
        for (size_t i = 0; i < n; i++)
            if (!doc_has(p, &k->u.ft.v[i], s, len)) return 0;
        return 1;
    }
    if (k->kind == CK_FT_ANY) {
        for (size_t i = 0; i < n; i++)
            if (doc_has(p, &k->u.ft.v[i], s, len)) return 1;
        return 0;
    }
    /* phrase: the query tokens consecutively, in order */
    size_t start = 0, tl;
    const char *t;
    while (next_tok(p, s, len, &start, &t, &tl)) {
        size_t pos = start, i = 0;
        const char *u = t;
        size_t ul = tl;
        while (tok_eq(p, &k->u.ft.v[i], u, ul, 0)) {
            if (++i == n) return 1;
            if (!next_tok(p, s, len, &pos, &u, &ul)) return 0;
        }
    }
    return 0;
}

/* The full-text index parameters of `key` in the payload schema, if it has
 * one.  Accepts "text", {"type": "text", ...} and Qdrant's payload_schema
 * output {"data_type": "text", "params": {...}}. */
static int text_index_of(cctx *c, const char *key, tparams *tp)
{
    if (!c->schema) return 0;
    char full[1024];
    snprintf(full, sizeof full, "%s%s", c->prefix, key);
    return ny_ft_params(json_object_get(c->schema, full), tp);
}

int ny_ft_params(const json_t *v, ny_ftparams *tp)
{
    const json_t *params = NULL;
    if (json_is_string(v)) {
        if (strcmp(json_string_value(v), "text") != 0) return 0;
    } else if (json_is_object(v)) {
        const json_t *t = json_object_get(v, "type"), *dt = json_object_get(v, "data_type");
        if (json_is_string(t) && strcmp(json_string_value(t), "text") == 0) params = v;
        else if (json_is_string(dt) && strcmp(json_string_value(dt), "text") == 0) params = json_object_get(v, "params");
        else return 0;
    } else {
        return 0;
    }
    memset(tp, 0, sizeof *tp);
    tp->tokenizer = TOK_WORD;
    tp->lowercase = 1;
    if (json_is_object(params)) {
        const json_t *x = json_object_get(params, "tokenizer");
        if (json_is_string(x)) {
            if (strcmp(json_string_value(x), "whitespace") == 0) tp->tokenizer = TOK_WHITESPACE;
            else if (strcmp(json_string_value(x), "prefix") == 0) tp->tokenizer = TOK_PREFIX;
        }
        x = json_object_get(params, "lowercase");
        if (json_is_boolean(x)) tp->lowercase = json_is_true(x);
        x = json_object_get(params, "min_token_len");
        if (json_is_integer(x) && json_integer_value(x) > 0) tp->min_len = (size_t)json_integer_value(x);
        x = json_object_get(params, "max_token_len");
        if (json_is_integer(x) && json_integer_value(x) > 0) tp->max_len = (size_t)json_integer_value(x);
    }
    return 1;
}

static int compile_ft(const tparams *tp, const json_t *v, int kind, check *k)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), pos = 0, tl, n = 0;
    const char *t;
    k->kind = kind;
    k->u.ft.tp = *tp;
    k->u.ft.v = calloc(len / 2 + 1, sizeof(sstr));
    if (!k->u.ft.v) return cnomem();
    while (next_tok(tp, s, len, &pos, &t, &tl)) {
        char *d = dupn(t, tl);
        if (!d) return cnomem();
        if (tp->lowercase)
            for (size_t i = 0; i < tl; i++) d[i] = (char)lower((unsigned char)d[i]);
        k->u.ft.v[n++] = (sstr){d, tl};
        k->u.ft.n = n;
    }
    return NY_OK;
}

static int compile_match(cctx *c, const json_t *j, check *k, const tparams *ft)
{
    static const char *const keys[] = {"value", "any", "except", "text", "text_any", "phrase", "prefix", NULL};
    if (!json_is_object(j)) return cerr(c, "expected an object such as {\"value\": ...}, got %s", jtype(j));
    int rc = check_keys(c, j, keys, "match");
    if (rc) return rc;
    const char *which = NULL;
    json_t *v = NULL;
    for (const char *const *kk = keys; *kk; kk++) {
        json_t *x = member(j, *kk);
        if (!x) continue;
        if (which) return cerr(c, "expected exactly one of value, any, except, text, text_any, phrase, prefix; "
                                  "got both '%s' and '%s'", which, *kk);
        which = *kk;
        v = x;
    }
    if (!which) return cerr(c, "expected one of value, any, except, text, text_any, phrase, prefix");
    size_t o = cpush(c, ".%s", which);
    if (strcmp(which, "value") == 0) {
        if (json_is_string(v)) {
            k->kind = CK_VALUE_STR;
            k->u.str.len = json_string_length(v);
            k->u.str.s = dupn(json_string_value(v), k->u.str.len);
            if (!k->u.str.s) rc = cnomem();
        } else if (json_is_integer(v)) {
            k->kind = CK_VALUE_INT;
            k->u.i = json_integer_value(v);
        } else if (json_is_boolean(v)) {
            k->kind = CK_VALUE_BOOL;
            k->u.b = json_is_true(v);
        } else if (json_is_real(v)) {
            rc = cerr(c, "expected a string, an integer or a boolean, got a float (floats cannot be matched "
                         "exactly; use a range)");
        } else {
            rc = cerr(c, "expected a string, an integer or a boolean, got %s", jtype(v));
        }
    } else if (strcmp(which, "any") == 0 || strcmp(which, "except") == 0) {
        rc = compile_value_list(c, v, k, which[0] == 'e');
    } else if (ft && (!strcmp(which, "text") || !strcmp(which, "text_any") || !strcmp(which, "phrase"))) {
        if (!json_is_string(v)) rc = cerr(c, "expected a string, got %s", jtype(v));
        else rc = compile_ft(ft, v, which[0] == 'p' ? CK_FT_PHRASE : !strcmp(which, "text") ? CK_FT_ALL : CK_FT_ANY, k);
    } else if (strcmp(which, "text_any") == 0) {
        rc = compile_text_any(c, v, k);
    } else {
        if (!json_is_string(v)) {
            rc = cerr(c, "expected a string, got %s", jtype(v));
        } else {
            k->kind = strcmp(which, "prefix") == 0 ? CK_PREFIX : CK_TEXT; /* text and phrase: substring */
            k->u.str.len = json_string_length(v);
            k->u.str.s = dupn(json_string_value(v), k->u.str.len);
            if (!k->u.str.s) rc = cnomem();
        }
    }
    cpop(c, o);
    return rc;
}

/* ===== Compile: range, geo, values_count ================================= */

static int compile_range(cctx *c, const json_t *j, check *k)
{
    static const char *const keys[] = {"lt", "gt", "gte", "lte", NULL};
    static const unsigned bits[] = {B_LT, B_GT, B_GTE, B_LTE};
    if (!json_is_object(j)) return cerr(c, "expected an object with lt/gt/gte/lte, got %s", jtype(j));
    int rc = check_keys(c, j, keys, "range");
    if (rc) return rc;
    int nnum = 0, nstr = 0;
    for (int i = 0; i < 4; i++) {
        json_t *v = member(j, keys[i]);
        if (!v) continue;
        if (json_is_number(v)) nnum++;
        else if (json_is_string(v)) nstr++;
        else {
            size_t o = cpush(c, ".%s", keys[i]);
            rc = cerr(c, "expected a number (or an RFC 3339 datetime string), got %s", jtype(v));
            cpop(c, o);
            return rc;
        }
    }
    if (nnum && nstr) return cerr(c, "bounds mix numbers and datetime strings");
    k->kind = nstr ? CK_DT_RANGE : CK_RANGE;
    for (int i = 0; i < 4; i++) {
        json_t *v = member(j, keys[i]);
        if (!v) continue;
        if (!nstr) {
            double d = json_number_value(v);
            k->u.range.set |= bits[i];
            if (bits[i] == B_LT) k->u.range.lt = d;
            else if (bits[i] == B_GT) k->u.range.gt = d;
            else if (bits[i] == B_GTE) k->u.range.gte = d;
            else k->u.range.lte = d;
        } else {
            ny_dt t;
            if (ny_dt_parse(json_string_value(v), json_string_length(v), &t) != 0) {
                size_t o = cpush(c, ".%s", keys[i]);
                rc = cerr(c, "invalid datetime '%.64s' (expected RFC 3339, e.g. 2024-01-31T10:14:31Z, "
                             "or YYYY-MM-DD[ HH:MM[:SS]])", json_string_value(v));
                cpop(c, o);
                return rc;
            }
            k->u.dt.set |= bits[i];
            if (bits[i] == B_LT) k->u.dt.lt = t;
            else if (bits[i] == B_GT) k->u.dt.gt = t;
            else if (bits[i] == B_GTE) k->u.dt.gte = t;
            else k->u.dt.lte = t;
        }
    }
    return NY_OK;
}

static int compile_geo_point(cctx *c, const json_t *j, double *lon, double *lat)
{
    static const char *const keys[] = {"lon", "lat", NULL};
    if (!json_is_object(j)) return cerr(c, "expected a geo point {\"lon\": ..., \"lat\": ...}, got %s", jtype(j));
    int rc = check_keys(c, j, keys, "geo point");
    if (rc) return rc;
    json_t *x = member(j, "lon"), *y = member(j, "lat");
    if (!x || !json_is_number(x)) return cerr(c, "'lon' must be a number");
    if (!y || !json_is_number(y)) return cerr(c, "'lat' must be a number");
    *lon = json_number_value(x);
    *lat = json_number_value(y);
    if (!(*lon >= -180 && *lon <= 180)) return cerr(c, "lon %g is outside [-180, 180]", *lon);
    if (!(*lat >= -90 && *lat <= 90)) return cerr(c, "lat %g is outside [-90, 90]", *lat);
    return NY_OK;
}

static int compile_sub_point(cctx *c, const json_t *obj, const char *name, double *lon, double *lat)
{
    json_t *v = member(obj, name);
    size_t o = cpush(c, ".%s", name);
    int rc = v ? compile_geo_point(c, v, lon, lat) : cerr(c, "missing (required)");
    cpop(c, o);
    return rc;
}

static int compile_ring(cctx *c, const json_t *j, ny_ring *r)
{
    static const char *const keys[] = {"points", NULL};
    if (!json_is_object(j)) return cerr(c, "expected a line string {\"points\": [...]}, got %s", jtype(j));
    int rc = check_keys(c, j, keys, "line string");
    if (rc) return rc;
    json_t *pts = member(j, "points");
    size_t o = cpush(c, ".points");
    if (!pts || !json_is_array(pts)) {
        rc = cerr(c, "expected an array of geo points");
        cpop(c, o);
        return rc;
    }
    size_t n = json_array_size(pts);
    if (n < 4) {
        rc = cerr(c, "a polygon ring needs at least 4 points (the last equal to the first), got %zu", n);
        cpop(c, o);
        return rc;
    }
    r->lon = malloc(n * sizeof(double));
    r->lat = malloc(n * sizeof(double));
    if (!r->lon || !r->lat) {
        cpop(c, o);
        return cnomem();
    }
    r->n = n;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t o2 = cpush(c, "[%zu]", i);
        rc = compile_geo_point(c, json_array_get(pts, i), &r->lon[i], &r->lat[i]);
        cpop(c, o2);
    }
    if (!rc && (fabs(r->lon[0] - r->lon[n - 1]) > 2.220446049250313e-16 ||
                fabs(r->lat[0] - r->lat[n - 1]) > 2.220446049250313e-16))
        rc = cerr(c, "the first and the last points must be the same (a closed ring)");
    cpop(c, o);
    return rc;
}

static int compile_polygon(cctx *c, const json_t *j, check *k)
{
    static const char *const keys[] = {"exterior", "interiors", NULL};
    if (!json_is_object(j)) return cerr(c, "expected an object with 'exterior', got %s", jtype(j));
    int rc = check_keys(c, j, keys, "geo_polygon");
    if (rc) return rc;
    json_t *ext = member(j, "exterior"), *ints = member(j, "interiors");
    if (!ext) return cerr(c, "'exterior' is required");
    if (ints && !json_is_array(ints)) {
        size_t o = cpush(c, ".interiors");
        rc = cerr(c, "expected an array of line strings, got %s", jtype(ints));
        cpop(c, o);
        return rc;
    }
    size_t nint = ints ? json_array_size(ints) : 0;
    k->kind = CK_GEO_POLY;
    k->u.poly.rings = calloc(nint + 1, sizeof(ny_ring));
    if (!k->u.poly.rings) return cnomem();
    k->u.poly.n = nint + 1;
    size_t o = cpush(c, ".exterior");
    rc = compile_ring(c, ext, &k->u.poly.rings[0]);
    cpop(c, o);
    for (size_t i = 0; i < nint && !rc; i++) {
        o = cpush(c, ".interiors[%zu]", i);
        rc = compile_ring(c, json_array_get(ints, i), &k->u.poly.rings[i + 1]);
        cpop(c, o);
    }
    return rc;
}

static int compile_values_count(cctx *c, const json_t *j, field_cond *f)
{
    static const char *const keys[] = {"lt", "gt", "gte", "lte", NULL};
    static const unsigned bits[] = {B_LT, B_GT, B_GTE, B_LTE};
    if (!json_is_object(j)) return cerr(c, "expected an object with lt/gt/gte/lte, got %s", jtype(j));
    int rc = check_keys(c, j, keys, "values_count");
    if (rc) return rc;
    f->has_vc = 1;
    for (int i = 0; i < 4; i++) {
        json_t *v = member(j, keys[i]);
        if (!v) continue;
        uint64_t x;
        size_t o = cpush(c, ".%s", keys[i]);
        rc = get_count(c, v, SIZE_MAX, &x);
        cpop(c, o);
        if (rc) return rc;
        f->vc_set |= bits[i];
        if (bits[i] == B_LT) f->vc_lt = (size_t)x;
        else if (bits[i] == B_GT) f->vc_gt = (size_t)x;
        else if (bits[i] == B_GTE) f->vc_gte = (size_t)x;
        else f->vc_lte = (size_t)x;
    }
    return NY_OK;
}

/* ===== Compile: conditions and filters =================================== */

static int compile_filter(cctx *c, const json_t *j, ny_fexpr **out);

static int add_check(field_cond *f, check **k)
{
    check *v = realloc(f->checks, (f->n_checks + 1) * sizeof *v);
    if (!v) return cnomem();
    f->checks = v;
    *k = &v[f->n_checks++];
    memset(*k, 0, sizeof **k);
    (*k)->kind = CK_VALUE_BOOL; /* owns nothing until compiled */
    return NY_OK;
}

static int compile_field(cctx *c, const json_t *j, cond *out)
{
    static const char *const keys[] = {"key", "match", "range", "geo_bounding_box", "geo_radius",
                                       "geo_polygon", "values_count", "is_empty", "is_null", NULL};
    int rc = check_keys(c, j, keys, "field condition");
    if (rc) return rc;
    field_cond *f = calloc(1, sizeof *f);
    if (!f) return cnomem();
    out->kind = K_FIELD;
    out->u.field = f;
    f->is_empty = f->is_null = -1;
    size_t o = cpush(c, ".key");
    rc = compile_path(c, json_object_get(j, "key"), &f->path);
    cpop(c, o);
    if (rc) return rc;
    f->simple = 1;
    for (size_t i = 0; i < f->path.n; i++)
        if (f->path.segs[i].kind == NY_SEG_ALL) f->simple = 0;
    int any = 0;
    json_t *v;
    check *k = NULL;
    if ((v = member(j, "match"))) {
        any = 1;
        if ((rc = add_check(f, &k))) return rc;
        o = cpush(c, ".match");
        tparams tp;
        rc = compile_match(c, v, k, text_index_of(c, json_string_value(json_object_get(j, "key")), &tp) ? &tp : NULL);
        cpop(c, o);
        if (rc) return rc;
    }
    if ((v = member(j, "range"))) {
        any = 1;
        if ((rc = add_check(f, &k))) return rc;
        o = cpush(c, ".range");
        rc = compile_range(c, v, k);
        cpop(c, o);
        if (rc) return rc;
    }
    if ((v = member(j, "geo_bounding_box"))) {
        static const char *const bkeys[] = {"top_left", "bottom_right", NULL};
        any = 1;
        if ((rc = add_check(f, &k))) return rc;
        o = cpush(c, ".geo_bounding_box");
        if (!json_is_object(v)) rc = cerr(c, "expected an object with top_left and bottom_right, got %s", jtype(v));
        if (!rc) rc = check_keys(c, v, bkeys, "geo_bounding_box");
        if (!rc) rc = compile_sub_point(c, v, "top_left", &k->u.box.left, &k->u.box.top);
        if (!rc) rc = compile_sub_point(c, v, "bottom_right", &k->u.box.right, &k->u.box.bottom);
        if (!rc) k->kind = CK_GEO_BOX;
        cpop(c, o);
        if (rc) return rc;
    }
    if ((v = member(j, "geo_radius"))) {
        static const char *const rkeys[] = {"center", "radius", NULL};
        any = 1;
        if ((rc = add_check(f, &k))) return rc;
        o = cpush(c, ".geo_radius");
        if (!json_is_object(v)) rc = cerr(c, "expected an object with center and radius, got %s", jtype(v));
        if (!rc) rc = check_keys(c, v, rkeys, "geo_radius");
        if (!rc) rc = compile_sub_point(c, v, "center", &k->u.circle.lon, &k->u.circle.lat);
        if (!rc) {
            json_t *r = member(v, "radius");
            size_t o2 = cpush(c, ".radius");
            if (!r || !json_is_number(r)) rc = cerr(c, "expected a number (meters), got %s", r ? jtype(r) : "nothing");
            else k->u.circle.radius = json_number_value(r);
            cpop(c, o2);
        }
        if (!rc) k->kind = CK_GEO_RADIUS;
        cpop(c, o);
        if (rc) return rc;
    }
    if ((v = member(j, "geo_polygon"))) {
        any = 1;
        if ((rc = add_check(f, &k))) return rc;
        o = cpush(c, ".geo_polygon");
        rc = compile_polygon(c, v, k);
        cpop(c, o);
        if (rc) return rc;
    }
    if ((v = member(j, "values_count"))) {
        any = 1;
        o = cpush(c, ".values_count");
        rc = compile_values_count(c, v, f);
        cpop(c, o);
        if (rc) return rc;
    }
    if ((v = member(j, "is_empty"))) {
        any = 1;
        if (!json_is_boolean(v)) {
            o = cpush(c, ".is_empty");
            rc = cerr(c, "expected a boolean, got %s", jtype(v));
            cpop(c, o);
            return rc;
        }
        f->is_empty = json_is_true(v);
    }
    if ((v = member(j, "is_null"))) {
        any = 1;
        if (!json_is_boolean(v)) {
            o = cpush(c, ".is_null");
            rc = cerr(c, "expected a boolean, got %s", jtype(v));
            cpop(c, o);
            return rc;
        }
        f->is_null = json_is_true(v);
    }
    if (!any)
        return cerr(c, "a field condition needs one of match, range, geo_bounding_box, geo_radius, geo_polygon, "
                       "values_count, is_empty, is_null");
    return NY_OK;
}

/* {"is_empty": {"key": "..."}} and {"is_null": {"key": "..."}} */
static int compile_payload_field(cctx *c, const json_t *j, const char *name, cond *out)
{
    static const char *const keys[] = {"key", NULL};
    json_t *v = json_object_get(j, name);
    size_t o = cpush(c, ".%s", name);
    int rc;
    if (!json_is_object(v)) {
        rc = cerr(c, "expected {\"key\": \"<payload key>\"}, got %s", jtype(v));
    } else {
        rc = check_keys(c, v, keys, name);
        if (!rc) {
            size_t o2 = cpush(c, ".key");
            rc = compile_path(c, json_object_get(v, "key"), &out->u.path);
            cpop(c, o2);
        }
    }
    cpop(c, o);
    return rc;
}

static int cmp_id(const void *a, const void *b)
{
    return ny_point_id_cmp(a, b);
}

static int compile_has_id(cctx *c, const json_t *j, cond *out)
{
    json_t *v = json_object_get(j, "has_id");
    size_t o = cpush(c, ".has_id");
    int rc = NY_OK;
    if (!json_is_array(v)) {
        rc = cerr(c, "expected an array of point ids, got %s", jtype(v));
        cpop(c, o);
        return rc;
    }
    size_t n = json_array_size(v);
    out->u.ids.v = calloc(n ? n : 1, sizeof(ny_point_id));
    if (!out->u.ids.v) {
        cpop(c, o);
        return cnomem();
    }
    for (size_t i = 0; i < n && !rc; i++) {
        const json_t *x = json_array_get(v, i);
        ny_point_id *id = &out->u.ids.v[i];
        size_t o2 = cpush(c, "[%zu]", i);
        if (json_is_integer(x) && json_integer_value(x) >= 0) {
            id->num = (uint64_t)json_integer_value(x);
        } else if (json_is_string(x)) {
            const char *s = json_string_value(x);
            if (ny_point_id_parse(s, id) != NY_OK || !id->is_uuid)
                rc = cerr(c, "invalid point id '%.64s' (expected an unsigned integer or a UUID string)", s);
        } else {
            rc = cerr(c, "expected an unsigned integer or a UUID string, got %s", jtype(x));
        }
        cpop(c, o2);
    }
    out->u.ids.n = n;
    if (!rc) qsort(out->u.ids.v, n, sizeof(ny_point_id), cmp_id);
    cpop(c, o);
    return rc;
}

static int compile_nested(cctx *c, const json_t *j, cond *out)
{
    static const char *const keys[] = {"key", "filter", NULL};
    json_t *v = json_object_get(j, "nested");
    size_t o = cpush(c, ".nested");
    int rc;
    if (!json_is_object(v)) {
        rc = cerr(c, "expected {\"key\": ..., \"filter\": {...}}, got %s", jtype(v));
        goto done;
    }
    if ((rc = check_keys(c, v, keys, "nested"))) goto done;
    size_t o2 = cpush(c, ".key");
    json_t *key = json_object_get(v, "key");
    rc = key ? compile_path(c, key, &out->u.nested.path) : cerr(c, "missing (required)");
    cpop(c, o2);
    if (rc) goto done;
    if (ny_path_append_all(&out->u.nested.path) != NY_OK) {
        rc = cnomem();
        goto done;
    }
    json_t *flt = json_object_get(v, "filter");
    o2 = cpush(c, ".filter");
    if (!flt) {
        rc = cerr(c, "missing (required)");
    } else {
        size_t plen = c->plen;
        const char *k = json_string_value(key);
        size_t kl = strlen(k);
        int has_all = kl >= 2 && k[kl - 2] == '[' && k[kl - 1] == ']';
        int n = snprintf(c->prefix + plen, sizeof c->prefix - plen, "%s%s.", k, has_all ? "" : "[]");
        c->plen = n > 0 ? NY_MIN(plen + (size_t)n, sizeof c->prefix - 1) : plen;
        rc = compile_filter(c, flt, &out->u.nested.filter);
        c->plen = plen;
        c->prefix[plen] = '\0';
    }
    cpop(c, o2);
done:
    cpop(c, o);
    return rc;
}

static int compile_slice(cctx *c, const json_t *j, cond *out)
{
    static const char *const keys[] = {"index", "total", NULL};
    json_t *v = json_object_get(j, "slice");
    size_t o = cpush(c, ".slice");
    int rc;
    uint64_t idx = 0, tot = 0;
    if (!json_is_object(v)) {
        rc = cerr(c, "expected {\"index\": ..., \"total\": ...}, got %s", jtype(v));
        goto done;
    }
    if ((rc = check_keys(c, v, keys, "slice"))) goto done;
    json_t *x = member(v, "total"), *y = member(v, "index");
    size_t o2 = cpush(c, ".total");
    rc = x ? get_count(c, x, UINT32_MAX, &tot) : cerr(c, "missing (required)");
    if (!rc && tot == 0) rc = cerr(c, "must be at least 1");
    cpop(c, o2);
    if (rc) goto done;
    o2 = cpush(c, ".index");
    rc = y ? get_count(c, y, UINT32_MAX, &idx) : cerr(c, "missing (required)");
    if (!rc && idx >= tot) rc = cerr(c, "must be less than total (%llu)", (unsigned long long)tot);
    cpop(c, o2);
    out->u.slice.index = (uint32_t)idx;
    out->u.slice.total = (uint32_t)tot;
done:
    cpop(c, o);
    return rc;
}

static int is_filter_object(const json_t *j)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        if (strcmp(k, "must") && strcmp(k, "should") && strcmp(k, "must_not") && strcmp(k, "min_should")) return 0;
    }
    return 1;
}

static int compile_cond(cctx *c, const json_t *j, cond **out)
{
    *out = NULL;
    if (!json_is_object(j)) return cerr(c, "expected a condition object, got %s", jtype(j));
    cond *cd = calloc(1, sizeof *cd);
    if (!cd) return cnomem();
    *out = cd;
    int rc;
    const char *only = NULL;
    if (json_object_get(j, "key")) {
        return compile_field(c, j, cd);
    } else if (json_object_get(j, "is_empty")) {
        cd->kind = K_IS_EMPTY;
        only = "is_empty";
        rc = compile_payload_field(c, j, "is_empty", cd);
    } else if (json_object_get(j, "is_null")) {
        cd->kind = K_IS_NULL;
        only = "is_null";
        rc = compile_payload_field(c, j, "is_null", cd);
    } else if (json_object_get(j, "has_id")) {
        cd->kind = K_HAS_ID;
        only = "has_id";
        rc = compile_has_id(c, j, cd);
    } else if (json_object_get(j, "has_vector")) {
        json_t *v = json_object_get(j, "has_vector");
        cd->kind = K_HAS_VECTOR;
        only = "has_vector";
        if (!json_is_string(v)) {
            size_t o = cpush(c, ".has_vector");
            rc = cerr(c, "expected a vector name (string), got %s", jtype(v));
            cpop(c, o);
        } else {
            cd->u.vector_is_default = json_string_length(v) == 0;
            rc = NY_OK;
        }
    } else if (json_object_get(j, "nested")) {
        cd->kind = K_NESTED;
        only = "nested";
        rc = compile_nested(c, j, cd);
    } else if (json_object_get(j, "slice")) {
        cd->kind = K_SLICE;
        only = "slice";
        rc = compile_slice(c, j, cd);
    } else if (is_filter_object(j)) {
        cd->kind = K_FILTER;
        return compile_filter(c, j, &cd->u.filter);
    } else {
        const char *k;
        json_t *v;
        const char *first = "";
        json_object_foreach((json_t *)j, k, v) {
            if (strcmp(k, "must") && strcmp(k, "should") && strcmp(k, "must_not") && strcmp(k, "min_should")) {
                first = k;
                break;
            }
        }
        cd->kind = K_HAS_VECTOR; /* owns nothing */
        return cerr(c, "unknown condition '%.64s' (expected a field condition with \"key\", is_empty, is_null, "
                       "has_id, has_vector, nested, slice, or a filter with must/should/must_not/min_should)",
                    first);
    }
    if (!rc && json_object_size(j) != 1) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            if (strcmp(k, only)) return cerr(c, "unexpected field '%.64s' next to '%s'", k, only);
        }
    }
    return rc;
}

/* Evaluation order within a clause does not change its result (conditions
 * have no side effects), so cheap conditions go first. */
static int cond_cost(const cond *c)
{
    switch (c->kind) {
    case K_HAS_ID:
    case K_HAS_VECTOR:
    case K_SLICE: return 0;
    case K_FIELD:
    case K_IS_EMPTY:
    case K_IS_NULL: return 1;
    case K_FILTER: return 2;
    default: return 3;
    }
}

static void sort_by_cost(clist *l)
{
    for (size_t i = 1; i < l->n; i++) {
        cond *x = l->v[i];
        size_t j = i;
        while (j > 0 && cond_cost(l->v[j - 1]) > cond_cost(x)) {
            l->v[j] = l->v[j - 1];
            j--;
        }
        l->v[j] = x;
    }
}

/* A clause: one condition or an array of them. */
static int compile_clause(cctx *c, const json_t *j, const char *name, clist *l)
{
    size_t o = cpush(c, ".%s", name);
    int rc = NY_OK;
    if (json_is_array(j)) {
        size_t n = json_array_size(j);
        l->v = calloc(n ? n : 1, sizeof(cond *));
        if (!l->v) rc = cnomem();
        for (size_t i = 0; i < n && !rc; i++) {
            size_t o2 = cpush(c, "[%zu]", i);
            rc = compile_cond(c, json_array_get(j, i), &l->v[i]);
            l->n = i + 1;
            cpop(c, o2);
        }
        if (!rc) sort_by_cost(l);
    } else {
        l->v = calloc(1, sizeof(cond *));
        if (!l->v) rc = cnomem();
        else {
            l->n = 1;
            rc = compile_cond(c, j, &l->v[0]);
        }
    }
    cpop(c, o);
    return rc;
}

static int compile_filter(cctx *c, const json_t *j, ny_fexpr **out)
{
    static const char *const keys[] = {"must", "should", "must_not", "min_should", NULL};
    *out = NULL;
    if (!json_is_object(j)) return cerr(c, "expected a filter object, got %s", jtype(j));
    if (c->depth >= MAX_DEPTH) return cerr(c, "filter nested more than %d levels deep", MAX_DEPTH);
    int rc = check_keys(c, j, keys, "filter");
    if (rc) return rc;
    ny_fexpr *f = calloc(1, sizeof *f);
    if (!f) return cnomem();
    *out = f;
    c->depth++;
    json_t *v;
    if (!rc && (v = member(j, "must"))) rc = compile_clause(c, v, "must", &f->must);
    if (!rc && (v = member(j, "should"))) {
        f->has_should = 1;
        rc = compile_clause(c, v, "should", &f->should);
    }
    if (!rc && (v = member(j, "must_not"))) rc = compile_clause(c, v, "must_not", &f->must_not);
    if (!rc && (v = member(j, "min_should"))) {
        static const char *const mkeys[] = {"conditions", "min_count", NULL};
        size_t o = cpush(c, ".min_should");
        if (!json_is_object(v)) rc = cerr(c, "expected {\"conditions\": [...], \"min_count\": N}, got %s", jtype(v));
        if (!rc) rc = check_keys(c, v, mkeys, "min_should");
        if (!rc) {
            json_t *conds = member(v, "conditions"), *mc = member(v, "min_count");
            uint64_t n = 0;
            size_t o2 = cpush(c, ".min_count");
            rc = mc ? get_count(c, mc, SIZE_MAX, &n) : cerr(c, "missing (required)");
            if (!rc && n == 0) rc = cerr(c, "must be at least 1");
            cpop(c, o2);
            if (!rc && (!conds || !json_is_array(conds))) {
                o2 = cpush(c, ".conditions");
                rc = cerr(c, "expected an array of conditions, got %s", conds ? jtype(conds) : "nothing");
                cpop(c, o2);
            }
            if (!rc) {
                f->has_min = 1;
                f->min_count = (size_t)n;
                rc = compile_clause(c, conds, "conditions", &f->min_should);
            }
        }
        cpop(c, o);
    }
    c->depth--;
    return rc;
}

int ny_filter_compile_json(const json_t *filter, ny_fexpr **out)
{
    return ny_filter_compile_schema_json(filter, NULL, out);
}

int ny_filter_compile_schema_json(const json_t *filter, const json_t *schema, ny_fexpr **out)
{
    if (!out) return ny_error(NY_EINVAL, "ny_filter_compile_json: out is NULL");
    *out = NULL;
    cctx c;
    memset(&c, 0, sizeof c);
    c.schema = json_is_object(schema) ? schema : NULL;
    cpush(&c, "filter");
    ny_fexpr *f = NULL;
    int rc;
    if (!filter || json_is_null(filter)) {
        f = calloc(1, sizeof *f);
        rc = f ? NY_OK : cnomem();
    } else {
        rc = compile_filter(&c, filter, &f);
    }
    if (rc) {
        ny_filter_free(f);
        return rc;
    }
    *out = f;
    return NY_OK;
}

int ny_filter_compile(const char *filter_json, ny_fexpr **out)
{
    return ny_filter_compile_schema(filter_json, NULL, out);
}

int ny_filter_compile_schema(const char *filter_json, const json_t *schema, ny_fexpr **out)
{
    if (!out) return ny_error(NY_EINVAL, "ny_filter_compile: out is NULL");
    *out = NULL;
    if (!filter_json) return ny_filter_compile_schema_json(NULL, schema, out);
    json_error_t err;
    json_t *j = json_loads(filter_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!j) return ny_error(NY_EINVAL, "filter: invalid JSON at line %d, column %d: %s", err.line, err.column, err.text);
    int rc = ny_filter_compile_schema_json(j, schema, out);
    json_decref(j);
    return rc;
}

int ny_filter_is_match_all(const ny_fexpr *f)
{
    return !f || (!f->must.n && !f->has_should && !f->must_not.n && !f->has_min);
}

static void find_ids(const ny_fexpr *f, const ny_point_id **ids, size_t *n, int *found)
{
    for (size_t i = 0; i < f->must.n; i++) {
        const cond *c = f->must.v[i];
        if (c->kind == K_HAS_ID && (!*found || c->u.ids.n < *n)) {
            *ids = c->u.ids.v;
            *n = c->u.ids.n;
            *found = 1;
        } else if (c->kind == K_FILTER) {
            find_ids(c->u.filter, ids, n, found);
        }
    }
}

int ny_filter_ids(const ny_fexpr *f, const ny_point_id **ids, size_t *n)
{
    int found = 0;
    *ids = NULL;
    *n = 0;
    if (f) find_ids(f, ids, n, &found);
    return found;
}

/* ===== Evaluation ======================================================== */

static int eval_filter(const ny_fexpr *f, const ny_point_id *id, const json_t *payload);

static int str_in(const sstr *v, size_t n, const char *s, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = v[mid].len != len ? (v[mid].len < len ? -1 : 1) : memcmp(v[mid].s, s, len);
        if (c == 0) return 1;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

static int int_in(const long long *v, size_t n, long long x)
{
    if (n <= 8) {
        for (size_t i = 0; i < n; i++)
            if (v[i] == x) return 1;
        return 0;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] == x) return 1;
        if (v[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

static int geo_of(const json_t *v, double *lon, double *lat)
{
    if (!json_is_object(v)) return 0;
    const json_t *x = json_object_getn(v, "lon", 3), *y = json_object_getn(v, "lat", 3);
    if (!json_is_number(x) || !json_is_number(y)) return 0;
    *lon = json_number_value(x);
    *lat = json_number_value(y);
    return 1;
}

/* One (non-array) value against one check. */
static int check_match(const check *k, const json_t *v)
{
    switch (k->kind) {
    case CK_VALUE_STR:
        return json_is_string(v) && json_string_length(v) == k->u.str.len &&
               memcmp(json_string_value(v), k->u.str.s, k->u.str.len) == 0;
    case CK_VALUE_INT:
        return json_is_integer(v) && json_integer_value(v) == k->u.i;
    case CK_VALUE_BOOL:
        return json_is_boolean(v) && json_is_true(v) == k->u.b;
    case CK_ANY_STR:
        return json_is_string(v) && str_in(k->u.strs.v, k->u.strs.n, json_string_value(v), json_string_length(v));
    case CK_ANY_INT:
        return json_is_integer(v) && int_in(k->u.ints.v, k->u.ints.n, json_integer_value(v));
    case CK_EXCEPT_STR:
        if (json_is_string(v)) return !str_in(k->u.strs.v, k->u.strs.n, json_string_value(v), json_string_length(v));
        return !json_is_null(v);
    case CK_EXCEPT_INT:
        if (json_is_integer(v)) return !int_in(k->u.ints.v, k->u.ints.n, json_integer_value(v));
        return !json_is_null(v);
    case CK_TEXT:
        return json_is_string(v) && memmem(json_string_value(v), json_string_length(v), k->u.str.s, k->u.str.len);
    case CK_TEXT_ANY:
        if (!json_is_string(v)) return 0;
        for (size_t i = 0; i < k->u.strs.n; i++)
            if (memmem(json_string_value(v), json_string_length(v), k->u.strs.v[i].s, k->u.strs.v[i].len)) return 1;
        return 0;
    case CK_FT_ALL:
    case CK_FT_ANY:
    case CK_FT_PHRASE:
        return json_is_string(v) && ft_match(k, json_string_value(v), json_string_length(v));
    case CK_PREFIX:
        return json_is_string(v) && json_string_length(v) >= k->u.str.len &&
               memcmp(json_string_value(v), k->u.str.s, k->u.str.len) == 0;
    case CK_RANGE: {
        if (!json_is_number(v)) return 0;
        double x = json_number_value(v);
        unsigned s = k->u.range.set;
        return (!(s & B_LT) || x < k->u.range.lt) && (!(s & B_GT) || x > k->u.range.gt) &&
               (!(s & B_LTE) || x <= k->u.range.lte) && (!(s & B_GTE) || x >= k->u.range.gte);
    }
    case CK_DT_RANGE: {
        ny_dt t;
        if (!json_is_string(v) || ny_dt_parse(json_string_value(v), json_string_length(v), &t) != 0) return 0;
        unsigned s = k->u.dt.set;
        return (!(s & B_LT) || ny_dt_cmp(t, k->u.dt.lt) < 0) && (!(s & B_GT) || ny_dt_cmp(t, k->u.dt.gt) > 0) &&
               (!(s & B_LTE) || ny_dt_cmp(t, k->u.dt.lte) <= 0) && (!(s & B_GTE) || ny_dt_cmp(t, k->u.dt.gte) >= 0);
    }
    case CK_GEO_BOX: {
        double lon, lat;
        if (!geo_of(v, &lon, &lat)) return 0;
        if (!(k->u.box.bottom < lat && lat < k->u.box.top)) return 0;
        if (k->u.box.left > k->u.box.right) /* crosses the antimeridian */
            return lon > k->u.box.left || lon < k->u.box.right;
        return k->u.box.left < lon && lon < k->u.box.right;
    }
    case CK_GEO_RADIUS: {
        double lon, lat;
        return geo_of(v, &lon, &lat) &&
               ny_geo_distance(k->u.circle.lon, k->u.circle.lat, lon, lat) < k->u.circle.radius;
    }
    case CK_GEO_POLY: {
        double lon, lat;
        if (!geo_of(v, &lon, &lat)) return 0;
        if (ny_ring_locate(&k->u.poly.rings[0], lon, lat) != 1) return 0;
        for (size_t i = 1; i < k->u.poly.n; i++)
            if (ny_ring_locate(&k->u.poly.rings[i], lon, lat) != 0) return 0;
        return 1;
    }
    default:
        return 0;
    }
}

static int vc_ok(const field_cond *f, size_t n)
{
    unsigned s = f->vc_set;
    return (!(s & B_LT) || n < f->vc_lt) && (!(s & B_GT) || n > f->vc_gt) && (!(s & B_LTE) || n <= f->vc_lte) &&
           (!(s & B_GTE) || n >= f->vc_gte);
}

typedef struct {
    const field_cond *f;
    size_t found;
} fctx;

static int field_visit(const json_t *v, void *ctx)
{
    fctx *c = ctx;
    const field_cond *f = c->f;
    c->found++;
    if (f->has_vc) {
        size_t n = json_is_null(v) ? 0 : json_is_array(v) ? json_array_size(v) : 1;
        if (vc_ok(f, n)) return 1;
    }
    for (size_t i = 0; i < f->n_checks; i++) {
        const check *k = &f->checks[i];
        if (json_is_array(v)) {
            size_t m = json_array_size(v);
            for (size_t e = 0; e < m; e++)
                if (check_match(k, json_array_get(v, e))) return 1;
        } else if (check_match(k, v)) {
            return 1;
        }
    }
    return 0;
}

static int not_empty_visit(const json_t *v, void *ctx)
{
    (void)ctx;
    return !(json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0));
}

static int null_visit(const json_t *v, void *ctx)
{
    (void)ctx;
    return json_is_null(v);
}

/* Qdrant's is_empty: every value at the path is null or [] (no value at all
 * counts as empty).  is_null: some value at the path is null. */
static int path_is_empty(const ny_path *p, const json_t *payload)
{
    return !ny_path_walk(p->segs, p->n, payload, not_empty_visit, NULL);
}

static int path_is_null(const ny_path *p, const json_t *payload)
{
    return ny_path_walk(p->segs, p->n, payload, null_visit, NULL);
}

/* The single value at a path without "[]" steps (the common case), found
 * without the visitor callback; NULL if absent. */
static inline const json_t *resolve(const ny_path *p, const json_t *v)
{
    for (size_t i = 0; i < p->n && v; i++) {
        const ny_seg *s = &p->segs[i];
        if (s->kind == NY_SEG_KEY)
            v = json_is_object(v) ? json_object_getn(v, s->key, s->len) : NULL;
        else
            v = json_is_array(v) ? json_array_get(v, s->index) : NULL; /* NULL when out of range */
    }
    return v;
}

static int eval_field(const field_cond *f, const json_t *payload)
{
    if (f->n_checks || f->has_vc) {
        fctx c = {f, 0};
        if (f->simple) {
            const json_t *v = resolve(&f->path, payload);
            if (v && field_visit(v, &c)) return 1;
        } else if (ny_path_walk(f->path.segs, f->path.n, payload, field_visit, &c)) {
            return 1;
        }
        if (!c.found && f->has_vc && vc_ok(f, 0)) return 1;
    }
    if (f->is_empty >= 0 && path_is_empty(&f->path, payload) == f->is_empty) return 1;
    if (f->is_null >= 0 && path_is_null(&f->path, payload) == f->is_null) return 1;
    return 0;
}

typedef struct {
    const ny_fexpr *filter;
} nctx;

static int nested_visit(const json_t *v, void *ctx)
{
    const nctx *c = ctx;
    return json_is_object(v) && eval_filter(c->filter, NULL, v);
}

static int slice_of(const ny_point_id *id, uint32_t total)
{
    static const uint8_t zero_key[16];
    uint64_t h;
    if (id->is_uuid) {
        h = ny_siphash24(zero_key, id->uuid, 16);
    } else {
        uint8_t b[8];
        for (int i = 0; i < 8; i++) b[i] = (uint8_t)(id->num >> (8 * i));
        h = ny_siphash24(zero_key, b, 8);
    }
    return (int)(h % total);
}

static int eval_cond(const cond *c, const ny_point_id *id, const json_t *payload)
{
    switch (c->kind) {
    case K_FIELD:
        return eval_field(c->u.field, payload);
    case K_FILTER:
        return eval_filter(c->u.filter, id, payload);
    case K_IS_EMPTY:
        return path_is_empty(&c->u.path, payload);
    case K_IS_NULL:
        return path_is_null(&c->u.path, payload);
    case K_HAS_ID: {
        if (!id) return 0;
        size_t lo = 0, hi = c->u.ids.n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            int r = ny_point_id_cmp(&c->u.ids.v[mid], id);
            if (r == 0) return 1;
            if (r < 0) lo = mid + 1;
            else hi = mid;
        }
        return 0;
    }
    case K_HAS_VECTOR:
        return id != NULL && c->u.vector_is_default;
    case K_NESTED: {
        nctx n = {c->u.nested.filter};
        return ny_path_walk(c->u.nested.path.segs, c->u.nested.path.n, payload, nested_visit, &n);
    }
    case K_SLICE:
        return id != NULL && (uint32_t)slice_of(id, c->u.slice.total) == c->u.slice.index;
    default:
        return 0;
    }
}

static int eval_filter(const ny_fexpr *f, const ny_point_id *id, const json_t *payload)
{
    for (size_t i = 0; i < f->must.n; i++)
        if (!eval_cond(f->must.v[i], id, payload)) return 0;
    for (size_t i = 0; i < f->must_not.n; i++)
        if (eval_cond(f->must_not.v[i], id, payload)) return 0;
    if (f->has_should) {
        size_t i = 0;
        while (i < f->should.n && !eval_cond(f->should.v[i], id, payload)) i++;
        if (i == f->should.n) return 0;
    }
    if (f->has_min) {
        size_t hits = 0, n = f->min_should.n;
        for (size_t i = 0; i < n && hits < f->min_count; i++) {
            if (n - i < f->min_count - hits) return 0; /* cannot reach min_count any more */
            hits += (size_t)eval_cond(f->min_should.v[i], id, payload);
        }
        if (hits < f->min_count) return 0;
    }
    return 1;
}

int ny_filter_match(const ny_fexpr *f, const ny_point_id *id, const json_t *payload)
{
    if (!f) return 1;
    if (payload && !json_is_object(payload)) payload = NULL;
    return eval_filter(f, id, payload);
}

/* ===== Index support ===================================================== */

int ny_ft_tokens(const ny_ftparams *tp, const char *s, size_t len,
                 int (*fn)(const char *tok, size_t len, void *ctx), void *ctx)
{
    size_t pos = 0, tl;
    const char *t;
    char buf[256];
    while (next_tok(tp, s, len, &pos, &t, &tl)) {
        if (tl > 255) tl = 255;
        for (size_t i = 0; i < tl; i++) buf[i] = tp->lowercase ? (char)lower((unsigned char)t[i]) : t[i];
        int r = fn(buf, tl, ctx);
        if (r) return r;
    }
    return 0;
}

typedef struct plan {
    ny_fq_fn fq;
    ny_fids_fn fids;
    void *ctx;
    size_t nw;
} plan;

static uint64_t *plan_filter(const plan *p, const ny_fexpr *f);

static void bm_free(uint64_t *b) { free(b); }

static uint64_t *bm_empty(const plan *p) { return calloc(p->nw ? p->nw : 1, sizeof(uint64_t)); }

static int bm_is_empty(const plan *p, const uint64_t *b)
{
    for (size_t i = 0; i < p->nw; i++)
        if (b[i]) return 0;
    return 1;
}

/* acc |= b (both may be NULL = unknown/everything); consumes b. */
static uint64_t *bm_or(const plan *p, uint64_t *acc, uint64_t *b, int *unknown)
{
    if (!b) {
        *unknown = 1;
        bm_free(acc);
        return NULL;
    }
    if (*unknown) {
        bm_free(b);
        return NULL;
    }
    if (!acc) return b;
    for (size_t i = 0; i < p->nw; i++) acc[i] |= b[i];
    bm_free(b);
    return acc;
}

/* acc &= b where NULL means everything; consumes b. */
static uint64_t *bm_and(const plan *p, uint64_t *acc, uint64_t *b)
{
    if (!b) return acc;
    if (!acc) return b;
    for (size_t i = 0; i < p->nw; i++) acc[i] &= b[i];
    bm_free(b);
    return acc;
}

static double dt_sec(ny_dt t) { return (double)t.sec + (double)t.nsec * 1e-9; }

static uint64_t *plan_check(const plan *p, const ny_path *path, const check *k)
{
    ny_fquery q;
    memset(&q, 0, sizeof q);
    uint64_t *acc = NULL;
    int unknown = 0;
    switch (k->kind) {
    case CK_VALUE_STR:
        q.kind = NY_FQ_STR;
        q.s = k->u.str.s;
        q.len = k->u.str.len;
        return p->fq(p->ctx, path, &q);
    case CK_VALUE_INT:
        q.kind = NY_FQ_INT;
        q.i = k->u.i;
        return p->fq(p->ctx, path, &q);
    case CK_VALUE_BOOL:
        q.kind = NY_FQ_BOOL;
        q.b = k->u.b;
        return p->fq(p->ctx, path, &q);
    case CK_ANY_STR:
        if (!k->u.strs.n) return bm_empty(p);
        q.kind = NY_FQ_STR;
        for (size_t i = 0; i < k->u.strs.n && !unknown; i++) {
            q.s = k->u.strs.v[i].s;
            q.len = k->u.strs.v[i].len;
            acc = bm_or(p, acc, p->fq(p->ctx, path, &q), &unknown);
        }
        return acc;
    case CK_ANY_INT:
        if (!k->u.ints.n) return bm_empty(p);
        q.kind = NY_FQ_INT;
        for (size_t i = 0; i < k->u.ints.n && !unknown; i++) {
            q.i = k->u.ints.v[i];
            acc = bm_or(p, acc, p->fq(p->ctx, path, &q), &unknown);
        }
        return acc;
    case CK_FT_ALL:
    case CK_FT_PHRASE:
    case CK_FT_ANY:
        if (!k->u.ft.n) return bm_empty(p); /* matches nothing */
        if (k->u.ft.tp.tokenizer == TOK_PREFIX) return NULL;
        q.kind = NY_FQ_TOKEN;
        q.tp = k->u.ft.tp;
        for (size_t i = 0; i < k->u.ft.n && !unknown; i++) {
            q.s = k->u.ft.v[i].s;
            q.len = k->u.ft.v[i].len;
            uint64_t *b = p->fq(p->ctx, path, &q);
            if (k->kind == CK_FT_ANY) {
                acc = bm_or(p, acc, b, &unknown);
            } else {
                if (!b) { /* unknown: everything */
                    bm_free(acc);
                    return NULL;
                }
                acc = bm_and(p, acc, b);
            }
        }
        return acc;
    case CK_RANGE: {
        unsigned s = k->u.range.set;
        q.kind = NY_FQ_RANGE;
        q.lo = -INFINITY;
        q.hi = INFINITY;
        if (s & B_GT) q.lo = k->u.range.gt;
        if ((s & B_GTE) && k->u.range.gte > q.lo) q.lo = k->u.range.gte;
        if (s & B_LT) q.hi = k->u.range.lt;
        if ((s & B_LTE) && k->u.range.lte < q.hi) q.hi = k->u.range.lte;
        if (q.lo > q.hi) return bm_empty(p);
        return p->fq(p->ctx, path, &q);
    }
    case CK_DT_RANGE: {
        unsigned s = k->u.dt.set;
        q.kind = NY_FQ_DTRANGE;
        q.lo = -INFINITY;
        q.hi = INFINITY;
        if (s & B_GT) q.lo = dt_sec(k->u.dt.gt);
        if ((s & B_GTE) && dt_sec(k->u.dt.gte) > q.lo) q.lo = dt_sec(k->u.dt.gte);
        if (s & B_LT) q.hi = dt_sec(k->u.dt.lt);
        if ((s & B_LTE) && dt_sec(k->u.dt.lte) < q.hi) q.hi = dt_sec(k->u.dt.lte);
        if (q.lo > q.hi) return bm_empty(p);
        return p->fq(p->ctx, path, &q);
    }
    case CK_GEO_BOX:
        if (k->u.box.left > k->u.box.right) return NULL; /* crosses the antimeridian */
        q.kind = NY_FQ_GEO;
        q.lon_lo = k->u.box.left;
        q.lon_hi = k->u.box.right;
        q.lat_lo = k->u.box.bottom;
        q.lat_hi = k->u.box.top;
        if (q.lat_lo > q.lat_hi) return bm_empty(p);
        return p->fq(p->ctx, path, &q);
    case CK_GEO_RADIUS: {
        /* Bounding box of the spherical cap (haversine distance < radius). */
        double r = k->u.circle.radius;
        if (!(r > 0)) return bm_empty(p);
        double d = r / NY_EARTH_RADIUS_M, lat = k->u.circle.lat * M_PI / 180;
        double dlat = d * 180 / M_PI * (1 + 1e-9) + 1e-9;
        if (fabs(lat) + d >= M_PI / 2 - 1e-6) return NULL; /* reaches a pole */
        double dlon = asin(fmin(1.0, sin(d) / cos(lat))) * 180 / M_PI * (1 + 1e-9) + 1e-9;
        q.kind = NY_FQ_GEO;
        q.lon_lo = k->u.circle.lon - dlon;
        q.lon_hi = k->u.circle.lon + dlon;
        if (q.lon_lo < -180 || q.lon_hi > 180) return NULL;
        q.lat_lo = k->u.circle.lat - dlat;
        q.lat_hi = k->u.circle.lat + dlat;
        return p->fq(p->ctx, path, &q);
    }
    case CK_GEO_POLY: {
        const ny_ring *r = &k->u.poly.rings[0];
        if (!r->n) return bm_empty(p);
        q.kind = NY_FQ_GEO;
        q.lon_lo = q.lon_hi = r->lon[0];
        q.lat_lo = q.lat_hi = r->lat[0];
        for (size_t i = 1; i < r->n; i++) {
            q.lon_lo = fmin(q.lon_lo, r->lon[i]);
            q.lon_hi = fmax(q.lon_hi, r->lon[i]);
            q.lat_lo = fmin(q.lat_lo, r->lat[i]);
            q.lat_hi = fmax(q.lat_hi, r->lat[i]);
        }
        return p->fq(p->ctx, path, &q);
    }
    default: /* substring text, prefix, except: not served by an index */
        return NULL;
    }
}

static uint64_t *plan_cond(const plan *p, const cond *c)
{
    switch (c->kind) {
    case K_FILTER:
        return plan_filter(p, c->u.filter);
    case K_FIELD: {
        const field_cond *fc = c->u.field;
        if (fc->has_vc || fc->is_empty >= 0 || fc->is_null >= 0 || !fc->n_checks) return NULL;
        uint64_t *acc = NULL;
        int unknown = 0;
        for (size_t i = 0; i < fc->n_checks && !unknown; i++)
            acc = bm_or(p, acc, plan_check(p, &fc->path, &fc->checks[i]), &unknown);
        return acc;
    }
    case K_HAS_ID:
        return p->fids ? p->fids(p->ctx, c->u.ids.v, c->u.ids.n) : NULL;
    default:
        return NULL;
    }
}

static uint64_t *plan_filter(const plan *p, const ny_fexpr *f)
{
    uint64_t *acc = NULL;
    for (size_t i = 0; i < f->must.n; i++) {
        acc = bm_and(p, acc, plan_cond(p, f->must.v[i]));
        if (acc && bm_is_empty(p, acc)) return acc;
    }
    if (f->has_should) {
        uint64_t *u = f->should.n ? NULL : bm_empty(p);
        int unknown = 0;
        for (size_t i = 0; i < f->should.n && !unknown; i++) u = bm_or(p, u, plan_cond(p, f->should.v[i]), &unknown);
        acc = bm_and(p, acc, u);
    }
    if (f->has_min && f->min_count >= 1) {
        uint64_t *u = f->min_should.n ? NULL : bm_empty(p);
        int unknown = 0;
        for (size_t i = 0; i < f->min_should.n && !unknown; i++)
            u = bm_or(p, u, plan_cond(p, f->min_should.v[i]), &unknown);
        acc = bm_and(p, acc, u);
    }
    return acc;
}

uint64_t *ny_filter_candidates(const ny_fexpr *f, size_t nbits, ny_fq_fn fq, ny_fids_fn fids, void *ctx)
{
    if (!f || !fq) return NULL;
    plan p = {fq, fids, ctx, (nbits + 63) / 64};
    return plan_filter(&p, f);
}

int ny_filter_single_query(const ny_fexpr *f, const struct ny_path **path, ny_fquery *q)
{
    if (!f || f->must.n != 1 || f->has_should || f->must_not.n || f->has_min) return 0;
    const cond *c = f->must.v[0];
    if (c->kind != K_FIELD) return 0;
    const field_cond *fc = c->u.field;
    if (fc->has_vc || fc->is_empty >= 0 || fc->is_null >= 0 || fc->n_checks != 1) return 0;
    const check *k = &fc->checks[0];
    memset(q, 0, sizeof *q);
    switch (k->kind) {
    case CK_VALUE_STR:
        q->kind = NY_FQ_STR;
        q->s = k->u.str.s;
        q->len = k->u.str.len;
        break;
    case CK_VALUE_INT:
        q->kind = NY_FQ_INT;
        q->i = k->u.i;
        break;
    case CK_VALUE_BOOL:
        q->kind = NY_FQ_BOOL;
        q->b = k->u.b;
        break;
    case CK_RANGE: {
        unsigned s = k->u.range.set;
        q->kind = NY_FQ_RANGE;
        q->lo = -INFINITY;
        q->hi = INFINITY;
        if (s & B_GT) q->lo = k->u.range.gt;
        if ((s & B_GTE) && k->u.range.gte > q->lo) q->lo = k->u.range.gte;
        if (s & B_LT) q->hi = k->u.range.lt;
        if ((s & B_LTE) && k->u.range.lte < q->hi) q->hi = k->u.range.lte;
        break;
    }
    default:
        return 0;
    }
    *path = &fc->path;
    return 1;
}
