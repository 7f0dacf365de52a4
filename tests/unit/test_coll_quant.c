/* test_coll_quant.c -- quantization_config on collections: validated,
 * applied to the index, used by search (params.quantization), persisted
 * through checkpoints and reopen, changed by update_config. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hnsw_util.h"
#include "nearly.h"
#include "t.h"

#define DIM 32

static const char *cfg_sq8 =
    "{\"vectors\": {\"size\": 32, \"distance\": \"Euclid\"}, \"hnsw_config\": {\"m\": 16, \"ef_construct\": 100, "
    "\"full_scan_threshold\": 10}, \"quantization_config\": {\"scalar\": {\"type\": \"int8\", \"quantile\": 0.99, "
    "\"always_ram\": true}}}";

static ny_collection *get(ny_db *db, const char *name)
{
    ny_collection *c = NULL;
    if (ny_db_get_collection(db, name, &c) != NY_OK) return NULL;
    return c;
}

static int upsert_all(ny_collection *c, const float *base, size_t n)
{
    ny_point *pts = calloc(n, sizeof *pts);
    for (size_t i = 0; i < n; i++) {
        pts[i].id.num = i;
        pts[i].vector = base + i * DIM;
    }
    int rc = ny_collection_upsert(c, pts, n, 1);
    free(pts);
    return rc;
}

/* recall@10 of collection search with the given quantization params. */
static double coll_recall(ny_collection *c, const float *base, size_t n, const float *qs, size_t nq, int ignore,
                          int rescore, float os)
{
    size_t hits = 0, tot = 0;
    for (size_t i = 0; i < nq; i++) {
        const float *q = qs + i * DIM;
        uint32_t tid[10], got[10];
        double td[10];
        size_t nt = brute_force(NY_L2, DIM, base, NULL, n, NULL, q, 10, tid, td);
        ny_search_params sp;
        memset(&sp, 0, sizeof sp);
        sp.vector = q;
        sp.limit = 10;
        sp.hnsw_ef = 64;
        sp.quant_ignore = ignore;
        sp.quant_rescore = rescore;
        sp.quant_oversampling = os;
        ny_records r;
        if (ny_collection_search(c, &sp, &r) != NY_OK) return -1;
        for (size_t j = 0; j < r.n && j < 10; j++) got[j] = (uint32_t)r.items[j].id.num;
        hits += count_hits(NY_L2, DIM, base, q, got, r.n, td, nt);
        tot += nt;
        ny_records_free(&r);
    }
    return (double)hits / (double)tot;
}

/* Upserts are indexed in the background: waits (up to 120 s) until the
 * collection reports green, i.e. every vector is in the graph. */
static int wait_green(ny_collection *c)
{
    for (int i = 0; i < 12000; i++) {
        char *info = NULL;
        if (ny_collection_info_json(c, &info) != NY_OK) return 0;
        int green = info && strstr(info, "\"status\":\"green\"") != NULL;
        ny_free(info);
        if (green) return 1;
        usleep(10000);
    }
    return 0;
}

/* Shared writable mappings of files under dir (one per moved region). */
static size_t shared_maps(const char *dir)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[1024];
    size_t n = 0;
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, dir) && strstr(line, "rw-s")) n++;
    if (maps) fclose(maps);
    return n;
}

/* Whether a search for v returns id first. */
static int nearest_is(ny_collection *c, const float *v, uint64_t id)
{
    ny_search_params sp;
    memset(&sp, 0, sizeof sp);
    sp.vector = v;
    sp.limit = 1;
    sp.hnsw_ef = 64;
    sp.quant_rescore = -1;
    ny_records r;
    if (ny_collection_search(c, &sp, &r) != NY_OK) return 0;
    int ok = r.n == 1 && r.items[0].id.num == id;
    ny_records_free(&r);
    return ok;
}

static int has_file_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l >= sl && !strcmp(e->d_name + l - sl, suffix)) found = 1;
    }
    closedir(d);
    return found;
}

