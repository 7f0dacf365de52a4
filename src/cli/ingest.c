/*
 * ingest.c -- streaming readers for `nearly import` (see ingest.h).
 *
 * Input goes through one buffer per reader: text rows are parsed in place
 * (no copy unless a CSV record spans several lines), binary rows are copied
 * once into the batch.  The JSON row parser only understands what it needs
 * (the id, the vector, object boundaries): the vector is parsed with a
 * Clinger fast path (exact double arithmetic, then a check that the double
 * is not a float rounding midpoint; strtof otherwise), the other members
 * are validated (grammar, UTF-8, escapes) and copied verbatim into the
 * payload.
 */
#include "cli/ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

#define INBUF (1u << 20)
#define MAX_DIM (1u << 20)

/* ===== Formats ========================================================== */

int ing_fmt_parse(const char *s, ing_fmt *out)
{
    if (!strcmp(s, "fvecs")) *out = FMT_FVECS;
    else if (!strcmp(s, "npy")) *out = FMT_NPY;
    else if (!strcmp(s, "jsonl") || !strcmp(s, "ndjson")) *out = FMT_JSONL;
    else if (!strcmp(s, "csv")) *out = FMT_CSV;
    else if (!strcmp(s, "tsv")) *out = FMT_TSV;
    else return ny_error(NY_EINVAL, "unknown format '%s' (expected fvecs, npy, jsonl, csv or tsv)", s);
    return NY_OK;
}

ing_fmt ing_fmt_guess(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot) return FMT_AUTO;
    ing_fmt f;
    if (ing_fmt_parse(dot + 1, &f) == NY_OK) return f;
    if (!strcmp(dot, ".json")) return FMT_JSONL;
    return FMT_AUTO;
}

const char *ing_fmt_name(ing_fmt f)
{
    static const char *n[] = {"auto", "fvecs", "npy", "jsonl", "csv", "tsv"};
    return n[f];
}

/* ===== Batches ========================================================== */

int ing_batch_init(ing_batch *b, size_t cap, size_t dim)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    b->ids = calloc(cap, sizeof *b->ids);
    b->pl_off = malloc(cap * sizeof *b->pl_off);
    b->lines = malloc(cap * sizeof *b->lines);
    b->files = malloc(cap * sizeof *b->files);
    b->acap = 1 << 16;
    b->arena = malloc(b->acap);
    if (dim) {
        b->dim = dim;
        b->vecs = malloc(cap * dim * sizeof(float));
    }
    if (!b->ids || !b->pl_off || !b->lines || !b->files || !b->arena || (dim && !b->vecs)) {
        ing_batch_free(b);
        return ny_error(NY_ENOMEM, "out of memory (batch of %zu rows)", cap);
    }
    return NY_OK;
}

void ing_batch_free(ing_batch *b)
{
    free(b->ids);
    free(b->vecs);
    free(b->pl_off);
    free(b->lines);
    free(b->files);
    free(b->arena);
    memset(b, 0, sizeof *b);
}

void ing_batch_clear(ing_batch *b)
{
    b->n = 0;
    b->alen = 0;
}

const char *ing_batch_payload(const ing_batch *b, size_t i)
{
    return b->pl_off[i] == SIZE_MAX ? NULL : b->arena + b->pl_off[i];
}

static int batch_dim(ing_batch *b, size_t dim)
{
    if (b->dim == dim && b->vecs) return NY_OK;
    if (b->n) return ny_error(NY_EINTERNAL, "batch dimension changes mid-batch");
    float *v = realloc(b->vecs, b->cap * dim * sizeof(float));
    if (!v) return ny_error(NY_ENOMEM, "out of memory (batch of %zu x %zu)", b->cap, dim);
    b->vecs = v;
    b->dim = dim;
    return NY_OK;
}

static int aput(ing_batch *b, const void *s, size_t n)
{
    if (b->alen + n > b->acap) {
        size_t c = b->acap * 2;
        while (c < b->alen + n) c *= 2;
        char *a = realloc(b->arena, c);
        if (!a) return -1;
        b->arena = a;
        b->acap = c;
    }
    memcpy(b->arena + b->alen, s, n);
    b->alen += n;
    return 0;
}

static int aputc(ing_batch *b, char c) { return aput(b, &c, 1); }

/* ===== Input buffer ===================================================== */

static int fill(ing_reader *r)
{
    if (r->eof) return 0;
    if (r->bpos > 0 && (r->bpos == r->blen || r->blen == r->bcap || r->bpos > r->bcap / 2)) {
        memmove(r->buf, r->buf + r->bpos, r->blen - r->bpos);
        r->blen -= r->bpos;
        r->boff += r->bpos;
        r->bpos = 0;
    }
    if (r->blen == r->bcap) {
        size_t nc = r->bcap * 2;
        char *nb = realloc(r->buf, nc);
        if (!nb) return ny_error(NY_ENOMEM, "%s: out of memory (input buffer of %zu bytes)", r->path, nc);
        r->buf = nb;
        r->bcap = nc;
    }
    for (;;) {
        ssize_t k = read(r->fd, r->buf + r->blen, r->bcap - r->blen);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return ny_error_errno(NY_EIO, "%s: read error", r->path);
        if (k == 0) r->eof = 1;
        r->blen += (size_t)k;
        return (int)(k > 0);
    }
}

/* Makes n unread bytes available if the input has them; returns how many
 * are available (< n only at the end of the input), or a negative code. */
static long long ensure(ing_reader *r, size_t n)
{
    while (r->blen - r->bpos < n && !r->eof) {
        int rc = fill(r);
        if (rc < 0) return rc;
    }
    size_t have = r->blen - r->bpos;
    return (long long)(have < n ? have : n);
}

/* Next line without its '\n' (and '\r').  Returns 1 (line), 0 (end), 2 (line
 * longer than max_line: skipped), or a negative code. */
static int get_line(ing_reader *r, const char **p, size_t *len)
{
    size_t scan = r->bpos;
    int toolong = 0;
    for (;;) {
        char *nl = memchr(r->buf + scan, '\n', r->blen - scan);
        if (nl) {
            size_t start = r->bpos;
            size_t end = (size_t)(nl - r->buf);
            r->bpos = end + 1;
            r->line++;
            if (toolong) return 2;
            if (end > start && r->buf[end - 1] == '\r') end--;
            *p = r->buf + start;
            *len = end - start;
            return 1;
        }
        if (r->eof) {
            if (r->bpos == r->blen) {
                if (toolong) {
                    r->line++;
                    return 2;
                }
                return 0;
            }
            size_t start = r->bpos, end = r->blen;
            r->bpos = r->blen;
            r->line++;
            if (toolong) return 2;
            if (end > start && r->buf[end - 1] == '\r') end--;
            *p = r->buf + start;
            *len = end - start;
            return 1;
        }
        if (r->blen - r->bpos >= r->max_line) {
            toolong = 1;
            r->bpos = r->blen; /* drop what we have; keep looking for the newline */
        }
        size_t before = r->blen - r->bpos;
        int rc = fill(r);
        if (rc < 0) return rc;
        scan = r->bpos + before;
    }
}

