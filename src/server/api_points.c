/*
 * api_points.c -- point writes (upsert, delete, vectors, payload, batch) and
 * reads (retrieve, scroll, count).
 *
 * Every write is validated completely before the engine is called (ids,
 * dimensions, payload objects, filters), and the engine validates a batch
 * before applying any of it, so a bad request never half-applies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/points.h"

/* ===== Shared helpers =================================================== */

int get_filter(req *r, const json_t *obj, const char *field, char **out)
{
    *out = NULL;
    json_t *f = json_object_get(obj, field);
    if (!f || json_is_null(f)) return 0;
    if (!json_is_object(f)) return fail(r, 400, "Json deserialize error: `%s` must be a Filter object", field), -1;
    *out = json_text(f);
    if (!*out) return fail(r, 503, "Service internal error: out of memory"), -1;
    return 0;
}

int get_read_opts(req *r, const json_t *obj, int dflt_payload, int dflt_vector, char **wp, int *wv)
{
    char err[256];
    *wp = NULL;
    json_t *p = json_object_get(obj, "with_payload");
    if (check_with_payload(p, err, sizeof err)) return fail(r, 400, "Json deserialize error: %s", err), -1;
    int wv_ = parse_with_vector(json_object_get(obj, "with_vector"), dflt_vector, err, sizeof err);
    if (wv_ < 0) wv_ = parse_with_vector(json_object_get(obj, "with_vectors"), dflt_vector, err, sizeof err);
    if (wv_ < 0) return fail(r, 400, "Wrong input: %s", err), -1;
    *wv = wv_;
    if (!p || json_is_null(p)) {
        if (dflt_payload) *wp = strdup("true");
    } else if (!json_is_false(p)) {
        *wp = json_text(p);
    }
    return 0;
}

int get_ids(req *r, const json_t *arr, const char *field, ny_point_id **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    if (!json_is_array(arr)) return fail(r, 400, "Json deserialize error: `%s` must be a list of point ids", field), -1;
    size_t k = json_array_size(arr);
    ny_point_id *v = calloc(k ? k : 1, sizeof *v);
    if (!v) return fail(r, 503, "Service internal error: out of memory"), -1;
    for (size_t i = 0; i < k; i++) {
        char err[256];
        if (parse_point_id(json_array_get(arr, i), &v[i], err, sizeof err)) {
            free(v);
            return fail(r, 400, "Wrong input: %s[%zu]: %s", field, i, err), -1;
        }
    }
    *ids = v;
    *n = k;
    return 0;
}

int get_uint(req *r, const json_t *obj, const char *field, size_t dflt, size_t min, size_t *out)
{
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    json_int_t x;
    if (json_is_integer(v)) x = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == (double)(json_int_t)json_real_value(v))
        x = (json_int_t)json_real_value(v);
    else return fail(r, 400, "Json deserialize error: `%s` must be a non-negative integer", field), -1;
    if (x < 0) return fail(r, 400, "Json deserialize error: `%s` must be a non-negative integer, got %lld", field, (long long)x), -1;
    if ((size_t)x < min)
        return fail(r, 422, "Validation error in JSON body: [%s: value %lld invalid, must be %zu or larger]", field,
                    (long long)x, min), -1;
    *out = (size_t)x;
    return 0;
}

int get_vector(req *r, const json_t *v, size_t dim, float *out, const char *field)
{
    char err[256];
    const json_t *list = unwrap_vector(v, err, sizeof err);
    if (!list || parse_vector(list, dim, out, err, sizeof err)) return fail(r, 400, "Wrong input: %s: %s", field, err), -1;
    return 0;
}

static void put_vector(sb *o, const float *v, size_t dim)
{
    sb_putc(o, '[');
    for (size_t i = 0; i < dim; i++) {
        if (i) sb_putc(o, ',');
        sb_float(o, v[i]);
    }
    sb_putc(o, ']');
}

