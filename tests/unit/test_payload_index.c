/*
 * test_payload_index.c -- payload indexes and the filter-aware planner:
 *   - randomised: over generated payloads and filters, counts and exact
 *     searches of a collection with indexes equal those of the same data
 *     without indexes, also after upserts, deletes, payload edits and a
 *     reopen;
 *   - filtered recall@10 of the planned search against exact filtered brute
 *     force at 50% .. 0.01% selectivity (>= 0.95 each);
 *   - a tenant key: searches within one tenant take the exact plan.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collection/coll_index.h"
#include "filter/filter.h"
#include "nearly.h"
#include "t.h"

#define DIM 16

static ny_point_id pid(uint64_t n)
{
    ny_point_id p;
    memset(&p, 0, sizeof p);
    p.num = n;
    return p;
}

static ny_db *open_db(const char *dir)
{
    ny_db *db = NULL;
    if (ny_db_open(dir, &db) != NY_OK) printf("    ny_db_open: %s\n", ny_errmsg());
    return db;
}

static ny_collection *get(ny_db *db, const char *name)
{
    ny_collection *c = NULL;
    if (ny_db_get_collection(db, name, &c) != NY_OK) printf("    get %s: %s\n", name, ny_errmsg());
    return c;
}

static const char *words[] = {"red", "green", "blue", "Apple", "pear", "plum", "fig", "kiwi"};

/* A random payload; fields are sometimes missing, arrays or of another type. */
static void gen_payload(unsigned long long *s, char *buf, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "{");
    int first = 1;
#define SEP() (first ? (first = 0, "") : ", ")
    unsigned r = (unsigned)(t_rand(s) % 10);
    if (r < 7) o += (size_t)snprintf(buf + o, cap - o, "%s\"kw\": \"k%u\"", SEP(), (unsigned)(t_rand(s) % 12));
    else if (r < 9) o += (size_t)snprintf(buf + o, cap - o, "%s\"kw\": [\"k%u\", \"k%u\"]", SEP(),
                                          (unsigned)(t_rand(s) % 12), (unsigned)(t_rand(s) % 12));
    r = (unsigned)(t_rand(s) % 10);
    if (r < 6) o += (size_t)snprintf(buf + o, cap - o, "%s\"n\": %d", SEP(), (int)(t_rand(s) % 50) - 10);
    else if (r < 8) o += (size_t)snprintf(buf + o, cap - o, "%s\"n\": %.2f", SEP(), (double)(t_rand(s) % 5000) / 100 - 10);
    else if (r < 9) o += (size_t)snprintf(buf + o, cap - o, "%s\"n\": [%d, %d]", SEP(), (int)(t_rand(s) % 50),
                                          (int)(t_rand(s) % 50));
    if (t_rand(s) % 10 < 8)
        o += (size_t)snprintf(buf + o, cap - o, "%s\"f\": %.3f", SEP(), (double)(t_rand(s) % 100000) / 1000);
    if (t_rand(s) % 10 < 8) o += (size_t)snprintf(buf + o, cap - o, "%s\"b\": %s", SEP(), t_rand(s) % 2 ? "true" : "false");
    if (t_rand(s) % 10 < 8)
        o += (size_t)snprintf(buf + o, cap - o, "%s\"d\": \"2024-%02u-%02uT%02u:00:00Z\"", SEP(),
                              (unsigned)(t_rand(s) % 12 + 1), (unsigned)(t_rand(s) % 28 + 1), (unsigned)(t_rand(s) % 24));
    if (t_rand(s) % 10 < 8)
        o += (size_t)snprintf(buf + o, cap - o, "%s\"t\": \"%s %s, %s!\"", SEP(), words[t_rand(s) % 8],
                              words[t_rand(s) % 8], words[t_rand(s) % 8]);
    if (t_rand(s) % 10 < 8)
        o += (size_t)snprintf(buf + o, cap - o, "%s\"g\": {\"lon\": %.4f, \"lat\": %.4f}", SEP(),
                              (double)(t_rand(s) % 200000) / 10000 - 10, (double)(t_rand(s) % 200000) / 10000 + 40);
    if (t_rand(s) % 10 < 8) o += (size_t)snprintf(buf + o, cap - o, "%s\"u\": \"%08x-0000-4000-8000-000000000000\"", SEP(),
                                                  (unsigned)(t_rand(s) % 8));
    snprintf(buf + o, cap - o, "}");
