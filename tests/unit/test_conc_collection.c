/* test_conc_collection.c -- concurrent upserts, deletes, payload updates,
 * searches, scrolls and checkpoints on one collection; afterwards every
 * point must hold what its (single) writer last wrote, in memory and
 * after a reopen.  Also runs under ThreadSanitizer. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nearly.h"
#include "t.h"

#define DIM 8
#define WRITERS 2

static void vec_of(uint64_t id, uint64_t salt, float *v)
{
    unsigned long long s = id * 1000003 + salt * 7 + 5;
    for (int d = 0; d < DIM; d++) v[d] = t_randf(&s);
}

typedef struct wstate {
    ny_collection *c;
    int w;            /* writer index: owns ids with id % WRITERS == w */
    size_t nids, ops;
    uint64_t *salt;   /* per owned slot: 0 = absent, else the salt */
    int fails;
} wstate;

static ny_point_id pid(uint64_t n)
{
    ny_point_id p;
    memset(&p, 0, sizeof p);
    p.num = n;
    return p;
}

static void *writer(void *arg)
{
    wstate *s = arg;
    unsigned long long r = 12345 + (unsigned long long)s->w;
    enum { B = 16 };
    ny_point pts[B];
    float vecs[B * DIM];
    char pl[B][64];
    for (size_t op = 0; op < s->ops; op++) {
        int kind = (int)(t_rand(&r) % 10);
        if (kind < 6) {
            for (int i = 0; i < B; i++) {
                size_t slot = t_rand(&r) % s->nids;
                uint64_t id = slot * WRITERS + (uint64_t)s->w;
                uint64_t salt = op * B + (uint64_t)i + 1;
                vec_of(id, salt, vecs + i * DIM);
                snprintf(pl[i], sizeof pl[i], "{\"salt\": %llu, \"w\": %d}", (unsigned long long)salt, s->w);
                pts[i] = (ny_point){pid(id), vecs + i * DIM, pl[i]};
            }
            if (ny_collection_upsert(s->c, pts, B, (int)(op % 2)) != NY_OK) {
                s->fails++;
                continue;
            }
            /* last occurrence wins inside a batch */
            for (int i = 0; i < B; i++) s->salt[pts[i].id.num / WRITERS] = op * B + (uint64_t)i + 1;
        } else if (kind < 8) {
            ny_point_id ids[4];
            for (int i = 0; i < 4; i++) ids[i] = pid((t_rand(&r) % s->nids) * WRITERS + (uint64_t)s->w);
            ny_selector sel = {.ids = ids, .n_ids = 4};
            if (ny_collection_delete(s->c, &sel, 1, NULL) != NY_OK) {
                s->fails++;
                continue;
            }
            for (int i = 0; i < 4; i++) s->salt[ids[i].num / WRITERS] = 0;
        } else {
            ny_point_id id = pid((t_rand(&r) % s->nids) * WRITERS + (uint64_t)s->w);
            ny_selector sel = {.ids = &id, .n_ids = 1};
            if (ny_collection_set_payload(s->c, &sel, "{\"touched\": true}", NULL, 0) != NY_OK) s->fails++;
        }
    }
    return NULL;
}

typedef struct rstate {
    ny_collection *c;
    atomic_int *stop;
    size_t searches;
    int fails;
} rstate;

static void *reader(void *arg)
{
    rstate *s = arg;
    unsigned long long r = 777;
    while (!atomic_load(s->stop)) {
        float q[DIM];
        for (int d = 0; d < DIM; d++) q[d] = t_randf(&r);
        ny_search_params p = {.vector = q, .limit = 5, .read = {.with_payload_json = "true", .with_vector = 1}};
        if (t_rand(&r) % 3 == 0) p.filter_json = "{\"must\": [{\"key\": \"w\", \"match\": {\"value\": 1}}]}";
        ny_records out;
        if (ny_collection_search(s->c, &p, &out) != NY_OK) s->fails++;
        else {
            for (size_t i = 0; i < out.n; i++) {
                if (!out.items[i].payload_json || !out.items[i].vector) s->fails++;
                if (p.filter_json && !strstr(out.items[i].payload_json, "\"w\":1")) s->fails++;
                if (i && out.items[i].score < out.items[i - 1].score) s->fails++;
            }
            ny_records_free(&out);
        }
        ny_records sc;
        if (ny_collection_scroll(s->c, NULL, 20, NULL, NULL, &sc) != NY_OK) s->fails++;
        else {
            for (size_t i = 1; i < sc.n; i++)
                if (sc.items[i].id.num <= sc.items[i - 1].id.num) s->fails++;
            ny_records_free(&sc);
        }
        size_t n;
        if (ny_collection_count(s->c, NULL, &n) != NY_OK) s->fails++;
        s->searches++;
    }
    return NULL;
}

