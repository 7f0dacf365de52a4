/* test_collection.c -- collections: API semantics, errors, persistence,
 * recovery from a crash and a torn log, injected disk-full, unreadable
 * files, snapshots, aliases.  Search results are compared with a brute
 * force over the test's own copy of the data. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nearly.h"
#include "collection/coll.h"
#include "storage/fileio.h"
#include "storage/wal.h"
#include "t.h"

#define DIM 16

static const char *cfg_l2 = "{\"vectors\": {\"size\": 16, \"distance\": \"Euclid\"}, \"hnsw_config\": {\"m\": 12, \"ef_construct\": 64}}";

static ny_point_id pid(uint64_t n)
{
    ny_point_id p;
    memset(&p, 0, sizeof p);
    p.num = n;
    return p;
}

static void gen_vec(uint64_t id, uint64_t salt, float *v)
{
    unsigned long long s = id * 7919 + salt * 104729 + 1;
    for (int d = 0; d < DIM; d++) v[d] = t_randf(&s);
}

static ny_db *open_db(const char *dir)
{
    ny_db *db = NULL;
    int rc = ny_db_open(dir, &db);
    if (rc != NY_OK) printf("    ny_db_open: %s\n", ny_errmsg());
    return db;
}

static ny_collection *get(ny_db *db, const char *name)
{
    ny_collection *c = NULL;
    if (ny_db_get_collection(db, name, &c) != NY_OK) printf("    get %s: %s\n", name, ny_errmsg());
    return c;
}

/* Upserts ids [from, to) with vectors gen_vec(id, salt) and payload
 * {"n": id, "even": bool, "salt": salt}. */
static int upsert_range(ny_collection *c, uint64_t from, uint64_t to, uint64_t salt, int wait)
{
    size_t n = (size_t)(to - from);
    ny_point *pts = calloc(n, sizeof *pts);
    float *vecs = malloc(n * DIM * sizeof(float));
    char (*pl)[96] = malloc(n * 96);
    for (size_t i = 0; i < n; i++) {
        uint64_t id = from + i;
        pts[i].id = pid(id);
        gen_vec(id, salt, vecs + i * DIM);
        pts[i].vector = vecs + i * DIM;
        snprintf(pl[i], 96, "{\"n\": %llu, \"even\": %s, \"salt\": %llu}", (unsigned long long)id,
                 id % 2 ? "false" : "true", (unsigned long long)salt);
        pts[i].payload_json = pl[i];
    }
    int rc = ny_collection_upsert(c, pts, n, wait);
    free(pts);
    free(vecs);
    free(pl);
    return rc;
}

/* Checks that point id exists with vector gen_vec(id, salt) and payload salt. */
static int point_is(ny_collection *c, uint64_t id, uint64_t salt)
{
    ny_point_id p = pid(id);
    ny_read_opts o = {.with_payload_json = "true", .with_vector = 1};
    ny_records r;
    if (ny_collection_retrieve(c, &p, 1, &o, &r) != NY_OK) return 0;
    int ok = r.n == 1 && r.items[0].vector && r.items[0].payload_json;
    if (ok) {
        float v[DIM];
        gen_vec(id, salt, v);
        ok = !memcmp(v, r.items[0].vector, sizeof v);
        char want[96];
        snprintf(want, sizeof want, "\"salt\":%llu", (unsigned long long)salt);
        ok = ok && strstr(r.items[0].payload_json, want) != NULL;
    }
    ny_records_free(&r);
    return ok;
}

static int exists(ny_collection *c, uint64_t id)
{
    ny_point_id p = pid(id);
    ny_records r;
    if (ny_collection_retrieve(c, &p, 1, NULL, &r) != NY_OK) return -1;
    int n = (int)r.n;
    ny_records_free(&r);
    return n;
}

static size_t count(ny_collection *c, const char *filter)
{
    size_t n = (size_t)-1;
    if (ny_collection_count(c, filter, &n) != NY_OK) printf("    count: %s\n", ny_errmsg());
    return n;
}

/* ---------------------------------------------------------------------- */

