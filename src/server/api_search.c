/*
 * api_search.c -- search (legacy /points/search), query (/points/query) and
 * recommend (legacy /points/recommend and query {"recommend": ...}), with
 * their batches.
 *
 * Recommendation strategies (Qdrant's semantics):
 *   average_vector  search with avg(pos) + (avg(pos) - avg(neg)), or avg(pos)
 *   best_score      score = sigmoid(max sim to positives) if that beats the
 *                   max sim to negatives, else -sigmoid(max sim to negatives)
 *   sum_scores      score = sum of sims to positives - sum of sims to negatives
 * where sim is the similarity (cosine, dot, or minus the Euclidean distance).
 * best_score takes the union of each positive's nearest neighbours as
 * candidates: a point among the top k by max-positive similarity is among
 * the top k of the positive that gives it that maximum, so this is exact
 * whenever k candidates beat the negatives; otherwise (and for sum_scores)
 * every point matching the filter is scored.  The example ids are excluded
 * from the results.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/points.h"

enum { Q_NONE, Q_VECTOR, Q_RECOMMEND };
enum { S_AVERAGE, S_BEST, S_SUM };

typedef struct query {
    int kind;
    float *vec;            /* Q_VECTOR: dim floats */
    size_t limit, offset;
    char *filter;          /* user filter */
    ny_search_params sp;   /* hnsw_ef, exact, quantization, threshold */
    char *wp;
    int wv;
    ny_point_id *excl;     /* ids excluded from the results */
    size_t nexcl, excl_cap;
    /* Q_RECOMMEND */
    int strategy;
    float *pos, *neg;      /* example vectors */
    size_t npos, nneg;
} query;

static void query_free(query *q)
{
    free(q->vec);
    free(q->filter);
    free(q->wp);
    free(q->excl);
    free(q->pos);
    free(q->neg);
    memset(q, 0, sizeof *q);
}

static int add_excl(req *r, query *q, const ny_point_id *id)
{
    for (size_t i = 0; i < q->nexcl; i++)
        if (!ny_point_id_cmp(&q->excl[i], id)) return 0;
    if (q->nexcl == q->excl_cap) {
        size_t cap = q->excl_cap ? q->excl_cap * 2 : 8;
        ny_point_id *t = realloc(q->excl, cap * sizeof *t);
        if (!t) return fail(r, 503, "Service internal error: out of memory"), -1;
        q->excl = t;
        q->excl_cap = cap;
    }
    q->excl[q->nexcl++] = *id;
    return 0;
}

/* The user filter combined with must_not has_id of the excluded ids. */
static char *effective_filter(const query *q)
{
    if (!q->nexcl) return q->filter ? strdup(q->filter) : NULL;
    json_t *f = json_object();
    json_t *hid = json_array();
    for (size_t i = 0; i < q->nexcl; i++) {
        char buf[37];
        ny_point_id_format(&q->excl[i], buf);
        json_array_append_new(hid, q->excl[i].is_uuid ? json_string(buf) : json_integer((json_int_t)q->excl[i].num));
    }
    if (q->filter) {
        json_t *must = json_array();
        json_array_append_new(must, json_loads(q->filter, 0, NULL));
        json_object_set_new(f, "must", must);
    }
    json_t *mn = json_array();
    json_array_append_new(mn, json_pack("{s:o}", "has_id", hid));
    json_object_set_new(f, "must_not", mn);
    char *t = json_text(f);
    json_decref(f);
    return t;
}

/* ===== Parsing ========================================================== */

