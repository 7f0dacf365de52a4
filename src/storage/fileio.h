/*
 * fileio.h -- small file helpers for the storage layer: full writes with
 * error mapping, a buffered writer that checksums what it writes, atomic
 * file replacement (temp + fsync + rename + fsync dir), directory removal,
 * and a fault-injection hook used by the tests to simulate a full disk.
 * Internal to libnearly.
 */
#ifndef NY_FILEIO_H
#define NY_FILEIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

/* ---- Fault injection (tests).  After `bytes` more bytes have been written
 * through ny_io_write, every further write fails with ENOSPC (a partial
 * write may happen first, as on a real full disk).  -1 disables.  When
 * fail_sync is set, ny_io_sync fails with EIO. */
void ny_fault_set_write_limit(long long bytes);
void ny_fault_set_sync_fail(int fail);

/* write() the whole buffer (retrying on EINTR / short writes).  Returns
 * NY_OK or an NY_E* code with a message naming `what`.  The fault hook
 * applies. */
int ny_io_write(int fd, const void *buf, size_t len, const char *what);
/* pread the whole range; NY_ECORRUPT (message) on a short file. */
int ny_io_pread(int fd, void *buf, size_t len, off_t off, const char *what);
/* fdatasync (data=1) or fsync. */
int ny_io_sync(int fd, int data, const char *what);
/* fsync a directory so that renames / creations in it are durable. */
int ny_io_sync_dir(const char *dir);
/* mkdir -p for one level (EEXIST is fine). */
int ny_io_mkdir(const char *path);
/* Recursively removes path (file or directory).  Missing is OK. */
int ny_io_rmtree(const char *path);
/* Reads a whole (small) file into a NUL-terminated malloc'd buffer. */
int ny_io_read_file(const char *path, char **out, size_t *len);
/* Writes data to path atomically: path.tmp, fsync, rename, fsync dir. */
int ny_io_write_atomic(const char *path, const void *data, size_t len);
/* 1 if path exists. */
int ny_io_exists(const char *path);
/* Size of the files under path (recursive), in bytes. */
uint64_t ny_io_du(const char *path);

/* ---- Buffered writer with a running XXH3 checksum. */
typedef struct ny_bufw {
    int fd;
    char *buf;
    size_t cap, len;
    uint64_t total;   /* bytes handed to put so far */
    ny_hasher h;
    int rc;           /* first error, sticky */
    const char *what;
} ny_bufw;

int ny_bufw_init(ny_bufw *w, int fd, const char *what);
void ny_bufw_put(ny_bufw *w, const void *p, size_t n);
void ny_bufw_u8(ny_bufw *w, uint8_t v);
void ny_bufw_u32(ny_bufw *w, uint32_t v);
void ny_bufw_u64(ny_bufw *w, uint64_t v);
/* Flushes, then returns the checksum of everything put so far (and frees
 * the hasher).  *rc gets the sticky error. */
uint64_t ny_bufw_finish(ny_bufw *w, int *rc);
/* Writes raw bytes that are NOT included in the checksum (the trailer). */
int ny_bufw_raw_tail(ny_bufw *w, const void *p, size_t n);

/* ---- Buffered reader with a running checksum. */
typedef struct ny_bufr {
    int fd;
    char *buf;
    size_t cap, len, pos;
    uint64_t consumed;
    ny_hasher h;
    int eof;
    const char *what;
} ny_bufr;

int ny_bufr_init(ny_bufr *r, int fd, const char *what);
/* Reads exactly n bytes (hashed); NY_ECORRUPT if the file ends first. */
int ny_bufr_get(ny_bufr *r, void *p, size_t n);
int ny_bufr_u8(ny_bufr *r, uint8_t *v);
int ny_bufr_u32(ny_bufr *r, uint32_t *v);
int ny_bufr_u64(ny_bufr *r, uint64_t *v);
/* Reads n bytes NOT hashed (the trailer). */
int ny_bufr_raw(ny_bufr *r, void *p, size_t n);
/* Checksum of what was read through get so far (frees the hasher). */
uint64_t ny_bufr_digest(ny_bufr *r);
void ny_bufr_free(ny_bufr *r);

#endif