#undef SEP
}

/* A random field condition. */
static size_t gen_cond(unsigned long long *s, char *buf, size_t cap)
{
    switch (t_rand(s) % 11) {
    case 0: return (size_t)snprintf(buf, cap, "{\"key\": \"kw\", \"match\": {\"value\": \"k%u\"}}", (unsigned)(t_rand(s) % 13));
    case 1: return (size_t)snprintf(buf, cap, "{\"key\": \"kw\", \"match\": {\"any\": [\"k%u\", \"k%u\"]}}",
                                    (unsigned)(t_rand(s) % 13), (unsigned)(t_rand(s) % 13));
    case 2: return (size_t)snprintf(buf, cap, "{\"key\": \"n\", \"range\": {\"gte\": %d, \"lt\": %d}}", (int)(t_rand(s) % 40) - 10,
                                    (int)(t_rand(s) % 40));
    case 3: return (size_t)snprintf(buf, cap, "{\"key\": \"n\", \"match\": {\"value\": %d}}", (int)(t_rand(s) % 40) - 10);
    case 4: return (size_t)snprintf(buf, cap, "{\"key\": \"f\", \"range\": {\"gt\": %.3f, \"lte\": %.3f}}",
                                    (double)(t_rand(s) % 100000) / 1000, (double)(t_rand(s) % 100000) / 1000);
    case 5: return (size_t)snprintf(buf, cap, "{\"key\": \"b\", \"match\": {\"value\": %s}}", t_rand(s) % 2 ? "true" : "false");
    case 6: return (size_t)snprintf(buf, cap, "{\"key\": \"d\", \"range\": {\"gte\": \"2024-%02u-01\", \"lt\": \"2024-%02u-15T12:00:00Z\"}}",
                                    (unsigned)(t_rand(s) % 12 + 1), (unsigned)(t_rand(s) % 12 + 1));
    case 7: return (size_t)snprintf(buf, cap, "{\"key\": \"t\", \"match\": {\"text\": \"%s %s\"}}", words[t_rand(s) % 8],
                                    t_rand(s) % 2 ? words[t_rand(s) % 8] : "");
    case 8: {
        double lon = (double)(t_rand(s) % 200) / 10 - 10, lat = (double)(t_rand(s) % 200) / 10 + 40;
        if (t_rand(s) % 2)
            return (size_t)snprintf(buf, cap, "{\"key\": \"g\", \"geo_radius\": {\"center\": {\"lon\": %.2f, \"lat\": %.2f}, \"radius\": %u}}",
                                    lon, lat, (unsigned)(t_rand(s) % 500000));
        return (size_t)snprintf(buf, cap, "{\"key\": \"g\", \"geo_bounding_box\": {\"top_left\": {\"lon\": %.2f, \"lat\": %.2f}, "
                                          "\"bottom_right\": {\"lon\": %.2f, \"lat\": %.2f}}}",
                                lon, lat + 3, lon + 4, lat);
    }
    case 9: return (size_t)snprintf(buf, cap, "{\"key\": \"u\", \"match\": {\"value\": \"%08x-0000-4000-8000-000000000000\"}}",
                                    (unsigned)(t_rand(s) % 9));
    default: return (size_t)snprintf(buf, cap, "{\"has_id\": [%u, %u, %u]}", (unsigned)(t_rand(s) % 3000),
                                     (unsigned)(t_rand(s) % 3000), (unsigned)(t_rand(s) % 3000));
    }
}