static int parse_params(req *r, const json_t *b, query *q)
{
    json_t *p = json_object_get(b, "params");
    if (!p || json_is_null(p)) return 0;
    if (!json_is_object(p)) return fail(r, 400, "Json deserialize error: `params` must be an object"), -1;
    static const char *const allowed[] = {"hnsw_ef", "exact", "quantization", "indexed_only", "acorn", "idf", NULL};
    if (check_fields(r, p, "params", allowed)) return -1;
    if (get_uint(r, p, "hnsw_ef", 0, 1, &q->sp.hnsw_ef)) return -1;
    json_t *ex = json_object_get(p, "exact");
    if (ex && !json_is_null(ex)) {
        if (!json_is_boolean(ex)) return fail(r, 400, "Json deserialize error: params.exact must be a boolean"), -1;
        q->sp.exact = json_is_true(ex);
    }
    json_t *io = json_object_get(p, "indexed_only");
    if (io && !json_is_null(io) && !json_is_boolean(io))
        return fail(r, 400, "Json deserialize error: params.indexed_only must be a boolean"), -1;
    json_t *qz = json_object_get(p, "quantization");
    if (qz && !json_is_null(qz)) {
        if (!json_is_object(qz)) return fail(r, 400, "Json deserialize error: params.quantization must be an object"), -1;
        static const char *const qa[] = {"ignore", "rescore", "oversampling", NULL};
        if (check_fields(r, qz, "params.quantization", qa)) return -1;
        json_t *ig = json_object_get(qz, "ignore"), *rs = json_object_get(qz, "rescore"),
               *ov = json_object_get(qz, "oversampling");
        if (ig && !json_is_null(ig)) {
            if (!json_is_boolean(ig)) return fail(r, 400, "Json deserialize error: quantization.ignore must be a boolean"), -1;
            q->sp.quant_ignore = json_is_true(ig);
        }
        if (rs && !json_is_null(rs)) {
            if (!json_is_boolean(rs)) return fail(r, 400, "Json deserialize error: quantization.rescore must be a boolean"), -1;
            q->sp.quant_rescore = json_is_true(rs);
        }
        if (ov && !json_is_null(ov)) {
            if (!json_is_number(ov)) return fail(r, 400, "Json deserialize error: quantization.oversampling must be a number"), -1;
            double o = json_number_value(ov);
            if (o < 1.0)
                return fail(r, 422, "Validation error in JSON body: [params.quantization.oversampling: value %g invalid, "
                                    "must be 1.0 or larger]", o), -1;
            q->sp.quant_oversampling = (float)o;
        }
    }
    return 0;
}

/* Fields shared by search, query and recommend. */
static int parse_common(req *r, const json_t *b, query *q, int limit_required, int dflt_payload)
{
    q->sp.quant_rescore = -1;
    json_t *lim = json_object_get(b, "limit");
    if (limit_required && (!lim || json_is_null(lim)))
        return fail(r, 400, "Json deserialize error: missing field `limit`"), -1;
    if (get_uint(r, b, "limit", 10, 1, &q->limit)) return -1;
    if (get_uint(r, b, "offset", 0, 0, &q->offset)) return -1;
    if (get_filter(r, b, "filter", &q->filter)) return -1;
    if (parse_params(r, b, q)) return -1;
    json_t *th = json_object_get(b, "score_threshold");
    if (th && !json_is_null(th)) {
        if (!json_is_number(th)) return fail(r, 400, "Json deserialize error: `score_threshold` must be a number"), -1;
        q->sp.has_score_threshold = 1;
        q->sp.score_threshold = (float)json_number_value(th);
    }
    if (get_read_opts(r, b, dflt_payload, 0, &q->wp, &q->wv)) return -1;
    json_t *using = json_object_get(b, "using");
    if (using && !json_is_null(using)) {
        if (!json_is_string(using)) return fail(r, 400, "Json deserialize error: `using` must be a string"), -1;
        if (json_string_value(using)[0])
            return fail(r, 400, "Wrong input: Not existing vector name error: %s", json_string_value(using)), -1;
    }
    return 0;
}

/* Where ids given as examples are looked up: this collection, or
 * lookup_from {"collection": ..., "vector": ...}. */
typedef struct lookup {
    ny_collection *c;
    int own;       /* c must be released */
    int same;      /* same collection as the query: exclude the ids */
} lookup;

static int open_lookup(req *r, ny_collection *c, const json_t *b, lookup *lk)
{
    lk->c = c;
    lk->own = 0;
    lk->same = 1;
    json_t *lf = json_object_get(b, "lookup_from");
    if (!lf || json_is_null(lf)) return 0;
    if (!json_is_object(lf)) return fail(r, 400, "Json deserialize error: `lookup_from` must be an object"), -1;
    static const char *const allowed[] = {"collection", "vector", "shard_key", NULL};
    if (check_fields(r, lf, "lookup_from", allowed)) return -1;
    const char *name = json_string_value(json_object_get(lf, "collection"));
    if (!name) return fail(r, 400, "Json deserialize error: lookup_from: missing field `collection`"), -1;
    json_t *vn = json_object_get(lf, "vector");
    if (json_is_string(vn) && json_string_value(vn)[0])
        return fail(r, 400, "Wrong input: Not existing vector name error: %s", json_string_value(vn)), -1;
    ny_collection *o = NULL;
    int rc = ny_db_get_collection(srv_db(r->s), name, &o);
    if (rc) return fail(r, 404, "Not found: Collection `%s` doesn't exist!", name), -1;
    if (ny_collection_dim(o) != ny_collection_dim(c)) {
        size_t d = ny_collection_dim(o);
        ny_collection_release(o);
        return fail(r, 400, "Wrong input: lookup_from collection `%s` has vectors of dim %zu, expected %zu", name, d,
                    ny_collection_dim(c)), -1;
    }
    lk->c = o;
    lk->own = 1;
    lk->same = !strcmp(ny_collection_name(o), ny_collection_name(c));
    return 0;
}