/* ===== Numbers ========================================================== */

static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static inline int isdig(char c) { return c >= '0' && c <= '9'; }

const char *ing_parse_float(const char *s, const char *end, float *out)
{
    const char *p = s;
    int neg = 0;
    if (p < end && *p == '-') neg = 1, p++;
    if (p >= end) return NULL;
    uint64_t m = 0;
    int nd = 0, e10 = 0, dropped = 0;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && isdig(*p)) {
            if (nd < 19) m = m * 10 + (uint64_t)(*p - '0'), nd++;
            else e10++, dropped |= *p != '0';
            p++;
        }
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !isdig(*p)) return NULL;
        while (p < end && isdig(*p)) {
            if (nd < 19) {
                if (m || *p != '0') m = m * 10 + (uint64_t)(*p - '0'), nd++;
                e10--;
            } else {
                dropped |= *p != '0';
            }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, ev = 0;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p == '-', p++;
        if (p >= end || !isdig(*p)) return NULL;
        while (p < end && isdig(*p)) {
            if (ev < 100000) ev = ev * 10 + (*p - '0');
            p++;
        }
        e10 += eneg ? -ev : ev;
    }
    if (m == 0 && !dropped) {
        *out = neg ? -0.0f : 0.0f;
        return p;
    }
    if (!dropped && m < (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double d = (double)m;
        d = e10 < 0 ? d / p10[-e10] : d * p10[e10];
        if (d >= FLT_MIN && d <= FLT_MAX) {
            uint64_t bits;
            memcpy(&bits, &d, 8);
            if ((bits & ((1ull << 29) - 1)) != (1ull << 28)) { /* not a float midpoint: one rounding is exact */
                float f = (float)d;
                *out = neg ? -f : f;
                return p;
            }
        }
    }
    char tmp[512];
    size_t len = (size_t)(p - s);
    char *heap = NULL, *t = tmp;
    if (len >= sizeof tmp) {
        heap = malloc(len + 1);
        if (!heap) return NULL;
        t = heap;
    }
    memcpy(t, s, len);
    t[len] = 0;
    *out = strtof(t, NULL);
    free(heap);
    return p;
}

int ing_format_float(char *buf, float f)
{
    return snprintf(buf, 24, "%.9g", (double)f);
}

/* ===== JSON validation ================================================== */

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const char *seterr(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *seterr(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return NULL;
}

static int hex4(const char *p, const char *e, unsigned *u)
{
    if (e - p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0) return -1;
        v = v * 16 + (unsigned)h;
    }
    *u = v;
    return 0;
}

/* Validates UTF-8 at p (first byte >= 0x80); returns the sequence length or 0. */
static int utf8_seq(const unsigned char *p, const unsigned char *e)
{
    unsigned c = p[0], cp;
    int n;
    if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07;
    else return 0;
    if (e - p <= n) return 0;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n + 1;
}

/* p at '"'; returns the position after the closing quote. */
static const char *skip_string(const char *p, const char *e, char *err, size_t n)
{
    p++;
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c == '\\') {
            p++;
            if (p >= e) break;
            switch (*p) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p++;
                break;
            case 'u': {
                unsigned u, u2;
                if (hex4(p + 1, e, &u)) return seterr(err, n, "invalid \\u escape in a string");
                p += 5;
                if (u == 0) return seterr(err, n, "\\u0000 is not allowed in strings");
                if (u >= 0xDC00 && u <= 0xDFFF) return seterr(err, n, "lone UTF-16 surrogate \\u%04X in a string", u);
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, e, &u2) || u2 < 0xDC00 || u2 > 0xDFFF)
                        return seterr(err, n, "lone UTF-16 surrogate \\u%04X in a string", u);
                    p += 6;
                }
                break;
            }
            default:
                return seterr(err, n, "invalid escape '\\%c' in a string", *p);
            }
            continue;
        }
        if (c < 0x20) return seterr(err, n, "control character 0x%02x inside a string", c);
        if (c < 0x80) {
            p++;
            continue;
        }
        int k = utf8_seq((const unsigned char *)p, (const unsigned char *)e);
        if (!k) return seterr(err, n, "invalid UTF-8 in a string");
        p += k;
    }
    return seterr(err, n, "unterminated string");
}

static const char *skip_number(const char *p, const char *e)
{
    if (p < e && *p == '-') p++;
    if (p >= e) return NULL;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9')
        while (p < e && isdig(*p)) p++;
    else
        return NULL;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || !isdig(*p)) return NULL;
        while (p < e && isdig(*p)) p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || !isdig(*p)) return NULL;
        while (p < e && isdig(*p)) p++;
    }
    return p;
}

static const char *skip_value(const char *p, const char *e, int depth, char *err, size_t n)
{
    if (depth > 200) return seterr(err, n, "JSON nested too deeply");
    p = skip_ws(p, e);
    if (p >= e) return seterr(err, n, "unexpected end of line (JSON value expected)");
    switch (*p) {
    case '"':
        return skip_string(p, e, err, n);
    case '{':
        p = skip_ws(p + 1, e);
        if (p < e && *p == '}') return p + 1;
        for (;;) {
            if (p >= e || *p != '"') return seterr(err, n, "expected a key string in an object");
            if (!(p = skip_string(p, e, err, n))) return NULL;
            p = skip_ws(p, e);
            if (p >= e || *p != ':') return seterr(err, n, "expected ':' after a key");
            if (!(p = skip_value(p + 1, e, depth + 1, err, n))) return NULL;
            p = skip_ws(p, e);
            if (p < e && *p == ',') {
                p = skip_ws(p + 1, e);
                continue;
            }
            if (p < e && *p == '}') return p + 1;
            return seterr(err, n, "expected ',' or '}' in an object");
        }
    case '[':
        p = skip_ws(p + 1, e);
        if (p < e && *p == ']') return p + 1;
        for (;;) {
            if (!(p = skip_value(p, e, depth + 1, err, n))) return NULL;
            p = skip_ws(p, e);
            if (p < e && *p == ',') {
                p++;
                continue;
            }
            if (p < e && *p == ']') return p + 1;
            return seterr(err, n, "expected ',' or ']' in an array");
        }
    case 't':
        if (e - p >= 4 && !memcmp(p, "true", 4)) return p + 4;
        break;
    case 'f':
        if (e - p >= 5 && !memcmp(p, "false", 5)) return p + 5;
        break;
    case 'n':
        if (e - p >= 4 && !memcmp(p, "null", 4)) return p + 4;
        break;
    default: {
        const char *q = skip_number(p, e);
        if (q) return q;
    }
    }
    return seterr(err, n, "invalid JSON value starting with '%.12s'", p);
}