void put_record(sb *o, const ny_record *rec, size_t dim, int scored)
{
    sb_puts(o, "{\"id\":");
    sb_point_id(o, &rec->id);
    if (scored) {
        sb_puts(o, ",\"version\":0,\"score\":");
        sb_float(o, rec->score);
    }
    sb_puts(o, ",\"payload\":");
    if (rec->payload_json) sb_puts(o, rec->payload_json);
    else sb_puts(o, "null");
    sb_puts(o, ",\"vector\":");
    if (rec->vector) put_vector(o, rec->vector, dim);
    else sb_puts(o, "null");
    sb_putc(o, '}');
}

void put_records(sb *o, const ny_records *recs, size_t dim, int scored)
{
    sb_putc(o, '[');
    for (size_t i = 0; i < recs->n; i++) {
        if (i) sb_putc(o, ',');
        put_record(o, &recs->items[i], dim, scored);
    }
    sb_putc(o, ']');
}

/* A points selector: {"points": [...]} or {"filter": {...}} (not both). */
typedef struct selection {
    ny_point_id *ids;
    size_t n;
    char *filter;
    ny_selector sel;
} selection;

static void selection_free(selection *s)
{
    free(s->ids);
    free(s->filter);
}

static int get_selection(req *r, const json_t *b, selection *s)
{
    memset(s, 0, sizeof *s);
    json_t *pts = json_object_get(b, "points");
    json_t *flt = json_object_get(b, "filter");
    int has_p = pts && !json_is_null(pts), has_f = flt && !json_is_null(flt);
    if (has_p && has_f) return fail(r, 400, "Wrong input: give either `points` or `filter`, not both"), -1;
    if (!has_p && !has_f) return fail(r, 400, "Wrong input: either `points` (a list of ids) or `filter` is required"), -1;
    if (has_p) {
        /* {"points": {"filter": ...}} is the PointsSelector form too */
        if (json_is_object(pts)) return get_selection(r, pts, s);
        if (get_ids(r, pts, "points", &s->ids, &s->n)) return -1;
        s->sel.ids = s->ids;
        s->sel.n_ids = s->n;
        if (s->n == 0) s->sel.ids = s->ids; /* empty list: selects nothing */
        return 0;
    }
    if (get_filter(r, b, "filter", &s->filter)) return -1;
    s->sel.filter_json = s->filter;
    return 0;
}

/* ===== Upsert =========================================================== */

typedef struct upsert_batch {
    ny_point *pts;
    float *vecs;
    char **payloads;
    size_t n;
} upsert_batch;

static void batch_free(upsert_batch *u)
{
    if (u->payloads)
        for (size_t i = 0; i < u->n; i++) free(u->payloads[i]);
    free(u->payloads);
    free(u->pts);
    free(u->vecs);
    memset(u, 0, sizeof *u);
}

static int batch_alloc(req *r, upsert_batch *u, size_t n, size_t dim)
{
    u->n = n;
    u->pts = calloc(n ? n : 1, sizeof *u->pts);
    u->vecs = malloc((n ? n : 1) * dim * sizeof(float));
    u->payloads = calloc(n ? n : 1, sizeof *u->payloads);
    if (!u->pts || !u->vecs || !u->payloads) return fail(r, 503, "Service internal error: out of memory"), -1;
    return 0;
}

static int set_payload_text(req *r, upsert_batch *u, size_t i, const json_t *p, const char *where)
{
    if (!p || json_is_null(p)) return 0;
    if (!json_is_object(p)) return fail(r, 400, "Wrong input: %s: payload must be a JSON object", where), -1;
    u->payloads[i] = json_text(p);
    if (!u->payloads[i]) return fail(r, 503, "Service internal error: out of memory"), -1;
    u->pts[i].payload_json = u->payloads[i];
    return 0;
}