static void close_lookup(lookup *lk)
{
    if (lk->own) ny_collection_release(lk->c);
}

/* A VectorInput: a dense vector or a point id (whose vector is fetched).
 * Writes dim floats to out; ids go to the exclusion list. */
static int vector_input(req *r, ny_collection *c, lookup *lk, query *q, const json_t *v, float *out, const char *where)
{
    size_t dim = ny_collection_dim(c);
    if (is_vecref(v)) return get_vector(r, v, dim, out, where);
    if (json_is_integer(v) || json_is_string(v)) {
        ny_point_id id;
        char err[256];
        if (parse_point_id(v, &id, err, sizeof err)) return fail(r, 400, "Wrong input: %s: %s", where, err), -1;
        ny_read_opts ro = {NULL, 1};
        ny_records recs = {0};
        int rc = ny_collection_retrieve(lk->c, &id, 1, &ro, &recs);
        if (rc) return fail_rc(r, rc, "looking up an example point"), -1;
        if (recs.n == 0 || !recs.items[0].vector) {
            ny_records_free(&recs);
            char buf[37];
            ny_point_id_format(&id, buf);
            return fail(r, 404, "Not found: No point with id %s found", buf), -1;
        }
        memcpy(out, recs.items[0].vector, dim * sizeof(float));
        ny_records_free(&recs);
        if (lk->same && add_excl(r, q, &id)) return -1;
        return 0;
    }
    if (json_is_array(v)) {
        json_t *first = json_array_get(v, 0);
        if (json_is_array(first))
            return fail(r, 400, "Wrong input: %s: multi-vectors are not supported: the collection has one dense vector", where), -1;
        return get_vector(r, v, dim, out, where);
    }
    if (json_is_object(v)) {
        if (json_object_get(v, "indices"))
            return fail(r, 400, "Wrong input: %s: sparse vectors are not supported: the collection has one dense vector", where), -1;
        if (json_object_get(v, "text") || json_object_get(v, "image") || json_object_get(v, "object"))
            return fail(r, 400, "Wrong input: %s: inference (documents, images) is not supported: send a vector", where), -1;
        return get_vector(r, v, dim, out, where);
    }
    return fail(r, 400, "Json deserialize error: %s: expected a vector (list of numbers) or a point id", where), -1;
}

static int parse_examples(req *r, ny_collection *c, lookup *lk, query *q, const json_t *arr, const char *name,
                          float **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return fail(r, 400, "Json deserialize error: `%s` must be a list", name), -1;
    size_t k = json_array_size(arr), dim = ny_collection_dim(c);
    if (!k) return 0;
    *out = malloc(k * dim * sizeof(float));
    if (!*out) return fail(r, 503, "Service internal error: out of memory"), -1;
    for (size_t i = 0; i < k; i++) {
        char where[48];
        snprintf(where, sizeof where, "%s[%zu]", name, i);
        if (vector_input(r, c, lk, q, json_array_get(arr, i), *out + i * dim, where)) return -1;
    }
    *n = k;
    return 0;
}

static int parse_strategy(req *r, const json_t *s, int *out)
{
    *out = S_AVERAGE;
    if (!s || json_is_null(s)) return 0;
    const char *v = json_string_value(s);
    if (v && !strcmp(v, "average_vector")) *out = S_AVERAGE;
    else if (v && !strcmp(v, "best_score")) *out = S_BEST;
    else if (v && !strcmp(v, "sum_scores")) *out = S_SUM;
    else
        return fail(r, 400, "Json deserialize error: unknown variant of `strategy`, expected `average_vector`, "
                            "`best_score` or `sum_scores`"), -1;
    return 0;
}

