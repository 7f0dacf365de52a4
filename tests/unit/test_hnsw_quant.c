/* test_hnsw_quant.c -- HNSW search on quantized codes (src/index/hnsw_quant.c):
 * recall against brute force and against float HNSW, filters and deletes,
 * lazy training, persistence, memory, bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hnsw_util.h"
#include "index/hnsw.h"
#include "nearly.h"
#include "t.h"

#define SQ8_JSON "{\"scalar\": {\"type\": \"int8\", \"quantile\": 0.99, \"always_ram\": true}}"
#define BIN_JSON "{\"binary\": {\"always_ram\": true}}"

/* Embedding-like data: clustered points in a low-dimensional latent space
 * mapped to d dimensions by a fixed random matrix. */
static float *embedded(size_t n, size_t d, size_t lat, unsigned long long seed)
{
    unsigned long long ms = 777;
    float *a = malloc(lat * d * sizeof(float)), *z = gen_clustered(n, lat, 32, seed);
    float *x = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < lat * d; i++) a[i] = t_randf(&ms);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            float s = 0;
            for (size_t l = 0; l < lat; l++) s += z[i * lat + l] * a[l * d + j];
            x[i * d + j] = s;
        }
    free(a);
    free(z);
    return x;
}

static ny_hnsw *build(ny_metric m, size_t dim, const float *base, size_t n, size_t efc)
{
    ny_hnsw_params p;
    ny_hnsw_params_init(&p, dim, m);
    p.ef_construction = efc;
    ny_hnsw *h = NULL;
    if (ny_hnsw_new(&p, &h) != NY_OK) return NULL;
    if (ny_hnsw_add_batch(h, NULL, 0, base, n, 0) != NY_OK) {
        ny_hnsw_free(h);
        return NULL;
    }
    return h;
}

/* Mean recall@k over nq queries: mode 0 = float HNSW, 1 = quantized with
 * rescoring, 2 = quantized without. */
static double recall(ny_hnsw *h, ny_metric m, size_t dim, const float *base, size_t n, const float *qs, size_t nq,
                     size_t k, size_t ef, int mode, float os)
{
    uint32_t got[64], tid[64];
    double td[64];
    size_t hits = 0, tot = 0;
    for (size_t i = 0; i < nq; i++) {
        const float *q = qs + i * dim;
        size_t nt = brute_force(m, dim, base, NULL, n, NULL, q, k, tid, td);
        int ng = mode == 0 ? ny_hnsw_search(h, q, k, ef, NULL, got, NULL)
                           : ny_hnsw_search_quant(h, q, k, ef, NULL, mode == 1, os, got, NULL);
        if (ng < 0) return -1;
        hits += count_hits(m, dim, base, q, got, (size_t)ng, td, nt);
        tot += nt;
    }
    return tot ? (double)hits / (double)tot : 0;
}

static void sq8_case(ny_metric m, float os, int emb)
{
    size_t n = t_n(20000, 3000), dim = 64, nq = 100, k = 10;
    float *base = emb ? embedded(n, dim, 16, 1) : gen_clustered2(n, dim, 50, 11, 1);
    float *qs = emb ? embedded(nq, dim, 16, 2) : gen_clustered2(nq, dim, 50, 11, 2);
    ny_hnsw *h = build(m, dim, base, n, 100);
    REQUIRE(h);
    CHECK_RC(ny_hnsw_set_quantization(h, SQ8_JSON), NY_OK);
    CHECK(ny_hnsw_quant_ready(h) == 1);
    double rf = recall(h, m, dim, base, n, qs, nq, k, 64, 0, 0);
    double rq = recall(h, m, dim, base, n, qs, nq, k, 64, 1, os);
    double rn = recall(h, m, dim, base, n, qs, nq, k, 64, 2, 0);
    printf("  metric %d: recall float %.4f, sq8+rescore(x%g) %.4f, sq8 no rescore %.4f\n", (int)m, rf, (double)os, rq, rn);
    double goal = m == NY_L2 ? 0.95 : 0.90;
    CHECKF(rq >= goal, "sq8+rescore recall %.4f < %.2f", rq, goal);
    CHECKF(rq >= rf - 0.06, "sq8+rescore recall %.4f much below float %.4f", rq, rf);
    CHECKF(rn >= 0.65, "sq8 without rescoring recall %.4f < 0.65", rn);
    /* Memory: one byte per dimension (+ corrections) vs 4. */
    ny_hnsw_stats st;
    ny_hnsw_get_stats(h, &st);
    size_t qb = ny_hnsw_quant_bytes(h);
    CHECKF(qb >= n * dim && qb <= n * (dim + 16) + 4096, "quant bytes %zu for %zu x %zu", qb, n, dim);
    CHECK(qb * 3 < st.bytes_vectors);
    ny_hnsw_free(h);
    free(base);
    free(qs);
}

