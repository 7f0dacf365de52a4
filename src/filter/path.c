/*
 * path.c -- payload paths: parsing ("a.b", "a[].b", "a[0]", "\"odd key\""),
 * evaluation against jansson values, and ny_path_check / ny_path_foreach.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "filter/filter.h"
#include "filter/path.h"

static int raw_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c >= 0x80;
}

static int path_fail(char *why, size_t whylen, const char *s, size_t at, const char *what)
{
    if (why && whylen) {
        if (at < strlen(s) && (unsigned char)s[at] >= 0x20 && (unsigned char)s[at] < 0x7f)
            snprintf(why, whylen, "invalid path '%.100s': %s at offset %zu ('%c')", s, what, at, s[at]);
        else
            snprintf(why, whylen, "invalid path '%.100s': %s at offset %zu", s, what, at);
    }
    return NY_EINVAL;
}

/* Reads a key at s[*i]; copies it NUL-terminated to *dst.  0 or -1. */
static int read_key(const char *s, size_t *i, char **dst, size_t *klen, const char **err)
{
    size_t p = *i;
    char *d = *dst;
    if (s[p] == '"') {
        p++;
        size_t start = p;
        while (s[p] && s[p] != '"' && s[p] != '\\') p++;
        if (s[p] == '\\') { *i = p; *err = "backslash in quoted key (escapes are not supported)"; return -1; }
        if (s[p] != '"') { *i = start - 1; *err = "unterminated quoted key"; return -1; }
        memcpy(d, s + start, p - start);
        *klen = p - start;
        p++;
    } else {
        size_t start = p;
        while (raw_char((unsigned char)s[p])) p++;
        if (p == start) {
            *err = s[p] ? "expected a key (letters, digits, '_', '-' or a \"quoted key\")" : "expected a key";
            return -1;
        }
        memcpy(d, s + start, p - start);
        *klen = p - start;
    }
    d[*klen] = '\0';
    *dst = d + *klen + 1;
    *i = p;
    return 0;
}

int ny_path_parse(const char *s, ny_path *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (!s) {
        if (why && whylen) snprintf(why, whylen, "path is NULL");
        return NY_EINVAL;
    }
    if (!*s) {
        if (why && whylen) snprintf(why, whylen, "path is empty");
        return NY_EINVAL;
    }
    size_t len = strlen(s);
    /* At most len/1 + 1 steps; keys need at most len + steps bytes. */
    size_t maxsegs = len + 1;
    ny_seg *segs = calloc(maxsegs, sizeof *segs);
    char *buf = malloc(2 * len + 2);
    if (!segs || !buf) {
        free(segs);
        free(buf);
        if (why && whylen) snprintf(why, whylen, "out of memory");
        return NY_ENOMEM;
    }
    char *dst = buf;
    size_t i = 0, n = 0;
    const char *err = NULL;
    char *key = dst;
    size_t klen = 0;
    if (read_key(s, &i, &dst, &klen, &err) != 0) goto fail;
    segs[n++] = (ny_seg){NY_SEG_KEY, klen, 0, key};
    while (s[i]) {
        if (s[i] == '.') {
            i++;
            key = dst;
            if (read_key(s, &i, &dst, &klen, &err) != 0) goto fail;
            segs[n++] = (ny_seg){NY_SEG_KEY, klen, 0, key};
        } else if (s[i] == '[') {
            i++;
            if (s[i] == ']') {
                i++;
                segs[n++] = (ny_seg){NY_SEG_ALL, 0, 0, NULL};
                continue;
            }
            if (s[i] < '0' || s[i] > '9') { err = "expected an array index or ']'"; goto fail; }
            size_t v = 0;
            while (s[i] >= '0' && s[i] <= '9') {
                size_t d = (size_t)(s[i] - '0');
                if (v > (SIZE_MAX - d) / 10) { err = "array index too large"; goto fail; }
                v = v * 10 + d;
                i++;
            }
            if (s[i] != ']') { err = "expected ']'"; goto fail; }
            i++;
            segs[n++] = (ny_seg){NY_SEG_INDEX, 0, v, NULL};
        } else {
            err = "expected '.', '[' or the end of the path";
            goto fail;
        }
    }
    out->n = n;
    out->segs = segs;
    out->buf = buf;
    return NY_OK;
fail:
    free(segs);
    free(buf);
    return path_fail(why, whylen, s, i, err);
}

void ny_path_free(ny_path *p)
{
    if (!p) return;
    /* Keys point into buf (or, after ny_path_append_all, still into buf). */
    free(p->segs);
    free(p->buf);
    memset(p, 0, sizeof *p);
}

int ny_path_append_all(ny_path *p)
{
    if (p->n && p->segs[p->n - 1].kind == NY_SEG_ALL) return NY_OK;
    ny_seg *s = realloc(p->segs, (p->n + 1) * sizeof *s);
    if (!s) return NY_ENOMEM;
    s[p->n++] = (ny_seg){NY_SEG_ALL, 0, 0, NULL};
    p->segs = s;
    return NY_OK;
}

int ny_seg_eq(const ny_seg *a, const ny_seg *b)
{
    if (a->kind != b->kind) return 0;
    if (a->kind == NY_SEG_KEY) return a->len == b->len && memcmp(a->key, b->key, a->len) == 0;
    if (a->kind == NY_SEG_INDEX) return a->index == b->index;
    return 1;
}

int ny_path_walk(const ny_seg *segs, size_t n, const json_t *v, ny_visit_fn fn, void *ctx)
{
    while (n) {
        if (!v) return 0;
        switch (segs->kind) {
        case NY_SEG_KEY:
            if (!json_is_object(v)) return 0;
            v = json_object_getn(v, segs->key, segs->len);
            break;
        case NY_SEG_INDEX:
            if (!json_is_array(v) || segs->index >= json_array_size(v)) return 0;
            v = json_array_get(v, segs->index);
            break;
        default: { /* NY_SEG_ALL */
            if (!json_is_array(v)) return 0;
            size_t m = json_array_size(v);
            for (size_t i = 0; i < m; i++) {
                int r = ny_path_walk(segs + 1, n - 1, json_array_get(v, i), fn, ctx);
                if (r) return r;
            }
            return 0;
        }
        }
        segs++;
        n--;
    }
    return v ? fn(v, ctx) : 0;
}

/* ===== Public helpers (filter.h) ======================================= */

int ny_path_check(const char *path)
{
    char why[256];
    ny_path p;
    int rc = ny_path_parse(path, &p, why, sizeof why);
    if (rc) return ny_error(rc, "%s", why);
    ny_path_free(&p);
    return NY_OK;
}

struct flat_ctx {
    int (*fn)(const json_t *value, void *ctx);
    void *ctx;
};

static int flat_visit(const json_t *v, void *c)
{
    struct flat_ctx *fc = c;
    if (json_is_array(v)) {
        size_t m = json_array_size(v);
        for (size_t i = 0; i < m; i++) {
            int r = fc->fn(json_array_get(v, i), fc->ctx);
            if (r) return r;
        }
        return 0;
    }
    return fc->fn(v, fc->ctx);
}

int ny_path_foreach(const json_t *payload, const char *path,
                    int (*fn)(const json_t *value, void *ctx), void *ctx)
{
    char why[256];
    ny_path p;
    int rc = ny_path_parse(path, &p, why, sizeof why);
    if (rc) return ny_error(rc, "%s", why);
    struct flat_ctx fc = {fn, ctx};
    rc = ny_path_walk(p.segs, p.n, payload, flat_visit, &fc);
    ny_path_free(&p);
    return rc;
}
