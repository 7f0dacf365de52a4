/*
 * fileio.c -- file helpers for the storage layer (see fileio.h).
 */
#include "storage/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ===== Fault injection ================================================= */

static _Atomic long long fault_budget = -1;
static _Atomic int fault_sync = 0;

void ny_fault_set_write_limit(long long bytes) { atomic_store(&fault_budget, bytes); }
void ny_fault_set_sync_fail(int fail) { atomic_store(&fault_sync, fail); }

/* How many of `len` bytes the fault hook lets through (len if disabled). */
static size_t fault_allow(size_t len)
{
    long long b = atomic_load(&fault_budget);
    for (;;) {
        if (b < 0) return len;
        long long take = (long long)len < b ? (long long)len : b;
        if (atomic_compare_exchange_weak(&fault_budget, &b, b - take)) return (size_t)take;
    }
}

/* ===== Plain I/O ======================================================= */

int ny_io_write(int fd, const void *buf, size_t len, const char *what)
{
    const char *p = buf;
    while (len > 0) {
        size_t allow = fault_allow(len);
        if (allow == 0) {
            errno = ENOSPC;
            return ny_error_errno(NY_EFULL, "writing %s (injected fault)", what);
        }
        ssize_t w = write(fd, p, allow);
        if (w < 0) {
            if (errno == EINTR) continue;
            return ny_error_errno(ny_rc_from_errno(errno), "writing %s", what);
        }
        p += w;
        len -= (size_t)w;
    }
    return NY_OK;
}

int ny_io_pread(int fd, void *buf, size_t len, off_t off, const char *what)
{
    char *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return ny_error_errno(NY_EIO, "reading %s", what);
        }
        if (r == 0) return ny_error(NY_ECORRUPT, "%s: unexpected end of file", what);
        p += r;
        len -= (size_t)r;
        off += r;
    }
    return NY_OK;
}

int ny_io_sync(int fd, int data, const char *what)
{
    if (atomic_load(&fault_sync)) {
        errno = EIO;
        return ny_error_errno(NY_EIO, "syncing %s (injected fault)", what);
    }
    int r = data ? fdatasync(fd) : fsync(fd);
    if (r != 0) return ny_error_errno(ny_rc_from_errno(errno), "syncing %s", what);
    return NY_OK;
}

int ny_io_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "opening directory %s", dir);
    int rc = ny_io_sync(fd, 0, dir);
    close(fd);
    return rc;
}

int ny_io_mkdir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return ny_error_errno(ny_rc_from_errno(errno), "creating directory %s", path);
    return NY_OK;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    int r = (flag == FTW_DP) ? rmdir(p) : unlink(p);
    return (r != 0 && errno != ENOENT) ? -1 : 0;
}

int ny_io_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? NY_OK : ny_error_errno(NY_EIO, "stat %s", path);
    if (nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return ny_error_errno(NY_EIO, "removing %s", path);
    return NY_OK;
}

int ny_io_read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "opening %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return ny_error_errno(NY_EIO, "stat %s", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return ny_error(NY_ENOMEM, "out of memory reading %s", path);
    }
    int rc = ny_io_pread(fd, buf, n, 0, path);
    close(fd);
    if (rc != NY_OK) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return NY_OK;
}

int ny_io_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096], dir[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return ny_error(NY_EINVAL, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "creating %s", tmp);
    int rc = ny_io_write(fd, data, len, tmp);
    if (rc == NY_OK) rc = ny_io_sync(fd, 0, tmp);
    close(fd);
    if (rc == NY_OK && rename(tmp, path) != 0) rc = ny_error_errno(NY_EIO, "renaming %s", tmp);
    if (rc != NY_OK) {
        unlink(tmp);
        return rc;
    }
    snprintf(dir, sizeof dir, "%s", path);
    return ny_io_sync_dir(dirname(dir));
}

int ny_io_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static _Thread_local uint64_t du_total;

static int du_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)p;
    (void)ftw;
    if (flag == FTW_F) du_total += (uint64_t)sb->st_size;
    return 0;
}

uint64_t ny_io_du(const char *path)
{
    du_total = 0;
    nftw(path, du_cb, 16, FTW_PHYS);
    return du_total;
}

/* ===== Buffered writer ================================================= */

#define BUFW_CAP (1u << 20)