TEST(sq8_rescore_recall_l2) { sq8_case(NY_L2, 2.0f, 0); }
/* Tight isotropic clusters on the sphere: neighbours differ by about the
 * int8 step in many components (brute force on these codes alone reaches
 * ~0.72 recall@10): rescoring x4 recovers most of it. */
TEST(sq8_rescore_cosine_tight_clusters) { sq8_case(NY_COSINE, 4.0f, 0); }

TEST(binary_rescore_recall_768_angular)
{
    size_t n = t_n(6000, 1500), dim = 768, nq = 50, k = 10;
    float *base = embedded(n, dim, 24, 5), *qs = embedded(nq, dim, 24, 6);
    ny_hnsw *h = build(NY_COSINE, dim, base, n, 100);
    REQUIRE(h);
    CHECK_RC(ny_hnsw_set_quantization(h, BIN_JSON), NY_OK);
    REQUIRE(ny_hnsw_quant_ready(h));
    double rf = recall(h, NY_COSINE, dim, base, n, qs, nq, k, 200, 0, 0);
    double rq = recall(h, NY_COSINE, dim, base, n, qs, nq, k, 200, 1, 8.0f);
    printf("  768-d cosine: recall float %.4f, binary+rescore(x8) %.4f (ef 200)\n", rf, rq);
    CHECKF(rq >= 0.90, "binary+rescore recall %.4f < 0.90", rq);
    ny_hnsw_stats st;
    ny_hnsw_get_stats(h, &st);
    size_t qb = ny_hnsw_quant_bytes(h);
    CHECKF(qb * 10 <= st.bytes_vectors, "binary codes %zu bytes vs vectors %zu", qb, st.bytes_vectors);
    ny_hnsw_free(h);
    free(base);
    free(qs);
}

static int odd_only(uint32_t id, void *ctx)
{
    (void)ctx;
    return id & 1;
}

TEST(filters_and_deletes)
{
    size_t n = t_n(8000, 2000), dim = 32, k = 10;
    float *base = gen_clustered(n, dim, 20, 3), *qs = gen_clustered2(30, dim, 20, 3, 9);
    ny_hnsw *h = build(NY_L2, dim, base, n, 100);
    REQUIRE(h);
    CHECK_RC(ny_hnsw_set_quantization(h, SQ8_JSON), NY_OK);
    /* Delete every id divisible by 3. */
    unsigned char *ok = calloc(n, 1);
    for (size_t i = 0; i < n; i++) {
        if (i % 3 == 0) CHECK_RC(ny_hnsw_delete(h, (uint32_t)i), NY_OK);
        ok[i] = i % 3 != 0 && (i & 1);
    }
    ny_filter f = {.allow = odd_only};
    size_t hits = 0, tot = 0;
    for (size_t qi = 0; qi < 30; qi++) {
        const float *q = qs + qi * dim;
        uint32_t got[10], tid[10];
        double td[10];
        float gd[10];
        size_t nt = brute_force(NY_L2, dim, base, NULL, n, ok, q, k, tid, td);
        int ng = ny_hnsw_search_quant(h, q, k, 64, &f, 1, 3.0f, got, gd);
        REQUIRE(ng >= 0);
        CHECK((size_t)ng == k);
        for (int j = 0; j < ng; j++) {
            CHECKF(got[j] < n && ok[got[j]], "result %u is deleted or filtered out", got[j]);
            if (j) CHECK(gd[j] >= gd[j - 1]);
            /* Rescored distances are exact. */
            CHECK(fabs(gd[j] - ref_dist(NY_L2, q, base + (size_t)got[j] * dim, dim)) < 1e-3 * (1 + gd[j]));
        }
        hits += count_hits(NY_L2, dim, base, q, got, (size_t)ng, td, nt);
        tot += nt;
    }
    double r = (double)hits / (double)tot;
    printf("  filtered + deleted recall %.4f\n", r);
    CHECKF(r >= 0.9, "filtered recall %.4f", r);
    free(ok);
    ny_hnsw_free(h);
    free(base);
    free(qs);
}