TEST(create_validate_list_drop)
{
    const char *dir = t_tmpdir();
    ny_db *db = open_db(dir);
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "a", cfg_l2), NY_OK);
    CHECK_RC(ny_db_create_collection(db, "a", cfg_l2), NY_EEXIST);
    /* Names: path tricks and bad characters are rejected. */
    CHECK_RC(ny_db_create_collection(db, "../x", cfg_l2), NY_EINVAL);
    CHECK_RC(ny_db_create_collection(db, ".hidden", cfg_l2), NY_EINVAL);
    CHECK_RC(ny_db_create_collection(db, "a/b", cfg_l2), NY_EINVAL);
    CHECK_RC(ny_db_create_collection(db, "", cfg_l2), NY_EINVAL);
    char longname[300];
    memset(longname, 'x', 299);
    longname[299] = 0;
    CHECK_RC(ny_db_create_collection(db, longname, cfg_l2), NY_EINVAL);
    /* Configs: messages name the field. */
    CHECK_RC(ny_db_create_collection(db, "b", "{\"vectors\": {\"size\": 4, \"distance\": \"Manhattan\"}}"), NY_EINVAL);
    CHECK(strstr(ny_errmsg(), "Manhattan") != NULL);
    CHECK_RC(ny_db_create_collection(db, "b", "{\"vectors\": {\"size\": \"4\", \"distance\": \"Dot\"}}"), NY_EINVAL);
    CHECK(strstr(ny_errmsg(), "vectors.size") != NULL);
    CHECK_RC(ny_db_create_collection(db, "b", "{\"vectors\": {\"size\": 4, \"distance\": \"Dot\"}, \"hnsw_config\": {\"m\": \"x\"}}"), NY_EINVAL);
    CHECK(strstr(ny_errmsg(), "hnsw_config.m") != NULL);
    CHECK_RC(ny_db_create_collection(db, "b", "{\"vectors\": {\"a\": {\"size\": 4, \"distance\": \"Dot\"}, \"b\": {\"size\": 4, \"distance\": \"Dot\"}}}"), NY_EINVAL);
    CHECK_RC(ny_db_create_collection(db, "b", "{\"vectors\": {\"size\": 0, \"distance\": \"Dot\"}}"), NY_EINVAL);
    CHECK_RC(ny_db_create_collection(db, "b", "not json"), NY_EINVAL);
    CHECK_RC(ny_db_create_collection(db, "b", "{\"vectors\": {\"size\": 4, \"distance\": \"Dot\"}, \"shard_number\": 3}"), NY_EINVAL);
    CHECK_RC(ny_db_create_collection(db, "b", "{\"vectors\": {\"size\": 4, \"distance\": \"Cosine\", \"on_disk\": true},"
                                              " \"optimizers_config\": {\"indexing_threshold\": 0}, \"on_disk_payload\": true}"), NY_OK);
    char *js = NULL;
    CHECK_RC(ny_db_list_collections(db, &js), NY_OK);
    CHECK(js && strstr(js, "\"a\"") && strstr(js, "\"b\""));
    ny_free(js);
    ny_collection *c = get(db, "b");
    REQUIRE(c);
    CHECK(ny_collection_dim(c) == 4 && ny_collection_metric(c) == NY_COSINE);
    CHECK(!strcmp(ny_collection_name(c), "b"));
    CHECK_RC(ny_collection_info_json(c, &js), NY_OK);
    CHECK(js && strstr(js, "\"status\":\"green\"") && strstr(js, "\"points_count\":0") &&
          strstr(js, "\"distance\":\"Cosine\"") && strstr(js, "\"optimizer_config\"") &&
          strstr(js, "\"hnsw_config\"") && strstr(js, "\"segments_count\"") && strstr(js, "\"payload_schema\""));
    ny_free(js);
    CHECK_RC(ny_db_drop_collection(db, "b"), NY_OK);
    CHECK_RC(ny_db_drop_collection(db, "b"), NY_ENOTFOUND);
    /* The handle outlives the drop but refuses work. */
    CHECK(ny_collection_count(c, NULL, &(size_t){0}) == NY_ECLOSED);
    ny_collection_release(c);
    ny_collection *x;
    CHECK_RC(ny_db_get_collection(db, "b", &x), NY_ENOTFOUND);
    /* A second open of the same directory is refused. */
    ny_db *db2;
    CHECK_RC(ny_db_open(dir, &db2), NY_EBUSY);
    ny_db_close(db);
    db = open_db(dir);
    REQUIRE(db);
    CHECK_RC(ny_db_list_collections(db, &js), NY_OK);
    CHECK(js && !strcmp(js, "[\"a\"]"));
    ny_free(js);
    ny_db_close(db);
}