static void gen_filter(unsigned long long *s, char *buf, size_t cap, int depth)
{
    size_t o = (size_t)snprintf(buf, cap, "{");
    static const char *const clauses[] = {"must", "should", "must_not"};
    int nclause = 0;
    for (int c = 0; c < 3; c++) {
        if (t_rand(s) % 3 == 0 && !(c == 0 && nclause == 0)) continue;
        o += (size_t)snprintf(buf + o, cap - o, "%s\"%s\": [", nclause++ ? ", " : "", clauses[c]);
        int n = 1 + (int)(t_rand(s) % 3);
        for (int i = 0; i < n; i++) {
            if (i) o += (size_t)snprintf(buf + o, cap - o, ", ");
            if (depth < 1 && t_rand(s) % 5 == 0) {
                gen_filter(s, buf + o, cap - o, depth + 1);
                o += strlen(buf + o);
            } else {
                o += gen_cond(s, buf + o, cap - o);
            }
        }
        o += (size_t)snprintf(buf + o, cap - o, "]");
    }
    snprintf(buf + o, cap - o, "}");
}

static const char *const idx_fields[][2] = {
    {"kw", "\"keyword\""}, {"n", "\"integer\""}, {"f", "\"float\""}, {"b", "\"bool\""},
    {"d", "\"datetime\""}, {"t", "{\"type\": \"text\", \"tokenizer\": \"word\", \"lowercase\": true}"},
    {"g", "\"geo\""}, {"u", "\"uuid\""}};

static int upsert_random(ny_collection *a, ny_collection *b, uint64_t from, uint64_t to, unsigned long long *s)
{
    size_t n = (size_t)(to - from);
    ny_point *pts = calloc(n, sizeof *pts);
    float *vecs = malloc(n * DIM * sizeof(float));
    char (*pl)[512] = malloc(n * 512);
    for (size_t i = 0; i < n; i++) {
        pts[i].id = pid(from + i);
        for (int d = 0; d < DIM; d++) vecs[i * DIM + d] = t_randf(s);
        pts[i].vector = vecs + i * DIM;
        gen_payload(s, pl[i], 512);
        pts[i].payload_json = pl[i];
    }
    int rc = ny_collection_upsert(a, pts, n, 0);
    if (rc == NY_OK) rc = ny_collection_upsert(b, pts, n, 0);
    free(pts);
    free(vecs);
    free(pl);
    return rc;
}

/* Ground truth without indexes: every point of b (same data as a), its
 * payload evaluated with the compiled filter, distances by brute force. */
typedef struct truth {
    size_t n;
    uint64_t *ids;
    float *vecs;
    json_t **pls;
} truth;

static void truth_load(ny_collection *b, truth *t)
{
    memset(t, 0, sizeof *t);
    ny_read_opts ro = {.with_payload_json = "true", .with_vector = 1};
    ny_records r;
    if (ny_collection_scroll(b, NULL, 1u << 20, NULL, &ro, &r) != NY_OK) return;
    t->n = r.n;
    t->ids = malloc(r.n * sizeof *t->ids);
    t->vecs = malloc(r.n * DIM * sizeof(float));
    t->pls = calloc(r.n, sizeof *t->pls);
    for (size_t i = 0; i < r.n; i++) {
        t->ids[i] = r.items[i].id.num;
        memcpy(t->vecs + i * DIM, r.items[i].vector, DIM * sizeof(float));
        t->pls[i] = r.items[i].payload_json ? json_loads(r.items[i].payload_json, 0, NULL) : NULL;
    }
    ny_records_free(&r);
}

static void truth_free(truth *t)
{
    for (size_t i = 0; i < t->n; i++) json_decref(t->pls[i]);
    free(t->ids);
    free(t->vecs);
    free(t->pls);
}

