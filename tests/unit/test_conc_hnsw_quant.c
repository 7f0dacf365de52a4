/* test_conc_hnsw_quant.c -- quantized search under concurrency (also run
 * under TSan): inserts (encoded as they are added), deletes, quantized
 * searches and quantizer replacement (int8 <-> binary) at the same time.
 * Deleted ids must never come back once deleted; afterwards every live id
 * must find itself on codes and the structure must validate. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "hnsw_util.h"
#include "index/hnsw.h"
#include "nearly.h"
#include "t.h"

#define SQ8 "{\"scalar\": {\"type\": \"int8\", \"quantile\": 0.99}}"
#define BIN "{\"binary\": {}}"

typedef struct shared {
    ny_hnsw *h;
    const float *v;
    size_t n, n0, dim;
    /* Per id: the deletion sequence number once its delete returned. */
    _Atomic size_t *dead_at;
    _Atomic size_t del_seq;
    _Atomic int writers_left;
    _Atomic size_t errors, leaks, searches;
} shared;

static void *inserter(void *p)
{
    shared *s = p;
    for (size_t id = s->n0; id < s->n; id++)
        if (ny_hnsw_add(s->h, (uint32_t)id, s->v + id * s->dim) != NY_OK) {
            atomic_fetch_add(&s->errors, 1);
            printf("    add %zu: %s\n", id, ny_errmsg());
        }
    atomic_fetch_sub(&s->writers_left, 1);
    return NULL;
}

static void *deleter(void *p)
{
    shared *s = p;
    for (size_t id = 0; id < s->n0; id += 5) {
        if (ny_hnsw_delete(s->h, (uint32_t)id) != NY_OK) atomic_fetch_add(&s->errors, 1);
        atomic_store(&s->dead_at[id], atomic_fetch_add(&s->del_seq, 1) + 1);
    }
    atomic_fetch_sub(&s->writers_left, 1);
    return NULL;
}

static void *switcher(void *p)
{
    shared *s = p;
    for (int r = 0; r < 4; r++)
        if (ny_hnsw_set_quantization(s->h, (r & 1) ? SQ8 : BIN) != NY_OK) {
            atomic_fetch_add(&s->errors, 1);
            printf("    set_quantization: %s\n", ny_errmsg());
        }
    atomic_fetch_sub(&s->writers_left, 1);
    return NULL;
}

static void *searcher(void *p)
{
    shared *s = p;
    unsigned long long seed = (unsigned long long)(uintptr_t)p ^ 99;
    uint32_t ids[10];
    while (atomic_load(&s->writers_left) > 0) {
        size_t qi = (size_t)(t_rand(&seed) % s->n0);
        size_t seq0 = atomic_load(&s->del_seq);
        int ng = ny_hnsw_search_quant(s->h, s->v + qi * s->dim, 10, 32, NULL, (int)(qi & 1), 2.0f, ids, NULL);
        if (ng < 0) {
            atomic_fetch_add(&s->errors, 1);
            continue;
        }
        atomic_fetch_add(&s->searches, 1);
        for (int j = 0; j < ng; j++) {
            size_t d = ids[j] < s->n ? atomic_load(&s->dead_at[ids[j]]) : 0;
            if (d && d <= seq0) atomic_fetch_add(&s->leaks, 1); /* deleted before the search began */
        }
    }
    return NULL;
}