static void *checkpointer(void *arg)
{
    rstate *s = arg;
    while (!atomic_load(s->stop)) {
        if (ny_collection_checkpoint(s->c) != NY_OK) s->fails++;
        s->searches++;
        for (int i = 0; i < 20 && !atomic_load(s->stop); i++) {
            struct timespec ts = {0, 5 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static int verify(ny_collection *c, wstate *ws)
{
    int bad = 0;
    for (int w = 0; w < WRITERS; w++) {
        for (size_t slot = 0; slot < ws[w].nids; slot++) {
            uint64_t id = slot * WRITERS + (uint64_t)w;
            ny_point_id p = pid(id);
            ny_read_opts o = {.with_payload_json = "[\"salt\"]", .with_vector = 1};
            ny_records r;
            if (ny_collection_retrieve(c, &p, 1, &o, &r) != NY_OK) return -1;
            uint64_t salt = ws[w].salt[slot];
            if (!salt) bad += r.n != 0;
            else if (r.n != 1) bad++;
            else {
                float v[DIM];
                vec_of(id, salt, v);
                char want[64];
                snprintf(want, sizeof want, "{\"salt\":%llu}", (unsigned long long)salt);
                bad += memcmp(v, r.items[0].vector, sizeof v) != 0 || strcmp(r.items[0].payload_json, want) != 0;
            }
            ny_records_free(&r);
        }
    }
    return bad;
}

TEST(concurrent_writers_readers_checkpoints)
{
    const char *dir = t_tmpdir();
    ny_db *db;
    REQUIRE(ny_db_open(dir, &db) == NY_OK);
    REQUIRE(ny_db_create_collection(db, "cc", "{\"vectors\": {\"size\": 8, \"distance\": \"Euclid\"}, "
                                              "\"hnsw_config\": {\"m\": 8, \"ef_construct\": 32, \"full_scan_threshold\": 10}}") == NY_OK);
    ny_collection *c;
    REQUIRE(ny_db_get_collection(db, "cc", &c) == NY_OK);
    wstate ws[WRITERS];
    pthread_t wt[WRITERS], rt[2];
    atomic_int stop;
    atomic_init(&stop, 0);
    rstate rs[2] = {{c, &stop, 0, 0}, {c, &stop, 0, 0}};
    for (int w = 0; w < WRITERS; w++) {
        ws[w] = (wstate){c, w, t_n(1500, 300), t_n(400, 100), NULL, 0};
        ws[w].salt = calloc(ws[w].nids, sizeof(uint64_t));
        pthread_create(&wt[w], NULL, writer, &ws[w]);
    }
    pthread_create(&rt[0], NULL, reader, &rs[0]);
    pthread_create(&rt[1], NULL, checkpointer, &rs[1]);
    for (int w = 0; w < WRITERS; w++) pthread_join(wt[w], NULL);
    atomic_store(&stop, 1);
    pthread_join(rt[0], NULL);
    pthread_join(rt[1], NULL);
    for (int w = 0; w < WRITERS; w++) CHECK(ws[w].fails == 0);
    CHECKF(rs[0].fails == 0, "reader failures: %d", rs[0].fails);
    CHECK(rs[1].fails == 0);
    CHECK(rs[0].searches > 0);
    int bad = verify(c, ws);
    CHECKF(bad == 0, "%d points differ from their writer's last write", bad);
    size_t live = 0, n = 0;
    for (int w = 0; w < WRITERS; w++)
        for (size_t i = 0; i < ws[w].nids; i++) live += ws[w].salt[i] != 0;
    CHECK(ny_collection_count(c, NULL, &n) == NY_OK && n == live);
    ny_collection_release(c);
    ny_db_close(db);
    REQUIRE(ny_db_open(dir, &db) == NY_OK);
    REQUIRE(ny_db_get_collection(db, "cc", &c) == NY_OK);
    bad = verify(c, ws);
    CHECKF(bad == 0, "after reopen: %d points differ", bad);
    ny_collection_release(c);
    ny_db_close(db);
    for (int w = 0; w < WRITERS; w++) free(ws[w].salt);
}

/* After a crash the log tail is replayed into a pending set that a
 * background thread indexes; writers and readers run meanwhile. */
TEST(concurrent_with_background_indexing_after_crash)
{
    const char *dir = t_tmpdir();
    size_t nids = t_n(1500, 300);
    pid_t child = fork();
    if (child == 0) {
        ny_db *db;
        ny_collection *c;
        if (ny_db_open(dir, &db) != NY_OK) _exit(2);
        if (ny_db_create_collection(db, "bg", "{\"vectors\": {\"size\": 8, \"distance\": \"Euclid\"}, "
                                              "\"hnsw_config\": {\"m\": 8, \"ef_construct\": 32, \"full_scan_threshold\": 10}}") != NY_OK) _exit(3);
        if (ny_db_get_collection(db, "bg", &c) != NY_OK) _exit(4);
        for (int w = 0; w < WRITERS; w++) {
            for (size_t s = 0; s < nids; s += 100) {
                ny_point pts[100];
                float vecs[100 * DIM];
                size_t m = nids - s < 100 ? nids - s : 100;
                for (size_t i = 0; i < m; i++) {
                    uint64_t id = (s + i) * WRITERS + (uint64_t)w;
                    vec_of(id, 1000000, vecs + i * DIM);
                    pts[i] = (ny_point){pid(id), vecs + i * DIM, "{\"salt\": 1000000}"};
                }
                if (ny_collection_upsert(c, pts, m, 1) != NY_OK) _exit(5);
            }
        }
        /* crash: no checkpoint, everything is in the log (SIGKILL rather
         * than _exit: the indexer thread may be running, and a sanitizer
         * would turn an exit with live threads into a failure code) */
        kill(getpid(), SIGKILL);
        _exit(6);
    }
    int st;
    REQUIRE(waitpid(child, &st, 0) == child);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d (exit code %d)", st,
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    ny_db *db;
    REQUIRE(ny_db_open(dir, &db) == NY_OK);
    ny_collection *c;
    REQUIRE(ny_db_get_collection(db, "bg", &c) == NY_OK);
    wstate ws[WRITERS];
    pthread_t wt[WRITERS], rt;
    atomic_int stop;
    atomic_init(&stop, 0);
    rstate rs = {c, &stop, 0, 0};
    for (int w = 0; w < WRITERS; w++) {
        ws[w] = (wstate){c, w, nids, t_n(150, 40), NULL, 0};
        ws[w].salt = malloc(nids * sizeof(uint64_t));
        for (size_t i = 0; i < nids; i++) ws[w].salt[i] = 1000000;
    }
    int bad = verify(c, ws); /* straight after open: served from the pending set */
    CHECKF(bad == 0, "after recovery: %d points differ", bad);
    for (int w = 0; w < WRITERS; w++) pthread_create(&wt[w], NULL, writer, &ws[w]);
    pthread_create(&rt, NULL, reader, &rs);
    for (int w = 0; w < WRITERS; w++) pthread_join(wt[w], NULL);
    atomic_store(&stop, 1);
    pthread_join(rt, NULL);
    for (int w = 0; w < WRITERS; w++) CHECK(ws[w].fails == 0);
    CHECKF(rs.fails == 0, "reader failures: %d", rs.fails);
    bad = verify(c, ws);
    CHECKF(bad == 0, "%d points differ", bad);
    /* The background indexer finishes: status green, all indexed. */
    int green = 0;
    for (int i = 0; i < 600 && !green; i++) {
        char *js;
        if (ny_collection_info_json(c, &js) == NY_OK) {
            green = strstr(js, "\"status\":\"green\"") != NULL;
            ny_free(js);
        }
        if (!green) usleep(20000);
    }
    CHECK(green);
    ny_collection_release(c);
    ny_db_close(db);
    REQUIRE(ny_db_open(dir, &db) == NY_OK);
    REQUIRE(ny_db_get_collection(db, "bg", &c) == NY_OK);
    bad = verify(c, ws);
    CHECKF(bad == 0, "after reopen: %d points differ", bad);
    ny_collection_release(c);
    ny_db_close(db);
    for (int w = 0; w < WRITERS; w++) free(ws[w].salt);
}

/* ---- Live upserts are indexed in the background. */

#define ADIM 16

static void avec(uint64_t id, uint64_t salt, float *v)
{
    unsigned long long s = id * 7919 + salt * 104729 + 3;
    for (int d = 0; d < ADIM; d++) v[d] = t_randf(&s);
}

static int info_pending(ny_collection *c, long *points, long *indexed, int *green)
{
    char *js;
    if (ny_collection_info_json(c, &js) != NY_OK) return -1;
    const char *p = strstr(js, "\"points_count\":"), *x = strstr(js, "\"indexed_vectors_count\":");
    *points = p ? atol(p + 15) : -1;
    *indexed = x ? atol(x + 24) : -1;
    *green = strstr(js, "\"status\":\"green\"") != NULL;
    ny_free(js);
    return 0;
}

typedef struct bf { float d; uint64_t id; } bf;

static int bf_cmp(const void *a, const void *b)
{
    const bf *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d;
}

/* Compares exact search (index + pending scan) with brute force over the
 * reference, and HNSW search for recall; returns mismatches (exact) and
 * adds HNSW hits to *hits. */
static int check_searches(ny_collection *c, const uint64_t *salt, size_t nids, int nq, size_t *hits, size_t *total)
{
    int bad = 0;
    bf *all = malloc(nids * sizeof *all);
    unsigned long long r = 4242;
    for (int qi = 0; qi < nq; qi++) {
        float q[ADIM], v[ADIM];
        for (int d = 0; d < ADIM; d++) q[d] = t_randf(&r);
        /* search first (the newest points are still pending), then
         * compute the brute-force answer */
        ny_records res[2];
        int src[2];
        for (int mode = 0; mode < 2; mode++) {
            ny_search_params p = {.vector = q, .limit = 10, .exact = mode == 0, .hnsw_ef = 256};
            src[mode] = ny_collection_search(c, &p, &res[mode]);
        }
        size_t m = 0;
        for (size_t i = 0; i < nids; i++) {
            if (!salt[i]) continue;
            avec(i, salt[i], v);
            float s = 0;
            for (int d = 0; d < ADIM; d++) s += (q[d] - v[d]) * (q[d] - v[d]);
            all[m++] = (bf){s, i};
        }
        qsort(all, m, sizeof *all, bf_cmp);
        size_t k = m < 10 ? m : 10;
        for (int mode = 0; mode < 2; mode++) {
            if (src[mode] != NY_OK) {
                bad++;
                continue;
            }
            ny_records out = res[mode];
            if (out.n != k) bad++;
            for (size_t i = 0; i < out.n; i++) {
                for (size_t j = 0; j < i; j++) bad += out.items[j].id.num == out.items[i].id.num; /* no duplicates */
                uint64_t id = out.items[i].id.num;
                if (id >= nids || !salt[id]) {
                    bad++; /* deleted point returned */
                    continue;
                }
                avec(id, salt[id], v);
                float s = 0;
                for (int d = 0; d < ADIM; d++) s += (q[d] - v[d]) * (q[d] - v[d]);
                if (fabsf(sqrtf(s) - out.items[i].score) > 1e-4f * (1 + sqrtf(s))) bad++; /* stale vector */
                if (mode == 0 && i < k && id != all[i].id) bad++;
                if (mode == 1)
                    for (size_t j = 0; j < k; j++) *hits += all[j].id == id;
            }
            if (mode == 1) *total += k;
            ny_records_free(&out);
        }
    }
    free(all);
    return bad;
}

TEST(live_upserts_searchable_while_indexing)
{
    setenv("NEARLY_PENDING_MAX", "1000", 1);
    const char *dir = t_tmpdir();
    ny_db *db;
    REQUIRE(ny_db_open(dir, &db) == NY_OK);
    REQUIRE(ny_db_create_collection(db, "li", "{\"vectors\": {\"size\": 16, \"distance\": \"Euclid\"}, "
                                              "\"hnsw_config\": {\"m\": 8, \"ef_construct\": 64, \"full_scan_threshold\": 10}}") == NY_OK);
    ny_collection *c;
    REQUIRE(ny_db_get_collection(db, "li", &c) == NY_OK);
    size_t nids = t_n(6000, 1500);
    uint64_t *salt = calloc(nids, sizeof *salt);
    enum { B = 256 };
    ny_point pts[B];
    float vecs[B * ADIM];
    unsigned long long r = 99;
    long maxback = 0;
    int bad = 0;
    /* New points, then replacements and deletes of existing ones. */
    for (size_t round = 0; round < 3; round++) {
        for (size_t s = 0; s < nids; s += B) {
            size_t m = nids - s < B ? nids - s : B;
            for (size_t i = 0; i < m; i++) {
                uint64_t id = round == 0 ? s + i : t_rand(&r) % nids;
                uint64_t sl = round * nids + s + i + 1;
                avec(id, sl, vecs + i * ADIM);
                pts[i] = (ny_point){pid(id), vecs + i * ADIM, NULL};
            }
            REQUIRE(ny_collection_upsert(c, pts, m, (int)(s / B % 2)) == NY_OK);
            for (size_t i = 0; i < m; i++) salt[pts[i].id.num] = round * nids + s + i + 1;
            if (round == 2) {
                ny_point_id del[8];
                for (int i = 0; i < 8; i++) del[i] = pid(t_rand(&r) % nids);
                ny_selector sel = {.ids = del, .n_ids = 8};
                REQUIRE(ny_collection_delete(c, &sel, 0, NULL) == NY_OK);
                for (int i = 0; i < 8; i++) salt[del[i].num] = 0;
            }
            long pc, ic;
            int g;
            REQUIRE(info_pending(c, &pc, &ic, &g) == 0);
            if (pc - ic > maxback) maxback = pc - ic;
            if (s / B % 4 == 1) { /* (a batch without fsync) */
                /* straight after the upsert: its points are pending */
                size_t h = 0, tt = 0;
                int b2 = check_searches(c, salt, nids, 2, &h, &tt);
                CHECKF(b2 == 0, "round %zu batch %zu: %d mismatches against brute force", round, s / B, b2);
                bad += b2;
            }
        }
    }
    /* Flow control: the backlog stays near the limit (one batch over). */
    CHECKF(maxback <= 1000 + B, "backlog reached %ld vectors (limit 1000)", maxback);
    size_t live = 0, n = 0;
    for (size_t i = 0; i < nids; i++) live += salt[i] != 0;
    CHECK(ny_collection_count(c, NULL, &n) == NY_OK && n == live);
    /* Immediately: pending points are found, never stale or twice. */
    size_t hits = 0, total = 0;
    bad = check_searches(c, salt, nids, 20, &hits, &total);
    CHECKF(bad == 0, "while indexing: %d mismatches against brute force", bad);
    /* Wait for green; then everything is in the index. */
    int green = 0;
    long pc = 0, ic = 0;
    for (int i = 0; i < 3000 && !green; i++) {
        REQUIRE(info_pending(c, &pc, &ic, &green) == 0);
        if (!green) usleep(10000);
    }
    CHECK(green);
    CHECKF(pc == (long)live && ic == (long)live, "points %ld indexed %ld live %zu", pc, ic, live);
    hits = total = 0;
    bad = check_searches(c, salt, nids, 20, &hits, &total);
    CHECKF(bad == 0, "after indexing: %d mismatches against brute force", bad);
    CHECKF(hits >= total * 9 / 10, "HNSW recall %zu/%zu", hits, total);
    /* More upserts, then close at once: close drains (or the log keeps)
     * the pending vectors; the reopened collection matches. */
    for (size_t s = 0; s < nids / 2; s += B) {
        size_t m = nids / 2 - s < B ? nids / 2 - s : B;
        for (size_t i = 0; i < m; i++) {
            uint64_t id = s + i;
            avec(id, 9 * nids + s + i + 1, vecs + i * ADIM);
            pts[i] = (ny_point){pid(id), vecs + i * ADIM, NULL};
        }
        REQUIRE(ny_collection_upsert(c, pts, m, 0) == NY_OK);
        for (size_t i = 0; i < m; i++) salt[s + i] = 9 * nids + s + i + 1;
    }
    ny_collection_release(c);
    ny_db_close(db);
    REQUIRE(ny_db_open(dir, &db) == NY_OK);
    REQUIRE(ny_db_get_collection(db, "li", &c) == NY_OK);
    live = 0;
    for (size_t i = 0; i < nids; i++) live += salt[i] != 0;
    REQUIRE(info_pending(c, &pc, &ic, &green) == 0);
    CHECKF(pc == (long)live && ic == (long)live && green, "after reopen: points %ld indexed %ld live %zu", pc, ic, live);
    hits = total = 0;
    bad = check_searches(c, salt, nids, 10, &hits, &total);
    CHECKF(bad == 0, "after reopen: %d mismatches", bad);
    ny_collection_release(c);
    ny_db_close(db);
    free(salt);
    unsetenv("NEARLY_PENDING_MAX");
}