/* Counts and exact top-10 of the indexed collection a vs the truth. */
static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static void compare(ny_collection *a, ny_collection *b, unsigned long long *s, int nfilters)
{
    char filter[4096];
    float q[DIM];
    int bad = 0;
    truth t;
    truth_load(b, &t);
    CHECK(t.n > 0);
    json_t *schema = json_loads("{\"t\": {\"type\": \"text\", \"tokenizer\": \"word\", \"lowercase\": true}}", 0, NULL);
    for (int i = 0; i < nfilters && bad < 5; i++) {
        gen_filter(s, filter, sizeof filter, 0);
        ny_fexpr *f = NULL;
        CHECK_RC(ny_filter_compile_schema(filter, schema, &f), NY_OK);
        for (int d = 0; d < DIM; d++) q[d] = t_randf(s);
        size_t na = 0, nt = 0;
        uint64_t best[10];
        float bd[10];
        int nb = 0;
        for (size_t j = 0; j < t.n; j++) {
            ny_point_id id = pid(t.ids[j]);
            if (!ny_filter_match(f, &id, t.pls[j])) continue;
            nt++;
            float d2 = 0;
            for (int d = 0; d < DIM; d++) d2 += (q[d] - t.vecs[j * DIM + d]) * (q[d] - t.vecs[j * DIM + d]);
            int pos = nb < 10 ? nb++ : 10;
            if (pos == 10 && d2 >= bd[9]) continue;
            if (pos == 10) pos = 9;
            while (pos > 0 && bd[pos - 1] > d2) bd[pos] = bd[pos - 1], best[pos] = best[pos - 1], pos--;
            bd[pos] = d2;
            best[pos] = t.ids[j];
        }
        ny_filter_free(f);
        CHECK_RC(ny_collection_count(a, filter, &na), NY_OK);
        if (na != nt) {
            bad++;
            t_fail(__FILE__, __LINE__, "count %zu != %zu for %s", na, nt, filter);
        }
        ny_search_params p = {.vector = q, .limit = 10, .filter_json = filter, .exact = 1};
        ny_records ra;
        CHECK_RC(ny_collection_search(a, &p, &ra), NY_OK);
        int same = ra.n == (size_t)nb;
        for (size_t j = 0; same && j < ra.n; j++) same = ra.items[j].id.num == best[j];
        if (!same) {
            bad++;
            t_fail(__FILE__, __LINE__, "search results differ (%zu vs %d) for %s", ra.n, nb, filter);
        }
        ny_records_free(&ra);
        /* scroll: a page from a random offset equals the matching ids in
         * id order (b is not indexed, and its text conditions would use
         * substring semantics, so the reference is the truth list) */
        uint64_t off = t_rand(s) % (t.n + 1);
        int use_off = i % 3 != 0;
        size_t lim = 1 + t_rand(s) % 40, nexp = 0;
        uint64_t *exp = malloc((t.n + 1) * sizeof *exp);
        REQUIRE(exp);
        CHECK_RC(ny_filter_compile_schema(filter, schema, &f), NY_OK);
        for (size_t j = 0; j < t.n; j++) {
            ny_point_id id = pid(t.ids[j]);
            if ((!use_off || t.ids[j] >= off) && ny_filter_match(f, &id, t.pls[j])) exp[nexp++] = t.ids[j];
        }
        ny_filter_free(f);
        qsort(exp, nexp, sizeof *exp, cmp_u64);
        ny_point_id offid = pid(off);
        ny_records sa;
        CHECK_RC(ny_collection_scroll(a, use_off ? &offid : NULL, lim, filter, NULL, &sa), NY_OK);
        same = sa.n == (nexp < lim ? nexp : lim) && sa.has_next == (nexp > lim) && (!sa.has_next || sa.next.num == exp[lim]);
        for (size_t j = 0; same && j < sa.n; j++) same = sa.items[j].id.num == exp[j];
        if (!same) {
            bad++;
            t_fail(__FILE__, __LINE__, "scroll page differs (%zu vs %zu expected) for %s", sa.n, nexp, filter);
        }
        ny_records_free(&sa);
        free(exp);
    }
    json_decref(schema);
    truth_free(&t);
}