static int parse_recommend(req *r, ny_collection *c, lookup *lk, const json_t *reco, query *q)
{
    static const char *const allowed[] = {"positive", "negative", "strategy", NULL};
    if (check_fields(r, reco, "recommend", allowed)) return -1;
    q->kind = Q_RECOMMEND;
    if (parse_strategy(r, json_object_get(reco, "strategy"), &q->strategy)) return -1;
    if (parse_examples(r, c, lk, q, json_object_get(reco, "positive"), "positive", &q->pos, &q->npos)) return -1;
    if (parse_examples(r, c, lk, q, json_object_get(reco, "negative"), "negative", &q->neg, &q->nneg)) return -1;
    if (q->strategy == S_AVERAGE && q->npos == 0)
        return fail(r, 400, "Wrong input: At least one positive vector ID required with the average_vector strategy"), -1;
    if (q->npos == 0 && q->nneg == 0) return fail(r, 400, "Wrong input: give at least one positive or negative example"), -1;
    return 0;
}

/* ===== Execution ======================================================== */

/* Plain k-NN with the exclusion filter. */
static int run_vector(req *r, ny_collection *c, query *q, const float *vec, ny_records *out)
{
    char *f = effective_filter(q);
    if (q->nexcl && !f) return fail(r, 503, "Service internal error: out of memory"), -1;
    ny_search_params p = q->sp;
    p.vector = vec;
    p.limit = q->limit;
    p.offset = q->offset;
    p.filter_json = f;
    p.read.with_payload_json = q->wp;
    p.read.with_vector = q->wv;
    int rc = ny_collection_search(c, &p, out);
    free(f);
    if (rc) return fail_rc(r, rc, "searching"), -1;
    return 0;
}

/* Similarity, higher is closer: cosine, dot, or minus the L2 distance.
 * a is an example, b a candidate (both normalised for cosine). */
static float sim(ny_metric m, const float *a, const float *b, size_t dim)
{
    float d = ny_distance(m, a, b, dim);
    float s = ny_score(m, d);
    return m == NY_L2 ? -s : s;
}

static float sigmoid(float x)
{
    return 0.5f * (x / (1.0f + fabsf(x)) + 1.0f);
}

static float reco_score(const query *q, ny_metric m, size_t dim, const float *v)
{
    if (q->strategy == S_SUM) {
        float s = 0;
        for (size_t i = 0; i < q->npos; i++) s += sim(m, q->pos + i * dim, v, dim);
        for (size_t i = 0; i < q->nneg; i++) s -= sim(m, q->neg + i * dim, v, dim);
        return s;
    }
    float mp = -INFINITY, mn = -INFINITY;
    for (size_t i = 0; i < q->npos; i++) mp = fmaxf(mp, sim(m, q->pos + i * dim, v, dim));
    for (size_t i = 0; i < q->nneg; i++) mn = fmaxf(mn, sim(m, q->neg + i * dim, v, dim));
    return mp > mn ? sigmoid(mp) : -sigmoid(mn);
}

/* Best-first list of scored candidates (records owned here). */
typedef struct top {
    ny_record *items;
    size_t n, cap;
} top;

static void top_free(top *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].vector);
        free(t->items[i].payload_json);
    }
    free(t->items);
    memset(t, 0, sizeof *t);
}

static int top_has(const top *t, const ny_point_id *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (!ny_point_id_cmp(&t->items[i].id, id)) return 1;
    return 0;
}

/* Offers rec (score set) to a list bounded at cap; takes ownership of its
 * buffers when kept (they are set to NULL in rec). */
static void top_offer(top *t, ny_record *rec)
{
    if (t->n == t->cap && (t->n == 0 || rec->score <= t->items[t->n - 1].score)) return;
    if (t->n == t->cap) {
        t->n--;
        free(t->items[t->n].vector);
        free(t->items[t->n].payload_json);
    }
    size_t i = t->n;
    while (i > 0 && t->items[i - 1].score < rec->score) {
        t->items[i] = t->items[i - 1];
        i--;
    }
    t->items[i] = *rec;
    t->n++;
    rec->vector = NULL;
    rec->payload_json = NULL;
}

