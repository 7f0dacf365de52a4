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