TEST(collection_quantized_search_persisted)
{
    size_t n = t_n(6000, 2000), nq = 40;
    float *base = gen_clustered(n, DIM, 30, 21), *qs = gen_clustered2(nq, DIM, 30, 21, 5);
    const char *dir = t_tmpdir();
    ny_db *db = NULL;
    REQUIRE(ny_db_open(dir, &db) == NY_OK);
    /* Product quantization and bad scalar types are refused up front. */
    CHECK_RC(ny_db_create_collection(db, "p", "{\"vectors\": {\"size\": 4, \"distance\": \"Dot\"}, "
                                              "\"quantization_config\": {\"product\": {\"compression\": \"x16\"}}}"),
             NY_EINVAL);
    CHECK_RC(ny_db_create_collection(db, "p", "{\"vectors\": {\"size\": 4, \"distance\": \"Dot\"}, "
                                              "\"quantization_config\": {\"scalar\": {\"type\": \"int2\"}}}"),
             NY_EINVAL);
    CHECK_RC(ny_db_create_collection(db, "q", cfg_sq8), NY_OK);
    ny_collection *c = get(db, "q");
    REQUIRE(c);
    REQUIRE(upsert_all(c, base, n) == NY_OK);
    /* Upserts are indexed in the background; a checkpoint drains the
     * pending set, so the searches below run on the full graph, as they
     * do after the reopen (and their results can be compared exactly). */
    CHECK_RC(ny_collection_checkpoint(c), NY_OK);
    double rf = coll_recall(c, base, n, qs, nq, 1, -1, 0);
    double rq = coll_recall(c, base, n, qs, nq, 0, -1, 2.0f);
    double rn = coll_recall(c, base, n, qs, nq, 0, 0, 0);
    printf("  collection recall: float %.4f, int8+rescore %.4f, int8 only %.4f\n", rf, rq, rn);
    CHECKF(rq >= 0.95, "int8+rescore recall %.4f", rq);
    CHECKF(rn >= 0.7, "int8 recall %.4f", rn);
    char *info = NULL;
    CHECK_RC(ny_collection_info_json(c, &info), NY_OK);
    CHECK(info && strstr(info, "\"quantization_config\"") && strstr(info, "int8"));
    ny_free(info);
    CHECK_RC(ny_collection_checkpoint(c), NY_OK);
    char cdir[600];
    snprintf(cdir, sizeof cdir, "%s/collections/q", dir);
    int side = has_file_suffix(cdir, ".hnsw.quant");
    if (!side) {
        snprintf(cdir, sizeof cdir, "%s/q", dir);
        side = has_file_suffix(cdir, ".hnsw.quant");
    }
    CHECKF(side, "no index-*.hnsw.quant file after a checkpoint");
    ny_collection_release(c);
    ny_db_close(db);

    /* Reopen: quantization restored from the checkpoint. */
    db = NULL;
    REQUIRE(ny_db_open(dir, &db) == NY_OK);
    c = get(db, "q");
    REQUIRE(c);
    double rq2 = coll_recall(c, base, n, qs, nq, 0, -1, 2.0f);
    double rn2 = coll_recall(c, base, n, qs, nq, 0, 0, 0);
    printf("  after reopen: int8+rescore %.4f, int8 only %.4f\n", rq2, rn2);
    CHECK(rq2 >= 0.95);
    CHECK(fabs(rn2 - rn) < 1e-9); /* same codes, same graph: same results */

    /* Switch to binary through update_config, then disable. */
    CHECK_RC(ny_collection_update_config(c, "{\"quantization_config\": {\"binary\": {\"always_ram\": true}}}"), NY_OK);
    CHECK_RC(ny_collection_info_json(c, &info), NY_OK);
    CHECK(info && strstr(info, "\"binary\""));
    ny_free(info);
    double rb = coll_recall(c, base, n, qs, nq, 0, -1, 4.0f);
    printf("  binary+rescore(x4) %.4f\n", rb);
    /* 32 bits per vector on 32-d L2 data are coarse: the walk on codes
     * finds far fewer true neighbours than int8 (binary is meant for
     * high-dimensional angular data), but it is in use: not the float
     * result, and well above chance (10 / n). */
    CHECK(rb >= 0.15 && rb < rf);
    CHECK_RC(ny_collection_update_config(c, "{\"quantization_config\": {\"product\": {}}}"), NY_EINVAL);
    CHECK_RC(ny_collection_update_config(c, "{\"quantization_config\": \"Disabled\"}"), NY_OK);
    double rd = coll_recall(c, base, n, qs, nq, 0, -1, 2.0f);
    CHECK(fabs(rd - rf) < 1e-9); /* float search again */
    ny_collection_release(c);
    ny_db_close(db);
    free(base);
    free(qs);
}