static int run_recommend(req *r, ny_collection *c, query *q, ny_records *out)
{
    size_t dim = ny_collection_dim(c);
    ny_metric m = ny_collection_metric(c);
    if (m == NY_COSINE) {
        for (size_t i = 0; i < q->npos; i++) ny_normalize(q->pos + i * dim, dim);
        for (size_t i = 0; i < q->nneg; i++) ny_normalize(q->neg + i * dim, dim);
    }
    if (q->strategy == S_AVERAGE) {
        float *v = calloc(dim, sizeof(float));
        if (!v) return fail(r, 503, "Service internal error: out of memory"), -1;
        for (size_t i = 0; i < q->npos; i++)
            for (size_t d = 0; d < dim; d++) v[d] += q->pos[i * dim + d] / (float)q->npos;
        if (q->nneg) {
            for (size_t d = 0; d < dim; d++) {
                float an = 0;
                for (size_t i = 0; i < q->nneg; i++) an += q->neg[i * dim + d];
                an /= (float)q->nneg;
                v[d] = v[d] + (v[d] - an);
            }
        }
        int rc = run_vector(r, c, q, v, out);
        free(v);
        return rc;
    }
    size_t want = q->limit + q->offset;
    top t = {calloc(want, sizeof(ny_record)), 0, want};
    if (!t.items) return fail(r, 503, "Service internal error: out of memory"), -1;
    char *f = effective_filter(q);
    int ret = -1, full = q->strategy == S_SUM || q->npos == 0;
    ny_read_opts ro = {q->wp, 1};
    if (!full) {
        /* candidates: nearest neighbours of each positive */
        size_t beating = 0;
        for (size_t i = 0; i < q->npos; i++) {
            ny_search_params p = q->sp;
            p.has_score_threshold = 0;
            p.vector = q->pos + i * dim;
            p.limit = want;
            p.offset = 0;
            p.filter_json = f;
            p.read = ro;
            ny_records recs = {0};
            int rc = ny_collection_search(c, &p, &recs);
            if (rc) {
                fail_rc(r, rc, "searching");
                goto out;
            }
            for (size_t j = 0; j < recs.n; j++) {
                ny_record *rec = &recs.items[j];
                if (!rec->vector || top_has(&t, &rec->id)) continue;
                rec->score = reco_score(q, m, dim, rec->vector);
                if (rec->score > 0) beating++;
                top_offer(&t, rec);
            }
            ny_records_free(&recs);
        }
        /* positive scores are sigmoid(.) > 0; negatives' are < 0 */
        size_t pos_in_top = 0;
        for (size_t i = 0; i < t.n; i++) pos_in_top += t.items[i].score > 0;
        if (pos_in_top < want) full = 1;
        (void)beating;
    }
    if (full) {
        top_free(&t);
        t.items = calloc(want, sizeof(ny_record));
        t.cap = want;
        if (!t.items) {
            fail(r, 503, "Service internal error: out of memory");
            goto out;
        }
        ny_point_id off;
        int has_off = 0;
        for (;;) {
            if (req_timed_out(r)) goto out;
            ny_records recs = {0};
            int rc = ny_collection_scroll(c, has_off ? &off : NULL, 1024, f, &ro, &recs);
            if (rc) {
                fail_rc(r, rc, "scanning points");
                goto out;
            }
            for (size_t j = 0; j < recs.n; j++) {
                ny_record *rec = &recs.items[j];
                if (!rec->vector) continue;
                rec->score = reco_score(q, m, dim, rec->vector);
                top_offer(&t, rec);
            }
            has_off = recs.has_next;
            off = recs.next;
            ny_records_free(&recs);
            if (!has_off) break;
        }
    }
    /* offset, threshold, and drop vectors unless asked */
    memset(out, 0, sizeof *out);
    out->items = calloc(t.n ? t.n : 1, sizeof(ny_record));
    if (!out->items) {
        fail(r, 503, "Service internal error: out of memory");
        goto out;
    }
    for (size_t i = q->offset; i < t.n; i++) {
        ny_record *rec = &t.items[i];
        if (q->sp.has_score_threshold && rec->score < q->sp.score_threshold) continue;
        if (!q->wv) {
            free(rec->vector);
            rec->vector = NULL;
        }
        out->items[out->n++] = *rec;
        rec->vector = NULL;
        rec->payload_json = NULL;
    }
    ret = 0;
out:
    top_free(&t);
    free(f);
    return ret;
}

