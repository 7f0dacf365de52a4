/* test_conc_hnsw.c -- the HNSW index under concurrency (also run under
 * TSan): inserts from several threads at once, searches concurrent with
 * inserts, deletes, re-inserts, vacuum and save; afterwards every id must
 * be findable, deleted ids must never have been returned once deleted, and
 * the structure must validate. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "hnsw_util.h"
#include "index/hnsw.h"
#include "nearly.h"
#include "t.h"

#define N_INS 3
#define N_SEARCH 2

typedef struct shared {
    ny_hnsw *h;
    const float *v;
    size_t n, n0, dim;
    /* Per id: 1 once deleted for good (set after ny_hnsw_delete returned). */
    _Atomic unsigned char *dead;
    _Atomic int inserters_left;
    _Atomic size_t errors, leaks, searches;
    char path[512];
    _Atomic int saved;
} shared;

typedef struct targ {
    shared *s;
    int t;
} targ;

static int is_del_set(size_t i) { return i % 4 == 0; }   /* deleted for good */
static int is_re_set(size_t i) { return i % 4 == 1; }    /* deleted then re-inserted */

static void *inserter(void *p)
{
    targ *a = p;
    shared *s = a->s;
    for (size_t id = s->n0 + (size_t)a->t; id < s->n; id += N_INS) {
        int rc = ny_hnsw_add(s->h, (uint32_t)id, s->v + id * s->dim);
        if (rc != NY_OK) {
            atomic_fetch_add(&s->errors, 1);
            printf("    add %zu: %s\n", id, ny_errmsg());
        }
        /* The same id again must be refused. */
        if (id % 97 == 0 && ny_hnsw_add(s->h, (uint32_t)id, s->v + id * s->dim) != NY_EEXIST)
            atomic_fetch_add(&s->errors, 1);
    }
    atomic_fetch_sub(&s->inserters_left, 1);
    return NULL;
}

static void *deleter(void *p)
{
    shared *s = ((targ *)p)->s;
    for (size_t id = 0; id < s->n0; id++) {
        if (is_del_set(id)) {
            if (ny_hnsw_delete(s->h, (uint32_t)id) != NY_OK) atomic_fetch_add(&s->errors, 1);
            atomic_store(&s->dead[id], 1);
        } else if (is_re_set(id)) {
            if (ny_hnsw_delete(s->h, (uint32_t)id) != NY_OK) atomic_fetch_add(&s->errors, 1);
            if (ny_hnsw_add(s->h, (uint32_t)id, s->v + id * s->dim) != NY_OK) atomic_fetch_add(&s->errors, 1);
        }
        if (id == s->n0 / 2) {
            if (ny_hnsw_vacuum(s->h) != NY_OK) atomic_fetch_add(&s->errors, 1);
            /* A snapshot while inserts and searches go on. */
            if (ny_hnsw_save(s->h, s->path) != NY_OK) atomic_fetch_add(&s->errors, 1);
            else atomic_store(&s->saved, 1);
        }
    }
    return NULL;
}

static int odd_only(uint32_t id, void *ctx)
{
    (void)ctx;
    return id & 1;
}

static void *searcher(void *p)
{
    targ *a = p;
    shared *s = a->s;
    unsigned long long seed = 1000 + (unsigned long long)a->t;
    uint32_t ids[10];
    float d[10], tmp[64];
    unsigned char *dead_before = malloc(s->n);
    while (atomic_load(&s->inserters_left) > 0) {
        for (size_t i = 0; i < s->n0; i++) dead_before[i] = atomic_load(&s->dead[i]);
        size_t qi = (size_t)(t_rand(&seed) % s->n);
        const float *q = s->v + qi * s->dim;
        int mode = (int)(t_rand(&seed) % 5);
        int ng;
        ny_filter odd = {.allow = odd_only, .ctx = NULL};
        if (mode == 3) ng = ny_hnsw_search_exact(s->h, q, 10, NULL, ids, d);
        else if (mode == 4) ng = ny_hnsw_search(s->h, q, 10, 40, &odd, ids, d);
        else ng = ny_hnsw_search(s->h, q, 10, mode == 0 ? 16 : 40, NULL, ids, d);
        if (ng < 0) {
            atomic_fetch_add(&s->errors, 1);
            continue;
        }
        for (int j = 0; j < ng; j++) {
            if (ids[j] >= s->n || (mode == 4 && !odd_only(ids[j], NULL))) atomic_fetch_add(&s->errors, 1);
            else if (ids[j] < s->n0 && dead_before[ids[j]]) atomic_fetch_add(&s->leaks, 1);
            if (j && d[j] < d[j - 1]) atomic_fetch_add(&s->errors, 1);
        }
        /* A live id's stored vector is the one inserted. */
        uint32_t g = (uint32_t)(t_rand(&seed) % s->n);
        if (ny_hnsw_get_vector(s->h, g, tmp) == NY_OK && memcmp(tmp, s->v + (size_t)g * s->dim, s->dim * 4) != 0)
            atomic_fetch_add(&s->errors, 1);
        atomic_fetch_add(&s->searches, 1);
    }
    free(dead_before);
    return NULL;
}