TEST(lazy_training_and_inserts_after_training)
{
    size_t n = NY_HNSW_QUANT_MIN_TRAIN + 500, dim = 24;
    float *base = gen_clustered(n + 200, dim, 10, 4);
    ny_hnsw_params p;
    ny_hnsw_params_init(&p, dim, NY_L2);
    ny_hnsw *h = NULL;
    REQUIRE(ny_hnsw_new(&p, &h) == NY_OK);
    CHECK_RC(ny_hnsw_set_quantization(h, SQ8_JSON), NY_OK);
    CHECK(ny_hnsw_quant_ready(h) == 0);
    char *js = NULL;
    CHECK_RC(ny_hnsw_get_quantization(h, &js), NY_OK);
    CHECK(js && strstr(js, "int8"));
    ny_free(js);
    /* Below the threshold: float search, still correct. */
    CHECK_RC(ny_hnsw_add_batch(h, NULL, 0, base, 100, 1), NY_OK);
    uint32_t id[5];
    CHECK(ny_hnsw_search_quant(h, base + 7 * dim, 1, 16, NULL, 1, 2, id, NULL) == 1 && id[0] == 7);
    CHECK(ny_hnsw_quant_ready(h) == 0);
    CHECK_RC(ny_hnsw_add_batch(h, NULL, 100, base + 100 * dim, n - 100, 0), NY_OK);
    CHECK(ny_hnsw_quant_ready(h) == 0);
    /* The first quantized search trains. */
    CHECK(ny_hnsw_search_quant(h, base + 9 * dim, 1, 32, NULL, 1, 2, id, NULL) == 1 && id[0] == 9);
    CHECK(ny_hnsw_quant_ready(h) == 1);
    CHECK(ny_hnsw_quant_train_if_due(h) == 0); /* trained already */
    /* Inserts after training are encoded: each finds itself without rescoring. */
    for (size_t i = n; i < n + 200; i++) CHECK_RC(ny_hnsw_add(h, (uint32_t)i, base + i * dim), NY_OK);
    size_t self = 0;
    for (size_t i = n; i < n + 200; i++) {
        int ng = ny_hnsw_search_quant(h, base + i * dim, 5, 64, NULL, 0, 1, id, NULL);
        for (int j = 0; j < ng; j++) self += id[j] == i;
    }
    CHECKF(self >= 195, "only %zu of 200 new vectors found themselves on codes", self);
    /* Explicit retraining keeps working. */
    CHECK_RC(ny_hnsw_quant_train(h), NY_OK);
    CHECK(ny_hnsw_search_quant(h, base + 3 * dim, 1, 32, NULL, 1, 2, id, NULL) == 1 && id[0] == 3);
    /* Removing it: quantized search falls back to floats. */
    CHECK_RC(ny_hnsw_set_quantization(h, "null"), NY_OK);
    CHECK(ny_hnsw_quant_ready(h) == 0 && ny_hnsw_quant_bytes(h) == 0);
    CHECK_RC(ny_hnsw_get_quantization(h, &js), NY_OK);
    CHECK(js == NULL);
    CHECK(ny_hnsw_search_quant(h, base + 3 * dim, 1, 32, NULL, 1, 2, id, NULL) == 1 && id[0] == 3);
    CHECK(ny_hnsw_quant_train_if_due(h) == 0); /* nothing configured */
    ny_hnsw_free(h);
    /* train_if_due: nothing below the minimum, trains once it is reached. */
    REQUIRE(ny_hnsw_new(&p, &h) == NY_OK);
    CHECK_RC(ny_hnsw_add_batch(h, NULL, 0, base, NY_HNSW_QUANT_MIN_TRAIN - 1, 1), NY_OK);
    CHECK_RC(ny_hnsw_set_quantization(h, SQ8_JSON), NY_OK);
    CHECK(ny_hnsw_quant_train_if_due(h) == 0 && !ny_hnsw_quant_ready(h));
    CHECK_RC(ny_hnsw_add(h, NY_HNSW_QUANT_MIN_TRAIN - 1, base + (NY_HNSW_QUANT_MIN_TRAIN - 1) * dim), NY_OK);
    CHECK(ny_hnsw_quant_train_if_due(h) == 1 && ny_hnsw_quant_ready(h));
    CHECK(ny_hnsw_quant_train_if_due(NULL) == NY_EINVAL);
    ny_hnsw_free(h);
    free(base);
}