const char *ing_skip_json(const char *s, const char *end, char *err, size_t errlen)
{
    return skip_value(s, end, 0, err, errlen);
}

/* ===== Rows: common pieces ============================================== */

static float *vec_dest(ing_reader *r, ing_batch *b) { return b->vecs + b->n * b->dim; }

static void row_done(ing_reader *r, ing_batch *b, const ny_point_id *id, size_t pl)
{
    b->ids[b->n] = *id;
    b->pl_off[b->n] = pl;
    b->lines[b->n] = r->line;
    b->files[b->n] = r->file_index;
    b->n++;
    r->row++;
    r->grow++;
}

static ny_point_id num_id(uint64_t v)
{
    ny_point_id id;
    memset(&id, 0, sizeof id);
    id.num = v;
    return id;
}

/* Parses an id value (JSON integer or string) at [p, e). */
static int parse_id(const char *p, const char *e, ny_point_id *id, char *err, size_t n)
{
    if (p < e && *p == '"') {
        char tmp[64];
        const char *q = p + 1;
        while (q < e && *q != '"' && *q != '\\') q++;
        if (q >= e || *q != '"' || (size_t)(q - p - 1) >= sizeof tmp) {
            seterr(err, n, "id is not an unsigned integer or a UUID");
            return -1;
        }
        memcpy(tmp, p + 1, (size_t)(q - p - 1));
        tmp[q - p - 1] = 0;
        if (ny_point_id_parse(tmp, id) != NY_OK) {
            seterr(err, n, "id \"%s\" is not an unsigned integer or a UUID", tmp);
            return -1;
        }
        return 0;
    }
    uint64_t v = 0;
    const char *q = p;
    while (q < e && isdig(*q)) {
        unsigned d = (unsigned)(*q - '0');
        if (v > (UINT64_MAX - d) / 10) {
            seterr(err, n, "id is larger than 2^64-1");
            return -1;
        }
        v = v * 10 + d;
        q++;
    }
    if (q == p || (q < e && (*q == '.' || *q == 'e' || *q == 'E')) || (p[0] == '0' && q - p > 1)) {
        seterr(err, n, "id must be an unsigned integer or a UUID string, not '%.20s'", p);
        return -1;
    }
    *id = num_id(v);
    return 0;
}

/* Parses a vector of numbers separated by sep_any (CSV: spaces, commas,
 * semicolons; JSON: ',' only) from [p, e).  Values go to dst (cap floats),
 * extra values are only counted.  Returns the count, or -1 with err. */
static long parse_numbers(const char *p, const char *e, int json, float *dst, size_t cap, char *err, size_t n,
                          const char **endp)
{
    long cnt = 0;
    p = skip_ws(p, e);
    if (json && p < e && *p == ']') {
        *endp = p + 1;
        return 0;
    }
    for (;;) {
        p = skip_ws(p, e);
        if (!json && p >= e) break;
        float f;
        const char *q = ing_parse_float(p, e, &f);
        if (!q && !json) { /* lenient CSV numbers: ".5", "+1", "1." */
            char tmp[64];
            size_t k = 0;
            while (p + k < e && k + 1 < sizeof tmp && !strchr(" \t,;]", p[k])) tmp[k] = p[k], k++;
            tmp[k] = 0;
            char *te;
            f = strtof(tmp, &te);
            if (k > 0 && *te == 0 && !strpbrk(tmp, "nNiI")) q = p + k;
        }
        if (!q) {
            seterr(err, n, "vector component %ld is not a number ('%.12s')", cnt, p);
            return -1;
        }
        if (!isfinite(f)) {
            seterr(err, n, "vector component %ld is outside the float range", cnt);
            return -1;
        }
        if ((size_t)cnt < cap) dst[cnt] = f;
        cnt++;
        p = skip_ws(q, e);
        if (json) {
            if (p < e && *p == ',') {
                p++;
                continue;
            }
            if (p < e && *p == ']') {
                *endp = p + 1;
                return cnt;
            }
            seterr(err, n, "expected ',' or ']' in the vector");
            return -1;
        }
        if (p < e && (*p == ',' || *p == ';')) p++;
        else if (p < e && q == p) {
            seterr(err, n, "vector component %ld is followed by '%c'", cnt - 1, *p);
            return -1;
        }
    }
    *endp = p;
    return cnt;
}

/* Stores a parsed vector of cnt values (in r->tmpv when the dimension was
 * unknown) into the batch; checks the dimension. */
static int vec_store(ing_reader *r, ing_batch *b, long cnt, int in_tmp, char *err, size_t n)
{
    if (cnt == 0) {
        seterr(err, n, "vector is empty");
        return -1;
    }
    if (in_tmp) {
        if ((size_t)cnt > MAX_DIM) {
            seterr(err, n, "vector has %ld components (at most %u)", cnt, MAX_DIM);
            return -1;
        }
        r->dim = (size_t)cnt;
        if (batch_dim(b, r->dim) != NY_OK) return -2;
        memcpy(vec_dest(r, b), r->tmpv, r->dim * sizeof(float));
        return 0;
    }
    if ((size_t)cnt != r->dim) {
        seterr(err, n, "vector has %ld components, expected %zu", cnt, r->dim);
        return -1;
    }
    return 0;
}

static int grow_tmp(ing_reader *r, size_t need)
{
    if (need <= r->tmpcap) return 0;
    size_t c = r->tmpcap ? r->tmpcap : 256;
    while (c < need) c *= 2;
    float *t = realloc(r->tmpv, c * sizeof(float));
    if (!t) return -1;
    r->tmpv = t;
    r->tmpcap = c;
    return 0;
}

/* ===== JSON lines ======================================================= */

static int key_is(const char *k, size_t klen, const char *name)
{
    return name && strlen(name) == klen && !memcmp(k, name, klen);
}

/* Parses one JSON object line into row b->n.  need_vector: the vector comes
 * from this line (else it is already in place: payloads file).  Returns 1
 * (row stored, without row_done), 0 (blank line), -1 (bad row, err set) or
 * -2 (fatal). */
