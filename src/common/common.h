/*
 * common.h -- internal helpers shared by every subsystem of libnearly:
 * error reporting, aligned allocation, checksums and a tiny thread pool.
 * Not part of the public API.
 */
#ifndef NY_COMMON_H
#define NY_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "nearly.h"

#define NY_LIKELY(x) __builtin_expect(!!(x), 1)
#define NY_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NY_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NY_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Records rc and a printf-style message as this thread's last error and
 * returns rc, so that callers can write `return ny_error(NY_EINVAL, ...)`. */
int ny_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like ny_error but appends ": strerror(errno)". */
int ny_error_errno(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Maps an errno value from a failed syscall to an NY_E* code. */
int ny_rc_from_errno(int err);

/* 64-byte aligned allocation of `size` bytes (zeroed); free with ny_afree.
 * Large blocks are 2 MiB aligned and advised for transparent hugepages. */
void *ny_aalloc(size_t size);
void ny_afree(void *p, size_t size);

/* 64-bit checksum (XXH3) of a buffer, and a streaming variant. */
uint64_t ny_hash64(const void *data, size_t len);
typedef struct ny_hasher { void *state; } ny_hasher;
int ny_hasher_init(ny_hasher *h);
void ny_hasher_update(ny_hasher *h, const void *data, size_t len);
uint64_t ny_hasher_final(ny_hasher *h); /* also frees the state */

/* Runs fn(ctx, i, worker) for i in [0, n) on `threads` threads (<= 0: all
 * CPUs).  Work is handed out dynamically in chunks of `chunk` items.
 * `worker` is in [0, threads).  Returns the number of threads used. */
typedef void (*ny_task_fn)(void *ctx, size_t i, int worker);
int ny_parallel_for(size_t n, size_t chunk, int threads, ny_task_fn fn, void *ctx);

/* Monotonic clock in seconds. */
double ny_now(void);

/* 1 if every component is finite. */
int ny_all_finite(const float *v, size_t dim);

#endif
