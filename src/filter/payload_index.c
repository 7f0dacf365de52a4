/*
 * payload_index.c -- per-field payload indexes (see payload_index.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "filter/path.h"
#include "filter/payload_index.h"
#include "filter/values.h"

enum { T_KEYWORD, T_UUID, T_BOOL, T_TEXT, T_GEO, T_INTEGER, T_FLOAT, T_DATETIME };

static const char *const type_names[] = {"keyword", "uuid", "bool", "text", "geo", "integer", "float", "datetime", NULL};

static int is_numeric(int t) { return t == T_INTEGER || t == T_FLOAT || t == T_DATETIME; }

/* Geo cells: two levels so that both small and large areas map to few. */
#define GEO_FINE 0.1
#define GEO_COARSE 1.0
#define GEO_MAX_CELLS 4096
#define GEO_MAX_COARSE 65536

typedef struct kent {
    uint64_t key;
    roaring_bitmap_t *bm; /* NULL: free slot */
} kent;

typedef struct rec {
    uint32_t n;
    union {
        uint64_t one;
        uint64_t *many;
    } u;
} rec;

static inline uint64_t *rec_vals(rec *r) { return r->n <= 1 ? &r->u.one : r->u.many; }

typedef struct field {
    char *name;
    ny_path path;
    int type;
    int is_tenant;
    int broken; /* an update failed: do not answer lookups */
    ny_ftparams tp;
    /* key types */
    kent *tab;
    size_t tcap, tn;
    /* numeric types: [0, nsorted) sorted by value, [nsorted, nnum) recent */
    double *nv;
    uint32_t *nid;
    size_t nsorted, nnum, ncap, nstale;
    /* per vid: what was indexed */
    rec *recs;
    uint32_t rcap;
} field;

struct ny_pindex {
    field **f;
    size_t n;
};

/* ===== Key table ========================================================= */

static kent *tab_find(const field *f, uint64_t key)
{
    if (!f->tcap) return NULL;
    size_t m = f->tcap - 1;
    for (size_t i = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & m;; i = (i + 1) & m) {
        if (!f->tab[i].bm) return NULL;
        if (f->tab[i].key == key) return &f->tab[i];
    }
}

static int tab_grow(field *f)
{
    size_t nc = f->tcap ? f->tcap * 2 : 64;
    kent *nt = calloc(nc, sizeof *nt);
    if (!nt) return ny_error(NY_ENOMEM, "out of memory (payload index)");
    for (size_t j = 0; j < f->tcap; j++) {
        if (!f->tab[j].bm) continue;
        size_t i = (size_t)(f->tab[j].key * 0x9E3779B97F4A7C15ull >> 20) & (nc - 1);
        while (nt[i].bm) i = (i + 1) & (nc - 1);
        nt[i] = f->tab[j];
    }
    free(f->tab);
    f->tab = nt;
    f->tcap = nc;
    return NY_OK;
}

static roaring_bitmap_t *tab_get_or_add(field *f, uint64_t key)
{
    kent *e = tab_find(f, key);
    if (e) return e->bm;
    if ((f->tn + 1) * 4 > f->tcap * 3 && tab_grow(f) != NY_OK) return NULL;
    size_t m = f->tcap - 1, i = (size_t)(key * 0x9E3779B97F4A7C15ull >> 20) & m;
    while (f->tab[i].bm) i = (i + 1) & m;
    roaring_bitmap_t *bm = roaring_bitmap_create();
    if (!bm) return NULL;
    f->tab[i].key = key;
    f->tab[i].bm = bm;
    f->tn++;
    return bm;
}

/* ===== Keys and values of a payload ===================================== */

static uint64_t str_key(const char *s, size_t len) { return ny_hash64(s, len); }

static uint64_t geo_cell(int level, double lon, double lat)
{
    double s = level ? GEO_COARSE : GEO_FINE;
    if (lat < -90) lat = -90;
    if (lat > 90) lat = 90;
    if (lon < -180) lon = -180;
    if (lon > 180) lon = 180;
    uint64_t ilat = (uint64_t)floor((lat + 90) / s), ilon = (uint64_t)floor((lon + 180) / s);
    return ((uint64_t)level << 56) | (ilat << 28) | ilon;
}