static int jsonl_row(ing_reader *r, ing_batch *b, const char *p, size_t len, int need_vector, ny_point_id *id,
                     size_t *pl, char *err, size_t n)
{
    const ing_opts *o = r->o;
    const char *e = p + len;
    size_t a0 = b->alen;
    int have_id = 0, have_vec = !need_vector, members = 0;
    const char *pobj = NULL, *pobj_end = NULL;
    p = skip_ws(p, e);
    if (p == e) return 0;
    if (*p != '{') {
        seterr(err, n, "not a JSON object");
        goto bad;
    }
    if (aputc(b, '{')) goto oom;
    p = skip_ws(p + 1, e);
    if (p < e && *p == '}') {
        p++;
    } else {
        for (;;) {
            if (p >= e || *p != '"') {
                seterr(err, n, "unparsable JSON: expected a key string");
                goto bad;
            }
            const char *ks = p;
            if (!(p = skip_string(p, e, err, n))) goto bad;
            const char *k = ks + 1;
            size_t klen = (size_t)(p - ks - 2);
            if (memchr(k, '\\', klen)) klen = (size_t)-1; /* escaped keys never name a special field */
            p = skip_ws(p, e);
            if (p >= e || *p != ':') {
                seterr(err, n, "unparsable JSON: expected ':' after a key");
                goto bad;
            }
            p = skip_ws(p + 1, e);
            if (need_vector && klen != (size_t)-1 && key_is(k, klen, o->vector_field)) {
                if (have_vec) {
                    seterr(err, n, "duplicate \"%s\" field", o->vector_field);
                    goto bad;
                }
                if (p >= e || *p != '[') {
                    seterr(err, n, "\"%s\" must be an array of numbers", o->vector_field);
                    goto bad;
                }
                int in_tmp = r->dim == 0;
                float *dst;
                size_t cap;
                if (in_tmp) {
                    /* first row: the dimension is unknown, count on the fly */
                    const char *q = p + 1;
                    size_t commas = 1;
                    for (; q < e && *q != ']'; q++) commas += *q == ',';
                    if (grow_tmp(r, commas)) goto oom;
                    dst = r->tmpv;
                    cap = r->tmpcap;
                } else {
                    if (batch_dim(b, r->dim) != NY_OK) return -2;
                    dst = vec_dest(r, b);
                    cap = r->dim;
                }
                long cnt = parse_numbers(p + 1, e, 1, dst, cap, err, n, &p);
                if (cnt < 0) goto bad;
                int vr = vec_store(r, b, cnt, in_tmp, err, n);
                if (vr == -2) return -2;
                if (vr < 0) goto bad;
                have_vec = 1;
            } else if (klen != (size_t)-1 && key_is(k, klen, o->id_field)) {
                if (have_id) {
                    seterr(err, n, "duplicate \"%s\" field", o->id_field);
                    goto bad;
                }
                const char *q = skip_value(p, e, 0, err, n);
                if (!q) goto bad;
                if (*p == 'n' && o->auto_id) { /* "id": null -> automatic id */
                    p = q;
                } else {
                    if (parse_id(p, q, id, err, n)) goto bad;
                    have_id = 1;
                    p = q;
                }
            } else if (o->payload_field && klen != (size_t)-1 && key_is(k, klen, o->payload_field)) {
                const char *q = skip_value(p, e, 0, err, n);
                if (!q) goto bad;
                if (*p == '{') pobj = p, pobj_end = q;
                else if (*p != 'n') {
                    seterr(err, n, "\"%s\" must be a JSON object", o->payload_field);
                    goto bad;
                }
                p = q;
            } else {
                const char *vs = p;
                if (!(p = skip_value(p, e, 0, err, n))) goto bad;
                if (!o->payload_field) {
                    if ((members && aputc(b, ',')) || aput(b, ks, (size_t)(vs - ks)) || aput(b, vs, (size_t)(p - vs)))
                        goto oom;
                    members++;
                }
            }
            p = skip_ws(p, e);
            if (p < e && *p == ',') {
                p = skip_ws(p + 1, e);
                continue;
            }
            if (p < e && *p == '}') {
                p++;
                break;
            }
            seterr(err, n, "unparsable JSON: expected ',' or '}'");
            goto bad;
        }
    }
    p = skip_ws(p, e);
    if (p != e) {
        seterr(err, n, "unparsable JSON: characters after the object");
        goto bad;
    }
    if (!have_vec) {
        seterr(err, n, "no \"%s\" field", o->vector_field);
        goto bad;
    }
    if (!have_id) {
        if (!o->auto_id && need_vector) {
            seterr(err, n, "no \"%s\" field (use --auto-id to number rows)", o->id_field);
            goto bad;
        }
        *id = num_id(o->id_offset + r->grow);
    }
    if (pobj) {
        b->alen = a0;
        if (aput(b, pobj, (size_t)(pobj_end - pobj)) || aputc(b, 0)) goto oom;
        *pl = a0;
    } else if (members) {
        if (aputc(b, '}') || aputc(b, 0)) goto oom;
        *pl = a0;
    } else {
        b->alen = a0;
        *pl = SIZE_MAX;
    }
    return 1;
bad:
    b->alen = a0;
    return -1;
oom:
    b->alen = a0;
    ny_error(NY_ENOMEM, "out of memory (payload)");
    return -2;
}

static int next_jsonl(ing_reader *r, ing_batch *b, char *err, size_t n, uint64_t *bad_line)
{
    for (;;) {
        const char *p;
        size_t len;
        int lr = get_line(r, &p, &len);
        if (lr < 0) return lr;
        if (lr == 0) return ING_EOF;
        *bad_line = r->line;
        if (lr == 2) {
            r->row++, r->grow++;
            seterr(err, n, "line longer than %zu bytes (--max-line)", r->max_line);
            return ING_BAD;
        }
        ny_point_id id;
        size_t pl;
        int jr = jsonl_row(r, b, p, len, 1, &id, &pl, err, n);
        if (jr == 0) continue;
        if (jr == -2) return NY_ENOMEM;
        if (jr < 0) {
            r->row++, r->grow++;
            return ING_BAD;
        }
        row_done(r, b, &id, pl);
        return ING_ROW;
    }
}

/* ===== CSV / TSV ======================================================== */

/* Reads one record (joining lines while a quote is open) into r->rec.
 * Returns 1, 0 (end), 2 (too long), or < 0. */