TEST(quantized_search_during_writes)
{
    size_t n0 = NY_HNSW_QUANT_MIN_TRAIN + 200, n = n0 + t_n(1200, 400), dim = 16;
    float *v = gen_clustered(n, dim, 12, 17);
    ny_hnsw_params p;
    ny_hnsw_params_init(&p, dim, NY_L2);
    p.ef_construction = 64;
    ny_hnsw *h = NULL;
    REQUIRE(ny_hnsw_new(&p, &h) == NY_OK);
    REQUIRE(ny_hnsw_add_batch(h, NULL, 0, v, n0, 2) == NY_OK);
    REQUIRE(ny_hnsw_set_quantization(h, SQ8) == NY_OK);
    REQUIRE(ny_hnsw_quant_ready(h));
    shared s = {.h = h, .v = v, .n = n, .n0 = n0, .dim = dim};
    s.dead_at = calloc(n, sizeof *s.dead_at);
    atomic_init(&s.writers_left, 3);
    pthread_t ti, td, tw, ts[2];
    pthread_create(&ti, NULL, inserter, &s);
    pthread_create(&td, NULL, deleter, &s);
    pthread_create(&tw, NULL, switcher, &s);
    for (int i = 0; i < 2; i++) pthread_create(&ts[i], NULL, searcher, &s);
    pthread_join(ti, NULL);
    pthread_join(td, NULL);
    pthread_join(tw, NULL);
    for (int i = 0; i < 2; i++) pthread_join(ts[i], NULL);
    CHECKF(atomic_load(&s.errors) == 0, "%zu errors", atomic_load(&s.errors));
    CHECKF(atomic_load(&s.leaks) == 0, "%zu results were deleted before their search", atomic_load(&s.leaks));
    printf("  %zu concurrent quantized searches\n", atomic_load(&s.searches));
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    CHECK(ny_hnsw_quant_ready(h)); /* the last switch was int8 */
    /* Every live id finds itself on codes (inserts during the switches were
     * encoded by whichever quantizer was current, or by the retraining);
     * deleted ids never come back. */
    size_t self = 0, live = 0, leaks = 0;
    uint32_t ids[10];
    for (size_t i = 0; i < n; i++) {
        int ng = ny_hnsw_search_quant(h, v + i * dim, 10, 48, NULL, 0, 1, ids, NULL);
        int found = 0;
        for (int j = 0; j < ng; j++) {
            found |= ids[j] == i;
            if (ids[j] < n0 && ids[j] % 5 == 0) leaks++;
        }
        if (i < n0 && i % 5 == 0) continue;
        live++;
        self += found;
    }
    CHECKF(leaks == 0, "%zu deleted ids returned", leaks);
    CHECKF(self * 100 >= live * 98, "%zu of %zu live ids found themselves", self, live);
    free(s.dead_at);
    ny_hnsw_free(h);
    free(v);
}

/* Graph and vectors moved to mapped files while searches run: first with
 * no writers (every search must return exactly what it returned before),
 * then with inserts and deletes between repeated moves. */
typedef struct mover_arg {
    ny_hnsw *h;
    const char *dir;
    int rounds;
    _Atomic int *done;
    _Atomic size_t *errors;
} mover_arg;

static void *mover(void *p)
{
    mover_arg *m = p;
    for (int r = 0; r < m->rounds; r++) {
        size_t b = 0;
        if (ny_hnsw_graph_to_disk(m->h, m->dir, &b) != NY_OK || ny_hnsw_vectors_to_disk(m->h, m->dir, &b) != NY_OK) {
            atomic_fetch_add(m->errors, 1);
            printf("    to_disk: %s\n", ny_errmsg());
        }
    }
    atomic_store(m->done, 1);
    return NULL;
}

typedef struct fixed_arg {
    ny_hnsw *h;
    const float *q;
    size_t nq, dim;
    const uint32_t *want;
    _Atomic int *done;
    _Atomic size_t *mismatch, *searches;
} fixed_arg;

static void *fixed_searcher(void *p)
{
    fixed_arg *a = p;
    uint32_t ids[10];
    size_t i = 0;
    do {
        size_t qi = i++ % a->nq;
        int ng = ny_hnsw_search_quant(a->h, a->q + qi * a->dim, 10, 32, NULL, 1, 2.0f, ids, NULL);
        if (ng != 10 || memcmp(ids, a->want + qi * 10, sizeof ids)) atomic_fetch_add(a->mismatch, 1);
        atomic_fetch_add(a->searches, 1);
    } while (!atomic_load(a->done));
    return NULL;
}