TEST(save_load_round_trip)
{
    size_t n = t_n(4000, 1200), dim = 48, k = 10;
    float *base = gen_clustered(n, dim, 16, 8), *qs = gen_clustered2(20, dim, 16, 8, 3);
    ny_hnsw *h = build(NY_COSINE, dim, base, n, 100);
    REQUIRE(h);
    CHECK_RC(ny_hnsw_set_quantization(h, BIN_JSON), NY_OK);
    char path[512], side[600];
    snprintf(path, sizeof path, "%s/q.hnsw", t_tmpdir());
    snprintf(side, sizeof side, "%s.quant", path);
    CHECK_RC(ny_hnsw_save(h, path), NY_OK);
    CHECK(access(side, F_OK) == 0);
    ny_hnsw *g = NULL;
    CHECK_RC(ny_hnsw_load(path, &g), NY_OK);
    REQUIRE(g);
    CHECK(ny_hnsw_quant_ready(g) == 1);
    CHECK(ny_hnsw_quant_bytes(g) == ny_hnsw_quant_bytes(h));
    char *a = NULL, *b = NULL;
    CHECK_RC(ny_hnsw_get_quantization(h, &a), NY_OK);
    CHECK_RC(ny_hnsw_get_quantization(g, &b), NY_OK);
    CHECK(a && b && !strcmp(a, b));
    ny_free(a);
    ny_free(b);
    for (size_t i = 0; i < 20; i++) {
        uint32_t i1[10], i2[10];
        float d1[10], d2[10];
        int n1 = ny_hnsw_search_quant(h, qs + i * dim, k, 50, NULL, 0, 1, i1, d1);
        int n2 = ny_hnsw_search_quant(g, qs + i * dim, k, 50, NULL, 0, 1, i2, d2);
        CHECK(n1 == (int)k && n1 == n2);
        CHECK(n1 == n2 && !memcmp(i1, i2, sizeof(uint32_t) * (size_t)n1) && !memcmp(d1, d2, sizeof(float) * (size_t)n1));
    }
    ny_hnsw_free(g);
    /* Corrupt sidecar: a clear error. */
    FILE *fp = fopen(side, "r+b");
    REQUIRE(fp);
    fseek(fp, 30, SEEK_SET);
    fputc('X', fp);
    fclose(fp);
    g = NULL;
    CHECK_RC(ny_hnsw_load(path, &g), NY_ECORRUPT);
    CHECK(g == NULL);
    /* Truncated. */
    CHECK(truncate(side, 20) == 0);
    CHECK_RC(ny_hnsw_load(path, &g), NY_ECORRUPT);
    /* Removing quantization then saving removes the sidecar. */
    CHECK_RC(ny_hnsw_set_quantization(h, NULL), NY_OK);
    CHECK_RC(ny_hnsw_save(h, path), NY_OK);
    CHECK(access(side, F_OK) != 0);
    CHECK_RC(ny_hnsw_load(path, &g), NY_OK);
    CHECK(g && ny_hnsw_quant_ready(g) == 0);
    ny_hnsw_free(g);
    /* An untrained (pending) configuration persists too. */
    ny_hnsw_params p;
    ny_hnsw_params_init(&p, dim, NY_L2);
    ny_hnsw *e = NULL;
    REQUIRE(ny_hnsw_new(&p, &e) == NY_OK);
    CHECK_RC(ny_hnsw_set_quantization(e, SQ8_JSON), NY_OK);
    CHECK_RC(ny_hnsw_add(e, 1, base), NY_OK);
    CHECK_RC(ny_hnsw_save(e, path), NY_OK);
    g = NULL;
    CHECK_RC(ny_hnsw_load(path, &g), NY_OK);
    CHECK_RC(ny_hnsw_get_quantization(g, &a), NY_OK);
    CHECK(a && strstr(a, "scalar"));
    CHECK(ny_hnsw_quant_ready(g) == 0);
    ny_free(a);
    ny_hnsw_free(g);
    ny_hnsw_free(e);
    ny_hnsw_free(h);
    free(base);
    free(qs);
}

TEST(bad_input)
{
    size_t dim = 8;
    float *base = gen_random(1200, dim, 1);
    ny_hnsw *h = build(NY_L2, dim, base, 1200, 32);
    REQUIRE(h);
    CHECK_RC(ny_hnsw_quant_train(h), NY_EINVAL); /* nothing configured */
    CHECK_RC(ny_hnsw_set_quantization(h, "{\"scalar\": {\"type\": \"int3\"}}"), NY_EINVAL);
    CHECK_RC(ny_hnsw_set_quantization(h, "{\"product\": {\"compression\": \"x16\"}}"), NY_EINVAL);
    CHECK_RC(ny_hnsw_set_quantization(h, "{not json"), NY_EINVAL);
    CHECK(ny_hnsw_quant_ready(h) == 0);
    CHECK_RC(ny_hnsw_set_quantization(h, SQ8_JSON), NY_OK);
    uint32_t id[4];
    float q[8] = {0};
    CHECK_RC(ny_hnsw_search_quant(h, q, 4, 16, NULL, 1, 0.5f, id, NULL), NY_EINVAL);
    q[3] = NAN;
    CHECK_RC(ny_hnsw_search_quant(h, q, 4, 16, NULL, 1, 2, id, NULL), NY_EINVAL);
    CHECK_RC(ny_hnsw_search_quant(NULL, q, 4, 16, NULL, 1, 2, id, NULL), NY_EINVAL);
    q[3] = 0;
    CHECK(ny_hnsw_search_quant(h, q, 0, 16, NULL, 1, 2, id, NULL) == 0);
    /* k larger than the index: every vector comes back once. */
    uint32_t *all = malloc(2000 * sizeof(uint32_t));
    int ng = ny_hnsw_search_quant(h, q, 2000, 0, NULL, 1, 1, all, NULL);
    CHECK(ng >= 1150 && ng <= 1200);
    free(all);
    ny_hnsw_free(h);
    free(base);
}

static long rss_anon_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "RssAnon:", 8)) kb = atol(line + 8);
    fclose(f);
    return kb;
}

