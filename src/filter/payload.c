/*
 * payload.c -- payload selection (with_payload: true/false, a list of
 * paths, {"include": [...]}, {"exclude": [...]}) and payload writes at a
 * path (set_payload with "key", delete_payload keys), with Qdrant's
 * semantics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "filter/filter.h"
#include "filter/path.h"

/* ===== Selector ========================================================= */

static int check_path_list(const json_t *list, const char *what)
{
    if (!json_is_array(list))
        return ny_error(NY_EINVAL, "with_payload%s: expected an array of payload keys", what);
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) {
        if (!json_is_string(v))
            return ny_error(NY_EINVAL, "with_payload%s[%zu]: expected a string (payload key)", what, i);
        char why[256];
        ny_path p;
        int rc = ny_path_parse(json_string_value(v), &p, why, sizeof why);
        if (rc) return ny_error(rc, "with_payload%s[%zu]: %s", what, i, why);
        ny_path_free(&p);
    }
    return NY_OK;
}

int ny_payload_selector_check(const json_t *sel)
{
    if (!sel || json_is_boolean(sel) || json_is_null(sel)) return NY_OK;
    if (json_is_array(sel)) return check_path_list(sel, "");
    if (json_is_object(sel)) {
        const json_t *inc = json_object_get(sel, "include");
        const json_t *exc = json_object_get(sel, "exclude");
        if (json_object_size(sel) != 1 || (!inc && !exc))
            return ny_error(NY_EINVAL, "with_payload: expected {\"include\": [...]} or {\"exclude\": [...]}");
        return inc ? check_path_list(inc, ".include") : check_path_list(exc, ".exclude");
    }
    return ny_error(NY_EINVAL, "with_payload: expected true, false, a list of payload keys, "
                               "{\"include\": [...]} or {\"exclude\": [...]}");
}

typedef struct {
    ny_path *pats;
    size_t n;
    int exclude;
    ny_seg stack[256]; /* current path while copying */
    size_t depth;
} sel_ctx;

/* Include: keep when the current path and some pattern agree on their
 * common prefix (either is a prefix of the other).  Exclude: drop when some
 * pattern is a prefix of the current path. */
static int sel_keep(const sel_ctx *c)
{
    for (size_t k = 0; k < c->n; k++) {
        const ny_path *p = &c->pats[k];
        size_t m = NY_MIN(p->n, c->depth);
        if (c->exclude && p->n > c->depth) continue;
        size_t j = 0;
        while (j < m && ny_seg_eq(&p->segs[j], &c->stack[j])) j++;
        if (j == m) return !c->exclude;
    }
    return c->exclude;
}