static int parse_upsert(req *r, const json_t *b, size_t dim, upsert_batch *u)
{
    memset(u, 0, sizeof *u);
    json_t *points = json_object_get(b, "points");
    json_t *batch = json_object_get(b, "batch");
    char err[256], where[64];
    if (points && batch) return fail(r, 400, "Json deserialize error: give either `points` or `batch`, not both"), -1;
    if (json_is_array(points)) {
        size_t n = json_array_size(points);
        if (batch_alloc(r, u, n, dim)) return -1;
        for (size_t i = 0; i < n; i++) {
            json_t *p = json_array_get(points, i);
            snprintf(where, sizeof where, "points[%zu]", i);
            if (!json_is_object(p)) return fail(r, 400, "Json deserialize error: %s must be an object", where), -1;
            static const char *const allowed[] = {"id", "vector", "payload", NULL};
            if (check_fields(r, p, where, allowed)) return -1;
            json_t *id = json_object_get(p, "id"), *vec = json_object_get(p, "vector");
            if (!id) return fail(r, 400, "Json deserialize error: %s: missing field `id`", where), -1;
            if (!vec) return fail(r, 400, "Json deserialize error: %s: missing field `vector`", where), -1;
            if (parse_point_id(id, &u->pts[i].id, err, sizeof err))
                return fail(r, 400, "Wrong input: %s.id: %s", where, err), -1;
            const json_t *list = unwrap_vector(vec, err, sizeof err);
            if (!list || parse_vector(list, dim, u->vecs + i * dim, err, sizeof err))
                return fail(r, 400, "Wrong input: %s.vector: %s", where, err), -1;
            u->pts[i].vector = u->vecs + i * dim;
            if (set_payload_text(r, u, i, json_object_get(p, "payload"), where)) return -1;
        }
        return 0;
    }
    if (json_is_object(batch)) {
        static const char *const allowed[] = {"ids", "vectors", "payloads", NULL};
        if (check_fields(r, batch, "batch", allowed)) return -1;
        json_t *ids = json_object_get(batch, "ids"), *vecs = json_object_get(batch, "vectors");
        json_t *pls = json_object_get(batch, "payloads");
        if (!json_is_array(ids)) return fail(r, 400, "Json deserialize error: batch: missing field `ids` (a list)"), -1;
        const json_t *vl = vecs;
        if (json_is_object(vecs)) {
            vl = unwrap_vector(vecs, err, sizeof err);
            if (!vl) return fail(r, 400, "Wrong input: batch.vectors: %s", err), -1;
        }
        if (!json_is_array(vl)) return fail(r, 400, "Json deserialize error: batch: missing field `vectors` (a list)"), -1;
        size_t n = json_array_size(ids);
        if (json_array_size(vl) != n)
            return fail(r, 400, "Wrong input: batch: %zu ids but %zu vectors", n, json_array_size(vl)), -1;
        if (pls && !json_is_null(pls) && (!json_is_array(pls) || json_array_size(pls) != n))
            return fail(r, 400, "Wrong input: batch: `payloads` must be a list with one entry per id"), -1;
        if (batch_alloc(r, u, n, dim)) return -1;
        for (size_t i = 0; i < n; i++) {
            snprintf(where, sizeof where, "batch.ids[%zu]", i);
            if (parse_point_id(json_array_get(ids, i), &u->pts[i].id, err, sizeof err))
                return fail(r, 400, "Wrong input: %s: %s", where, err), -1;
            snprintf(where, sizeof where, "batch.vectors[%zu]", i);
            if (parse_vector(json_array_get(vl, i), dim, u->vecs + i * dim, err, sizeof err))
                return fail(r, 400, "Wrong input: %s: %s", where, err), -1;
            u->pts[i].vector = u->vecs + i * dim;
            snprintf(where, sizeof where, "batch.payloads[%zu]", i);
            if (json_is_array(pls) && set_payload_text(r, u, i, json_array_get(pls, i), where)) return -1;
        }
        return 0;
    }
    return fail(r, 400, "Json deserialize error: expected `points` (a list of points) or `batch`"), -1;
}