TEST(points_search_scroll_count)
{
    ny_db *db = open_db(t_tmpdir());
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "c", cfg_l2), NY_OK);
    ny_collection *c = get(db, "c");
    REQUIRE(c);
    size_t n = t_n(3000, 600);
    for (size_t b = 0; b < n; b += 256) CHECK_RC(upsert_range(c, b, b + 256 < n ? b + 256 : n, 1, b % 512 == 0), NY_OK);
    CHECK(count(c, NULL) == n);
    CHECK(count(c, "{\"must\": [{\"key\": \"even\", \"match\": {\"value\": true}}]}") == (n + 1) / 2);
    /* Search vs brute force. */
    unsigned long long s = 99;
    int hits = 0, total = 0;
    for (int qi = 0; qi < 20; qi++) {
        float q[DIM];
        for (int d = 0; d < DIM; d++) q[d] = t_randf(&s);
        /* brute force top 10 */
        uint64_t best[10];
        float bd[10];
        for (int k = 0; k < 10; k++) bd[k] = INFINITY, best[k] = 0;
        for (size_t i = 0; i < n; i++) {
            float v[DIM], d2 = 0;
            gen_vec(i, 1, v);
            for (int d = 0; d < DIM; d++) d2 += (v[d] - q[d]) * (v[d] - q[d]);
            if (d2 < bd[9]) {
                int k = 9;
                while (k > 0 && bd[k - 1] > d2) bd[k] = bd[k - 1], best[k] = best[k - 1], k--;
                bd[k] = d2, best[k] = i;
            }
        }
        ny_search_params p = {.vector = q, .limit = 10, .exact = 1};
        ny_records r;
        REQUIRE(ny_collection_search(c, &p, &r) == NY_OK);
        CHECK(r.n == 10);
        for (size_t k = 0; k < r.n; k++) {
            CHECK(r.items[k].id.num == best[k]);
            CHECKF(fabsf(r.items[k].score - sqrtf(bd[k])) < 1e-3f, "score %g want %g", r.items[k].score, sqrtf(bd[k]));
        }
        ny_records_free(&r);
        p.exact = 0;
        p.hnsw_ef = 64;
        REQUIRE(ny_collection_search(c, &p, &r) == NY_OK);
        for (size_t k = 0; k < r.n; k++)
            for (int j = 0; j < 10; j++) hits += r.items[k].id.num == best[j];
        total += 10;
        ny_records_free(&r);
        /* Filter, offset, score threshold. */
        p.filter_json = "{\"must\": [{\"key\": \"even\", \"match\": {\"value\": false}}]}";
        p.offset = 2;
        p.limit = 5;
        p.read.with_payload_json = "[\"n\"]";
        REQUIRE(ny_collection_search(c, &p, &r) == NY_OK);
        CHECK(r.n == 5);
        for (size_t k = 0; k < r.n; k++) {
            CHECK(r.items[k].id.num % 2 == 1);
            CHECK(r.items[k].payload_json && strstr(r.items[k].payload_json, "\"n\"") && !strstr(r.items[k].payload_json, "even"));
            if (k) CHECK(r.items[k].score >= r.items[k - 1].score);
        }
        ny_records_free(&r);
        ny_search_params pt = {.vector = q, .limit = 10, .exact = 1, .has_score_threshold = 1, .score_threshold = sqrtf(bd[4]) + 1e-5f};
        REQUIRE(ny_collection_search(c, &pt, &r) == NY_OK);
        CHECK(r.n == 5);
        ny_records_free(&r);
    }
    CHECKF(hits >= total * 9 / 10, "hnsw recall %d/%d", hits, total);
    /* has_id filter: only those points, ranked. */
    float q0[DIM];
    gen_vec(7, 1, q0);
    ny_search_params ph = {.vector = q0, .limit = 5, .filter_json = "{\"must\": [{\"has_id\": [5, 7, 9]}]}"};
    ny_records rh;
    REQUIRE(ny_collection_search(c, &ph, &rh) == NY_OK);
    CHECK(rh.n == 3 && rh.items[0].id.num == 7);
    for (size_t k = 0; k < rh.n; k++) CHECK(rh.items[k].id.num == 5 || rh.items[k].id.num == 7 || rh.items[k].id.num == 9);
    ny_records_free(&rh);
    /* Scroll through everything in id order, pages of 97. */
    ny_point_id off;
    int has = 0;
    size_t seen = 0;
    uint64_t expect = 0;
    for (;;) {
        ny_records r;
        ny_read_opts o = {.with_payload_json = "true"};
        REQUIRE(ny_collection_scroll(c, has ? &off : NULL, 97, NULL, &o, &r) == NY_OK);
        for (size_t i = 0; i < r.n; i++) {
            CHECK(r.items[i].id.num == expect);
            expect++;
        }
        seen += r.n;
        has = r.has_next;
        off = r.next;
        ny_records_free(&r);
        if (!has) break;
    }
    CHECK(seen == n);
    /* Scroll with a filter. */
    ny_records r;
    ny_point_id start = pid(10);
    REQUIRE(ny_collection_scroll(c, &start, 3, "{\"must\": [{\"key\": \"even\", \"match\": {\"value\": false}}]}", NULL, &r) == NY_OK);
    CHECK(r.n == 3 && r.items[0].id.num == 11 && r.items[2].id.num == 15 && r.has_next && r.next.num == 17);
    CHECK(r.items[0].payload_json == NULL && r.items[0].vector == NULL);
    ny_records_free(&r);
    ny_collection_release(c);
    ny_db_close(db);
}