static int csv_record(ing_reader *r, size_t *len, uint64_t *first_line)
{
    size_t rl = 0;
    int quotes = 0, started = 0;
    for (;;) {
        const char *p;
        size_t l;
        int lr = get_line(r, &p, &l);
        if (lr < 0) return lr;
        if (lr == 0) {
            if (!started) return 0;
            break; /* unterminated quote at the end: the field parser reports it */
        }
        if (!started) *first_line = r->line;
        if (lr == 2) return 2;
        if (!started && l == 0) continue; /* blank line */
        if (rl + l + 2 > r->max_line) return 2;
        if (rl + l + 2 > r->rcap) {
            size_t c = r->rcap ? r->rcap : 4096;
            while (c < rl + l + 2) c *= 2;
            char *t = realloc(r->rec, c);
            if (!t) return ny_error(NY_ENOMEM, "out of memory (CSV record)");
            r->rec = t;
            r->rcap = c;
        }
        if (started) r->rec[rl++] = '\n';
        memcpy(r->rec + rl, p, l);
        rl += l;
        started = 1;
        for (size_t i = 0; i < l; i++) quotes ^= p[i] == '"';
        if (!quotes) break;
    }
    r->rec[rl] = 0;
    *len = rl;
    return 1;
}

/* Splits r->rec[0..len) into fields in place.  Returns the field count or
 * -1 with err. */
static long csv_split(ing_reader *r, size_t len, char *err, size_t n)
{
    char *s = r->rec;
    size_t rd = 0, w = 0;
    long nf = 0;
    for (;;) {
        if ((size_t)nf >= r->fcap) {
            size_t c = r->fcap ? r->fcap * 2 : 16;
            size_t *a = realloc(r->fstart, c * sizeof *a), *b2;
            if (!a) return -2;
            r->fstart = a;
            b2 = realloc(r->flen, c * sizeof *b2);
            if (!b2) return -2;
            r->flen = b2;
            r->fcap = c;
        }
        size_t start = w;
        if (rd < len && s[rd] == '"') {
            rd++;
            for (;;) {
                if (rd >= len) {
                    seterr(err, n, "unterminated quoted field %ld", nf + 1);
                    return -1;
                }
                if (s[rd] == '"') {
                    if (rd + 1 < len && s[rd + 1] == '"') {
                        s[w++] = '"';
                        rd += 2;
                        continue;
                    }
                    rd++;
                    break;
                }
                s[w++] = s[rd++];
            }
            if (rd < len && s[rd] != r->delim) {
                seterr(err, n, "field %ld: characters after the closing quote", nf + 1);
                return -1;
            }
        } else {
            while (rd < len && s[rd] != r->delim) s[w++] = s[rd++];
        }
        r->fstart[nf] = start;
        r->flen[nf] = w - start;
        nf++;
        if (rd >= len) break;
        rd++; /* delimiter */
    }
    return nf;
}

static int json_escape(ing_batch *b, const char *s, size_t len)
{
    if (aputc(b, '"')) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char t[2] = {'\\', (char)c};
            if (aput(b, t, 2)) return -1;
        } else if (c < 0x20) {
            char t[8];
            snprintf(t, sizeof t, "\\u%04x", c);
            if (aput(b, t, 6)) return -1;
        } else if (c >= 0x80) {
            int k = utf8_seq((const unsigned char *)s + i, (const unsigned char *)s + len);
            if (!k) return -2;
            if (aput(b, s + i, (size_t)k)) return -1;
            i += (size_t)k - 1;
        } else if (aputc(b, (char)c)) {
            return -1;
        }
    }
    return aputc(b, '"');
}

static int csv_header(ing_reader *r)
{
    size_t len;
    uint64_t line = 0;
    int rc = csv_record(r, &len, &line);
    if (rc < 0) return rc;
    if (rc == 0) return ny_error(NY_EINVAL, "%s: empty file (a header line with column names is required)", r->path);
    if (rc == 2) return ny_error(NY_EINVAL, "%s:%llu: header line too long", r->path, (unsigned long long)line);
    char err[200];
    long nf = csv_split(r, len, err, sizeof err);
    if (nf == -2) return ny_error(NY_ENOMEM, "out of memory");
    if (nf < 0) return ny_error(NY_EINVAL, "%s:%llu: header: %s", r->path, (unsigned long long)line, err);
    r->cols = calloc((size_t)nf, sizeof *r->cols);
    if (!r->cols) return ny_error(NY_ENOMEM, "out of memory");
    r->ncols = (size_t)nf;
    r->id_col = r->vec_col = -1;
    for (long i = 0; i < nf; i++) {
        r->cols[i] = strndup(r->rec + r->fstart[i], r->flen[i]);
        if (!r->cols[i]) return ny_error(NY_ENOMEM, "out of memory");
        if (!strcmp(r->cols[i], r->o->vector_field)) r->vec_col = (int)i;
        else if (!strcmp(r->cols[i], r->o->id_field)) r->id_col = (int)i;
    }
    if (r->vec_col < 0)
        return ny_error(NY_EINVAL, "%s: no column named '%s' in the header (use --vector-field)", r->path,
                        r->o->vector_field);
    if (r->id_col < 0 && !r->o->auto_id)
        return ny_error(NY_EINVAL, "%s: no column named '%s' in the header (use --id-field, or --auto-id)", r->path,
                        r->o->id_field);
    r->data_start = ing_offset(r);
    return NY_OK;
}