/* update_mode / update_filter (Qdrant 1.16+): keep[i] = 0 drops point i. */
static int upsert_conditions(req *r, ny_collection *c, const json_t *b, upsert_batch *u, size_t *kept)
{
    json_t *mode = json_object_get(b, "update_mode");
    const char *m = json_is_string(mode) ? json_string_value(mode) : "upsert";
    if (mode && !json_is_null(mode) && !json_is_string(mode))
        return fail(r, 400, "Json deserialize error: `update_mode` must be a string"), -1;
    if (strcmp(m, "upsert") && strcmp(m, "insert_only") && strcmp(m, "update_only"))
        return fail(r, 400, "Json deserialize error: unknown variant `%.40s` of `update_mode`, expected `upsert`, "
                            "`insert_only` or `update_only`", m), -1;
    char *uf = NULL;
    if (get_filter(r, b, "update_filter", &uf)) return -1;
    *kept = u->n;
    if (!strcmp(m, "upsert") && !uf) return 0;
    /* existing ids, and among them those matching update_filter */
    ny_point_id *ids = malloc((u->n ? u->n : 1) * sizeof *ids);
    if (!ids) {
        free(uf);
        return fail(r, 503, "Service internal error: out of memory"), -1;
    }
    for (size_t i = 0; i < u->n; i++) ids[i] = u->pts[i].id;
    ny_read_opts ro = {NULL, 0};
    ny_records ex = {0}, match = {0};
    int rc = ny_collection_retrieve(c, ids, u->n, &ro, &ex);
    if (!rc && uf) {
        /* {"must": [update_filter, {"has_id": [ids...]}]} */
        json_t *f = json_object(), *must = json_array(), *hid = json_array();
        for (size_t i = 0; i < ex.n; i++) {
            char buf[37];
            ny_point_id_format(&ex.items[i].id, buf);
            json_array_append_new(hid, ex.items[i].id.is_uuid ? json_string(buf)
                                                              : json_integer((json_int_t)ex.items[i].id.num));
        }
        json_array_append_new(must, json_loads(uf, 0, NULL));
        json_array_append_new(must, json_pack("{s:o}", "has_id", hid));
        json_object_set_new(f, "must", must);
        char *ft = json_text(f);
        json_decref(f);
        rc = ft ? ny_collection_scroll(c, NULL, ex.n ? ex.n : 1, ft, &ro, &match) : NY_ENOMEM;
        free(ft);
    }
    free(ids);
    free(uf);
    if (rc) {
        ny_records_free(&ex);
        ny_records_free(&match);
        return fail_rc(r, rc, "checking update_mode/update_filter"), -1;
    }
    size_t w = 0;
    for (size_t i = 0; i < u->n; i++) {
        int exists = 0, matches = 0;
        for (size_t j = 0; j < ex.n && !exists; j++) exists = !ny_point_id_cmp(&ex.items[j].id, &u->pts[i].id);
        for (size_t j = 0; j < match.n && !matches; j++) matches = !ny_point_id_cmp(&match.items[j].id, &u->pts[i].id);
        int keep;
        if (!strcmp(m, "insert_only")) keep = !exists;
        else if (!strcmp(m, "update_only")) keep = exists && (!uf || matches);
        else keep = !exists || matches;
        if (keep) {
            ny_point p = u->pts[i];
            u->pts[w++] = p;
        }
    }
    *kept = w;
    ny_records_free(&ex);
    ny_records_free(&match);
    return 0;
}

static int do_upsert(req *r, ny_collection *c, const json_t *b, int wait)
{
    static const char *const allowed[] = {"points", "batch", "shard_key", "update_filter", "update_mode", NULL};
    if (check_fields(r, b, NULL, allowed)) return -1;
    upsert_batch u;
    if (parse_upsert(r, b, ny_collection_dim(c), &u)) {
        batch_free(&u);
        return -1;
    }
    size_t n = u.n;
    if (upsert_conditions(r, c, b, &u, &n)) {
        batch_free(&u);
        return -1;
    }
    int rc = n ? ny_collection_upsert(c, u.pts, n, wait) : NY_OK;
    batch_free(&u);
    if (rc) return fail_rc(r, rc, "upserting points"), -1;
    return 0;
}

/* ===== Other writes ===================================================== */

static int do_delete(req *r, ny_collection *c, const json_t *b, int wait)
{
    static const char *const allowed[] = {"points", "filter", "shard_key", NULL};
    if (check_fields(r, b, NULL, allowed)) return -1;
    selection s;
    if (get_selection(r, b, &s)) return selection_free(&s), -1;
    int rc = ny_collection_delete(c, &s.sel, wait, NULL);
    selection_free(&s);
    if (rc) return fail_rc(r, rc, "deleting points"), -1;
    return 0;
}

