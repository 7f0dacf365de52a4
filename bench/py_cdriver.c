/*
 * py_cdriver.c -- the C side of bench/python_bench.py, loaded with ctypes
 * into the benchmark's own process (next to build/libnearly.so), so that
 * the engine called from C and the engine called through nearly.Index are
 * timed in the same process, interleaved, on the same index file.
 *
 *   double pyc_single_ns(h, queries, nq, dim, k, ef, iters)
 *       Calls ny_hnsw_search `iters` times, one query per call, cycling
 *       through the nq queries -- the loop a Python caller makes with
 *       Index.search(q, k, ef) -- and returns the mean ns per call.
 *
 * Built by the benchmark script:
 *   cc -O3 -shared -fPIC -Iinclude bench/py_cdriver.c -Lbuild -lnearly -o build/bench/py_cdriver.so
 */
#define _GNU_SOURCE
#include <stddef.h>
#include <time.h>

#include "nearly.h"

double pyc_single_ns(const ny_hnsw *h, const float *q, size_t nq, size_t dim, size_t k, size_t ef, long iters);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double pyc_single_ns(const ny_hnsw *h, const float *q, size_t nq, size_t dim, size_t k, size_t ef, long iters)
{
    uint32_t ids[256];
    float d[256];
    if (k > 256) k = 256;
    double t0 = now();
    for (long i = 0; i < iters; i++)
        if (ny_hnsw_search(h, q + (size_t)(i % (long)nq) * dim, k, ef, NULL, ids, d) < 0) return -1.0;
    return (now() - t0) / (double)iters * 1e9;
}