TEST(replace_delete_payload_ops)
{
    ny_db *db = open_db(t_tmpdir());
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "c", cfg_l2), NY_OK);
    ny_collection *c = get(db, "c");
    REQUIRE(c);
    CHECK_RC(upsert_range(c, 0, 100, 1, 1), NY_OK);
    /* Replace 0..49 with new vectors and payloads: everywhere, index included. */
    CHECK_RC(upsert_range(c, 0, 50, 2, 1), NY_OK);
    CHECK(count(c, NULL) == 100);
    CHECK(point_is(c, 7, 2) && point_is(c, 70, 1));
    float q[DIM];
    gen_vec(7, 2, q);
    ny_search_params p = {.vector = q, .limit = 1};
    ny_records r;
    REQUIRE(ny_collection_search(c, &p, &r) == NY_OK);
    CHECK(r.n == 1 && r.items[0].id.num == 7 && r.items[0].score < 1e-3f);
    ny_records_free(&r);
    gen_vec(7, 1, q); /* the old vector is gone */
    p.exact = 1;
    REQUIRE(ny_collection_search(c, &p, &r) == NY_OK);
    CHECK(r.n == 1 && !(r.items[0].id.num == 7 && r.items[0].score < 1e-6f));
    ny_records_free(&r);
    /* Duplicate ids in one batch: the last one wins. */
    float v1[DIM], v2[DIM];
    gen_vec(500, 1, v1);
    gen_vec(500, 2, v2);
    ny_point dup[2] = {{pid(500), v1, "{\"salt\": 1}"}, {pid(500), v2, "{\"salt\": 2}"}};
    CHECK_RC(ny_collection_upsert(c, dup, 2, 1), NY_OK);
    CHECK(point_is(c, 500, 2));
    CHECK(count(c, NULL) == 101);
    /* Delete by ids and by filter. */
    ny_point_id del[3] = {pid(1), pid(2), pid(999)};
    ny_selector sel = {.ids = del, .n_ids = 3};
    size_t nd = 0;
    CHECK_RC(ny_collection_delete(c, &sel, 1, &nd), NY_OK);
    CHECK(nd == 2 && exists(c, 1) == 0 && exists(c, 3) == 1);
    ny_selector fs = {.filter_json = "{\"must\": [{\"key\": \"n\", \"range\": {\"gte\": 90}}]}"};
    CHECK_RC(ny_collection_delete(c, &fs, 1, &nd), NY_OK);
    CHECK(nd == 10); /* 90..99 (500's payload has no "n") */
    CHECK(count(c, NULL) == 89);
    ny_selector both = {.ids = del, .n_ids = 1, .filter_json = "{}"};
    CHECK_RC(ny_collection_delete(c, &both, 1, NULL), NY_EINVAL);
    /* Payload operations. */
    ny_point_id p3 = pid(3);
    ny_selector s3 = {.ids = &p3, .n_ids = 1};
    CHECK_RC(ny_collection_set_payload(c, &s3, "{\"tag\": \"x\", \"nested\": {\"a\": 1}}", NULL, 1), NY_OK);
    CHECK_RC(ny_collection_set_payload(c, &s3, "{\"b\": 2}", "nested", 1), NY_OK);
    ny_read_opts o = {.with_payload_json = "true"};
    REQUIRE(ny_collection_retrieve(c, &p3, 1, &o, &r) == NY_OK);
    CHECK(r.n == 1 && strstr(r.items[0].payload_json, "\"tag\":\"x\"") && strstr(r.items[0].payload_json, "\"b\":2") &&
          strstr(r.items[0].payload_json, "\"a\":1") && strstr(r.items[0].payload_json, "\"salt\":2"));
    ny_records_free(&r);
    const char *keys[] = {"nested.a", "salt"};
    CHECK_RC(ny_collection_delete_payload_keys(c, &s3, keys, 2, 1), NY_OK);
    REQUIRE(ny_collection_retrieve(c, &p3, 1, &o, &r) == NY_OK);
    CHECK(r.n == 1 && !strstr(r.items[0].payload_json, "\"a\":") && !strstr(r.items[0].payload_json, "salt") &&
          strstr(r.items[0].payload_json, "\"b\":2"));
    ny_records_free(&r);
    CHECK_RC(ny_collection_overwrite_payload(c, &s3, "{\"only\": true}", 1), NY_OK);
    REQUIRE(ny_collection_retrieve(c, &p3, 1, &o, &r) == NY_OK);
    CHECK(r.n == 1 && !strcmp(r.items[0].payload_json, "{\"only\":true}"));
    ny_records_free(&r);
    ny_selector evens = {.filter_json = "{\"must\": [{\"key\": \"even\", \"match\": {\"value\": true}}]}"};
    CHECK_RC(ny_collection_clear_payload(c, &evens, 1), NY_OK);
    CHECK(count(c, "{\"must\": [{\"key\": \"even\", \"match\": {\"value\": true}}]}") == 0);
    ny_point_id p4 = pid(4);
    REQUIRE(ny_collection_retrieve(c, &p4, 1, &o, &r) == NY_OK);
    CHECK(r.n == 1 && !strcmp(r.items[0].payload_json, "{}"));
    ny_records_free(&r);
    CHECK_RC(ny_collection_set_payload(c, &s3, "[1]", NULL, 1), NY_EINVAL);
    CHECK_RC(ny_collection_set_payload(c, &s3, "{}", "bad..path", 1), NY_EINVAL);
    /* Update vectors: all or nothing. */
    float nv[2 * DIM];
    gen_vec(3, 9, nv);
    gen_vec(4, 9, nv + DIM);
    ny_point_id up[2] = {pid(3), pid(12345)};
    CHECK_RC(ny_collection_update_vectors(c, up, nv, 2, 1), NY_ENOTFOUND);
    ny_read_opts ov = {.with_vector = 1};
    REQUIRE(ny_collection_retrieve(c, &p3, 1, &ov, &r) == NY_OK);
    float old3[DIM];
    gen_vec(3, 2, old3);
    CHECK(r.n == 1 && !memcmp(r.items[0].vector, old3, sizeof old3));
    ny_records_free(&r);
    up[1] = pid(4);
    CHECK_RC(ny_collection_update_vectors(c, up, nv, 2, 1), NY_OK);
    REQUIRE(ny_collection_retrieve(c, up, 2, &ov, &r) == NY_OK);
    CHECK(r.n == 2 && !memcmp(r.items[0].vector, nv, DIM * sizeof(float)) && !memcmp(r.items[1].vector, nv + DIM, DIM * sizeof(float)));
    ny_records_free(&r);
    /* Payload index bookkeeping. */
    CHECK_RC(ny_collection_create_payload_index(c, "n", "\"integer\"", 1), NY_OK);
    CHECK_RC(ny_collection_create_payload_index(c, "n", "\"nonsense\"", 1), NY_EINVAL);
    char *js;
    CHECK_RC(ny_collection_info_json(c, &js), NY_OK);
    CHECK(js && strstr(js, "\"n\":{\"data_type\":\"integer\""));
    ny_free(js);
    CHECK_RC(ny_collection_delete_payload_index(c, "n", 1), NY_OK);
    CHECK_RC(ny_collection_delete_payload_index(c, "n", 1), NY_ENOTFOUND);
    CHECK_RC(ny_collection_update_config(c, "{\"optimizers_config\": {\"indexing_threshold\": 5}}"), NY_OK);
    CHECK_RC(ny_collection_update_config(c, "{\"hnsw_config\": {\"m\": -1}}"), NY_EINVAL);
    CHECK_RC(ny_collection_info_json(c, &js), NY_OK);
    CHECK(js && strstr(js, "\"indexing_threshold\":5"));
    ny_free(js);
    ny_collection_release(c);
    ny_db_close(db);
}