static int do_update_vectors(req *r, ny_collection *c, const json_t *b, int wait)
{
    static const char *const allowed[] = {"points", "shard_key", "update_filter", NULL};
    if (check_fields(r, b, NULL, allowed)) return -1;
    if (json_object_get(b, "update_filter") && !json_is_null(json_object_get(b, "update_filter")))
        return fail(r, 400, "Wrong input: update_filter is not supported for vector updates"), -1;
    json_t *pts = json_object_get(b, "points");
    if (!json_is_array(pts)) return fail(r, 400, "Json deserialize error: missing field `points` (a list)"), -1;
    size_t n = json_array_size(pts), dim = ny_collection_dim(c);
    ny_point_id *ids = calloc(n ? n : 1, sizeof *ids);
    float *vecs = malloc((n ? n : 1) * dim * sizeof(float));
    int ret = -1;
    if (!ids || !vecs) {
        fail(r, 503, "Service internal error: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(pts, i);
        char err[256], where[48];
        snprintf(where, sizeof where, "points[%zu]", i);
        static const char *const pf[] = {"id", "vector", NULL};
        if (!json_is_object(p)) {
            fail(r, 400, "Json deserialize error: %s must be an object", where);
            goto out;
        }
        if (check_fields(r, p, where, pf)) goto out;
        if (parse_point_id(json_object_get(p, "id"), &ids[i], err, sizeof err)) {
            fail(r, 400, "Wrong input: %s.id: %s", where, err);
            goto out;
        }
        const json_t *l = unwrap_vector(json_object_get(p, "vector"), err, sizeof err);
        if (!l || parse_vector(l, dim, vecs + i * dim, err, sizeof err)) {
            fail(r, 400, "Wrong input: %s.vector: %s", where, err);
            goto out;
        }
    }
    int rc = n ? ny_collection_update_vectors(c, ids, vecs, n, wait) : NY_OK;
    if (rc == NY_ENOTFOUND) fail(r, 404, "Not found: %s", ny_errmsg());
    else if (rc) fail_rc(r, rc, "updating vectors");
    else ret = 0;
out:
    free(ids);
    free(vecs);
    return ret;
}

static int do_set_payload(req *r, ny_collection *c, const json_t *b, int wait, int overwrite)
{
    static const char *const allowed[] = {"payload", "points", "filter", "shard_key", "key", NULL};
    if (check_fields(r, b, NULL, allowed)) return -1;
    json_t *p = json_object_get(b, "payload");
    if (!json_is_object(p)) return fail(r, 400, "Json deserialize error: missing field `payload` (an object)"), -1;
    json_t *key = json_object_get(b, "key");
    if (key && !json_is_null(key) && !json_is_string(key))
        return fail(r, 400, "Json deserialize error: `key` must be a string"), -1;
    if (overwrite && json_is_string(key))
        return fail(r, 400, "Wrong input: `key` is not supported when overwriting the payload (PUT); "
                            "use set payload (POST) with `key`"), -1;
    selection s;
    if (get_selection(r, b, &s)) return selection_free(&s), -1;
    char *text = json_text(p);
    int rc;
    if (!text) rc = NY_ENOMEM;
    else if (overwrite && !json_is_string(key)) rc = ny_collection_overwrite_payload(c, &s.sel, text, wait);
    else rc = ny_collection_set_payload(c, &s.sel, text, json_string_value(key), wait);
    free(text);
    selection_free(&s);
    if (rc) return fail_rc(r, rc, "setting the payload"), -1;
    return 0;
}

static int do_delete_payload(req *r, ny_collection *c, const json_t *b, int wait)
{
    static const char *const allowed[] = {"keys", "points", "filter", "shard_key", NULL};
    if (check_fields(r, b, NULL, allowed)) return -1;
    json_t *keys = json_object_get(b, "keys");
    if (!json_is_array(keys)) return fail(r, 400, "Json deserialize error: missing field `keys` (a list)"), -1;
    size_t n = json_array_size(keys);
    const char **k = calloc(n ? n : 1, sizeof *k);
    if (!k) return fail(r, 503, "Service internal error: out of memory"), -1;
    for (size_t i = 0; i < n; i++) {
        k[i] = json_string_value(json_array_get(keys, i));
        if (!k[i]) {
            free(k);
            return fail(r, 400, "Json deserialize error: keys[%zu] must be a string", i), -1;
        }
    }
    selection s;
    if (get_selection(r, b, &s)) {
        free(k);
        return selection_free(&s), -1;
    }
    int rc = ny_collection_delete_payload_keys(c, &s.sel, k, n, wait);
    free(k);
    selection_free(&s);
    if (rc) return fail_rc(r, rc, "deleting payload keys"), -1;
    return 0;
}

static int do_clear_payload(req *r, ny_collection *c, const json_t *b, int wait)
{
    static const char *const allowed[] = {"points", "filter", "shard_key", NULL};
    if (check_fields(r, b, NULL, allowed)) return -1;
    selection s;
    if (get_selection(r, b, &s)) return selection_free(&s), -1;
    int rc = ny_collection_clear_payload(c, &s.sel, wait);
    selection_free(&s);
    if (rc) return fail_rc(r, rc, "clearing payloads"), -1;
    return 0;
}

static int do_delete_vectors(req *r, ny_collection *c, const json_t *b, int wait)
{
    (void)c;
    (void)wait;
    static const char *const allowed[] = {"points", "filter", "vector", "shard_key", NULL};
    if (check_fields(r, b, NULL, allowed)) return -1;
    json_t *v = json_object_get(b, "vector");
    if (!json_is_array(v)) return fail(r, 400, "Json deserialize error: missing field `vector` (a list of names)"), -1;
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *name = json_string_value(json_array_get(v, i));
        if (!name) return fail(r, 400, "Json deserialize error: vector[%zu] must be a string", i), -1;
        if (name[0]) return fail(r, 400, "Wrong input: Not existing vector name error: %s", name), -1;
    }
    if (json_array_size(v) == 0) {
        selection s;
        if (get_selection(r, b, &s)) return selection_free(&s), -1;
        selection_free(&s);
        return 0; /* nothing to delete */
    }
    return fail(r, 400, "Wrong input: the collection has one unnamed vector that every point must have; "
                        "delete the points instead"), -1;
}