/* No query: points in id order (score 0), after the filter. */
static int run_none(req *r, ny_collection *c, query *q, ny_records *out)
{
    ny_read_opts ro = {q->wp, q->wv};
    ny_records all = {0};
    int rc = ny_collection_scroll(c, NULL, q->limit + q->offset, q->filter, &ro, &all);
    if (rc) return fail_rc(r, rc, "scrolling points"), -1;
    memset(out, 0, sizeof *out);
    out->items = calloc(all.n ? all.n : 1, sizeof(ny_record));
    if (!out->items) {
        ny_records_free(&all);
        return fail(r, 503, "Service internal error: out of memory"), -1;
    }
    for (size_t i = q->offset; i < all.n; i++) {
        out->items[out->n] = all.items[i];
        out->items[out->n].score = 0;
        out->n++;
        all.items[i].vector = NULL;
        all.items[i].payload_json = NULL;
    }
    ny_records_free(&all);
    return 0;
}

static int run_query(req *r, ny_collection *c, query *q, ny_records *out)
{
    switch (q->kind) {
    case Q_VECTOR: return run_vector(r, c, q, q->vec, out);
    case Q_RECOMMEND: return run_recommend(r, c, q, out);
    default: return run_none(r, c, q, out);
    }
}

/* ===== Request forms ==================================================== */

/* QueryRequest -> query.  Returns 0 or -1 (error recorded). */
static int parse_query_request(req *r, ny_collection *c, const json_t *b, query *q)
{
    static const char *const allowed[] = {"shard_key", "prefetch", "query", "using", "filter", "params",
                                          "score_threshold", "limit", "offset", "with_vector", "with_payload",
                                          "lookup_from", "consistency", "timeout", NULL};
    if (!json_is_object(b)) return fail(r, 400, "Json deserialize error: a query request must be an object"), -1;
    if (check_fields(r, b, NULL, allowed)) return -1;
    json_t *pf = json_object_get(b, "prefetch");
    if (pf && !json_is_null(pf) && !(json_is_array(pf) && json_array_size(pf) == 0))
        return fail(r, 400, "Wrong input: `prefetch` is not supported by Nearly (one dense vector per point): "
                            "query the vector directly"), -1;
    if (parse_common(r, b, q, 0, 0)) return -1;
    json_t *qv = json_object_get(b, "query");
    size_t dim = ny_collection_dim(c);
    if (!qv || json_is_null(qv)) {
        q->kind = Q_NONE;
        return 0;
    }
    lookup lk;
    if (open_lookup(r, c, b, &lk)) return -1;
    int rc = -1;
    if (json_is_object(qv) && json_object_size(qv) >= 1 && !json_object_get(qv, "indices") &&
        !json_object_get(qv, "text") && !json_object_get(qv, "image") && !json_object_get(qv, "object") &&
        !json_object_get(qv, "")) {
        json_t *x;
        if ((x = json_object_get(qv, "nearest"))) {
            json_t *mmr = json_object_get(qv, "mmr");
            if (mmr && !json_is_null(mmr)) {
                fail(r, 400, "Wrong input: `mmr` (maximal marginal relevance) is not supported by Nearly");
                goto out;
            }
            static const char *const na[] = {"nearest", "mmr", NULL};
            if (check_fields(r, qv, "query", na)) goto out;
            q->kind = Q_VECTOR;
            q->vec = malloc(dim * sizeof(float));
            if (!q->vec) {
                fail(r, 503, "Service internal error: out of memory");
                goto out;
            }
            rc = vector_input(r, c, &lk, q, x, q->vec, "query.nearest");
        } else if ((x = json_object_get(qv, "recommend"))) {
            if (!json_is_object(x)) {
                fail(r, 400, "Json deserialize error: query.recommend must be an object");
                goto out;
            }
            rc = parse_recommend(r, c, &lk, x, q);
        } else {
            const char *k = json_object_iter_key(json_object_iter(qv));
            fail(r, 400, "Wrong input: query `%s` is not supported by Nearly (supported: a vector, a point id, "
                         "`nearest`, `recommend`)", k);
        }
        goto out;
    }
    q->kind = Q_VECTOR;
    q->vec = malloc(dim * sizeof(float));
    if (!q->vec) {
        fail(r, 503, "Service internal error: out of memory");
        goto out;
    }
    rc = vector_input(r, c, &lk, q, qv, q->vec, "query");
out:
    close_lookup(&lk);
    return rc;
}