TEST(index_agrees_with_scan_randomised)
{
    const char *dir = t_tmpdir();
    ny_db *db = open_db(dir);
    REQUIRE(db);
    const char *cfg = "{\"vectors\": {\"size\": 16, \"distance\": \"Euclid\"}, \"hnsw_config\": {\"m\": 8, \"ef_construct\": 32}}";
    CHECK_RC(ny_db_create_collection(db, "a", cfg), NY_OK);
    CHECK_RC(ny_db_create_collection(db, "b", cfg), NY_OK);
    ny_collection *a = get(db, "a"), *b = get(db, "b");
    REQUIRE(a && b);
    unsigned long long s = 42;
    size_t n = t_n(3000, 800);
    /* half the points before the indexes exist, half after */
    CHECK_RC(upsert_random(a, b, 0, n / 2, &s), NY_OK);
    for (size_t i = 0; i < sizeof idx_fields / sizeof *idx_fields; i++)
        CHECK_RC(ny_collection_create_payload_index(a, idx_fields[i][0], idx_fields[i][1], 1), NY_OK);
    CHECK_RC(upsert_random(a, b, n / 2, n, &s), NY_OK);
    compare(a, b, &s, (int)t_n(300, 60));

    /* mutations: replace some points, delete some, edit payloads */
    CHECK_RC(upsert_random(a, b, n / 4, n / 4 + n / 8, &s), NY_OK);
    const char *del = "{\"must\": [{\"key\": \"kw\", \"match\": {\"value\": \"k3\"}}]}";
    ny_selector sel = {.filter_json = del};
    size_t da = 0, dbn = 0;
    CHECK_RC(ny_collection_delete(a, &sel, 0, &da), NY_OK);
    CHECK_RC(ny_collection_delete(b, &sel, 0, &dbn), NY_OK);
    CHECK(da == dbn && da > 0);
    const char *sp = "{\"must\": [{\"key\": \"b\", \"match\": {\"value\": true}}, {\"key\": \"n\", \"range\": {\"lt\": 5}}]}";
    ny_selector sel2 = {.filter_json = sp};
    CHECK_RC(ny_collection_set_payload(a, &sel2, "{\"kw\": \"k99\", \"n\": 1000}", NULL, 0), NY_OK);
    CHECK_RC(ny_collection_set_payload(b, &sel2, "{\"kw\": \"k99\", \"n\": 1000}", NULL, 0), NY_OK);
    const char *keys[] = {"t", "g"};
    ny_point_id some[50];
    for (int i = 0; i < 50; i++) some[i] = pid((uint64_t)(i * 7) % n);
    ny_selector sel3 = {.ids = some, .n_ids = 50};
    CHECK_RC(ny_collection_delete_payload_keys(a, &sel3, keys, 2, 0), NY_OK);
    CHECK_RC(ny_collection_delete_payload_keys(b, &sel3, keys, 2, 0), NY_OK);
    size_t cnt = 0;
    CHECK_RC(ny_collection_count(a, "{\"must\": [{\"key\": \"kw\", \"match\": {\"value\": \"k99\"}}]}", &cnt), NY_OK);
    CHECK(cnt > 0);
    compare(a, b, &s, (int)t_n(300, 60));
    /* an index can be dropped (the scan takes over) and rebuilt */
    CHECK_RC(ny_collection_delete_payload_index(a, "kw", 1), NY_OK);
    compare(a, b, &s, (int)t_n(50, 20));
    CHECK_RC(ny_collection_create_payload_index(a, "kw", "\"keyword\"", 1), NY_OK);
    ny_collection_release(a);
    ny_collection_release(b);
    ny_db_close(db);

    /* reopen: indexes are rebuilt from the checkpoint and the log */
    db = open_db(dir);
    REQUIRE(db);
    a = get(db, "a");
    b = get(db, "b");
    REQUIRE(a && b);
    ny_plan_stats st0, st1;
    ny_coll_plan_stats(&st0);
    compare(a, b, &s, (int)t_n(200, 40));
    ny_coll_plan_stats(&st1);
    CHECK(st1.exact_plans > st0.exact_plans); /* the indexes were used */
    ny_collection_release(a);
    ny_collection_release(b);
    ny_db_close(db);
}