TEST(vectors_on_disk)
{
    size_t n = t_n(8000, 3000), dim = 128, k = 10;
    float *base = gen_clustered(n + 100, dim, 20, 12), *qs = gen_clustered2(20, dim, 20, 12, 4);
    ny_hnsw *h = build(NY_L2, dim, base, n, 64);
    REQUIRE(h);
    CHECK_RC(ny_hnsw_set_quantization(h, SQ8_JSON), NY_OK);
    uint32_t before[20][10], after[20][10], fl[20][10], fl2[20][10];
    for (size_t i = 0; i < 20; i++) {
        CHECK(ny_hnsw_search_quant(h, qs + i * dim, k, 64, NULL, 1, 2, before[i], NULL) == (int)k);
        CHECK(ny_hnsw_search(h, qs + i * dim, k, 64, NULL, fl[i], NULL) == (int)k);
    }
    long a0 = rss_anon_kb();
    size_t moved = 0;
    CHECK_RC(ny_hnsw_vectors_to_disk(h, t_tmpdir(), &moved), NY_OK);
    long a1 = rss_anon_kb();
    printf("  moved %zu KiB of vectors to disk; RssAnon %ld -> %ld KiB\n", moved / 1024, a0, a1);
    CHECK(moved + 4096 > n * dim * 4 && moved <= n * dim * 4);
    if (a0 > 0 && a1 > 0) CHECKF(a0 - a1 >= (long)(moved / 1024 / 2), "RssAnon fell by %ld KiB only", a0 - a1);
    for (size_t i = 0; i < 20; i++) {
        CHECK(ny_hnsw_search_quant(h, qs + i * dim, k, 64, NULL, 1, 2, after[i], NULL) == (int)k);
        CHECK(ny_hnsw_search(h, qs + i * dim, k, 64, NULL, fl2[i], NULL) == (int)k);
    }
    CHECK(!memcmp(before, after, sizeof before));
    CHECK(!memcmp(fl, fl2, sizeof fl));
    /* Vectors read back exactly; inserts, deletes and save/load still work. */
    float *row = malloc(dim * sizeof(float));
    CHECK_RC(ny_hnsw_get_vector(h, 17, row), NY_OK);
    CHECK(!memcmp(row, base + 17 * dim, dim * sizeof(float)));
    for (size_t i = n; i < n + 100; i++) CHECK_RC(ny_hnsw_add(h, (uint32_t)i, base + i * dim), NY_OK);
    CHECK_RC(ny_hnsw_delete(h, 5), NY_OK);
    uint32_t id[1];
    CHECK(ny_hnsw_search_quant(h, base + (n + 50) * dim, 1, 32, NULL, 1, 2, id, NULL) == 1 && id[0] == n + 50);
    CHECK_RC(ny_hnsw_vectors_to_disk(h, t_tmpdir(), &moved), NY_OK); /* again, with the new rows */
    CHECK_RC(ny_hnsw_get_vector(h, (uint32_t)(n + 99), row), NY_OK);
    CHECK(!memcmp(row, base + (n + 99) * dim, dim * sizeof(float)));
    char path[512];
    snprintf(path, sizeof path, "%s/disk.hnsw", t_tmpdir());
    CHECK_RC(ny_hnsw_save(h, path), NY_OK);
    ny_hnsw *g = NULL;
    CHECK_RC(ny_hnsw_load(path, &g), NY_OK);
    CHECK(g && ny_hnsw_validate(g) == NY_OK && ny_hnsw_contains(g, 5) == 0 && ny_hnsw_contains(g, 6) == 1);
    CHECK_RC(ny_hnsw_vectors_to_disk(NULL, t_tmpdir(), NULL), NY_EINVAL);
    CHECK(ny_hnsw_vectors_to_disk(g, "/nonexistent/dir", NULL) != NY_OK);
    ny_hnsw_free(g);
    free(row);
    ny_hnsw_free(h);
    free(base);
    free(qs);
}

static long rss_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) kb = atol(line + strlen(key));
    fclose(f);
    return kb;
}

/* Whether /proc/self/maps shows a shared writable mapping of a file under dir. */
static int mapped_under(const char *dir)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    char line[1024];
    int found = 0;
    while (maps && fgets(line, sizeof line, maps))
        if (strstr(line, dir) && strstr(line, "rw-s")) found = 1;
    if (maps) fclose(maps);
    return found;
}