TEST(bad_input_leaves_data_intact)
{
    ny_db *db = open_db(t_tmpdir());
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "c", cfg_l2), NY_OK);
    ny_collection *c = get(db, "c");
    REQUIRE(c);
    CHECK_RC(upsert_range(c, 0, 10, 1, 1), NY_OK);
    float good[DIM], bad[DIM];
    gen_vec(100, 1, good);
    memcpy(bad, good, sizeof bad);
    bad[3] = NAN;
    ny_point pts[2] = {{pid(0), good, NULL}, {pid(100), bad, NULL}};
    CHECK_RC(ny_collection_upsert(c, pts, 2, 1), NY_EINVAL);
    CHECK(strstr(ny_errmsg(), "NaN") != NULL);
    bad[3] = INFINITY;
    CHECK_RC(ny_collection_upsert(c, pts, 2, 1), NY_EINVAL);
    pts[1].vector = good;
    pts[1].payload_json = "[1, 2]";
    CHECK_RC(ny_collection_upsert(c, pts, 2, 1), NY_EINVAL);
    CHECK(strstr(ny_errmsg(), "object") != NULL);
    pts[1].payload_json = "{\"a\": ";
    CHECK_RC(ny_collection_upsert(c, pts, 2, 1), NY_EINVAL);
    pts[1].payload_json = NULL;
    pts[1].id.is_uuid = 7;
    CHECK_RC(ny_collection_upsert(c, pts, 2, 1), NY_EINVAL);
    pts[1].vector = NULL;
    pts[1].id.is_uuid = 0;
    CHECK_RC(ny_collection_upsert(c, pts, 2, 1), NY_EINVAL);
    /* Nothing of the failed batches was applied (point 0 kept its data). */
    CHECK(count(c, NULL) == 10 && point_is(c, 0, 1) && exists(c, 100) == 0);
    ny_search_params sp = {.vector = bad, .limit = 3};
    ny_records r;
    CHECK_RC(ny_collection_search(c, &sp, &r), NY_EINVAL);
    sp.vector = good;
    sp.limit = 0;
    CHECK_RC(ny_collection_search(c, &sp, &r), NY_EINVAL);
    sp.limit = 3;
    sp.filter_json = "{\"must\": 5}";
    CHECK_RC(ny_collection_search(c, &sp, &r), NY_EINVAL);
    sp.filter_json = NULL;
    sp.read.with_payload_json = "{\"include\": 3}";
    CHECK_RC(ny_collection_search(c, &sp, &r), NY_EINVAL);
    CHECK_RC(ny_collection_count(c, "{not json", &(size_t){0}), NY_EINVAL);
    /* UUID ids sort after integers. */
    ny_point_id u;
    REQUIRE(ny_point_id_parse("550e8400-e29b-41d4-a716-446655440000", &u) == NY_OK);
    ny_point up = {u, good, "{\"u\": 1}"};
    CHECK_RC(ny_collection_upsert(c, &up, 1, 1), NY_OK);
    REQUIRE(ny_collection_scroll(c, NULL, 100, NULL, NULL, &r) == NY_OK);
    CHECK(r.n == 11 && r.items[10].id.is_uuid && !memcmp(r.items[10].id.uuid, u.uuid, 16));
    ny_records_free(&r);
    ny_collection_release(c);
    ny_db_close(db);
}

static void verify_state(ny_collection *c, uint64_t n, uint64_t replaced, uint64_t deleted_from)
{
    /* ids [0, n): [0, replaced) carry salt 2, the rest salt 1; ids >=
     * deleted_from are gone. */
    int bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (i >= deleted_from) bad += exists(c, i) != 0;
        else bad += !point_is(c, i, i < replaced ? 2 : 1);
    }
    CHECKF(bad == 0, "%d points differ", bad);
    CHECK(count(c, NULL) == (deleted_from < n ? deleted_from : n));
}

TEST(persistence_close_reopen_checkpoint)
{
    const char *dir = t_tmpdir();
    ny_db *db = open_db(dir);
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "p", cfg_l2), NY_OK);
    ny_collection *c = get(db, "p");
    REQUIRE(c);
    uint64_t n = t_n(1200, 300);
    CHECK_RC(upsert_range(c, 0, n, 1, 0), NY_OK);
    CHECK_RC(ny_collection_checkpoint(c), NY_OK);
    /* More writes after the checkpoint live only in the log. */
    CHECK_RC(upsert_range(c, 0, 100, 2, 0), NY_OK);
    ny_point_id dl[50];
    for (int i = 0; i < 50; i++) dl[i] = pid(n - 50 + (uint64_t)i);
    ny_selector sel = {.ids = dl, .n_ids = 50};
    CHECK_RC(ny_collection_delete(c, &sel, 1, NULL), NY_OK);
    verify_state(c, n, 100, n - 50);
    ny_collection_release(c);
    ny_db_close(db);
    db = open_db(dir);
    REQUIRE(db);
    c = get(db, "p");
    REQUIRE(c);
    verify_state(c, n, 100, n - 50);
    char *js;
    CHECK_RC(ny_collection_info_json(c, &js), NY_OK);
    CHECK(js && strstr(js, "\"indexed_vectors_count\""));
    ny_free(js);
    ny_collection_release(c);
    ny_db_close(db);
}