TEST(bad_index_requests)
{
    const char *dir = t_tmpdir();
    ny_db *db = open_db(dir);
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "c", "{\"vectors\": {\"size\": 16, \"distance\": \"Dot\"}}"), NY_OK);
    ny_collection *c = get(db, "c");
    REQUIRE(c);
    CHECK_RC(ny_collection_create_payload_index(c, "x", "\"nosuch\"", 1), NY_EINVAL);
    CHECK_RC(ny_collection_create_payload_index(c, "a..b", "\"keyword\"", 1), NY_EINVAL);
    CHECK_RC(ny_collection_create_payload_index(c, "x", "{\"type\": 3}", 1), NY_EINVAL);
    CHECK_RC(ny_collection_delete_payload_index(c, "x", 1), NY_ENOTFOUND);
    ny_collection_release(c);
    ny_db_close(db);
}

/* Recall@10 of the planned search vs exact filtered brute force. */
TEST(filtered_recall_by_selectivity)
{
    const char *dir = t_tmpdir();
    ny_db *db = open_db(dir);
    REQUIRE(db);
    /* full_scan_threshold 16 KB = 256 vectors of 16 floats: the HNSW plan
     * runs down to ~1% selectivity here. */
    CHECK_RC(ny_db_create_collection(db, "r", "{\"vectors\": {\"size\": 16, \"distance\": \"Euclid\"}, "
                                              "\"hnsw_config\": {\"m\": 12, \"ef_construct\": 64, \"full_scan_threshold\": 16}}"),
             NY_OK);
    ny_collection *c = get(db, "r");
    REQUIRE(c);
    CHECK_RC(ny_collection_create_payload_index(c, "sel", "\"integer\"", 1), NY_OK);
    size_t n = t_n(20000, 5000);
    unsigned long long s = 7;
    ny_point *pts = calloc(n, sizeof *pts);
    float *vecs = malloc(n * DIM * sizeof(float));
    char (*pl)[48] = malloc(n * 48);
    REQUIRE(pts && vecs && pl);
    for (size_t i = 0; i < n; i++) {
        pts[i].id = pid(i);
        for (int d = 0; d < DIM; d++) vecs[i * DIM + d] = t_randf(&s);
        pts[i].vector = vecs + i * DIM;
        snprintf(pl[i], 48, "{\"sel\": %u}", (unsigned)(t_rand(&s) % 100000));
        pts[i].payload_json = pl[i];
    }
    CHECK_RC(ny_collection_upsert(c, pts, n, 0), NY_OK);
    /* 3% runs the filtered graph walk (between the exact limit and the
     * post-filter plan) */
    static const double sels[] = {0.5, 0.1, 0.03, 0.01, 0.001, 0.0001};
    ny_plan_stats st0, st1;
    ny_coll_plan_stats(&st0);
    for (int si = 0; si < 6; si++) {
        char filter[128];
        snprintf(filter, sizeof filter, "{\"must\": [{\"key\": \"sel\", \"range\": {\"lt\": %u}}]}",
                 (unsigned)(sels[si] * 100000));
        size_t hits = 0, want = 0;
        int nq = (int)t_n(100, 30);
        for (int qi = 0; qi < nq; qi++) {
            float q[DIM];
            for (int d = 0; d < DIM; d++) q[d] = t_randf(&s);
            ny_search_params p = {.vector = q, .limit = 10, .filter_json = filter};
            ny_records ra, rb;
            CHECK_RC(ny_collection_search(c, &p, &ra), NY_OK);
            p.exact = 1;
            CHECK_RC(ny_collection_search(c, &p, &rb), NY_OK);
            want += rb.n;
            for (size_t j = 0; j < rb.n; j++)
                for (size_t i = 0; i < ra.n; i++)
                    if (ra.items[i].id.num == rb.items[j].id.num) {
                        hits++;
                        break;
                    }
            ny_records_free(&ra);
            ny_records_free(&rb);
        }
        double recall = want ? (double)hits / (double)want : 1.0;
        printf("    selectivity %.4f: recall@10 %.4f\n", sels[si], recall);
        CHECKF(recall >= 0.95, "selectivity %g: recall %.4f", sels[si], recall);
    }
    ny_coll_plan_stats(&st1);
    CHECK(st1.hnsw_plans > st0.hnsw_plans);
    CHECK(st1.exact_plans > st0.exact_plans);
    free(pts);
    free(vecs);
    free(pl);
    ny_collection_release(c);
    ny_db_close(db);
}

