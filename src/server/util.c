/*
 * util.c -- string builder and JSON helpers of the REST server.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

/* ===== String builder =================================================== */

void sb_init(sb *b)
{
    memset(b, 0, sizeof *b);
}

void sb_free(sb *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int sb_grow(sb *b, size_t extra)
{
    if (b->oom) return -1;
    if (b->n + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void sb_putn(sb *b, const char *s, size_t n)
{
    if (sb_grow(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void sb_puts(sb *b, const char *s)
{
    sb_putn(b, s, strlen(s));
}

void sb_putc(sb *b, char c)
{
    if (sb_grow(b, 1)) return;
    b->p[b->n++] = c;
    b->p[b->n] = 0;
}

void sb_printf(sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        sb_putn(b, tmp, (size_t)k);
        return;
    }
    if (sb_grow(b, (size_t)k)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void sb_json_str(sb *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_putc(b, '"');
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *run = p;
    for (; *p; p++) {
        if (*p >= 0x20 && *p != '"' && *p != '\\') continue;
        sb_putn(b, (const char *)run, (size_t)(p - run));
        run = p + 1;
        switch (*p) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        default: {
            char u[7] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15], 0};
            sb_puts(b, u);
        }
        }
    }
    sb_putn(b, (const char *)run, (size_t)(p - run));
    sb_putc(b, '"');
}

void sb_float(sb *b, float f)
{
    if (!isfinite(f)) { /* JSON has no inf/nan; never produced for stored data */
        sb_puts(b, "null");
        return;
    }
    if (f == (float)(int32_t)f && fabsf(f) < 1e7f) {
        sb_printf(b, "%d.0", (int)f);
        return;
    }
    char tmp[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)f);
        if (prec == 9 || strtof(tmp, NULL) == f) break;
    }
    sb_puts(b, tmp);
}

void sb_point_id(sb *b, const ny_point_id *id)
{
    char buf[37];
    ny_point_id_format(id, buf);
    if (id->is_uuid) {
        sb_putc(b, '"');
        sb_puts(b, buf);
        sb_putc(b, '"');
    } else {
        sb_puts(b, buf);
    }
}

void sb_json(sb *b, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (!s) {
        b->oom = 1;
        return;
    }
    sb_puts(b, s);
    free(s);
}

/* ===== JSON parsing ===================================================== */

int parse_point_id(const json_t *v, ny_point_id *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0) {
            snprintf(err, errlen, "point id must be an unsigned integer or a UUID, got %lld", (long long)x);
            return -1;
        }
        out->num = (uint64_t)x;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        /* A UUID only: Qdrant does not accept numeric ids as strings. */
        size_t n = strlen(s);
        int digits = n > 0;
        for (size_t i = 0; i < n; i++)
            if (s[i] < '0' || s[i] > '9') digits = 0;
        if (!digits && ny_point_id_parse(s, out) == NY_OK && out->is_uuid) return 0;
        snprintf(err, errlen, "point id '%.80s' is not a valid UUID (ids are unsigned integers or UUIDs)", s);
        return -1;
    }
    if (json_is_real(v)) {
        snprintf(err, errlen, "point id must be an unsigned integer or a UUID, got the number %g", json_real_value(v));
        return -1;
    }
    snprintf(err, errlen, "point id must be an unsigned integer or a UUID string");
    return -1;
}

const json_t *unwrap_vector(const json_t *v, char *err, size_t errlen)
{
    if (json_is_array(v) || is_vecref(v)) return v;
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            if (key[0] != 0) {
                snprintf(err, errlen, "Not existing vector name error: %.100s", key);
                return NULL;
            }
            if (!json_is_array(val) && !is_vecref(val)) break;
            return val;
        }
        if (json_object_size(v) == 0) {
            snprintf(err, errlen, "vector is missing: the collection has one unnamed dense vector");
            return NULL;
        }
    }
    snprintf(err, errlen, "vector must be a list of numbers");
    return NULL;
}

