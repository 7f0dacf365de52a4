/* test_conc_filter.c -- one compiled filter evaluated by several threads at
 * once over shared payloads (and with_payload selection on them) gives the
 * same answers as a single thread.  Runs under TSan. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "filter/filter.h"
#include "t.h"

enum { THREADS = 4 };

typedef struct {
    const ny_fexpr *f;
    json_t **payloads;
    const json_t *selector;
    size_t n;
    size_t matched;
    size_t selected_keys;
} work;

static void *worker(void *arg)
{
    work *w = arg;
    for (int rep = 0; rep < 3; rep++) {
        size_t m = 0, keys = 0;
        for (size_t i = 0; i < w->n; i++) {
            ny_point_id id = {0, i, {0}};
            m += (size_t)ny_filter_match(w->f, &id, w->payloads[i]);
            json_t *sel = ny_payload_select(w->payloads[i], w->selector);
            keys += json_object_size(sel);
            json_decref(sel);
        }
        w->matched = m;
        w->selected_keys = keys;
    }
    return NULL;
}

TEST(concurrent_match)
{
    size_t n = t_n(20000, 2000);
    json_t **pl = malloc(n * sizeof *pl);
    unsigned long long seed = 11;
    for (size_t i = 0; i < n; i++) {
        pl[i] = json_pack("{s:i, s:s, s:[{s:i},{s:i}], s:{s:f, s:f}}", "n", (int)(t_rand(&seed) % 100), "tag",
                          (t_rand(&seed) % 2) ? "a" : "b", "items", "q", (int)(t_rand(&seed) % 5), "q",
                          (int)(t_rand(&seed) % 5), "loc", "lon", (double)(t_rand(&seed) % 20), "lat",
                          (double)(t_rand(&seed) % 20));
    }
    ny_fexpr *f = NULL;
    REQUIRE(ny_filter_compile("{\"must\": [{\"key\": \"n\", \"range\": {\"gte\": 20}}, "
                              "{\"nested\": {\"key\": \"items\", \"filter\": {\"must\": {\"key\": \"q\", \"match\": {\"any\": [1, 3]}}}}}], "
                              "\"should\": [{\"key\": \"tag\", \"match\": {\"value\": \"a\"}}, "
                              "{\"key\": \"loc\", \"geo_radius\": {\"center\": {\"lon\": 5, \"lat\": 5}, \"radius\": 800000}}], "
                              "\"must_not\": {\"has_id\": [1, 2, 3]}}", &f) == NY_OK);
    json_t *sel = json_pack("{s:[s,s]}", "include", "n", "loc.lat");
    work single = {f, pl, sel, n, 0, 0};
    worker(&single);
    CHECK(single.matched > 0 && single.matched < n);
    CHECK(single.selected_keys == 2 * n);
    pthread_t th[THREADS];
    work w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = single;
        w[i].matched = w[i].selected_keys = 0;
        REQUIRE(pthread_create(&th[i], NULL, worker, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECKF(w[i].matched == single.matched, "thread %d: %zu vs %zu", i, w[i].matched, single.matched);
        CHECK(w[i].selected_keys == single.selected_keys);
    }
    json_decref(sel);
    ny_filter_free(f);
    for (size_t i = 0; i < n; i++) json_decref(pl[i]);
    free(pl);
}