static int next_csv(ing_reader *r, ing_batch *b, char *err, size_t n, uint64_t *bad_line)
{
    size_t len;
    int rc = csv_record(r, &len, bad_line);
    if (rc < 0) return rc;
    if (rc == 0) return ING_EOF;
    r->row++, r->grow++; /* undone below on success (row_done counts it) */
    if (rc == 2) {
        seterr(err, n, "record longer than %zu bytes (--max-line)", r->max_line);
        return ING_BAD;
    }
    long nf = csv_split(r, len, err, n);
    if (nf == -2) return ny_error(NY_ENOMEM, "out of memory");
    if (nf < 0) return ING_BAD;
    if ((size_t)nf != r->ncols) {
        seterr(err, n, "record has %ld fields, the header has %zu", nf, r->ncols);
        return ING_BAD;
    }
    ny_point_id id;
    if (r->id_col >= 0 && r->flen[r->id_col] > 0) {
        char tmp[64];
        size_t l = r->flen[r->id_col];
        if (l >= sizeof tmp) {
            seterr(err, n, "id is not an unsigned integer or a UUID");
            return ING_BAD;
        }
        memcpy(tmp, r->rec + r->fstart[r->id_col], l);
        tmp[l] = 0;
        if (ny_point_id_parse(tmp, &id) != NY_OK) {
            seterr(err, n, "id '%s' is not an unsigned integer or a UUID", tmp);
            return ING_BAD;
        }
    } else if (r->o->auto_id) {
        id = num_id(r->o->id_offset + r->grow - 1);
    } else {
        seterr(err, n, "missing id (column '%s' is empty)", r->o->id_field);
        return ING_BAD;
    }
    const char *vp = r->rec + r->fstart[r->vec_col], *ve = vp + r->flen[r->vec_col];
    vp = skip_ws(vp, ve);
    while (ve > vp && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    if (vp < ve && *vp == '[') {
        vp++;
        if (ve > vp && ve[-1] == ']') ve--;
        else {
            seterr(err, n, "vector: '[' without ']'");
            return ING_BAD;
        }
    }
    int in_tmp = r->dim == 0;
    float *dst;
    size_t cap;
    if (in_tmp) {
        size_t seps = 1;
        for (const char *q = vp; q < ve; q++) seps += *q == ',' || *q == ' ' || *q == ';' || *q == '\t';
        if (grow_tmp(r, seps)) return ny_error(NY_ENOMEM, "out of memory");
        dst = r->tmpv;
        cap = r->tmpcap;
    } else {
        if (batch_dim(b, r->dim) != NY_OK) return NY_ENOMEM;
        dst = vec_dest(r, b);
        cap = r->dim;
    }
    const char *endp;
    long cnt = parse_numbers(vp, ve, 0, dst, cap, err, n, &endp);
    if (cnt < 0) return ING_BAD;
    int vr = vec_store(r, b, cnt, in_tmp, err, n);
    if (vr == -2) return NY_ENOMEM;
    if (vr < 0) return ING_BAD;
    size_t a0 = b->alen;
    int members = 0;
    for (size_t i = 0; i < r->ncols; i++) {
        if ((int)i == r->id_col || (int)i == r->vec_col || r->flen[i] == 0) continue;
        const char *f = r->rec + r->fstart[i];
        size_t fl = r->flen[i];
        if (aputc(b, members ? ',' : '{') || json_escape(b, r->cols[i], strlen(r->cols[i])) < 0 || aputc(b, ':'))
            return ny_error(NY_ENOMEM, "out of memory");
        const char *q = skip_number(f, f + fl);
        int er = 0;
        if ((q && q == f + fl) || (fl == 4 && !memcmp(f, "true", 4)) || (fl == 5 && !memcmp(f, "false", 5))) {
            if (aput(b, f, fl)) er = -1;
        } else {
            er = json_escape(b, f, fl);
        }
        if (er == -1) return ny_error(NY_ENOMEM, "out of memory");
        if (er == -2) {
            b->alen = a0;
            seterr(err, n, "column '%s': invalid UTF-8", r->cols[i]);
            return ING_BAD;
        }
        members++;
    }
    size_t pl = SIZE_MAX;
    if (members) {
        if (aputc(b, '}') || aputc(b, 0)) return ny_error(NY_ENOMEM, "out of memory");
        pl = a0;
    }
    r->row--, r->grow--;
    uint64_t keep = r->line;
    r->line = *bad_line; /* report the record's first line */
    row_done(r, b, &id, pl);
    r->line = keep;
    return ING_ROW;
}

/* ===== Binary formats =================================================== */

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1F, m = h & 0x3FF, bits;
    if (e == 0) {
        if (m == 0) bits = s;
        else {
            float f = ldexpf((float)m, -24);
            return s ? -f : f;
        }
    } else if (e == 31) {
        bits = s | 0x7F800000u | (m << 13);
    } else {
        bits = s | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Reads the payload line of a binary row from the payloads file. */
static int aux_row(ing_reader *r, ing_batch *b, ny_point_id *id, size_t *pl, char *err, size_t n)
{
    ing_reader *a = r->aux;
    for (;;) {
        const char *p;
        size_t len;
        int lr = get_line(a, &p, &len);
        if (lr < 0) return lr;
        if (lr == 0) {
            seterr(err, n, "%s has no line for this row (it has %llu rows)", a->path, (unsigned long long)a->row);
            return -1;
        }
        if (lr == 2) {
            a->row++;
            seterr(err, n, "%s:%llu: line longer than %zu bytes", a->path, (unsigned long long)a->line, a->max_line);
            return -1;
        }
        char e2[200];
        ny_point_id aid;
        a->grow = r->grow;
        int jr = jsonl_row(a, b, p, len, 0, &aid, pl, e2, sizeof e2);
        if (jr == 0) continue;
        if (jr == -2) return NY_ENOMEM;
        a->row++;
        if (jr < 0) {
            seterr(err, n, "%s:%llu: %s", a->path, (unsigned long long)a->line, e2);
            return -1;
        }
        *id = aid;
        return 0;
    }
}

static int finish_binary_row(ing_reader *r, ing_batch *b, char *err, size_t n)
{
    ny_point_id id = num_id(r->o->id_offset + r->grow);
    size_t pl = SIZE_MAX;
    if (r->aux) {
        int ar = aux_row(r, b, &id, &pl, err, n);
        if (ar < -1) return ar;
        if (ar < 0) return ING_BAD;
    }
    if (!ny_all_finite(vec_dest(r, b), r->dim)) {
        const float *v = vec_dest(r, b);
        size_t i = 0;
        while (i < r->dim && isfinite(v[i])) i++;
        b->alen = pl == SIZE_MAX ? b->alen : pl;
        seterr(err, n, "vector component %zu is %s", i, isnan(v[i]) ? "NaN" : "infinite");
        return ING_BAD;
    }
    row_done(r, b, &id, pl);
    return ING_ROW;
}

static int next_fvecs(ing_reader *r, ing_batch *b, char *err, size_t n, uint64_t *bad_line)
{
    long long av = ensure(r, 4);
    if (av < 0) return (int)av;
    if (av == 0) return ING_EOF;
    *bad_line = r->line + 1;
    if (av < 4) {
        r->bpos = r->blen;
        r->line++;
        seterr(err, n, "file ends inside record %llu (truncated)", (unsigned long long)r->line);
        return ING_BAD;
    }
    int32_t d;
    memcpy(&d, r->buf + r->bpos, 4);
    if (d <= 0 || (uint32_t)d > MAX_DIM)
        return ny_error(NY_ECORRUPT, "%s: record %llu has dimension %d: not an fvecs file or corrupt", r->path,
                        (unsigned long long)r->line + 1, (int)d);
    size_t rec = 4 + (size_t)d * 4;
    av = ensure(r, rec);
    if (av < 0) return (int)av;
    r->line++;
    if ((size_t)av < rec) {
        r->bpos = r->blen;
        seterr(err, n, "file ends inside record %llu (truncated)", (unsigned long long)r->line);
        return ING_BAD;
    }
    if (r->dim == 0) r->dim = (size_t)d;
    if ((size_t)d != r->dim) {
        r->bpos += rec;
        r->row++, r->grow++;
        if (r->aux) {
            ny_point_id tid;
            size_t pl;
            size_t a0 = b->alen;
            char e2[8];
            aux_row(r, b, &tid, &pl, e2, sizeof e2);
            b->alen = a0;
        }
        seterr(err, n, "record has dimension %d, expected %zu", (int)d, r->dim);
        return ING_BAD;
    }
    if (batch_dim(b, r->dim) != NY_OK) return NY_ENOMEM;
    memcpy(vec_dest(r, b), r->buf + r->bpos + 4, r->dim * 4);
    r->bpos += rec;
    int rc = finish_binary_row(r, b, err, n);
    if (rc == ING_BAD) r->row++, r->grow++;
    return rc;
}

static int next_npy(ing_reader *r, ing_batch *b, char *err, size_t n, uint64_t *bad_line)
{
    if (r->row >= r->npy_rows) return ING_EOF;
    size_t rb = r->dim * (size_t)r->npy_bytes;
    long long av = ensure(r, rb);
    if (av < 0) return (int)av;
    *bad_line = r->line + 1;
    if ((size_t)av < rb)
        return ny_error(NY_ECORRUPT, "%s: truncated: the header promises %llu rows, the file ends in row %llu", r->path,
                        (unsigned long long)r->npy_rows, (unsigned long long)r->row);
    if (batch_dim(b, r->dim) != NY_OK) return NY_ENOMEM;
    float *dst = vec_dest(r, b);
    const unsigned char *s = (const unsigned char *)r->buf + r->bpos;
    size_t nb = (size_t)r->npy_bytes;
    for (size_t i = 0; i < r->dim; i++) {
        unsigned char t[8];
        memcpy(t, s + i * nb, nb);
        if (r->npy_swap)
            for (size_t k = 0; k < nb / 2; k++) {
                unsigned char x = t[k];
                t[k] = t[nb - 1 - k];
                t[nb - 1 - k] = x;
            }
        if (nb == 4) memcpy(&dst[i], t, 4);
        else if (nb == 2) dst[i] = half_to_float(rd16(t));
        else {
            double d;
            memcpy(&d, t, 8);
            dst[i] = (float)d;
        }
    }
    r->bpos += rb;
    r->line++;
    int rc = finish_binary_row(r, b, err, n);
    if (rc == ING_BAD) r->row++, r->grow++;
    return rc;
}

static int npy_header(ing_reader *r)
{
    long long av = ensure(r, 10);
    if (av < 0) return (int)av;
    const unsigned char *u = (const unsigned char *)r->buf + r->bpos;
    if (av < 10 || memcmp(u, "\x93NUMPY", 6) != 0) return ny_error(NY_ECORRUPT, "%s: not a .npy file (bad magic)", r->path);
    int major = u[6];
    size_t hl, hs;
    if (major == 1) {
        hl = rd16(u + 8);
        hs = 10;
    } else if (major == 2 || major == 3) {
        av = ensure(r, 12);
        if (av < 12) return ny_error(NY_ECORRUPT, "%s: truncated .npy header", r->path);
        u = (const unsigned char *)r->buf + r->bpos;
        hl = rd32(u + 8);
        hs = 12;
    } else {
        return ny_error(NY_EINVAL, "%s: unsupported .npy version %d", r->path, major);
    }
    if (hl > (1u << 20)) return ny_error(NY_ECORRUPT, "%s: .npy header of %zu bytes is implausible", r->path, hl);
    av = ensure(r, hs + hl);
    if (av < 0) return (int)av;
    if ((size_t)av < hs + hl) return ny_error(NY_ECORRUPT, "%s: truncated .npy header", r->path);
    char *h = strndup(r->buf + r->bpos + hs, hl);
    if (!h) return ny_error(NY_ENOMEM, "out of memory");
    int rc = NY_OK;
    char *d = strstr(h, "'descr'"), *fo = strstr(h, "'fortran_order'"), *sh = strstr(h, "'shape'");
    if (!d || !fo || !sh) {
        rc = ny_error(NY_ECORRUPT, "%s: .npy header lacks descr, fortran_order or shape: %s", r->path, h);
        goto out;
    }
    d = strchr(d + 7, ':');
    while (d && (*++d == ' ')) {}
    if (!d || (*d != '\'' && *d != '"')) {
        rc = ny_error(NY_ECORRUPT, "%s: bad descr in .npy header", r->path);
        goto out;
    }
    char q = *d++;
    char *de = strchr(d, q);
    if (!de) {
        rc = ny_error(NY_ECORRUPT, "%s: bad descr in .npy header", r->path);
        goto out;
    }
    *de = 0;
    if (strlen(d) != 3 || !strchr("<>=|", d[0]) || d[1] != 'f' || !strchr("248", d[2])) {
        rc = ny_error(NY_EINVAL, "%s: dtype '%s' is not supported (float16, float32 or float64 only)", r->path, d);
        goto out;
    }
    r->npy_bytes = d[2] - '0';
    r->npy_swap = d[0] == '>';
    fo = strchr(fo + 15, ':');
    while (fo && (*++fo == ' ')) {}
    if (!fo || strncmp(fo, "False", 5) != 0) {
        rc = ny_error(NY_EINVAL, "%s: fortran_order is True: only C-order arrays are supported (np.ascontiguousarray)",
                      r->path);
        goto out;
    }
    sh = strchr(sh + 7, '(');
    if (!sh) {
        rc = ny_error(NY_ECORRUPT, "%s: bad shape in .npy header", r->path);
        goto out;
    }
    unsigned long long dims[4];
    int nd = 0;
    char *p = sh + 1;
    for (;;) {
        while (*p == ' ') p++;
        if (*p == ')') break;
        char *pe;
        errno = 0;
        unsigned long long v = strtoull(p, &pe, 10);
        if (pe == p || errno || nd == 4) {
            rc = ny_error(NY_ECORRUPT, "%s: bad shape in .npy header", r->path);
            goto out;
        }
        dims[nd++] = v;
        p = pe;
        while (*p == ' ') p++;
        if (*p == ',') p++;
    }
    if (nd != 2) {
        rc = ny_error(NY_EINVAL, "%s: shape has %d dimensions: expected a 2-D array (rows, dim)", r->path, nd);
        goto out;
    }
    if (dims[1] == 0 || dims[1] > MAX_DIM) {
        rc = ny_error(NY_EINVAL, "%s: vector dimension %llu out of range 1..%u", r->path, dims[1], MAX_DIM);
        goto out;
    }
    if (r->dim && r->dim != dims[1]) {
        rc = ny_error(NY_EDIM, "%s: vectors have dimension %llu, the collection has %zu", r->path, dims[1], r->dim);
        goto out;
    }
    r->dim = (size_t)dims[1];
    r->npy_rows = dims[0];
    r->bpos += hs + hl;
    r->data_start = ing_offset(r);
out:
    free(h);
    return rc;
}

/* ===== Open / close / seek ============================================== */

static int open_fd(ing_reader *r, const char *path)
{
    if (!strcmp(path, "-")) {
        r->fd = 0;
        snprintf(r->path, sizeof r->path, "<stdin>");
        return NY_OK;
    }
    snprintf(r->path, sizeof r->path, "%s", path);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "cannot open %s", path);
    r->owns_fd = 1;
    struct stat st;
    if (fstat(r->fd, &st) == 0 && S_ISREG(st.st_mode)) {
        r->size = (uint64_t)st.st_size;
#ifdef POSIX_FADV_SEQUENTIAL
        posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    }
    return NY_OK;
}

int ing_open(ing_reader *r, const char *path, ing_fmt fmt, uint32_t file_index, size_t dim, const ing_opts *o)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->fmt = fmt;
    r->o = o;
    r->file_index = file_index;
    r->dim = dim;
    r->max_line = o->max_line ? o->max_line : (64u << 20);
    r->bcap = INBUF;
    r->buf = malloc(r->bcap);
    if (!r->buf) return ny_error(NY_ENOMEM, "out of memory");
    int rc = open_fd(r, path);
    if (rc == NY_OK) {
        switch (fmt) {
        case FMT_NPY:
            rc = npy_header(r);
            break;
        case FMT_CSV:
        case FMT_TSV:
            r->delim = fmt == FMT_CSV ? ',' : '\t';
            rc = csv_header(r);
            break;
        case FMT_FVECS: {
            long long av = ensure(r, 4);
            if (av < 0) {
                rc = (int)av;
            } else if (av == 4) {
                int32_t d;
                memcpy(&d, r->buf + r->bpos, 4);
                if (d <= 0 || (uint32_t)d > MAX_DIM)
                    rc = ny_error(NY_ECORRUPT, "%s: first record has dimension %d: not an .fvecs file?", r->path, (int)d);
                else if (r->dim && (size_t)d != r->dim)
                    rc = ny_error(NY_EDIM, "%s: vectors have dimension %d, the collection has %zu", r->path, (int)d,
                                  r->dim);
                else
                    r->dim = (size_t)d;
            }
            break;
        }
        case FMT_JSONL:
            break;
        default:
            rc = ny_error(NY_EINVAL, "%s: unknown format", path);
        }
    }
    if (rc == NY_OK && o->payloads_path && (fmt == FMT_FVECS || fmt == FMT_NPY)) {
        r->aux = malloc(sizeof *r->aux);
        if (!r->aux) rc = ny_error(NY_ENOMEM, "out of memory");
        else {
            rc = ing_open(r->aux, o->payloads_path, FMT_JSONL, file_index, 0, o);
            if (rc != NY_OK) {
                free(r->aux);
                r->aux = NULL;
            }
        }
    }
    if (rc != NY_OK) ing_close(r);
    return rc;
}

