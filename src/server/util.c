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
    if (json_is_array(v)) return v;
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            if (key[0] != 0) {
                snprintf(err, errlen, "Not existing vector name error: %.100s", key);
                return NULL;
            }
            if (!json_is_array(val)) break;
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

int parse_vector(const json_t *v, size_t dim, float *out, char *err, size_t errlen)
{
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