static int parse_search_request(req *r, ny_collection *c, const json_t *b, query *q)
{
    static const char *const allowed[] = {"shard_key", "vector", "filter", "params", "limit", "offset",
                                          "with_payload", "with_vector", "score_threshold", NULL};
    if (!json_is_object(b)) return fail(r, 400, "Json deserialize error: a search request must be an object"), -1;
    if (check_fields(r, b, NULL, allowed)) return -1;
    if (parse_common(r, b, q, 1, 0)) return -1;
    json_t *v = json_object_get(b, "vector");
    if (!v) return fail(r, 400, "Json deserialize error: missing field `vector`"), -1;
    /* NamedVector {"name": "", "vector": [...]} */
    if (json_is_object(v) && json_object_get(v, "vector")) {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (name && name[0]) return fail(r, 400, "Wrong input: Not existing vector name error: %s", name), -1;
        v = json_object_get(v, "vector");
    }
    size_t dim = ny_collection_dim(c);
    q->kind = Q_VECTOR;
    q->vec = malloc(dim * sizeof(float));
    if (!q->vec) return fail(r, 503, "Service internal error: out of memory"), -1;
    return get_vector(r, v, dim, q->vec, "vector");
}

static int parse_recommend_request(req *r, ny_collection *c, const json_t *b, query *q)
{
    static const char *const allowed[] = {"shard_key", "positive", "negative", "strategy", "filter", "params",
                                          "limit", "offset", "with_payload", "with_vector", "score_threshold",
                                          "using", "lookup_from", NULL};
    if (!json_is_object(b)) return fail(r, 400, "Json deserialize error: a recommend request must be an object"), -1;
    if (check_fields(r, b, NULL, allowed)) return -1;
    if (parse_common(r, b, q, 1, 0)) return -1;
    lookup lk;
    if (open_lookup(r, c, b, &lk)) return -1;
    json_t *reco = json_object();
    json_t *x;
    if ((x = json_object_get(b, "positive"))) json_object_set(reco, "positive", x);
    if ((x = json_object_get(b, "negative"))) json_object_set(reco, "negative", x);
    if ((x = json_object_get(b, "strategy"))) json_object_set(reco, "strategy", x);
    int rc = parse_recommend(r, c, &lk, reco, q);
    json_decref(reco);
    close_lookup(&lk);
    return rc;
}

typedef int (*parse_fn)(req *, ny_collection *, const json_t *, query *);

/* Runs one request (wrap: 1 = {"points": [...]}) or a batch of them. */
static int serve(req *r, parse_fn parse, int wrap, int batch)
{
    json_t *b = req_body(r);
    if (!b) return 0;
    const json_t *list = NULL;
    if (batch) {
        static const char *const allowed[] = {"searches", "timeout", NULL};
        if (check_fields(r, b, NULL, allowed)) return 0;
        list = json_object_get(b, "searches");
        if (!json_is_array(list)) return fail(r, 400, "Json deserialize error: missing field `searches` (a list)");
    }
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    size_t n = batch ? json_array_size(list) : 1;
    size_t dim = ny_collection_dim(c);
    sb res;
    sb_init(&res);
    if (batch) sb_putc(&res, '[');
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        query q;
        memset(&q, 0, sizeof q);
        ny_records recs = {0};
        if (req_timed_out(r) || parse(r, c, batch ? json_array_get(list, i) : b, &q) || run_query(r, c, &q, &recs)) {
            ok = 0;
            if (batch && r->err) {
                char *e = strdup(r->err);
                fail(r, r->status, "searches[%zu]: %s", i, e ? e : "");
                free(e);
            }
        } else {
            if (i) sb_putc(&res, ',');
            if (wrap) sb_puts(&res, "{\"points\":");
            put_records(&res, &recs, dim, 1);
            if (wrap) sb_putc(&res, '}');
        }
        ny_records_free(&recs);
        query_free(&q);
    }
    ny_collection_release(c);
    if (!ok) {
        sb_free(&res);
        return 0;
    }
    if (batch) sb_putc(&res, ']');
    sb_free(&r->out);
    r->out = res;
    r->status = 200;
    return 0;
}

int h_search(req *r)
{
    return serve(r, parse_search_request, 0, 0);
}

int h_search_batch(req *r)
{
    return serve(r, parse_search_request, 0, 1);
}

int h_query(req *r)
{
    return serve(r, parse_query_request, 1, 0);
}

int h_query_batch(req *r)
{
    return serve(r, parse_query_request, 1, 1);
}

int h_recommend(req *r)
{
    return serve(r, parse_recommend_request, 0, 0);
}

int h_recommend_batch(req *r)
{
    return serve(r, parse_recommend_request, 0, 1);
}