/* Runs fn in a child that exits without closing anything (a crash after
 * the acknowledged writes). */
static int in_child(void (*fn)(const char *), const char *dir)
{
    pid_t p = fork();
    if (p == 0) {
        fn(dir);
        _exit(0);
    }
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static uint64_t crash_n;

static void crash_writer(const char *dir)
{
    ny_db *db;
    if (ny_db_open(dir, &db) != NY_OK) _exit(2);
    if (ny_db_create_collection(db, "k", cfg_l2) != NY_OK) _exit(3);
    ny_collection *c;
    if (ny_db_get_collection(db, "k", &c) != NY_OK) _exit(4);
    if (upsert_range(c, 0, crash_n, 1, 1) != NY_OK) _exit(5);
    if (ny_collection_checkpoint(c) != NY_OK) _exit(6);
    if (upsert_range(c, 0, 40, 2, 1) != NY_OK) _exit(7);
    _exit(0); /* no close, no final checkpoint */
}

static void last_segment(const char *dir, char *out, size_t n)
{
    char wd[600];
    snprintf(wd, sizeof wd, "%s/collections/k/wal", dir);
    DIR *d = opendir(wd);
    struct dirent *e;
    char best[256] = "";
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".log") && strcmp(e->d_name, best) > 0) snprintf(best, sizeof best, "%s", e->d_name);
    if (d) closedir(d);
    snprintf(out, n, "%s/%s", wd, best);
}

TEST(recovery_after_crash_and_torn_tail)
{
    const char *dir = t_tmpdir();
    crash_n = t_n(800, 200);
    REQUIRE(in_child(crash_writer, dir));
    /* A torn tail: half a record of garbage after the last good one. */
    char seg[900];
    last_segment(dir, seg, sizeof seg);
    int fd = open(seg, O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    unsigned char junk[100];
    for (int i = 0; i < 100; i++) junk[i] = (unsigned char)(i * 13);
    uint32_t len = 5000; /* claims more bytes than follow */
    CHECK(write(fd, &len, 4) == 4);
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);
    ny_db *db = open_db(dir);
    REQUIRE(db);
    ny_collection *c = get(db, "k");
    REQUIRE(c);
    verify_state(c, crash_n, 40, crash_n);
    /* Search works and writes continue after the cut. */
    float q[DIM];
    gen_vec(5, 2, q);
    ny_search_params p = {.vector = q, .limit = 1};
    ny_records r;
    REQUIRE(ny_collection_search(c, &p, &r) == NY_OK);
    CHECK(r.n == 1 && r.items[0].id.num == 5);
    ny_records_free(&r);
    CHECK_RC(upsert_range(c, crash_n, crash_n + 10, 1, 1), NY_OK);
    ny_collection_release(c);
    ny_db_close(db);
    db = open_db(dir);
    REQUIRE(db);
    c = get(db, "k");
    REQUIRE(c);
    verify_state(c, crash_n + 10, 40, crash_n + 10);
    ny_collection_release(c);
    ny_db_close(db);
}

TEST(disk_full_injected)
{
    const char *dir = t_tmpdir();
    ny_db *db = open_db(dir);
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "f", cfg_l2), NY_OK);
    ny_collection *c = get(db, "f");
    REQUIRE(c);
    CHECK_RC(upsert_range(c, 0, 200, 1, 1), NY_OK);
    ny_fault_set_write_limit(3000); /* a few KB left on the "disk" */
    CHECK_RC(upsert_range(c, 200, 400, 1, 1), NY_EFULL);
    CHECK(strstr(ny_errmsg(), "log") != NULL);
    CHECK(count(c, NULL) == 200 && exists(c, 250) == 0);
    /* A checkpoint cannot be written either, and nothing is lost. */
    ny_fault_set_write_limit(1000);
    CHECK(ny_collection_checkpoint(c) == NY_EFULL);
    ny_fault_set_write_limit(-1);
    verify_state(c, 200, 0, 200);
    /* Space comes back: writes work again. */
    CHECK_RC(upsert_range(c, 200, 300, 1, 1), NY_OK);
    ny_collection_release(c);
    ny_db_close(db);
    db = open_db(dir);
    REQUIRE(db);
    c = get(db, "f");
    REQUIRE(c);
    verify_state(c, 300, 0, 300);
    ny_collection_release(c);
    ny_db_close(db);
}

