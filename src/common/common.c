/*
 * common.c -- error reporting, aligned memory, checksums, threads.
 */
#include "common/common.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* ===== Errors ========================================================== */

static _Thread_local char tl_errmsg[512];

const char *ny_strerror(int rc)
{
    switch (rc) {
    case NY_OK: return "ok";
    case NY_EINVAL: return "invalid argument";
    case NY_ENOMEM: return "out of memory";
    case NY_EIO: return "I/O error";
    case NY_ECORRUPT: return "corrupt data";
    case NY_ENOTFOUND: return "not found";
    case NY_EEXIST: return "already exists";
    case NY_EFULL: return "no space left";
    case NY_EDIM: return "wrong vector dimension";
    case NY_ECLOSED: return "object is closed";
    case NY_EBUSY: return "resource busy";
    case NY_EREADONLY: return "read-only";
    case NY_EINTERNAL: return "internal error";
    default: return "unknown error";
    }
}

const char *ny_errmsg(void)
{
    return tl_errmsg[0] ? tl_errmsg : "no error";
}

int ny_error(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_errmsg, sizeof tl_errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

int ny_rc_from_errno(int err)
{
    switch (err) {
    case ENOMEM: return NY_ENOMEM;
    case ENOSPC:
    case EDQUOT:
    case EFBIG: return NY_EFULL;
    case ENOENT: return NY_ENOTFOUND;
    case EEXIST: return NY_EEXIST;
    case EROFS: return NY_EREADONLY;
    case EINVAL:
    case ENAMETOOLONG: return NY_EINVAL;
    default: return NY_EIO;
    }
}

int ny_error_errno(int rc, const char *fmt, ...)
{
    int err = errno;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tl_errmsg, sizeof tl_errmsg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof tl_errmsg)
        snprintf(tl_errmsg + n, sizeof tl_errmsg - (size_t)n, ": %s", strerror(err));
    return rc;
}

/* ===== Memory ========================================================== */

#define HUGE_ALIGN (2u << 20)

void *ny_aalloc(size_t size)
{
    if (size == 0) size = 64;
    if (size >= HUGE_ALIGN) {
        /* mmap gives zeroed pages; round to 2 MiB so THP can back it. */
        size_t len = (size + HUGE_ALIGN - 1) & ~(size_t)(HUGE_ALIGN - 1);
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
        madvise(p, len, MADV_HUGEPAGE);
#endif
        return p;
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, (size + 63) & ~(size_t)63) != 0) return NULL;
    memset(p, 0, size);
    return p;
}

void ny_afree(void *p, size_t size)
{
    if (!p) return;
    if (size == 0) size = 64;
    if (size >= HUGE_ALIGN) {
        size_t len = (size + HUGE_ALIGN - 1) & ~(size_t)(HUGE_ALIGN - 1);
        munmap(p, len);
    } else {
        free(p);
    }
}

/* ===== Checksums ======================================================= */

uint64_t ny_hash64(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

int ny_hasher_init(ny_hasher *h)
{
    XXH3_state_t *s = XXH3_createState();
    if (!s) return ny_error(NY_ENOMEM, "out of memory (hash state)");
    XXH3_64bits_reset(s);
    h->state = s;
    return NY_OK;
}

void ny_hasher_update(ny_hasher *h, const void *data, size_t len)
{
    XXH3_64bits_update((XXH3_state_t *)h->state, data, len);
}

uint64_t ny_hasher_final(ny_hasher *h)
{
    uint64_t v = XXH3_64bits_digest((XXH3_state_t *)h->state);
    XXH3_freeState((XXH3_state_t *)h->state);
    h->state = NULL;
    return v;
}

/* ===== Threads ========================================================= */

typedef struct pf_shared {
    size_t n, chunk;
    _Atomic size_t next;
    ny_task_fn fn;
    void *ctx;
} pf_shared;

typedef struct pf_arg {
    pf_shared *sh;
    int worker;
} pf_arg;

static void *pf_run(void *p)
{
    pf_arg *a = p;
    pf_shared *sh = a->sh;
    for (;;) {
        size_t start = atomic_fetch_add(&sh->next, sh->chunk);
        if (start >= sh->n) break;
        size_t end = NY_MIN(start + sh->chunk, sh->n);
        for (size_t i = start; i < end; i++) sh->fn(sh->ctx, i, a->worker);
    }
    return NULL;
}

int ny_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int ny_parallel_for(size_t n, size_t chunk, int threads, ny_task_fn fn, void *ctx)
{
    if (threads <= 0) threads = ny_cpu_count();
    if (chunk == 0) chunk = 1;
    size_t max_useful = (n + chunk - 1) / chunk;
    if ((size_t)threads > max_useful) threads = max_useful ? (int)max_useful : 1;
    pf_shared sh = {.n = n, .chunk = chunk, .fn = fn, .ctx = ctx};
    atomic_init(&sh.next, 0);
    if (threads <= 1) {
        pf_arg a = {&sh, 0};
        pf_run(&a);
        return 1;
    }
    pthread_t tids[threads];
    pf_arg args[threads];
    int started = 0;
    for (int t = 1; t < threads; t++) {
        args[t].sh = &sh;
        args[t].worker = t;
        if (pthread_create(&tids[t], NULL, pf_run, &args[t]) != 0) break;
        started = t;
    }
    args[0].sh = &sh;
    args[0].worker = 0;
    pf_run(&args[0]);
    for (int t = 1; t <= started; t++) pthread_join(tids[t], NULL);
    return started + 1;
}

/* ===== Misc ============================================================ */

double ny_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t ny_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024;
}

int ny_all_finite(const float *v, size_t dim)
{
    for (size_t i = 0; i < dim; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}