void ing_close(ing_reader *r)
{
    if (r->owns_fd && r->fd >= 0) close(r->fd);
    r->fd = -1;
    free(r->buf);
    for (size_t i = 0; i < r->ncols; i++) free(r->cols[i]);
    free(r->cols);
    free(r->rec);
    free(r->fstart);
    free(r->flen);
    free(r->tmpv);
    free(r->kbuf);
    if (r->aux) {
        ing_close(r->aux);
        free(r->aux);
    }
    r->buf = NULL;
    r->cols = NULL;
    r->ncols = 0;
    r->rec = NULL;
    r->fstart = r->flen = NULL;
    r->tmpv = NULL;
    r->kbuf = NULL;
    r->aux = NULL;
}

uint64_t ing_offset(const ing_reader *r) { return r->boff + r->bpos; }

static int seek_one(ing_reader *r, uint64_t off, uint64_t row, uint64_t line)
{
    if (off < ing_offset(r) && off != 0)
        return ny_error(NY_EINVAL, "%s: resume offset %llu is inside the header", r->path, (unsigned long long)off);
    if (off == 0) return NY_OK;
    if (r->size && off > r->size)
        return ny_error(NY_EINVAL, "%s: resume offset %llu is past the end of the file (%llu bytes): the file changed?",
                        r->path, (unsigned long long)off, (unsigned long long)r->size);
    if (r->owns_fd) {
        if (lseek(r->fd, (off_t)off, SEEK_SET) < 0) return ny_error_errno(NY_EIO, "%s: cannot seek", r->path);
        r->boff = off;
        r->bpos = r->blen = 0;
        r->eof = 0;
    } else { /* a pipe: read and discard */
        while (ing_offset(r) < off) {
            uint64_t want = off - ing_offset(r);
            long long av = ensure(r, want < r->bcap / 2 ? (size_t)want : r->bcap / 2);
            if (av < 0) return (int)av;
            if (av == 0) return ny_error(NY_EINVAL, "%s: input ends before the resume offset", r->path);
            r->bpos += (size_t)av;
        }
    }
    r->row = row;
    r->line = line;
    return NY_OK;
}

int ing_seek(ing_reader *r, uint64_t off, uint64_t row, uint64_t line, uint64_t aux_off, uint64_t aux_row,
             uint64_t aux_line)
{
    int rc = seek_one(r, off, row, line);
    if (rc == NY_OK && r->aux) rc = seek_one(r->aux, aux_off, aux_row, aux_line);
    return rc;
}

int ing_next(ing_reader *r, ing_batch *b, char *err, size_t errlen, uint64_t *bad_line)
{
    err[0] = 0;
    *bad_line = 0;
    if (b->n >= b->cap) return ny_error(NY_EINTERNAL, "batch is full");
    switch (r->fmt) {
    case FMT_FVECS:
        return next_fvecs(r, b, err, errlen, bad_line);
    case FMT_NPY:
        return next_npy(r, b, err, errlen, bad_line);
    case FMT_JSONL:
        return next_jsonl(r, b, err, errlen, bad_line);
    case FMT_CSV:
    case FMT_TSV:
        return next_csv(r, b, err, errlen, bad_line);
    default:
        return ny_error(NY_EINVAL, "unknown format");
    }
}