TEST(collection_vectors_on_disk)
{
    size_t n = t_n(4000, 1500), nq = 20;
    float *base = gen_clustered(n, DIM, 30, 31), *qs = gen_clustered2(nq, DIM, 30, 31, 6);
    const char *dir = t_tmpdir();
    char sub[600];
    snprintf(sub, sizeof sub, "%s/od", dir);
    ny_db *db = NULL;
    REQUIRE(ny_db_open(sub, &db) == NY_OK);
    CHECK_RC(ny_db_create_collection(db, "d",
                                     "{\"vectors\": {\"size\": 32, \"distance\": \"Euclid\", \"on_disk\": true}, "
                                     "\"hnsw_config\": {\"full_scan_threshold\": 10}, "
                                     "\"quantization_config\": {\"scalar\": {\"type\": \"int8\", \"always_ram\": true}}}"),
             NY_OK);
    ny_collection *c = get(db, "d");
    REQUIRE(c);
    REQUIRE(upsert_all(c, base, n) == NY_OK);
    CHECK(wait_green(c)); /* compare graph searches only, before and after */
    double r0 = coll_recall(c, base, n, qs, nq, 0, -1, 2.0f);
    CHECK_RC(ny_collection_checkpoint(c), NY_OK); /* moves the rows to the mapped file */
    double r1 = coll_recall(c, base, n, qs, nq, 0, -1, 2.0f);
    double rf = coll_recall(c, base, n, qs, nq, 1, -1, 0);
    printf("  on_disk: int8+rescore %.4f before, %.4f after the checkpoint; float %.4f\n", r0, r1, rf);
    CHECK(r0 >= 0.95 && fabs(r0 - r1) < 1e-9);
    /* The rows are now a shared file mapping under the collection's directory. */
    size_t mapped = shared_maps(sub);
    CHECKF(mapped == 1, "%zu shared mappings of files under %s (want the vector file)", mapped, sub);
    /* hnsw_config.on_disk switched on by an update: the graph's link lists
     * (level 0 and upper levels) join the vectors at once. */
    CHECK_RC(ny_collection_update_config(c, "{\"hnsw_config\": {\"on_disk\": true}}"), NY_OK);
    CHECKF(shared_maps(sub) >= 2, "%zu shared mappings after hnsw_config.on_disk", shared_maps(sub));
    CHECK(fabs(coll_recall(c, base, n, qs, nq, 0, -1, 2.0f) - r1) < 1e-9);
    /* Vectors read back exactly from the mapped rows. */
    ny_point_id id = {.num = 123};
    ny_read_opts ro = {.with_vector = 1};
    ny_records rec;
    CHECK_RC(ny_collection_retrieve(c, &id, 1, &ro, &rec), NY_OK);
    CHECK(rec.n == 1 && rec.items[0].vector && !memcmp(rec.items[0].vector, base + 123 * DIM, DIM * sizeof(float)));
    ny_records_free(&rec);
    char *info = NULL;
    CHECK_RC(ny_collection_info_json(c, &info), NY_OK);
    CHECK(info && strstr(info, "\"on_disk\":true"));
    CHECK(info && strstr(info, "\"hnsw_config\":{") && strstr(strstr(info, "\"hnsw_config\":{"), "\"on_disk\":true"));
    ny_free(info);
    ny_collection_release(c);
    ny_db_close(db);
    db = NULL;
    REQUIRE(ny_db_open(sub, &db) == NY_OK);
    c = get(db, "d");
    REQUIRE(c);
    double r2 = coll_recall(c, base, n, qs, nq, 0, -1, 2.0f);
    CHECK(fabs(r2 - r1) < 1e-9);
    CHECKF(shared_maps(sub) >= 2, "%zu shared mappings after reopening", shared_maps(sub));
    /* Writes after the move: new points are found, deleted ones are gone. */
    ny_point_id del = {.num = 7};
    ny_selector sel = {.ids = &del, .n_ids = 1};
    CHECK_RC(ny_collection_delete(c, &sel, 1, NULL), NY_OK);
    float *nv = malloc(DIM * sizeof(float));
    for (size_t j = 0; j < DIM; j++) nv[j] = base[50 * DIM + j] + 0.001f;
    ny_point np = {.id = {.num = 1000000}, .vector = nv};
    CHECK_RC(ny_collection_upsert(c, &np, 1, 1), NY_OK);
    CHECK(wait_green(c));
    CHECK_RC(ny_collection_checkpoint(c), NY_OK);
    CHECK(nearest_is(c, nv, 1000000));
    CHECK(!nearest_is(c, base + 7 * DIM, 7));
    free(nv);
    ny_collection_release(c);
    ny_db_close(db);
    free(base);
    free(qs);
}