TEST(search_while_moving_to_disk)
{
    size_t n0 = NY_HNSW_QUANT_MIN_TRAIN + 1000, n = n0 + t_n(1200, 400), dim = 16, nq = 50;
    float *v = gen_clustered(n, dim, 12, 23);
    ny_hnsw_params p;
    ny_hnsw_params_init(&p, dim, NY_L2);
    p.ef_construction = 64;
    ny_hnsw *h = NULL;
    REQUIRE(ny_hnsw_new(&p, &h) == NY_OK);
    REQUIRE(ny_hnsw_add_batch(h, NULL, 0, v, n0, 2) == NY_OK);
    REQUIRE(ny_hnsw_set_quantization(h, SQ8) == NY_OK);
    uint32_t *want = malloc(nq * 10 * sizeof(uint32_t));
    for (size_t i = 0; i < nq; i++)
        REQUIRE(ny_hnsw_search_quant(h, v + i * 37 * dim, 10, 32, NULL, 1, 2.0f, want + i * 10, NULL) == 10);
    float *q = malloc(nq * dim * sizeof(float));
    for (size_t i = 0; i < nq; i++) memcpy(q + i * dim, v + i * 37 * dim, dim * sizeof(float));
    _Atomic int done = 0;
    _Atomic size_t errors = 0, mismatch = 0, searches = 0;
    /* Phase 1: moves only; answers must not change. */
    mover_arg ma = {.h = h, .dir = t_tmpdir(), .rounds = 1, .done = &done, .errors = &errors};
    fixed_arg fa = {.h = h, .q = q, .nq = nq, .dim = dim, .want = want, .done = &done, .mismatch = &mismatch,
                    .searches = &searches};
    pthread_t tm, ts[2];
    for (int i = 0; i < 2; i++) pthread_create(&ts[i], NULL, fixed_searcher, &fa);
    pthread_create(&tm, NULL, mover, &ma);
    pthread_join(tm, NULL);
    for (int i = 0; i < 2; i++) pthread_join(ts[i], NULL);
    CHECKF(atomic_load(&mismatch) == 0, "%zu of %zu searches changed while the graph moved", atomic_load(&mismatch),
           atomic_load(&searches));
    size_t dv = 0, dg = 0;
    ny_hnsw_disk_usage(h, &dv, &dg);
    CHECK(dv > 0 && dg > 0);
    /* Phase 2: inserts and deletes while the new parts keep moving. */
    shared s = {.h = h, .v = v, .n = n, .n0 = n0, .dim = dim};
    s.dead_at = calloc(n, sizeof *s.dead_at);
    atomic_init(&s.writers_left, 2);
    atomic_store(&done, 0);
    ma.rounds = 6;
    pthread_t ti, td, tr[2];
    pthread_create(&ti, NULL, inserter, &s);
    pthread_create(&td, NULL, deleter, &s);
    pthread_create(&tm, NULL, mover, &ma);
    for (int i = 0; i < 2; i++) pthread_create(&tr[i], NULL, searcher, &s);
    pthread_join(ti, NULL);
    pthread_join(td, NULL);
    pthread_join(tm, NULL);
    for (int i = 0; i < 2; i++) pthread_join(tr[i], NULL);
    CHECKF(atomic_load(&errors) + atomic_load(&s.errors) == 0, "%zu errors", atomic_load(&errors) + atomic_load(&s.errors));
    CHECKF(atomic_load(&s.leaks) == 0, "%zu results were deleted before their search", atomic_load(&s.leaks));
    printf("  %zu searches during the move, %zu during writes and moves\n", atomic_load(&searches),
           atomic_load(&s.searches));
    CHECK_RC(ny_hnsw_graph_to_disk(h, t_tmpdir(), NULL), NY_OK);
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    size_t self = 0, live = 0;
    uint32_t ids[10];
    for (size_t i = 0; i < n; i++) {
        if (i < n0 && i % 5 == 0) continue;
        int ng = ny_hnsw_search_quant(h, v + i * dim, 10, 48, NULL, 1, 2.0f, ids, NULL);
        for (int j = 0; j < ng; j++) self += ids[j] == i;
        live++;
    }
    CHECKF(self * 100 >= live * 98, "%zu of %zu live ids found themselves", self, live);
    free(s.dead_at);
    free(want);
    free(q);
    ny_hnsw_free(h);
    free(v);
}