static const float *vecref(const json_t *v, size_t *n);

int parse_vector(const json_t *v, size_t dim, float *out, char *err, size_t errlen)
{
    size_t rn;
    const float *rv = vecref(v, &rn);
    if (rv) {
        if (rn != dim) {
            snprintf(err, errlen, "Vector dimension error: expected dim: %zu, got %zu", dim, rn);
            return -1;
        }
        for (size_t i = 0; i < rn; i++)
            if (!isfinite(rv[i])) {
                snprintf(err, errlen, "vector element %zu is out of the float range", i);
                return -1;
            }
        memcpy(out, rv, dim * sizeof(float));
        return 0;
    }
    if (!json_is_array(v)) {
        snprintf(err, errlen, "vector must be a list of numbers");
        return -1;
    }
    size_t n = json_array_size(v);
    if (n != dim) {
        snprintf(err, errlen, "Vector dimension error: expected dim: %zu, got %zu", dim, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_array_get(v, i);
        double d;
        if (json_is_real(x)) d = json_real_value(x);
        else if (json_is_integer(x)) d = (double)json_integer_value(x);
        else {
            snprintf(err, errlen, "vector element %zu is not a number", i);
            return -1;
        }
        float f = (float)d;
        if (!isfinite(f)) {
            snprintf(err, errlen, "vector element %zu is out of the float range", i);
            return -1;
        }
        out[i] = f;
    }
    return 0;
}

int check_with_payload(const json_t *v, char *err, size_t errlen)
{
    if (!v || json_is_null(v) || json_is_boolean(v)) return 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_string(json_array_get(v, i))) {
                snprintf(err, errlen, "with_payload: element %zu must be a string (a payload key)", i);
                return -1;
            }
        return 0;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        int n = 0;
        json_object_foreach((json_t *)v, key, val) {
            if (strcmp(key, "include") && strcmp(key, "exclude")) {
                snprintf(err, errlen, "with_payload: unknown field `%.60s`, expected `include` or `exclude`", key);
                return -1;
            }
            if (!json_is_array(val)) {
                snprintf(err, errlen, "with_payload.%s must be a list of strings", key);
                return -1;
            }
            for (size_t i = 0; i < json_array_size(val); i++)
                if (!json_is_string(json_array_get(val, i))) {
                    snprintf(err, errlen, "with_payload.%s[%zu] must be a string", key, i);
                    return -1;
                }
            n++;
        }
        if (n != 1) {
            snprintf(err, errlen, "with_payload: expected exactly one of `include` or `exclude`");
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "with_payload must be a boolean, a list of keys or {\"include\"|\"exclude\": [...]}");
    return -1;
}

int parse_with_vector(const json_t *v, int dflt, char *err, size_t errlen)
{
    if (!v || json_is_null(v)) return dflt;
    if (json_is_boolean(v)) return json_is_true(v);
    if (json_is_array(v)) {
        int want = 0;
        for (size_t i = 0; i < json_array_size(v); i++) {
            const json_t *x = json_array_get(v, i);
            if (!json_is_string(x)) {
                snprintf(err, errlen, "with_vector[%zu] must be a vector name", i);
                return -1;
            }
            if (json_string_value(x)[0]) {
                snprintf(err, errlen, "Not existing vector name error: %.100s", json_string_value(x));
                return -1;
            }
            want = 1;
        }
        return want;
    }
    snprintf(err, errlen, "with_vector must be a boolean or a list of vector names");
    return -1;
}

char *json_text(const json_t *v)
{
    if (!v || json_is_null(v)) return NULL;
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
}

int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int valid_snapshot_name(const char *s)
{
    size_t n = strlen(s);
    return valid_name(s) && n > 9 && !strcmp(s + n - 9, ".snapshot");
}