/* Runs one write on the collection named in the path. */
static int write_op(req *r, int (*fn)(req *, ny_collection *, const json_t *, int))
{
    json_t *b = req_body(r);
    if (!b) return 0;
    int wait = req_wait(r);
    if (wait < 0) return 0;
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    int rc = fn(r, c, b, wait);
    ny_collection_release(c);
    if (rc) return 0;
    return reply_update(r, wait);
}

static int set_payload_fn(req *r, ny_collection *c, const json_t *b, int wait)
{
    return do_set_payload(r, c, b, wait, 0);
}

static int overwrite_payload_fn(req *r, ny_collection *c, const json_t *b, int wait)
{
    return do_set_payload(r, c, b, wait, 1);
}

int h_points_upsert(req *r)
{
    return write_op(r, do_upsert);
}

int h_points_delete(req *r)
{
    return write_op(r, do_delete);
}

int h_vectors_update(req *r)
{
    return write_op(r, do_update_vectors);
}

int h_vectors_delete(req *r)
{
    return write_op(r, do_delete_vectors);
}

int h_payload_set(req *r)
{
    return write_op(r, set_payload_fn);
}

int h_payload_overwrite(req *r)
{
    return write_op(r, overwrite_payload_fn);
}

int h_payload_delete(req *r)
{
    return write_op(r, do_delete_payload);
}

int h_payload_clear(req *r)
{
    return write_op(r, do_clear_payload);
}

/* POST /points/batch: operations applied in order; the first failing one
 * stops the batch (its error names its index). */