TEST(unreadable_and_corrupt_files)
{
    const char *dir = t_tmpdir();
    ny_db *db = open_db(dir);
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "good", cfg_l2), NY_OK);
    CHECK_RC(ny_db_create_collection(db, "bad", cfg_l2), NY_OK);
    CHECK_RC(ny_db_create_collection(db, "bad2", cfg_l2), NY_OK);
    const char *names[] = {"good", "bad", "bad2"};
    for (int i = 0; i < 3; i++) {
        ny_collection *c = get(db, names[i]);
        REQUIRE(c);
        CHECK_RC(upsert_range(c, 0, 100, 1, 1), NY_OK);
        ny_collection_release(c);
    }
    ny_db_close(db); /* checkpoints all */
    /* bad: flip a byte in the points file; bad2: the points file becomes
     * unreadable (a directory in its place). */
    char path[700];
    char *man;
    snprintf(path, sizeof path, "%s/collections/bad/CHECKPOINT", dir);
    REQUIRE(ny_io_read_file(path, &man, NULL) == NY_OK);
    const char *q = strstr(man, "\"lsn\": ");
    REQUIRE(q);
    unsigned long long lsn = strtoull(q + 7, NULL, 10);
    free(man);
    snprintf(path, sizeof path, "%s/collections/bad/points-%llu.dat", dir, lsn);
    int fd = open(path, O_RDWR);
    REQUIRE(fd >= 0);
    unsigned char x;
    CHECK(pread(fd, &x, 1, 60) == 1);
    x ^= 1;
    CHECK(pwrite(fd, &x, 1, 60) == 1);
    close(fd);
    snprintf(path, sizeof path, "%s/collections/bad2/points-%llu.dat", dir, lsn);
    CHECK(unlink(path) == 0 && mkdir(path, 0755) == 0);
    db = open_db(dir);
    REQUIRE(db);
    ny_collection *c;
    CHECK_RC(ny_db_get_collection(db, "bad", &c), NY_ECORRUPT);
    CHECK(strstr(ny_errmsg(), "bad") != NULL);
    CHECK(ny_db_get_collection(db, "bad2", &c) < 0);
    CHECK(strstr(ny_errmsg(), "points") != NULL);
    c = get(db, "good");
    REQUIRE(c);
    verify_state(c, 100, 0, 100);
    ny_collection_release(c);
    ny_db_close(db);
    /* The damaged collection's files are left for inspection. */
    snprintf(path, sizeof path, "%s/collections/bad/points-%llu.dat", dir, lsn);
    CHECK(access(path, F_OK) == 0);
}

TEST(snapshot_restore)
{
    const char *dir = t_tmpdir();
    ny_db *db = open_db(dir);
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "s", cfg_l2), NY_OK);
    ny_collection *c = get(db, "s");
    REQUIRE(c);
    uint64_t n = t_n(600, 200);
    CHECK_RC(upsert_range(c, 0, n, 1, 1), NY_OK);
    CHECK_RC(upsert_range(c, 0, 10, 2, 1), NY_OK);
    char snap[700], bad[700];
    snprintf(snap, sizeof snap, "%s/s.snapshot", dir);
    snprintf(bad, sizeof bad, "%s/bad.snapshot", dir);
    CHECK_RC(ny_collection_snapshot(c, snap), NY_OK);
    /* Later writes are not in the snapshot. */
    CHECK_RC(upsert_range(c, n, n + 5, 1, 1), NY_OK);
    CHECK_RC(ny_db_restore_snapshot(db, "s2", snap, 0), NY_OK);
    ny_collection *c2 = get(db, "s2");
    REQUIRE(c2);
    verify_state(c2, n, 10, n);
    CHECK(exists(c2, n) == 0);
    CHECK_RC(ny_db_restore_snapshot(db, "s2", snap, 0), NY_EEXIST);
    /* A damaged snapshot is refused and touches nothing. */
    char *data;
    size_t len;
    REQUIRE(ny_io_read_file(snap, &data, &len) == NY_OK);
    data[len / 2] ^= 0x40;
    REQUIRE(ny_io_write_atomic(bad, data, len) == NY_OK);
    free(data);
    CHECK_RC(ny_db_restore_snapshot(db, "s", bad, 1), NY_ECORRUPT);
    CHECK(strstr(ny_errmsg(), "checksum") != NULL);
    CHECK(count(c, NULL) == n + 5);
    CHECK_RC(ny_db_restore_snapshot(db, "s3", "/nonexistent/file", 0), NY_ENOTFOUND);
    /* Overwrite replaces the collection. */
    CHECK_RC(ny_db_restore_snapshot(db, "s", snap, 1), NY_OK);
    ny_collection *c3 = get(db, "s");
    REQUIRE(c3);
    verify_state(c3, n, 10, n);
    CHECK(count(c3, NULL) == n);
    /* The restored collection takes writes and survives a reopen. */
    CHECK_RC(upsert_range(c3, n, n + 3, 1, 1), NY_OK);
    ny_collection_release(c);
    ny_collection_release(c2);
    ny_collection_release(c3);
    ny_db_close(db);
    db = open_db(dir);
    REQUIRE(db);
    c = get(db, "s");
    REQUIRE(c);
    CHECK(count(c, NULL) == n + 3);
    ny_collection_release(c);
    ny_db_close(db);
}

TEST(aliases)
{
    const char *dir = t_tmpdir();
    ny_db *db = open_db(dir);
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "real", cfg_l2), NY_OK);
    CHECK_RC(ny_db_alias_create(db, "al", "real"), NY_OK);
    CHECK_RC(ny_db_alias_create(db, "al", "real"), NY_EEXIST);
    CHECK_RC(ny_db_alias_create(db, "x", "missing"), NY_ENOTFOUND);
    CHECK_RC(ny_db_alias_create(db, "../evil", "real"), NY_EINVAL);
    ny_collection *c = get(db, "al");
    REQUIRE(c);
    CHECK(!strcmp(ny_collection_name(c), "real"));
    ny_collection_release(c);
    CHECK_RC(ny_db_alias_rename(db, "al", "al2"), NY_OK);
    char *js;
    CHECK_RC(ny_db_alias_list(db, NULL, &js), NY_OK);
    CHECK(js && !strcmp(js, "[{\"alias_name\":\"al2\",\"collection_name\":\"real\"}]"));
    ny_free(js);
    ny_db_close(db);
    db = open_db(dir);
    REQUIRE(db);
    CHECK_RC(ny_db_alias_list(db, "real", &js), NY_OK);
    CHECK(js && strstr(js, "al2"));
    ny_free(js);
    CHECK_RC(ny_db_drop_collection(db, "real"), NY_OK);
    CHECK_RC(ny_db_alias_list(db, NULL, &js), NY_OK);
    CHECK(js && !strcmp(js, "[]"));
    ny_free(js);
    CHECK_RC(ny_db_alias_delete(db, "al2"), NY_ENOTFOUND);
    ny_db_close(db);
}