/* ===== Fast vector parsing ============================================== *
 *
 * jansson turns every number of a request into an allocated json_t and
 * parses it with strtod: a 1000 x 128 upsert spent most of its time there.
 * Before jansson sees an upsert/search body, vec_rewrite() finds the flat
 * numeric arrays that hold vectors -- arrays that are the value of "vector",
 * "query" or "nearest", or elements of "vectors", "positive", "negative",
 * never under "payload(s)" or "filter" -- parses them into a float pool and
 * overwrites their text in place with a short string reference
 * ("\u0001v<index>", padded with spaces).  parse_vector() and friends accept
 * such a reference wherever a vector is expected.  Anything unusual (nested
 * arrays, non-numbers, a huge exponent) is left for jansson. */

static __thread const vecpool *tl_pool;

void vecpool_free(vecpool *p)
{
    free(p->data);
    free(p->off);
    memset(p, 0, sizeof *p);
}

void vecpool_set_current(const vecpool *p)
{
    tl_pool = p;
}

static const double pow10_tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* One JSON number at p.  Exact (Clinger's fast path) when the mantissa has
 * at most 15 significant digits and the power of ten is within 10^+-22;
 * otherwise strtod on a copy of the token.  Returns the end or NULL. */
static const char *scan_number(const char *p, const char *end, double *out)
{
    const char *s = p;
    int neg = 0;
    if (p < end && *p == '-') neg = 1, p++;
    if (p >= end || *p < '0' || *p > '9') return NULL;
    uint64_t m = 0;
    int sig = 0, exp10 = 0, exact = 1;
    if (*p == '0') p++;
    else
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (sig < 19) m = m * 10 + (uint64_t)(*p - '0'), sig += (m != 0);
            else exact = 0;
        }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (sig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                sig += (m != 0);
                exp10--;
            } else if (*p != '0') exact = 0;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, e = 0;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p == '-', p++;
        if (p >= end || *p < '0' || *p > '9') return NULL;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (e < 100000) e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    if (exact && sig <= 15 && exp10 >= -22 && exp10 <= 22) {
        double d = (double)m;
        d = exp10 < 0 ? d / pow10_tab[-exp10] : d * pow10_tab[exp10];
        *out = neg ? -d : d;
        return p;
    }
    char tmp[64];
    if ((size_t)(p - s) >= sizeof tmp) return NULL;
    memcpy(tmp, s, (size_t)(p - s));
    tmp[p - s] = 0;
    *out = strtod(tmp, NULL);
    return p;
}

static int pool_add(vecpool *pool, const float *v, size_t n)
{
    if (pool->nvec == pool->cap_vec) {
        size_t cap = pool->cap_vec ? pool->cap_vec * 2 : 64;
        size_t *o = realloc(pool->off, 2 * cap * sizeof *o);
        if (!o) return -1;
        pool->off = o;
        pool->cap_vec = cap;
    }
    if (pool->n + n > pool->cap) {
        size_t cap = pool->cap ? pool->cap : 4096;
        while (cap < pool->n + n) cap *= 2;
        float *d = realloc(pool->data, cap * sizeof *d);
        if (!d) return -1;
        pool->data = d;
        pool->cap = cap;
    }
    memcpy(pool->data + pool->n, v, n * sizeof *v);
    pool->off[2 * pool->nvec] = pool->n;
    pool->off[2 * pool->nvec + 1] = n;
    pool->n += n;
    pool->nvec++;
    return 0;
}

static int key_is(const char *k, size_t kl, const char *w)
{
    return kl == strlen(w) && !memcmp(k, w, kl);
}