int h_points_batch(req *r)
{
    json_t *b = req_body(r);
    if (!b) return 0;
    static const char *const allowed[] = {"operations", NULL};
    if (check_fields(r, b, NULL, allowed)) return 0;
    int wait = req_wait(r);
    if (wait < 0) return 0;
    json_t *ops = json_object_get(b, "operations");
    if (!json_is_array(ops)) return fail(r, 400, "Json deserialize error: missing field `operations` (a list)");
    static const struct {
        const char *name;
        int (*fn)(req *, ny_collection *, const json_t *, int);
    } kinds[] = {{"upsert", do_upsert},
                 {"delete", do_delete},
                 {"set_payload", set_payload_fn},
                 {"overwrite_payload", overwrite_payload_fn},
                 {"delete_payload", do_delete_payload},
                 {"clear_payload", do_clear_payload},
                 {"update_vectors", do_update_vectors},
                 {"delete_vectors", do_delete_vectors}};
    /* structure first, so that a typo does not leave earlier ops applied */
    for (size_t i = 0; i < json_array_size(ops); i++) {
        json_t *op = json_array_get(ops, i);
        const char *k = json_is_object(op) && json_object_size(op) == 1 ? json_object_iter_key(json_object_iter(op)) : NULL;
        size_t j = 0;
        for (; k && j < sizeof kinds / sizeof kinds[0]; j++)
            if (!strcmp(k, kinds[j].name)) break;
        if (!k || j == sizeof kinds / sizeof kinds[0] || !json_is_object(json_object_get(op, k)))
            return fail(r, 400, "Json deserialize error: operations[%zu]: expected one of `upsert`, `delete`, "
                                "`set_payload`, `overwrite_payload`, `delete_payload`, `clear_payload`, "
                                "`update_vectors`, `delete_vectors` with an object",
                        i);
    }
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    sb res;
    sb_init(&res);
    sb_putc(&res, '[');
    for (size_t i = 0; i < json_array_size(ops); i++) {
        json_t *op = json_array_get(ops, i);
        const char *k = json_object_iter_key(json_object_iter(op));
        for (size_t j = 0; j < sizeof kinds / sizeof kinds[0]; j++) {
            if (strcmp(k, kinds[j].name)) continue;
            if (kinds[j].fn(r, c, json_object_get(op, k), wait)) {
                char *e = r->err ? strdup(r->err) : NULL;
                fail(r, r->status, "operations[%zu] (%s): %s", i, k, e ? e : "failed");
                free(e);
                sb_free(&res);
                ny_collection_release(c);
                return 0;
            }
        }
        if (i) sb_putc(&res, ',');
        sb_printf(&res, "{\"operation_id\":%llu,\"status\":\"%s\"}", (unsigned long long)srv_next_op(r->s),
                  wait ? "completed" : "acknowledged");
    }
    sb_putc(&res, ']');
    ny_collection_release(c);
    r->status = 200;
    sb_free(&r->out);
    r->out = res;
    return 0;
}

/* ===== Reads ============================================================ */

int h_points_get(req *r)
{
    json_t *b = req_body(r);
    if (!b) return 0;
    static const char *const allowed[] = {"ids", "with_payload", "with_vector", "shard_key", "consistency", NULL};
    if (check_fields(r, b, NULL, allowed)) return 0;
    ny_point_id *ids = NULL;
    size_t n = 0;
    json_t *idv = json_object_get(b, "ids");
    if (!idv) return fail(r, 400, "Json deserialize error: missing field `ids`");
    if (get_ids(r, idv, "ids", &ids, &n)) return 0;
    char *wp = NULL;
    int wv = 0;
    if (get_read_opts(r, b, 1, 0, &wp, &wv)) {
        free(ids);
        return 0;
    }
    ny_collection *c = req_collection(r);
    if (c) {
        ny_read_opts ro = {wp, wv};
        ny_records recs = {0};
        int rc = ny_collection_retrieve(c, ids, n, &ro, &recs);
        if (rc) fail_rc(r, rc, "retrieving points");
        else {
            r->status = 200;
            put_records(&r->out, &recs, ny_collection_dim(c), 0);
        }
        ny_records_free(&recs);
        ny_collection_release(c);
    }
    free(ids);
    free(wp);
    return 0;
}