typedef struct kbuf {
    uint64_t *v;
    size_t n, cap;
    int oom;
} kbuf;

static void kb_push(kbuf *b, uint64_t x)
{
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 16;
        uint64_t *nv = realloc(b->v, nc * sizeof *nv);
        if (!nv) {
            b->oom = 1;
            return;
        }
        b->v = nv;
        b->cap = nc;
    }
    b->v[b->n++] = x;
}

typedef struct vctx {
    const field *f;
    kbuf *b;
} vctx;

static int tok_cb(const char *t, size_t len, void *ctx)
{
    kb_push(ctx, str_key(t, len));
    return 0;
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int value_cb(const json_t *v, void *ctx)
{
    vctx *c = ctx;
    if (json_is_array(v)) { /* flatten (a superset of what the filter looks at) */
        size_t n = json_array_size(v);
        for (size_t i = 0; i < n; i++) value_cb(json_array_get(v, i), ctx);
        return 0;
    }
    switch (c->f->type) {
    case T_KEYWORD:
    case T_UUID:
        if (json_is_string(v)) kb_push(c->b, str_key(json_string_value(v), json_string_length(v)));
        break;
    case T_BOOL:
        if (json_is_boolean(v)) kb_push(c->b, json_is_true(v) ? 1 : 2);
        break;
    case T_TEXT:
        if (json_is_string(v)) ny_ft_tokens(&c->f->tp, json_string_value(v), json_string_length(v), tok_cb, c->b);
        break;
    case T_GEO: {
        const json_t *x = json_is_object(v) ? json_object_get(v, "lon") : NULL;
        const json_t *y = json_is_object(v) ? json_object_get(v, "lat") : NULL;
        if (json_is_number(x) && json_is_number(y)) {
            kb_push(c->b, geo_cell(0, json_number_value(x), json_number_value(y)));
            kb_push(c->b, geo_cell(1, json_number_value(x), json_number_value(y)));
        }
        break;
    }
    case T_INTEGER:
    case T_FLOAT:
        if (json_is_number(v)) kb_push(c->b, dbits(json_number_value(v)));
        break;
    case T_DATETIME: {
        ny_dt t;
        if (json_is_string(v) && ny_dt_parse(json_string_value(v), json_string_length(v), &t) == 0)
            kb_push(c->b, dbits((double)t.sec + (double)t.nsec * 1e-9));
        break;
    }
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* ===== Numeric array ===================================================== */

typedef struct nv_pair {
    double v;
    uint32_t id;
} nv_pair;

static int cmp_pair(const void *a, const void *b)
{
    const nv_pair *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int num_reserve(field *f, size_t need)
{
    if (need <= f->ncap) return NY_OK;
    size_t nc = f->ncap ? f->ncap : 1024;
    while (nc < need) nc *= 2;
    double *nv = realloc(f->nv, nc * sizeof *nv);
    if (!nv) return ny_error(NY_ENOMEM, "out of memory (payload index)");
    f->nv = nv;
    uint32_t *ni = realloc(f->nid, nc * sizeof *ni);
    if (!ni) return ny_error(NY_ENOMEM, "out of memory (payload index)");
    f->nid = ni;
    f->ncap = nc;
    return NY_OK;
}

/* Rebuilds the sorted array from the per-vid records (drops stale entries). */
static int num_rebuild(field *f)
{
    size_t total = 0;
    for (uint32_t v = 0; v < f->rcap; v++) total += f->recs[v].n;
    nv_pair *p = malloc((total ? total : 1) * sizeof *p);
    if (!p) return ny_error(NY_ENOMEM, "out of memory (payload index)");
    size_t n = 0;
    for (uint32_t v = 0; v < f->rcap; v++) {
        rec *r = &f->recs[v];
        uint64_t *x = rec_vals(r);
        for (uint32_t i = 0; i < r->n; i++) p[n++] = (nv_pair){bitsd(x[i]), v};
    }
    qsort(p, n, sizeof *p, cmp_pair);
    int rc = num_reserve(f, n);
    if (rc == NY_OK) {
        for (size_t i = 0; i < n; i++) {
            f->nv[i] = p[i].v;
            f->nid[i] = p[i].id;
        }
        f->nsorted = f->nnum = n;
        f->nstale = 0;
    }
    free(p);
    return rc;
}

/* ===== Fields ============================================================ */

static void field_free(field *f)
{
    if (!f) return;
    free(f->name);
    ny_path_free(&f->path);
    for (size_t i = 0; i < f->tcap; i++)
        if (f->tab[i].bm) roaring_bitmap_free(f->tab[i].bm);
    free(f->tab);
    free(f->nv);
    free(f->nid);
    for (uint32_t v = 0; v < f->rcap; v++)
        if (f->recs[v].n > 1) free(f->recs[v].u.many);
    free(f->recs);
    free(f);
}

static field *find_field(const ny_pindex *px, const char *name)
{
    for (size_t i = 0; px && i < px->n; i++)
        if (!strcmp(px->f[i]->name, name)) return px->f[i];
    return NULL;
}

int ny_pindex_new(ny_pindex **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? NY_OK : ny_error(NY_ENOMEM, "out of memory (payload index)");
}

void ny_pindex_free(ny_pindex *px)
{
    if (!px) return;
    for (size_t i = 0; i < px->n; i++) field_free(px->f[i]);
    free(px->f);
    free(px);
}

size_t ny_pindex_nfields(const ny_pindex *px) { return px ? px->n : 0; }
int ny_pindex_has_field(const ny_pindex *px, const char *field) { return find_field(px, field) != NULL; }

int ny_pindex_is_tenant(const ny_pindex *px, const char *name)
{
    const field *f = find_field(px, name);
    return f && f->is_tenant;
}

int ny_pindex_add_field(ny_pindex *px, const char *name, const json_t *entry)
{
    const char *type = NULL;
    const json_t *params = NULL;
    if (json_is_string(entry)) {
        type = json_string_value(entry);
    } else if (json_is_object(entry)) {
        const json_t *t = json_object_get(entry, "type"), *dt = json_object_get(entry, "data_type");
        if (json_is_string(t)) {
            type = json_string_value(t);
            params = entry;
        } else if (json_is_string(dt)) {
            type = json_string_value(dt);
            params = json_object_get(entry, "params");
        }
    }
    int t = -1;
    for (int i = 0; type && type_names[i]; i++)
        if (!strcmp(type, type_names[i])) t = i;
    if (t < 0) return ny_error(NY_EINVAL, "payload index on \"%.100s\": unknown field type", name);
    field *f = calloc(1, sizeof *f);
    if (!f) return ny_error(NY_ENOMEM, "out of memory (payload index)");
    char why[256];
    int rc = ny_path_parse(name, &f->path, why, sizeof why);
    if (rc != NY_OK) {
        free(f);
        return ny_error(rc, "payload index: field \"%.100s\": %s", name, why);
    }
    f->type = t;
    f->name = strdup(name);
    if (t == T_TEXT) ny_ft_params(entry, &f->tp);
    const json_t *ten = json_object_get(params, "is_tenant");
    f->is_tenant = t == T_KEYWORD && json_is_true(ten);
    field **nf = f->name ? realloc(px->f, (px->n + 1) * sizeof *nf) : NULL;
    if (!nf) {
        field_free(f);
        return ny_error(NY_ENOMEM, "out of memory (payload index)");
    }
    px->f = nf;
    for (size_t i = 0; i < px->n; i++)
        if (!strcmp(px->f[i]->name, name)) {
            field_free(px->f[i]);
            px->f[i] = f;
            return NY_OK;
        }
    px->f[px->n++] = f;
    return NY_OK;
}

int ny_pindex_drop_field(ny_pindex *px, const char *name)
{
    for (size_t i = 0; px && i < px->n; i++)
        if (!strcmp(px->f[i]->name, name)) {
            field_free(px->f[i]);
            px->f[i] = px->f[--px->n];
            return 1;
        }
    return 0;
}

static int field_update(field *f, uint32_t vid, const json_t *payload)
{
    if (f->broken) return NY_OK;
    if (vid >= f->rcap) {
        if (!payload) return NY_OK; /* nothing indexed there */
        uint32_t nc = f->rcap ? f->rcap : 1024;
        while (nc <= vid) nc = nc > UINT32_MAX / 2 ? UINT32_MAX : nc * 2;
        rec *nr = realloc(f->recs, (size_t)nc * sizeof *nr);
        if (!nr) goto oom;
        memset(nr + f->rcap, 0, (size_t)(nc - f->rcap) * sizeof *nr);
        f->recs = nr;
        f->rcap = nc;
    }
    kbuf b = {0};
    if (payload) {
        vctx c = {f, &b};
        ny_path_walk(f->path.segs, f->path.n, payload, value_cb, &c);
        if (b.oom) goto oom;
        if (b.n > 1) { /* dedupe */
            qsort(b.v, b.n, sizeof *b.v, cmp_u64);
            size_t m = 1;
            for (size_t i = 1; i < b.n; i++)
                if (b.v[i] != b.v[m - 1]) b.v[m++] = b.v[i];
            b.n = m;
        }
    }
    rec *r = &f->recs[vid];
    /* remove the old entries */
    uint64_t *old = rec_vals(r);
    if (is_numeric(f->type)) {
        f->nstale += r->n;
    } else {
        for (uint32_t i = 0; i < r->n; i++) {
            kent *e = tab_find(f, old[i]);
            if (e) roaring_bitmap_remove(e->bm, vid);
        }
    }
    if (r->n > 1) free(r->u.many);
    r->n = 0;
    /* add the new ones */
    if (b.n == 1) {
        r->u.one = b.v[0];
    } else if (b.n > 1) {
        r->u.many = b.v;
        b.v = NULL;
    }
    r->n = (uint32_t)b.n;
    uint64_t *nv = rec_vals(r);
    if (is_numeric(f->type)) {
        if (num_reserve(f, f->nnum + r->n) != NY_OK) goto oom_b;
        for (uint32_t i = 0; i < r->n; i++) {
            f->nv[f->nnum] = bitsd(nv[i]);
            f->nid[f->nnum++] = vid;
        }
        size_t tail = f->nnum - f->nsorted;
        if (tail > 256 + f->nsorted / 8 || f->nstale > 1024 + f->nsorted / 2)
            if (num_rebuild(f) != NY_OK) goto oom_b;
    } else {
        for (uint32_t i = 0; i < r->n; i++) {
            roaring_bitmap_t *bm = tab_get_or_add(f, nv[i]);
            if (!bm) goto oom_b;
            roaring_bitmap_add(bm, vid);
        }
    }
    free(b.v);
    return NY_OK;
oom_b:
    free(b.v);
oom:
    f->broken = 1;
    return ny_error(NY_ENOMEM, "out of memory (payload index on \"%.100s\"; index disabled)", f->name);
}

int ny_pindex_update(ny_pindex *px, uint32_t vid, const json_t *payload)
{
    int rc = NY_OK;
    if (payload && !json_is_object(payload)) payload = NULL;
    for (size_t i = 0; px && i < px->n; i++) {
        int r = field_update(px->f[i], vid, payload);
        if (r != NY_OK) rc = r;
    }
    return rc;
}

int ny_pindex_update_field(ny_pindex *px, const char *name, uint32_t vid, const json_t *payload)
{
    field *f = find_field(px, name);
    if (!f) return ny_error(NY_ENOTFOUND, "no payload index on \"%.100s\"", name);
    if (payload && !json_is_object(payload)) payload = NULL;
    return field_update(f, vid, payload);
}

/* ===== Lookups =========================================================== */

static size_t lower_bound(const double *v, size_t n, double x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static inline void set_bit(uint64_t *w, size_t nw, uint32_t id)
{
    if ((size_t)(id >> 6) < nw) w[id >> 6] |= 1ull << (id & 63);
}

static bool roaring_set_cb(uint32_t id, void *ctx)
{
    uint64_t **w = ctx;
    (*w)[id >> 6] |= 1ull << (id & 63);
    return true;
}

/* Adds a roaring bitmap's ids below nw * 64 to the dense set. */
static void or_roaring(uint64_t *w, size_t nw, const roaring_bitmap_t *bm)
{
    if (!nw) return;
    uint64_t max = roaring_bitmap_maximum(bm);
    if (roaring_bitmap_is_empty(bm)) return;
    if (max < nw * 64) {
        roaring_iterate(bm, roaring_set_cb, &w);
        return;
    }
    roaring_uint32_iterator_t *it = roaring_create_iterator(bm);
    if (!it) return;
    while (it->has_value && it->current_value < nw * 64) {
        set_bit(w, nw, it->current_value);
        roaring_advance_uint32_iterator(it);
    }
    roaring_free_uint32_iterator(it);
}

static uint64_t *num_range(const field *f, size_t nw, double lo, double hi)
{
    uint64_t *w = calloc(nw ? nw : 1, sizeof *w);
    if (!w) return NULL;
    size_t a = lower_bound(f->nv, f->nsorted, lo);
    for (size_t i = a; i < f->nsorted && f->nv[i] <= hi; i++) set_bit(w, nw, f->nid[i]);
    for (size_t i = f->nsorted; i < f->nnum; i++)
        if (f->nv[i] >= lo && f->nv[i] <= hi) set_bit(w, nw, f->nid[i]);
    return w;
}

static uint64_t *key_lookup(const field *f, size_t nw, uint64_t key)
{
    uint64_t *w = calloc(nw ? nw : 1, sizeof *w);
    if (!w) return NULL;
    kent *e = tab_find(f, key);
    if (e) or_roaring(w, nw, e->bm);
    return w;
}

static uint64_t *geo_lookup(const field *f, size_t nw, const ny_fquery *q)
{
    for (int level = 0; level < 2; level++) {
        uint64_t a = geo_cell(level, q->lon_lo, q->lat_lo), b = geo_cell(level, q->lon_hi, q->lat_hi);
        uint64_t mask = (1u << 28) - 1;
        uint64_t lat0 = (a >> 28) & mask, lat1 = (b >> 28) & mask, lon0 = a & mask, lon1 = b & mask;
        double cells = (double)(lat1 - lat0 + 1) * (double)(lon1 - lon0 + 1);
        if (cells > (level ? GEO_MAX_COARSE : GEO_MAX_CELLS)) continue;
        uint64_t *w = calloc(nw ? nw : 1, sizeof *w);
        if (!w) return NULL;
        for (uint64_t y = lat0; y <= lat1; y++)
            for (uint64_t x = lon0; x <= lon1; x++) {
                kent *e = tab_find(f, ((uint64_t)level << 56) | (y << 28) | x);
                if (e) or_roaring(w, nw, e->bm);
            }
        return w;
    }
    return NULL;
}

static int path_eq(const ny_path *a, const ny_path *b)
{
    if (a->n != b->n) return 0;
    for (size_t i = 0; i < a->n; i++)
        if (!ny_seg_eq(&a->segs[i], &b->segs[i])) return 0;
    return 1;
}

typedef struct qctx {
    const ny_pindex *px;
    size_t nw;
    ny_fids_fn ids;
    void *ids_ctx;
} qctx;

static uint64_t *fq_cb(void *ctx, const ny_path *path, const ny_fquery *q)
{
    const qctx *c = ctx;
    for (size_t i = 0; i < c->px->n; i++) {
        const field *f = c->px->f[i];
        if (f->broken || !path_eq(&f->path, path)) continue;
        switch (q->kind) {
        case NY_FQ_STR:
            if (f->type == T_KEYWORD || f->type == T_UUID) return key_lookup(f, c->nw, str_key(q->s, q->len));
            break;
        case NY_FQ_INT:
            if (f->type == T_INTEGER || f->type == T_FLOAT) return num_range(f, c->nw, (double)q->i, (double)q->i);
            break;
        case NY_FQ_BOOL:
            if (f->type == T_BOOL) return key_lookup(f, c->nw, q->b ? 1 : 2);
            break;
        case NY_FQ_RANGE:
            if (f->type == T_INTEGER || f->type == T_FLOAT) return num_range(f, c->nw, q->lo, q->hi);
            break;
        case NY_FQ_DTRANGE:
            if (f->type == T_DATETIME) return num_range(f, c->nw, q->lo, q->hi);
            break;
        case NY_FQ_TOKEN:
            if (f->type == T_TEXT && f->tp.tokenizer == q->tp.tokenizer && f->tp.lowercase == q->tp.lowercase &&
                f->tp.min_len == q->tp.min_len && f->tp.max_len == q->tp.max_len)
                return key_lookup(f, c->nw, str_key(q->s, q->len > 255 ? 255 : q->len));
            break;
        case NY_FQ_GEO:
            if (f->type == T_GEO) return geo_lookup(f, c->nw, q);
            break;
        }
    }
    return NULL;
}

static uint64_t *fids_cb(void *ctx, const ny_point_id *ids, size_t n)
{
    const qctx *c = ctx;
    return c->ids ? c->ids(c->ids_ctx, ids, n) : NULL;
}

uint64_t *ny_pindex_candidates(const ny_pindex *px, const ny_fexpr *f, size_t nbits, ny_fids_fn ids, void *ids_ctx)
{
    if (!f || (!px && !ids)) return NULL;
    static const ny_pindex empty = {NULL, 0};
    qctx c = {px ? px : &empty, (nbits + 63) / 64, ids, ids_ctx};
    return ny_filter_candidates(f, nbits, fq_cb, fids_cb, &c);
}

int ny_pindex_compact(ny_pindex *px)
{
    int rc = NY_OK;
    for (size_t i = 0; px && i < px->n; i++) {
        field *f = px->f[i];
        if (f->broken || !is_numeric(f->type) || (f->nnum == f->nsorted && !f->nstale)) continue;
        if (num_rebuild(f) != NY_OK) rc = NY_ENOMEM;
    }
    return rc;
}

int64_t ny_pindex_count(const ny_pindex *px, const ny_fexpr *f)
{
    const ny_path *path;
    ny_fquery q;
    if (!px || !ny_filter_single_query(f, &path, &q)) return -1;
    for (size_t i = 0; i < px->n; i++) {
        const field *fl = px->f[i];
        if (fl->broken || !path_eq(&fl->path, path)) continue;
        int numeric = fl->type == T_INTEGER || fl->type == T_FLOAT;
        double lo = q.lo, hi = q.hi;
        const kent *e = NULL;
        switch (q.kind) {
        case NY_FQ_STR:
            if (fl->type != T_KEYWORD && fl->type != T_UUID) continue;
            e = tab_find(fl, str_key(q.s, q.len));
            return e ? (int64_t)roaring_bitmap_get_cardinality(e->bm) : 0;
        case NY_FQ_BOOL:
            if (fl->type != T_BOOL) continue;
            e = tab_find(fl, q.b ? 1 : 2);
            return e ? (int64_t)roaring_bitmap_get_cardinality(e->bm) : 0;
        case NY_FQ_INT:
            lo = hi = (double)q.i;
            /* fall through */
        case NY_FQ_RANGE: {
            if (!numeric) continue;
            if (lo > hi) return 0;
            size_t a = lower_bound(fl->nv, fl->nsorted, lo);
            size_t b = lower_bound(fl->nv, fl->nsorted, hi);
            while (b < fl->nsorted && fl->nv[b] <= hi) b++;
            int64_t n = (int64_t)(b - a);
            for (size_t j = fl->nsorted; j < fl->nnum; j++) n += fl->nv[j] >= lo && fl->nv[j] <= hi;
            return n;
        }
        default:
            return -1;
        }
    }
    return -1;
}