static json_t *sel_copy(sel_ctx *c, const json_t *v)
{
    if (json_is_object(v)) {
        json_t *o = json_object();
        if (!o) return NULL;
        const char *k;
        size_t klen;
        json_t *x;
        json_object_keylen_foreach((json_t *)v, k, klen, x) {
            if (c->depth >= sizeof c->stack / sizeof c->stack[0]) {
                /* Deeper than any pattern can be: the decision is made. */
                json_object_setn_new_nocheck(o, k, klen, json_deep_copy(x));
                continue;
            }
            c->stack[c->depth++] = (ny_seg){NY_SEG_KEY, klen, 0, k};
            if (sel_keep(c)) {
                json_t *y = sel_copy(c, x);
                if (!y || json_object_setn_new_nocheck(o, k, klen, y) != 0) {
                    c->depth--;
                    json_decref(o);
                    return NULL;
                }
            }
            c->depth--;
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        if (!a) return NULL;
        size_t i;
        json_t *x;
        if (c->depth >= sizeof c->stack / sizeof c->stack[0]) {
            json_decref(a);
            return json_deep_copy(v);
        }
        c->stack[c->depth++] = (ny_seg){NY_SEG_ALL, 0, 0, NULL};
        int keep = sel_keep(c);
        json_array_foreach(v, i, x) {
            if (!keep) break;
            json_t *y = sel_copy(c, x);
            if (!y || json_array_append_new(a, y) != 0) {
                c->depth--;
                json_decref(a);
                return NULL;
            }
        }
        c->depth--;
        return a;
    }
    return json_deep_copy(v);
}

json_t *ny_payload_select(const json_t *payload, const json_t *sel)
{
    if (!sel || json_is_null(sel) || json_is_false(sel)) return NULL;
    if (json_is_true(sel)) return json_is_object(payload) ? json_incref((json_t *)payload) : json_object();
    const json_t *list = sel;
    int exclude = 0;
    if (json_is_object(sel)) {
        list = json_object_get(sel, "include");
        if (!list) {
            list = json_object_get(sel, "exclude");
            exclude = 1;
        }
    }
    if (ny_payload_selector_check(sel) != NY_OK || !list) return NULL;
    size_t n = json_array_size(list);
    sel_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->pats = calloc(n ? n : 1, sizeof *c->pats);
    if (!c->pats) {
        free(c);
        return NULL;
    }
    json_t *out = NULL;
    for (size_t i = 0; i < n; i++) {
        if (ny_path_parse(json_string_value(json_array_get(list, i)), &c->pats[i], NULL, 0) != NY_OK) goto done;
        c->n++;
    }
    c->exclude = exclude;
    out = json_is_object(payload) ? sel_copy(c, payload) : json_object();
done:
    for (size_t i = 0; i < c->n; i++) ny_path_free(&c->pats[i]);
    free(c->pats);
    free(c);
    return out;
}

/* ===== Writes =========================================================== */

static int merge_into(json_t *dst, const json_t *src)
{
    const char *k;
    size_t klen;
    json_t *x;
    json_object_keylen_foreach((json_t *)src, k, klen, x) {
        json_t *y = json_deep_copy(x);
        if (!y || json_object_setn_new_nocheck(dst, k, klen, y) != 0)
            return ny_error(NY_ENOMEM, "out of memory (set payload)");
    }
    return NY_OK;
}

/* Sets within *slot (owned by its parent through `replace`). */
typedef struct {
    json_t *parent;   /* object or array holding the slot */
    const char *key;  /* object key (with klen) ... */
    size_t klen;
    size_t index;     /* ... or array index */
} slot_ref;

static int slot_replace(const slot_ref *r, json_t *nv)
{
    int rc = json_is_object(r->parent) ? json_object_setn_new_nocheck(r->parent, r->key, r->klen, nv)
                                       : json_array_set_new(r->parent, r->index, nv);
    return rc ? ny_error(NY_ENOMEM, "out of memory (set payload)") : NY_OK;
}

static int set_rec(const ny_seg *segs, size_t n, json_t *cur, const slot_ref *ref, const json_t *src)
{
    if (n == 0) {
        if (!json_is_object(cur)) {
            json_t *o = json_object();
            if (!o) return ny_error(NY_ENOMEM, "out of memory (set payload)");
            int rc = slot_replace(ref, o);
            if (rc) return rc;
            cur = o;
        }
        return merge_into(cur, src);
    }
    if (segs->kind == NY_SEG_KEY) {
        if (!json_is_object(cur)) {
            json_t *o = json_object();
            if (!o) return ny_error(NY_ENOMEM, "out of memory (set payload)");
            int rc = slot_replace(ref, o);
            if (rc) return rc;
            cur = o;
        }
        json_t *child = json_object_getn(cur, segs->key, segs->len);
        if (!child) {
            child = json_null();
            if (json_object_setn_new_nocheck(cur, segs->key, segs->len, child) != 0)
                return ny_error(NY_ENOMEM, "out of memory (set payload)");
        }
        slot_ref r = {cur, segs->key, segs->len, 0};
        return set_rec(segs + 1, n - 1, child, &r, src);
    }
    if (!json_is_array(cur)) {
        /* Qdrant: a non-array where an index is expected becomes []. */
        json_t *a = json_array();
        if (!a) return ny_error(NY_ENOMEM, "out of memory (set payload)");
        return slot_replace(ref, a);
    }
    if (segs->kind == NY_SEG_INDEX) {
        if (segs->index >= json_array_size(cur)) return NY_OK;
        slot_ref r = {cur, NULL, 0, segs->index};
        return set_rec(segs + 1, n - 1, json_array_get(cur, segs->index), &r, src);
    }
    size_t m = json_array_size(cur);
    for (size_t i = 0; i < m; i++) {
        slot_ref r = {cur, NULL, 0, i};
        int rc = set_rec(segs + 1, n - 1, json_array_get(cur, i), &r, src);
        if (rc) return rc;
    }
    return NY_OK;
}

int ny_payload_set(json_t *payload, const char *path, const json_t *src)
{
    if (!json_is_object(payload)) return ny_error(NY_EINVAL, "set payload: the payload is not an object");
    if (!json_is_object(src)) return ny_error(NY_EINVAL, "set payload: the new payload must be a JSON object");
    if (!path || !*path) return merge_into(payload, src);
    char why[256];
    ny_path p;
    int rc = ny_path_parse(path, &p, why, sizeof why);
    if (rc) return ny_error(rc, "set payload: key: %s", why);
    json_t *child = json_object_getn(payload, p.segs[0].key, p.segs[0].len);
    if (!child) {
        child = json_null();
        if (json_object_setn_new_nocheck(payload, p.segs[0].key, p.segs[0].len, child) != 0) {
            ny_path_free(&p);
            return ny_error(NY_ENOMEM, "out of memory (set payload)");
        }
    }
    slot_ref r = {payload, p.segs[0].key, p.segs[0].len, 0};
    rc = set_rec(p.segs + 1, p.n - 1, child, &r, src);
    ny_path_free(&p);
    return rc;
}

static int del_rec(const ny_seg *segs, size_t n, json_t *cur)
{
    if (n == 1) {
        if (segs->kind == NY_SEG_KEY) {
            if (!json_is_object(cur) || !json_object_getn(cur, segs->key, segs->len)) return 0;
            json_object_deln(cur, segs->key, segs->len);
            return 1;
        }
        if (segs->kind == NY_SEG_ALL && json_is_array(cur)) {
            /* "a[]" at the end empties the array (Qdrant); "a[3]" at the
             * end is not supported by Qdrant either (not idempotent). */
            json_array_clear(cur);
            return 1;
        }
        return 0;
    }
    int count = 0;
    switch (segs->kind) {
    case NY_SEG_KEY:
        if (json_is_object(cur)) {
            json_t *c = json_object_getn(cur, segs->key, segs->len);
            if (c) count += del_rec(segs + 1, n - 1, c);
        }
        break;
    case NY_SEG_INDEX:
        if (json_is_array(cur) && segs->index < json_array_size(cur))
            count += del_rec(segs + 1, n - 1, json_array_get(cur, segs->index));
        break;
    default:
        if (json_is_array(cur)) {
            size_t m = json_array_size(cur);
            for (size_t i = 0; i < m; i++) count += del_rec(segs + 1, n - 1, json_array_get(cur, i));
        }
        break;
    }
    return count;
}

int ny_payload_delete(json_t *payload, const char *path)
{
    if (!json_is_object(payload)) return ny_error(NY_EINVAL, "delete payload: the payload is not an object");
    char why[256];
    ny_path p;
    int rc = ny_path_parse(path, &p, why, sizeof why);
    if (rc) return ny_error(rc, "delete payload: key: %s", why);
    int count = del_rec(p.segs, p.n, payload);
    ny_path_free(&p);
    return count;
}