int h_point_get(req *r)
{
    ny_point_id id;
    if (ny_point_id_parse(r->args[1], &id))
        return fail(r, 400, "Wrong input: `%.100s` is not a valid point id (an unsigned integer or a UUID)", r->args[1]);
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    ny_read_opts ro = {"true", 1};
    ny_records recs = {0};
    int rc = ny_collection_retrieve(c, &id, 1, &ro, &recs);
    if (rc) fail_rc(r, rc, "retrieving the point");
    else if (recs.n == 0) fail(r, 404, "Not found: No point with id %s found", r->args[1]);
    else {
        r->status = 200;
        put_record(&r->out, &recs.items[0], ny_collection_dim(c), 0);
    }
    ny_records_free(&recs);
    ny_collection_release(c);
    return 0;
}

int h_scroll(req *r)
{
    json_t *b = r->json, *tmp = NULL;
    if (!b) b = tmp = json_object(); /* an empty body is allowed */
    static const char *const allowed[] = {"offset", "limit", "filter", "with_payload", "with_vector",
                                          "order_by", "shard_key", "consistency", NULL};
    char *filter = NULL, *wp = NULL;
    int wv = 0;
    size_t limit = 10;
    ny_point_id off;
    int has_off = 0;
    ny_collection *c = NULL;
    if (check_fields(r, b, NULL, allowed)) goto out;
    json_t *ob = json_object_get(b, "order_by");
    if (ob && !json_is_null(ob)) {
        fail(r, 400, "Wrong input: order_by is not supported by Nearly: scroll returns points in id order");
        goto out;
    }
    json_t *o = json_object_get(b, "offset");
    if (o && !json_is_null(o)) {
        char err[256];
        if (parse_point_id(o, &off, err, sizeof err)) {
            fail(r, 400, "Wrong input: offset: %s", err);
            goto out;
        }
        has_off = 1;
    }
    if (get_uint(r, b, "limit", 10, 1, &limit)) goto out;
    if (get_filter(r, b, "filter", &filter)) goto out;
    if (get_read_opts(r, b, 1, 0, &wp, &wv)) goto out;
    c = req_collection(r);
    if (!c) goto out;
    ny_read_opts ro = {wp, wv};
    ny_records recs = {0};
    int rc = ny_collection_scroll(c, has_off ? &off : NULL, limit, filter, &ro, &recs);
    if (rc) fail_rc(r, rc, "scrolling points");
    else {
        r->status = 200;
        sb_puts(&r->out, "{\"points\":");
        put_records(&r->out, &recs, ny_collection_dim(c), 0);
        sb_puts(&r->out, ",\"next_page_offset\":");
        if (recs.has_next) sb_point_id(&r->out, &recs.next);
        else sb_puts(&r->out, "null");
        sb_putc(&r->out, '}');
    }
    ny_records_free(&recs);
out:
    if (c) ny_collection_release(c);
    json_decref(tmp);
    free(filter);
    free(wp);
    return 0;
}

int h_count(req *r)
{
    json_t *b = r->json, *tmp = NULL;
    if (!b) b = tmp = json_object();
    static const char *const allowed[] = {"filter", "exact", "shard_key", NULL};
    char *filter = NULL;
    ny_collection *c = NULL;
    if (check_fields(r, b, NULL, allowed)) goto out;
    json_t *ex = json_object_get(b, "exact");
    if (ex && !json_is_boolean(ex) && !json_is_null(ex)) {
        fail(r, 400, "Json deserialize error: `exact` must be a boolean");
        goto out;
    }
    if (get_filter(r, b, "filter", &filter)) goto out;
    c = req_collection(r);
    if (!c) goto out;
    size_t n = 0;
    int rc = ny_collection_count(c, filter, &n);
    if (rc) fail_rc(r, rc, "counting points");
    else {
        r->status = 200;
        sb_printf(&r->out, "{\"count\":%zu}", n);
    }
out:
    if (c) ny_collection_release(c);
    json_decref(tmp);
    free(filter);
    return 0;
}