TEST(graph_on_disk)
{
    size_t n = t_n(8000, 3000), dim = 32, k = 10, nq = 30, extra = 300;
    float *base = gen_clustered(n + extra, dim, 20, 41), *qs = gen_clustered2(nq, dim, 20, 41, 5);
    ny_hnsw *h = build(NY_L2, dim, base, n, 64);
    REQUIRE(h);
    CHECK_RC(ny_hnsw_set_quantization(h, SQ8_JSON), NY_OK);
    uint32_t (*bq)[10] = calloc(nq, sizeof *bq), (*aq)[10] = calloc(nq, sizeof *aq);
    uint32_t (*bf)[10] = calloc(nq, sizeof *bf), (*af)[10] = calloc(nq, sizeof *af);
    float (*bd)[10] = calloc(nq, sizeof *bd), (*ad)[10] = calloc(nq, sizeof *ad);
    for (size_t i = 0; i < nq; i++) {
        CHECK(ny_hnsw_search_quant(h, qs + i * dim, k, 48, NULL, 1, 2, bq[i], NULL) == (int)k);
        CHECK(ny_hnsw_search(h, qs + i * dim, k, 48, NULL, bf[i], bd[i]) == (int)k);
    }
    double r0 = recall(h, NY_L2, dim, base, n, qs, nq, k, 48, 1, 2);
    ny_hnsw_stats st;
    ny_hnsw_get_stats(h, &st);
    long a0 = rss_anon_kb();
    size_t moved = 0, dv = 1, dg = 1;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/g", t_tmpdir());
    REQUIRE(mkdir(dir, 0700) == 0);
    CHECK(!mapped_under(dir));
    CHECK_RC(ny_hnsw_graph_to_disk(h, dir, &moved), NY_OK);
    long a1 = rss_anon_kb();
    printf("  moved %zu KiB of links to disk (graph %zu KiB in RAM before); RssAnon %ld -> %ld KiB\n", moved / 1024,
           st.bytes_graph / 1024, a0, a1);
    /* Level-0 lists: (1 + 2M) words per node, whole pages only. */
    size_t l0 = n * (1 + 2 * 16) * 4;
    CHECKF(moved + 8192 > l0 && moved <= st.bytes_graph, "moved %zu, level-0 lists %zu", moved, l0);
    CHECK(mapped_under(dir));
    ny_hnsw_disk_usage(h, &dv, &dg);
    CHECK(dv == 0 && dg == moved);
    if (a0 > 0 && a1 > 0) CHECKF(a0 - a1 >= (long)(moved / 1024 / 2), "RssAnon fell by %ld KiB only", a0 - a1);
    /* Same answers, same distances, valid structure. */
    for (size_t i = 0; i < nq; i++) {
        CHECK(ny_hnsw_search_quant(h, qs + i * dim, k, 48, NULL, 1, 2, aq[i], NULL) == (int)k);
        CHECK(ny_hnsw_search(h, qs + i * dim, k, 48, NULL, af[i], ad[i]) == (int)k);
    }
    CHECK(!memcmp(bq, aq, nq * sizeof *bq));
    CHECK(!memcmp(bf, af, nq * sizeof *bf) && !memcmp(bd, ad, nq * sizeof *bd));
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    /* Pages dropped as under memory pressure: read back on demand, same answers. */
    long f0 = rss_kb("RssFile:");
    CHECK_RC(ny_hnsw_disk_evict(h), NY_OK);
    long f1 = rss_kb("RssFile:");
    printf("  evicted: RssFile %ld -> %ld KiB\n", f0, f1);
    if (f0 > 0 && f1 >= 0) CHECKF(f0 - f1 >= (long)(moved / 1024 / 2), "RssFile fell by %ld KiB only", f0 - f1);
    for (size_t i = 0; i < nq; i++) {
        CHECK(ny_hnsw_search_quant(h, qs + i * dim, k, 48, NULL, 1, 2, aq[i], NULL) == (int)k);
        CHECK(ny_hnsw_search(h, qs + i * dim, k, 48, NULL, af[i], ad[i]) == (int)k);
    }
    CHECK(!memcmp(bq, aq, nq * sizeof *bq));
    CHECK(!memcmp(bf, af, nq * sizeof *bf) && !memcmp(bd, ad, nq * sizeof *bd));
    /* Inserts (new lists in RAM, links into moved lists in the mapping),
     * deletes and vacuum keep working; the result stays correct. */
    for (size_t i = n; i < n + extra; i++) CHECK_RC(ny_hnsw_add(h, (uint32_t)i, base + i * dim), NY_OK);
    for (uint32_t i = 0; i < n; i += 7) CHECK_RC(ny_hnsw_delete(h, i), NY_OK);
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    size_t self = 0, leaks = 0;
    for (size_t i = n; i < n + extra; i++) {
        uint32_t id[10];
        int ng = ny_hnsw_search_quant(h, base + i * dim, k, 48, NULL, 1, 2, id, NULL);
        for (int j = 0; j < ng; j++) {
            self += id[j] == i;
            leaks += id[j] < n && id[j] % 7 == 0;
        }
    }
    CHECKF(self >= extra * 98 / 100, "%zu of %zu inserted vectors found themselves", self, extra);
    CHECK(leaks == 0);
    /* Appending: the second call moves the lists added since. */
    size_t moved2 = 0;
    CHECK_RC(ny_hnsw_graph_to_disk(h, dir, &moved2), NY_OK);
    CHECKF(moved2 >= moved + extra * (1 + 2 * 16) * 4 - 8192, "second call: %zu bytes after %zu", moved2, moved);
    CHECK_RC(ny_hnsw_vectors_to_disk(h, dir, &moved), NY_OK);
    ny_hnsw_disk_usage(h, &dv, &dg);
    CHECK(dv == moved && dg == moved2 && dv > n * dim * 4 - 8192);
    CHECK_RC(ny_hnsw_vacuum(h), NY_OK);
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    /* Recall against brute force over the live points, unchanged in level. */
    unsigned char *ok = malloc(n + extra);
    for (size_t i = 0; i < n + extra; i++) ok[i] = i >= n || i % 7;
    size_t hits = 0, tot = 0;
    for (size_t i = 0; i < nq; i++) {
        uint32_t tid[10], got[10];
        double td[10];
        size_t nt = brute_force(NY_L2, dim, base, NULL, n + extra, ok, qs + i * dim, k, tid, td);
        int ng = ny_hnsw_search_quant(h, qs + i * dim, k, 48, NULL, 1, 2, got, NULL);
        REQUIRE(ng >= 0);
        hits += count_hits(NY_L2, dim, base, qs + i * dim, got, (size_t)ng, td, nt);
        tot += nt;
    }
    double r1 = (double)hits / (double)tot;
    printf("  int8+rescore recall %.4f before the move, %.4f after inserts, deletes and vacuum on disk\n", r0, r1);
    CHECKF(r1 >= 0.95 && r1 >= r0 - 0.03, "recall %.4f (before %.4f)", r1, r0);
    /* Save and load: the loaded (in-RAM) index answers as this one. */
    char path[600];
    snprintf(path, sizeof path, "%s/g.hnsw", dir);
    CHECK_RC(ny_hnsw_save(h, path), NY_OK);
    ny_hnsw *g = NULL;
    CHECK_RC(ny_hnsw_load(path, &g), NY_OK);
    REQUIRE(g);
    CHECK_RC(ny_hnsw_validate(g), NY_OK);
    for (size_t i = 0; i < nq; i++) {
        CHECK(ny_hnsw_search(h, qs + i * dim, k, 48, NULL, af[i], ad[i]) == (int)k);
        CHECK(ny_hnsw_search(g, qs + i * dim, k, 48, NULL, bf[i], bd[i]) == (int)k);
    }
    CHECK(!memcmp(bf, af, nq * sizeof *bf) && !memcmp(bd, ad, nq * sizeof *bd));
    CHECK_RC(ny_hnsw_graph_to_disk(NULL, dir, NULL), NY_EINVAL);
    CHECK_RC(ny_hnsw_graph_to_disk(g, NULL, NULL), NY_EINVAL);
    CHECK(ny_hnsw_graph_to_disk(g, "/nonexistent/dir", &moved) != NY_OK && moved == 0);
    CHECK_RC(ny_hnsw_validate(g), NY_OK);
    ny_hnsw_free(g);
    ny_hnsw_free(h);
    free(ok);
    free(bq), free(aq), free(bf), free(af), free(bd), free(ad);
    free(base);
    free(qs);
}