void vec_rewrite(char *body, size_t len, vecpool *pool)
{
    enum { MAXD = 64 };
    struct frame {
        char arr;       /* 1: array, 0: object */
        char excl;      /* under payload / filter */
        char vec_elems; /* array whose elements are vectors */
        const char *key;/* object: the last key seen */
        size_t klen;
    } st[MAXD];
    int d = -1;
    float *buf = NULL;
    size_t bufcap = 0;
    char *p = body, *end = body + len;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            char *s = ++p;
            while (p < end && *p != '"') p += (*p == '\\') ? 2 : 1;
            if (p >= end) break;
            size_t sl = (size_t)(p - s);
            p++;
            if (d >= 0 && !st[d].arr) {
                char *q = p;
                while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')) q++;
                if (q < end && *q == ':') st[d].key = s, st[d].klen = sl;
            }
            continue;
        }
        if (c == '{' || c == '[') {
            if (d + 1 >= MAXD) break; /* too deep: leave the rest to jansson */
            int excl = 0, want = 0, vec_elems = 0;
            if (d >= 0) {
                excl = st[d].excl;
                if (!st[d].arr) {
                    const char *k = st[d].key;
                    size_t kl = k ? st[d].klen : 0;
                    if (k && (key_is(k, kl, "payload") || key_is(k, kl, "payloads") || key_is(k, kl, "filter") ||
                              key_is(k, kl, "update_filter")))
                        excl = 1;
                    if (k && c == '[' && !excl) {
                        want = key_is(k, kl, "vector") || key_is(k, kl, "query") || key_is(k, kl, "nearest");
                        vec_elems = key_is(k, kl, "vectors") || key_is(k, kl, "positive") || key_is(k, kl, "negative");
                    }
                } else if (c == '[' && !excl) {
                    want = st[d].vec_elems;
                }
            }
            if (want) {
                /* a flat array of numbers? */
                char *q = p + 1;
                size_t n = 0;
                int ok = 1;
                for (;;) {
                    while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')) q++;
                    if (q < end && *q == ']' && n == 0) break;
                    double v;
                    const char *nq = scan_number(q, end, &v);
                    if (!nq) {
                        ok = 0;
                        break;
                    }
                    if (n == bufcap) {
                        size_t cap = bufcap ? bufcap * 2 : 256;
                        float *b = realloc(buf, cap * sizeof *b);
                        if (!b) {
                            ok = 0;
                            break;
                        }
                        buf = b;
                        bufcap = cap;
                    }
                    buf[n++] = (float)v;
                    q = (char *)nq;
                    while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')) q++;
                    if (q < end && *q == ',') {
                        q++;
                        continue;
                    }
                    if (q < end && *q == ']') break;
                    ok = 0;
                    break;
                }
                if (ok && q < end && n > 0) {
                    char ref[40];
                    int rl = snprintf(ref, sizeof ref, "\"\\u0001v%zu\"", pool->nvec);
                    size_t span = (size_t)(q + 1 - p);
                    if ((size_t)rl <= span && pool_add(pool, buf, n) == 0) {
                        memcpy(p, ref, (size_t)rl);
                        memset(p + rl, ' ', span - (size_t)rl);
                        p = q + 1;
                        continue;
                    }
                }
            }
            d++;
            st[d].arr = c == '[';
            st[d].excl = (char)excl;
            st[d].vec_elems = (char)vec_elems;
            st[d].key = NULL;
            st[d].klen = 0;
            p++;
            continue;
        }
        if (c == '}' || c == ']') {
            if (d >= 0) d--;
        }
        p++;
    }
    free(buf);
}

/* The pooled vector a reference string names, or NULL. */
static const float *vecref(const json_t *v, size_t *n)
{
    if (!tl_pool || !json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    if (s[0] != 1 || s[1] != 'v') return NULL;
    char *e;
    unsigned long long i = strtoull(s + 2, &e, 10);
    if (*e || e == s + 2 || i >= tl_pool->nvec) return NULL;
    *n = tl_pool->off[2 * i + 1];
    return tl_pool->data + tl_pool->off[2 * i];
}

int is_vecref(const json_t *v)
{
    size_t n;
    return vecref(v, &n) != NULL;
}