int ny_bufw_init(ny_bufw *w, int fd, const char *what)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->what = what;
    w->cap = BUFW_CAP;
    w->buf = malloc(w->cap);
    if (!w->buf) return ny_error(NY_ENOMEM, "out of memory (write buffer)");
    int rc = ny_hasher_init(&w->h);
    if (rc != NY_OK) {
        free(w->buf);
        w->buf = NULL;
    }
    return rc;
}

static void bufw_flush(ny_bufw *w)
{
    if (w->rc == NY_OK && w->len) w->rc = ny_io_write(w->fd, w->buf, w->len, w->what);
    w->len = 0;
}

static void bufw_put_raw(ny_bufw *w, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        if (w->len == w->cap) bufw_flush(w);
        size_t k = NY_MIN(n, w->cap - w->len);
        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
    }
}

void ny_bufw_put(ny_bufw *w, const void *p, size_t n)
{
    if (n == 0) return;
    ny_hasher_update(&w->h, p, n);
    w->total += n;
    bufw_put_raw(w, p, n);
}

void ny_bufw_u8(ny_bufw *w, uint8_t v) { ny_bufw_put(w, &v, 1); }
void ny_bufw_u32(ny_bufw *w, uint32_t v) { ny_bufw_put(w, &v, 4); }
void ny_bufw_u64(ny_bufw *w, uint64_t v) { ny_bufw_put(w, &v, 8); }

uint64_t ny_bufw_finish(ny_bufw *w, int *rc)
{
    uint64_t d = w->h.state ? ny_hasher_final(&w->h) : 0;
    if (rc) *rc = w->rc;
    return d;
}

int ny_bufw_raw_tail(ny_bufw *w, const void *p, size_t n)
{
    bufw_put_raw(w, p, n);
    bufw_flush(w);
    free(w->buf);
    w->buf = NULL;
    if (w->h.state) ny_hasher_final(&w->h);
    return w->rc;
}

/* ===== Buffered reader ================================================= */

int ny_bufr_init(ny_bufr *r, int fd, const char *what)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->what = what;
    r->cap = BUFW_CAP;
    r->buf = malloc(r->cap);
    if (!r->buf) return ny_error(NY_ENOMEM, "out of memory (read buffer)");
    int rc = ny_hasher_init(&r->h);
    if (rc != NY_OK) {
        free(r->buf);
        r->buf = NULL;
    }
    return rc;
}

static int bufr_fill(ny_bufr *r)
{
    if (r->pos < r->len) return NY_OK;
    r->pos = r->len = 0;
    for (;;) {
        ssize_t n = read(r->fd, r->buf, r->cap);
        if (n < 0) {
            if (errno == EINTR) continue;
            return ny_error_errno(NY_EIO, "reading %s", r->what);
        }
        if (n == 0) return ny_error(NY_ECORRUPT, "%s: truncated file (unexpected end)", r->what);
        r->len = (size_t)n;
        return NY_OK;
    }
}

static int bufr_take(ny_bufr *r, void *p, size_t n, int hash)
{
    char *d = p;
    while (n > 0) {
        int rc = bufr_fill(r);
        if (rc != NY_OK) return rc;
        size_t k = NY_MIN(n, r->len - r->pos);
        memcpy(d, r->buf + r->pos, k);
        if (hash) ny_hasher_update(&r->h, r->buf + r->pos, k);
        r->pos += k;
        r->consumed += k;
        d += k;
        n -= k;
    }
    return NY_OK;
}

int ny_bufr_get(ny_bufr *r, void *p, size_t n) { return bufr_take(r, p, n, 1); }
int ny_bufr_u8(ny_bufr *r, uint8_t *v) { return bufr_take(r, v, 1, 1); }
int ny_bufr_u32(ny_bufr *r, uint32_t *v) { return bufr_take(r, v, 4, 1); }
int ny_bufr_u64(ny_bufr *r, uint64_t *v) { return bufr_take(r, v, 8, 1); }
int ny_bufr_raw(ny_bufr *r, void *p, size_t n) { return bufr_take(r, p, n, 0); }

uint64_t ny_bufr_digest(ny_bufr *r)
{
    return r->h.state ? ny_hasher_final(&r->h) : 0;
}

void ny_bufr_free(ny_bufr *r)
{
    if (r->h.state) ny_hasher_final(&r->h);
    free(r->buf);
    r->buf = NULL;
}