/* ny_hnsw_load_ex: vectors and graph moved to disk chunk by chunk while
 * loading give the same index as a plain load (same answers, same
 * distances, valid structure), and a corrupt section is still caught. */
TEST(chunked_load_to_disk)
{
    size_t n = t_n(6000, 1500), dim = 40, k = 10, nq = 25;
    float *base = gen_clustered(n, dim, 20, 61), *qs = gen_clustered2(nq, dim, 20, 61, 9);
    ny_hnsw *h = build(NY_COSINE, dim, base, n, 64);
    REQUIRE(h);
    CHECK_RC(ny_hnsw_set_quantization(h, SQ8_JSON), NY_OK);
    for (size_t i = n / 2; i < n; i += 11) CHECK_RC(ny_hnsw_delete(h, (uint32_t)i), NY_OK);
    char path[512], dir[512], bad[600];
    snprintf(path, sizeof path, "%s/c.hnsw", t_tmpdir());
    snprintf(dir, sizeof dir, "%s/cdisk", t_tmpdir());
    REQUIRE(mkdir(dir, 0700) == 0);
    CHECK_RC(ny_hnsw_save(h, path), NY_OK);
    ny_hnsw *g0 = NULL, *g1 = NULL;
    CHECK_RC(ny_hnsw_load(path, &g0), NY_OK);
    /* A chunk that is not a whole number of pages: every move leaves a
     * partial page in RAM that the next one completes. */
    ny_hnsw_load_opts lo = {.disk_dir = dir, .vectors_on_disk = 1, .graph_on_disk = 1, .chunk_bytes = 50000};
    CHECK(!mapped_under(dir));
    CHECK_RC(ny_hnsw_load_ex(path, &lo, &g1), NY_OK);
    REQUIRE(g0 && g1);
    CHECK(mapped_under(dir));
    CHECK_RC(ny_hnsw_validate(g1), NY_OK);
    size_t dv = 0, dg = 0;
    ny_hnsw_disk_usage(g1, &dv, &dg);
    ny_hnsw_stats st;
    ny_hnsw_get_stats(g1, &st);
    long pg = sysconf(_SC_PAGESIZE);
    CHECKF(dv > 0 && dv + (size_t)pg > st.bytes_vectors / 2, "vectors on disk %zu of %zu bytes", dv, st.bytes_vectors);
    CHECK(dg > 0);
    CHECK(ny_hnsw_quant_ready(g1) == 1 && ny_hnsw_quant_bytes(g1) == ny_hnsw_quant_bytes(g0));
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) CHECK_RC(ny_hnsw_disk_evict(g1), NY_OK); /* read back from the files */
        for (size_t i = 0; i < nq; i++) {
            uint32_t i0[10], i1[10];
            float d0[10], d1[10];
            int n0 = ny_hnsw_search(g0, qs + i * dim, k, 48, NULL, i0, d0);
            int n1 = ny_hnsw_search(g1, qs + i * dim, k, 48, NULL, i1, d1);
            CHECK(n0 == (int)k && n0 == n1 && !memcmp(i0, i1, sizeof i0) && !memcmp(d0, d1, sizeof d0));
            n0 = ny_hnsw_search_quant(g0, qs + i * dim, k, 48, NULL, 1, 2, i0, d0);
            n1 = ny_hnsw_search_quant(g1, qs + i * dim, k, 48, NULL, 1, 2, i1, d1);
            CHECK(n0 == (int)k && n0 == n1 && !memcmp(i0, i1, sizeof i0) && !memcmp(d0, d1, sizeof d0));
        }
    }
    double r = recall(g1, NY_COSINE, dim, base, n, qs, nq, k, 48, 0, 1);
    CHECKF(r >= 0.85, "float recall after the chunked load %.4f", r); /* deleted points count as misses */
    /* Inserts after the load land in RAM and move on the next call. */
    float *extra = gen_clustered2(50, dim, 20, 61, 17);
    for (size_t i = 0; i < 50; i++) CHECK_RC(ny_hnsw_add(g1, (uint32_t)(n + i), extra + i * dim), NY_OK);
    size_t dv2 = 0;
    CHECK_RC(ny_hnsw_vectors_to_disk(g1, dir, &dv2), NY_OK);
    CHECK(dv2 >= dv);
    CHECK_RC(ny_hnsw_validate(g1), NY_OK);
    for (size_t i = 0; i < 50; i++) {
        uint32_t id[10];
        int ng = ny_hnsw_search(g1, extra + i * dim, 1, 48, NULL, id, NULL);
        CHECK(ng == 1 && id[0] == n + i);
    }
    ny_hnsw_free(g1);
    ny_hnsw_free(g0);
    /* Only the graph on disk; NULL options is a plain load. */
    ny_hnsw_load_opts lg = {.disk_dir = dir, .graph_on_disk = 1, .chunk_bytes = 4096};
    g1 = NULL;
    CHECK_RC(ny_hnsw_load_ex(path, &lg, &g1), NY_OK);
    ny_hnsw_disk_usage(g1, &dv, &dg);
    CHECK(dv == 0 && dg > 0);
    CHECK_RC(ny_hnsw_validate(g1), NY_OK);
    ny_hnsw_free(g1);
    g1 = NULL;
    CHECK_RC(ny_hnsw_load_ex(path, NULL, &g1), NY_OK);
    ny_hnsw_free(g1);
    /* Bad options and a corrupt vector section: clear errors, no index. */
    ny_hnsw_load_opts nodir = {.vectors_on_disk = 1};
    g1 = NULL;
    CHECK_RC(ny_hnsw_load_ex(path, &nodir, &g1), NY_EINVAL);
    ny_hnsw_load_opts baddir = {.disk_dir = "/nonexistent/dir", .vectors_on_disk = 1};
    CHECK(ny_hnsw_load_ex(path, &baddir, &g1) != NY_OK && g1 == NULL);
    snprintf(bad, sizeof bad, "%s/bad.hnsw", t_tmpdir());
    {
        FILE *in = fopen(path, "rb"), *out = fopen(bad, "wb");
        REQUIRE(in && out);
        int c;
        long pos = 0;
        while ((c = fgetc(in)) != EOF) fputc(pos++ == 176 + 4 * 1000 ? c ^ 0x40 : c, out); /* inside the vectors */
        fclose(in);
        fclose(out);
    }
    CHECK_RC(ny_hnsw_load_ex(bad, &lo, &g1), NY_ECORRUPT);
    CHECK(g1 == NULL && strstr(ny_errmsg(), "checksum"));
    CHECK_RC(ny_hnsw_load(bad, &g1), NY_ECORRUPT);
    /* An empty index loads to disk too (empty sections). */
    ny_hnsw_params ep;
    ny_hnsw_params_init(&ep, dim, NY_L2);
    ny_hnsw *e = NULL;
    REQUIRE(ny_hnsw_new(&ep, &e) == NY_OK);
    CHECK_RC(ny_hnsw_save(e, bad), NY_OK);
    ny_hnsw_free(e);
    e = NULL;
    CHECK_RC(ny_hnsw_load_ex(bad, &lo, &e), NY_OK);
    REQUIRE(e);
    CHECK_RC(ny_hnsw_add(e, 5, base), NY_OK);
    uint32_t one = 0;
    CHECK(ny_hnsw_search(e, base, 1, 16, NULL, &one, NULL) == 1 && one == 5);
    ny_hnsw_free(e);
    ny_hnsw_free(h);
    free(extra);
    free(base);
    free(qs);
}