/* A real full disk: a 3 MiB tmpfs (needs root to mount; elsewhere the
 * injected-fault test above covers the same paths). */
TEST(disk_full_tmpfs)
{
    char mnt[600];
    snprintf(mnt, sizeof mnt, "%s/tiny", t_tmpdir());
    REQUIRE(mkdir(mnt, 0755) == 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=3m") != 0) {
        printf("    (tmpfs not mountable here: %s; the injected-fault test covers ENOSPC)\n", strerror(errno));
        CHECK(rmdir(mnt) == 0);
        return;
    }
    ny_db *db = open_db(mnt);
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "t", cfg_l2), NY_OK);
    ny_collection *c = get(db, "t");
    REQUIRE(c);
    uint64_t acked = 0;
    int rc = NY_OK;
    for (int b = 0; b < 1000 && rc == NY_OK; b++) {
        rc = upsert_range(c, acked, acked + 200, 1, 1);
        if (rc == NY_OK) acked += 200;
    }
    CHECK_RC(rc, NY_EFULL);
    CHECK(acked > 0);
    CHECK(count(c, NULL) == acked);
    verify_state(c, acked + 200, 0, acked);
    /* Reads and deletes (small records) still work on a full disk or fail
     * cleanly; the data stays intact either way. */
    CHECK(ny_collection_checkpoint(c) == NY_EFULL);
    verify_state(c, acked, 0, acked);
    ny_collection_release(c);
    ny_db_close(db); /* its final checkpoint fails too: the log has everything */
    CHECK(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=32m") == 0);
    db = open_db(mnt);
    REQUIRE(db);
    c = get(db, "t");
    REQUIRE(c);
    verify_state(c, acked, 0, acked);
    CHECK_RC(upsert_range(c, acked, acked + 10, 1, 1), NY_OK);
    ny_collection_release(c);
    ny_db_close(db);
    CHECK(umount2(mnt, MNT_DETACH) == 0);
}

/* wait=0: the write is logged at once and synced by the background flusher
 * within a short delay (50 ms tick). */
TEST(nowait_writes_get_synced)
{
    ny_db *db = open_db(t_tmpdir());
    REQUIRE(db);
    CHECK_RC(ny_db_create_collection(db, "w", cfg_l2), NY_OK);
    ny_collection *c = get(db, "w");
    REQUIRE(c);
    CHECK_RC(upsert_range(c, 0, 50, 1, 0), NY_OK);
    CHECK(count(c, NULL) == 50);
    int synced = 0;
    for (int i = 0; i < 100 && !synced; i++) {
        usleep(10000);
        synced = !ny_wal_dirty(c->wal);
    }
    CHECK(synced);
    ny_collection_release(c);
    ny_db_close(db);
}

static void cos_writer(const char *dir)
{
    ny_db *db;
    ny_collection *c;
    if (ny_db_open(dir, &db) != NY_OK) _exit(2);
    if (ny_db_create_collection(db, "cos", "{\"vectors\": {\"size\": 16, \"distance\": \"Cosine\"}}") != NY_OK) _exit(3);
    if (ny_db_get_collection(db, "cos", &c) != NY_OK) _exit(4);
    if (upsert_range(c, 0, 300, 1, 1) != NY_OK) _exit(5);
    _exit(0);
}

/* Cosine vectors recovered from the log (pending, then indexed in the
 * background) are bit-identical to those of a collection that never
 * crashed: normalised exactly once. */
TEST(recovered_cosine_vectors_are_exact)
{
    const char *dir = t_tmpdir();
    REQUIRE(in_child(cos_writer, dir));
    ny_db *db = open_db(dir);
    REQUIRE(db);
    ny_collection *c = get(db, "cos");
    REQUIRE(c);
    int bad = 0;
    for (int round = 0; round < 2; round++) {
        for (uint64_t id = 0; id < 300; id++) {
            ny_point_id p = pid(id);
            ny_read_opts o = {.with_vector = 1};
            ny_records r;
            REQUIRE(ny_collection_retrieve(c, &p, 1, &o, &r) == NY_OK);
            float v[DIM];
            gen_vec(id, 1, v);
            ny_normalize(v, DIM);
            bad += !(r.n == 1 && r.items[0].vector && !memcmp(v, r.items[0].vector, sizeof v));
            ny_records_free(&r);
        }
        /* search ranks recovered points correctly too */
        float q[DIM];
        gen_vec(42, 1, q);
        ny_search_params sp = {.vector = q, .limit = 1};
        ny_records r;
        REQUIRE(ny_collection_search(c, &sp, &r) == NY_OK);
        CHECK(r.n == 1 && r.items[0].id.num == 42 && fabsf(r.items[0].score - 1.0f) < 1e-5f);
        ny_records_free(&r);
        CHECK_RC(ny_collection_checkpoint(c), NY_OK); /* indexes what is pending */
    }
    CHECKF(bad == 0, "%d vectors differ", bad);
    ny_collection_release(c);
    ny_db_close(db);
}
