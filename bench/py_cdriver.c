/*
 * py_cdriver.c -- the C side of bench/python_bench.py: the same engine calls
 * that nearly.Index makes, timed from C on the same saved index and queries,
 * so that the Python binding's cost can be measured as a difference.
 *
 *   py_cdriver batch  INDEX QUERIES.fvecs K THREADS EF[,EF...] REPS
 *       ny_hnsw_search_batch over all queries; prints "ef qps" per ef (best
 *       of REPS).
 *   py_cdriver single INDEX QUERIES.fvecs K EF ITERS
 *       ny_hnsw_search one query at a time, cycling through the queries;
 *       prints "ns_per_call".
 *
 * Built by the benchmark script with: cc -O3 -Iinclude bench/py_cdriver.c
 * build/libnearly.a -lm -lxxhash -ljansson -pthread.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nearly.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static float *read_fvecs(const char *path, size_t *n, size_t *dim)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    int d;
    if (fread(&d, 4, 1, f) != 1 || d <= 0) { fprintf(stderr, "%s: bad header\n", path); exit(2); }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t rows = (size_t)sz / (4 + 4 * (size_t)d);
    float *out = malloc(rows * (size_t)d * sizeof(float));
    for (size_t i = 0; i < rows; i++) {
        int dd;
        if (fread(&dd, 4, 1, f) != 1 || dd != d || fread(out + i * (size_t)d, 4, (size_t)d, f) != (size_t)d) {
            fprintf(stderr, "%s: bad row %zu\n", path, i);
            exit(2);
        }
    }
    fclose(f);
    *n = rows;
    *dim = (size_t)d;
    return out;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: py_cdriver batch INDEX QUERIES K THREADS EFS REPS | single INDEX QUERIES K EF ITERS\n");
        return 2;
    }
    ny_hnsw *h;
    if (ny_hnsw_load(argv[2], &h) != NY_OK) { fprintf(stderr, "load: %s\n", ny_errmsg()); return 1; }
    size_t nq, dim;
    float *q = read_fvecs(argv[3], &nq, &dim);
    size_t k = strtoul(argv[4], NULL, 10);
    if (!strcmp(argv[1], "batch") && argc >= 8) {
        int threads = atoi(argv[5]);
        int reps = atoi(argv[7]);
        uint32_t *ids = malloc(nq * k * sizeof *ids);
        float *d = malloc(nq * k * sizeof *d);
        char *efs = strdup(argv[6]);
        for (char *tok = strtok(efs, ","); tok; tok = strtok(NULL, ",")) {
            size_t ef = strtoul(tok, NULL, 10);
            double best = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = now();
                if (ny_hnsw_search_batch(h, q, nq, k, ef, NULL, threads, ids, d) != NY_OK) {
                    fprintf(stderr, "search: %s\n", ny_errmsg());
                    return 1;
                }
                double t = now() - t0;
                if (t < best) best = t;
            }
            printf("%zu %.1f\n", ef, (double)nq / best);
        }
        free(efs);
        free(ids);
        free(d);
    } else if (!strcmp(argv[1], "single")) {
        size_t ef = strtoul(argv[5], NULL, 10);
        long iters = atol(argv[6]);
        uint32_t ids[1024];
        float d[1024];
        if (k > 1024) k = 1024;
        double best = 1e30;
        for (int r = 0; r < 3; r++) {
            double t0 = now();
            for (long i = 0; i < iters; i++) ny_hnsw_search(h, q + (size_t)(i % (long)nq) * dim, k, ef, NULL, ids, d);
            double t = now() - t0;
            if (t < best) best = t;
        }
        printf("%.1f\n", best / (double)iters * 1e9);
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    free(q);
    ny_hnsw_free(h);
    return 0;
}