TEST(concurrent_insert_search_delete)
{
    shared s;
    memset(&s, 0, sizeof s);
    s.dim = 16;
    s.n = t_n(8000, 1600);
    s.n0 = s.n / 4;
    float *v = gen_random(s.n, s.dim, 5);
    s.v = v;
    s.dead = calloc(s.n, 1);
    snprintf(s.path, sizeof s.path, "%s/conc.hnsw", t_tmpdir());
    ny_hnsw_params p;
    ny_hnsw_params_init(&p, s.dim, NY_L2);
    p.m = 12;
    p.ef_construction = 64;
    REQUIRE(ny_hnsw_new(&p, &s.h) == NY_OK);
    CHECK_RC(ny_hnsw_add_batch(s.h, NULL, 0, v, s.n0, 2), NY_OK);
    atomic_store(&s.inserters_left, N_INS);
    pthread_t th[N_INS + N_SEARCH + 1];
    targ args[N_INS + N_SEARCH + 1];
    int nt = 0;
    for (int i = 0; i < N_INS; i++, nt++) {
        args[nt] = (targ){&s, i};
        pthread_create(&th[nt], NULL, inserter, &args[nt]);
    }
    for (int i = 0; i < N_SEARCH; i++, nt++) {
        args[nt] = (targ){&s, i};
        pthread_create(&th[nt], NULL, searcher, &args[nt]);
    }
    args[nt] = (targ){&s, 0};
    pthread_create(&th[nt], NULL, deleter, &args[nt]);
    nt++;
    for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
    printf("    %zu vectors, %zu searches during the writes\n", s.n, atomic_load(&s.searches));
    CHECKF(atomic_load(&s.errors) == 0, "%zu errors", atomic_load(&s.errors));
    CHECKF(atomic_load(&s.leaks) == 0, "%zu deleted ids returned after their delete", atomic_load(&s.leaks));
    CHECK_RC(ny_hnsw_validate(s.h), NY_OK);

    /* Every live id is findable by its own vector; deleted ones are gone. */
    size_t live = 0, top = 0, found = 0, wrong = 0;
    uint32_t ids[10];
    for (size_t i = 0; i < s.n; i++) {
        int want = !(i < s.n0 && is_del_set(i));
        if (ny_hnsw_contains(s.h, (uint32_t)i) != want) wrong++;
        if (!want) continue;
        live++;
        int ng = ny_hnsw_search(s.h, v + i * s.dim, 10, 32, NULL, ids, NULL);
        if (ng > 0 && ids[0] == i) top++;
        for (int j = 0; j < ng; j++) found += ids[j] == i;
    }
    ny_hnsw_stats st;
    ny_hnsw_get_stats(s.h, &st);
    printf("    own vector at top: %zu of %zu, in top 10: %zu\n", top, live, found);
    CHECK(wrong == 0);
    CHECK(st.count == live);
    CHECKF(top >= live * 98 / 100, "only %zu of %zu at top", top, live);
    CHECKF(found >= live * 99 / 100, "only %zu of %zu in the top 10", found, live);
    size_t reach = ny_hnsw_reachable(s.h);
    CHECKF(reach >= live * 99 / 100, "only %zu of %zu reachable on level 0", reach, live);

    /* The snapshot taken mid-way loads and validates. */
    CHECK(atomic_load(&s.saved));
    ny_hnsw *g = NULL;
    CHECK_RC(ny_hnsw_load(s.path, &g), NY_OK);
    if (g) {
        CHECK_RC(ny_hnsw_validate(g), NY_OK);
        ny_hnsw_get_stats(g, &st);
        CHECK(st.count > 0 && st.count <= s.n);
    }
    ny_hnsw_free(g);
    ny_hnsw_free(s.h);
    free(v);
    free((void *)s.dead);
}

/* add_batch on several threads gives the same quality as one thread. */
TEST(parallel_batch_build)
{
    size_t n = t_n(6000, 1500), dim = 12, nq = 100;
    float *v = gen_clustered(n, dim, 15, 8), *q = gen_clustered2(nq, dim, 15, 8, 9);
    ny_hnsw_params p;
    ny_hnsw_params_init(&p, dim, NY_COSINE);
    p.m = 10;
    p.ef_construction = 64;
    ny_hnsw *h;
    REQUIRE(ny_hnsw_new(&p, &h) == NY_OK);
    CHECK_RC(ny_hnsw_add_batch(h, NULL, 0, v, n, 4), NY_OK);
    CHECK_RC(ny_hnsw_validate(h), NY_OK);
    uint32_t got[10], truth[10];
    double td[10];
    size_t hits = 0, tot = 0;
    uint32_t *bids = malloc(nq * 10 * sizeof *bids);
    CHECK_RC(ny_hnsw_search_batch(h, q, nq, 10, 64, NULL, 3, bids, NULL), NY_OK);
    for (size_t i = 0; i < nq; i++) {
        size_t nt = brute_force(NY_COSINE, dim, v, NULL, n, NULL, q + i * dim, 10, truth, td);
        int ng = ny_hnsw_search(h, q + i * dim, 10, 64, NULL, got, NULL);
        CHECK(ng == 10 && memcmp(got, bids + i * 10, sizeof got) == 0);
        hits += count_hits(NY_COSINE, dim, v, q + i * dim, got, (size_t)ng, td, nt);
        tot += nt;
    }
    double r = (double)hits / (double)tot;
    printf("    4-thread build recall@10 (ef=64): %.4f\n", r);
    CHECKF(r >= 0.95, "recall %.4f", r);
    free(bids);
    ny_hnsw_free(h);
    free(v);
    free(q);
}
