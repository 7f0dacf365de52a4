/* test_conc_exact.c -- ny_exact_search called from several threads at once,
 * each call itself multi-threaded (split-base and batch paths), with a
 * filter callback; every result must equal the single-threaded answer.
 * Run under TSan by scripts/run_tests.sh. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nearly.h"
#include "t.h"

typedef struct job {
    const float *base, *q;
    size_t n, dim, nq, k;
    const ny_filter *f;
    uint32_t *ids;
    float *d;
    int rc;
} job;

static void *run(void *p)
{
    job *j = p;
    for (int rep = 0; rep < 3 && j->rc == 0; rep++)
        j->rc = ny_exact_search(NY_COSINE, j->dim, j->base, j->n, j->q, j->nq, j->k, j->f, 2, j->ids, j->d);
    return NULL;
}

static int even(uint32_t id, void *ctx)
{
    (void)ctx;
    return (id & 1) == 0;
}

TEST(concurrent_calls_match_single_threaded)
{
    size_t n = t_n(20000, 5000), dim = 24, nq = 9, k = 15;
    unsigned long long s = 9;
    float *base = malloc(n * dim * sizeof(float)), *q = malloc(nq * dim * sizeof(float));
    for (size_t i = 0; i < n * dim; i++) base[i] = t_randf(&s);
    for (size_t i = 0; i < nq * dim; i++) q[i] = t_randf(&s);
    for (size_t i = 0; i < n; i++) ny_normalize(base + i * dim, dim);
    ny_filter f = {.allow = even};
    uint32_t *want = malloc(nq * k * 2 * sizeof(uint32_t));
    float *wd = malloc(nq * k * 2 * sizeof(float));
    CHECK_RC(ny_exact_search(NY_COSINE, dim, base, n, q, nq, k, NULL, 1, want, wd), NY_OK);
    CHECK_RC(ny_exact_search(NY_COSINE, dim, base, n, q, nq, k, &f, 1, want + nq * k, wd + nq * k), NY_OK);
    enum { NT = 4 };
    job jobs[NT];
    pthread_t th[NT];
    for (int t = 0; t < NT; t++) {
        size_t nqt = t % 2 ? 1 : nq; /* single query (split base) and batch */
        jobs[t] = (job){base, q, n, dim, nqt, k, t >= 2 ? &f : NULL, malloc(nq * k * sizeof(uint32_t)),
                        malloc(nq * k * sizeof(float)), 0};
        REQUIRE(pthread_create(&th[t], NULL, run, &jobs[t]) == 0);
    }
    for (int t = 0; t < NT; t++) {
        pthread_join(th[t], NULL);
        CHECK_RC(jobs[t].rc, NY_OK);
        const uint32_t *w = want + (t >= 2 ? nq * k : 0);
        CHECKF(memcmp(jobs[t].ids, w, jobs[t].nq * k * sizeof(uint32_t)) == 0, "thread %d differs", t);
        free(jobs[t].ids);
        free(jobs[t].d);
    }
    free(base); free(q); free(want); free(wd);
}