TEST(tenant_search_is_exact_and_complete)
{
    const char *dir = t_tmpdir();
    ny_db *db = open_db(dir);
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "t", "{\"vectors\": {\"size\": 16, \"distance\": \"Cosine\"}}"), NY_OK);
    ny_collection *c = get(db, "t");
    REQUIRE(c);
    CHECK_RC(ny_collection_create_payload_index(c, "tenant", "{\"type\": \"keyword\", \"is_tenant\": true}", 1), NY_OK);
    size_t n = t_n(10000, 2000);
    unsigned long long s = 9;
    ny_point *pts = calloc(n, sizeof *pts);
    float *vecs = malloc(n * DIM * sizeof(float));
    char (*pl)[48] = malloc(n * 48);
    REQUIRE(pts && vecs && pl);
    for (size_t i = 0; i < n; i++) {
        pts[i].id = pid(i);
        for (int d = 0; d < DIM; d++) vecs[i * DIM + d] = t_randf(&s);
        pts[i].vector = vecs + i * DIM;
        snprintf(pl[i], 48, "{\"tenant\": \"t%u\"}", (unsigned)(i % 100));
        pts[i].payload_json = pl[i];
    }
    CHECK_RC(ny_collection_upsert(c, pts, n, 0), NY_OK);
    ny_plan_stats st0, st1;
    ny_coll_plan_stats(&st0);
    for (int t = 0; t < 20; t++) {
        char filter[128];
        snprintf(filter, sizeof filter, "{\"must\": [{\"key\": \"tenant\", \"match\": {\"value\": \"t%d\"}}]}", t);
        float q[DIM];
        for (int d = 0; d < DIM; d++) q[d] = t_randf(&s);
        ny_search_params p = {.vector = q, .limit = 10, .filter_json = filter};
        ny_records r;
        CHECK_RC(ny_collection_search(c, &p, &r), NY_OK);
        CHECK(r.n == 10);
        /* brute force over the tenant's points */
        float best[10] = {0};
        int nb = 0;
        for (size_t i = (size_t)t; i < n; i += 100) {
            float a[DIM], na = 0, nq = 0, dot = 0;
            memcpy(a, vecs + i * DIM, sizeof a);
            for (int d = 0; d < DIM; d++) na += a[d] * a[d], nq += q[d] * q[d], dot += a[d] * q[d];
            float sc = dot / sqrtf(na * nq);
            int pos = nb < 10 ? nb++ : 10;
            if (pos == 10 && sc <= best[9]) continue;
            if (pos == 10) pos = 9;
            while (pos > 0 && best[pos - 1] < sc) best[pos] = best[pos - 1], pos--;
            best[pos] = sc;
        }
        for (size_t j = 0; j < r.n && j < 10; j++)
            CHECKF(fabsf(r.items[j].score - best[j]) < 1e-4, "tenant %d rank %zu: %g vs %g", t, j, r.items[j].score, best[j]);
        ny_records_free(&r);
    }
    ny_coll_plan_stats(&st1);
    CHECK(st1.exact_plans - st0.exact_plans == 20);
    free(pts);
    free(vecs);
    free(pl);
    ny_collection_release(c);
    ny_db_close(db);
}
