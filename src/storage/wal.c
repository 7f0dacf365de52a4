/*
 * wal.c -- write-ahead log with checksummed records and group commit (see
 * wal.h for the format).
 */
#include "storage/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/common.h"
#include "storage/fileio.h"

#define SEG_MAGIC "NYWALSEG"
#define SEG_HDR 24
#define REC_HDR 24
#define REC_MAX (1u << 30)

typedef struct seg {
    uint64_t first_lsn;
    uint64_t size;
} seg;

struct ny_wal {
    char *dir;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;                 /* current (last) segment, open for append */
    seg *segs;
    size_t nsegs, capsegs;
    uint64_t last_lsn;      /* last appended */
    uint64_t synced_lsn;    /* last known durable */
    int syncing;            /* a leader is in fdatasync */
    int broken;             /* sticky error after a failed sync (fsync errors cannot be retried) */
    uint64_t total_bytes;
};

static void seg_path(const ny_wal *w, uint64_t first, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%020" PRIu64 ".log", w->dir, first);
}

static uint64_t rec_checksum(const unsigned char *hdr16, const void *body, size_t len)
{
    return XXH3_64bits_withSeed(body, len, XXH3_64bits(hdr16, 16));
}

static int segs_push(ny_wal *w, uint64_t first, uint64_t size)
{
    if (w->nsegs == w->capsegs) {
        size_t nc = w->capsegs ? w->capsegs * 2 : 8;
        seg *ns = realloc(w->segs, nc * sizeof *ns);
        if (!ns) return ny_error(NY_ENOMEM, "out of memory (wal segments)");
        w->segs = ns;
        w->capsegs = nc;
    }
    w->segs[w->nsegs].first_lsn = first;
    w->segs[w->nsegs].size = size;
    w->nsegs++;
    return NY_OK;
}

/* Creates a new empty segment whose first record will be `first`, makes it
 * durable and the current one. */
static int seg_create(ny_wal *w, uint64_t first)
{
    char path[4096];
    seg_path(w, first, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "creating log segment %s", path);
    unsigned char hdr[SEG_HDR];
    memcpy(hdr, SEG_MAGIC, 8);
    memcpy(hdr + 8, &first, 8);
    uint64_t h = XXH3_64bits(hdr, 16);
    memcpy(hdr + 16, &h, 8);
    int rc = ny_io_write(fd, hdr, SEG_HDR, path);
    if (rc == NY_OK) rc = ny_io_sync(fd, 0, path);
    if (rc == NY_OK) rc = ny_io_sync_dir(w->dir);
    if (rc != NY_OK) {
        close(fd);
        unlink(path);
        return rc;
    }
    rc = segs_push(w, first, SEG_HDR);
    if (rc != NY_OK) {
        close(fd);
        return rc;
    }
    w->fd = fd;
    w->total_bytes += SEG_HDR;
    return NY_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists segment first-LSNs in dir, sorted. */
static int list_segments(const char *dir, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return ny_error_errno(ny_rc_from_errno(errno), "opening log directory %s", dir);
    size_t cap = 0;
    struct dirent *e;
    int rc = NY_OK;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l != 24 || strcmp(e->d_name + 20, ".log") != 0) continue;
        char *end;
        uint64_t v = strtoull(e->d_name, &end, 10);
        if (end != e->d_name + 20) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(*out, cap * sizeof *nv);
            if (!nv) {
                rc = ny_error(NY_ENOMEM, "out of memory (wal listing)");
                break;
            }
            *out = nv;
        }
        (*out)[(*n)++] = v;
    }
    closedir(d);
    if (rc == NY_OK && *n) qsort(*out, *n, sizeof **out, cmp_u64);
    return rc;
}

/* Scans one segment.  Returns the byte offset where valid data ends (the
 * file size if all is valid) in *valid_end; replays records after
 * ckpt_lsn.  *expect is the next expected LSN (0 = accept any first). */
static int scan_segment(const char *path, uint64_t name_lsn, uint64_t ckpt_lsn, uint64_t *expect,
                        ny_wal_replay_fn fn, void *ctx, uint64_t *valid_end, uint64_t *fsize,
                        ny_wal_open_info *info)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "opening log segment %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return ny_error_errno(NY_EIO, "stat %s", path);
    }
    uint64_t size = (uint64_t)st.st_size;
    *fsize = size;
    *valid_end = 0;
    if (size < SEG_HDR) {
        close(fd);
        return NY_OK; /* torn header: nothing valid */
    }
    unsigned char *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return ny_error_errno(NY_EIO, "mapping log segment %s", path);
    madvise(m, size, MADV_SEQUENTIAL);
    int rc = NY_OK;
    uint64_t first, h;
    memcpy(&first, m + 8, 8);
    memcpy(&h, m + 16, 8);
    if (memcmp(m, SEG_MAGIC, 8) != 0 || h != XXH3_64bits(m, 16) || first != name_lsn) goto done;
    if (*expect && first != *expect) {
        rc = ny_error(NY_ECORRUPT, "log segment %s starts at lsn %" PRIu64 ", expected %" PRIu64
                      " (a segment is missing)", path, first, *expect);
        goto done;
    }
    if (!*expect && first > ckpt_lsn + 1) {
        rc = ny_error(NY_ECORRUPT, "log starts at lsn %" PRIu64 " but the checkpoint is at lsn %" PRIu64
                      " (records are missing)", first, ckpt_lsn);
        goto done;
    }
    uint64_t off = SEG_HDR, next = first;
    *valid_end = off;
    while (off + REC_HDR <= size) {
        uint32_t len, type;
        uint64_t lsn, sum;
        memcpy(&len, m + off, 4);
        memcpy(&type, m + off + 4, 4);
        memcpy(&lsn, m + off + 8, 8);
        memcpy(&sum, m + off + 16, 8);
        if (len > REC_MAX || off + REC_HDR + len > size || lsn != next) break;
        if (rec_checksum(m + off, m + off + REC_HDR, len) != sum) break;
        if (lsn > ckpt_lsn) {
            if (fn) {
                rc = fn(ctx, lsn, type, m + off + REC_HDR, len);
                if (rc != NY_OK) goto done;
            }
            if (info) info->replayed++;
        } else if (info) {
            info->skipped++;
        }
        next++;
        off += REC_HDR + len;
        *valid_end = off;
    }
    *expect = next;
done:
    munmap(m, size);
    return rc;
}

int ny_wal_open(const char *dir, uint64_t ckpt_lsn, ny_wal_replay_fn fn, void *ctx,
                ny_wal **out, ny_wal_open_info *info)
{
    *out = NULL;
    if (info) memset(info, 0, sizeof *info);
    int rc = ny_io_mkdir(dir);
    if (rc != NY_OK) return rc;
    ny_wal *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(dir))) {
        free(w);
        return ny_error(NY_ENOMEM, "out of memory (wal)");
    }
    w->fd = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    uint64_t *names = NULL;
    size_t n = 0;
    rc = list_segments(dir, &names, &n);
    uint64_t expect = 0;
    size_t i;
    for (i = 0; rc == NY_OK && i < n; i++) {
        char path[4096];
        seg_path(w, names[i], path, sizeof path);
        uint64_t valid_end = 0, fsize = 0;
        rc = scan_segment(path, names[i], ckpt_lsn, &expect, fn, ctx, &valid_end, &fsize, info);
        if (rc != NY_OK) break;
        if (valid_end < SEG_HDR) {
            /* Torn segment header (crash while creating it): it holds no
             * record; drop it and everything after. */
            if (info) {
                info->cut = 1;
                info->cut_bytes += fsize;
            }
            break;
        }
        if (valid_end < fsize) {
            fprintf(stderr, "nearly: log %s: cutting a torn or corrupt tail of %" PRIu64 " bytes at offset %" PRIu64 "\n",
                    path, fsize - valid_end, valid_end);
            if (info) {
                info->cut = 1;
                info->cut_bytes += fsize - valid_end;
            }
            int fd = open(path, O_WRONLY | O_CLOEXEC);
            if (fd < 0 || ftruncate(fd, (off_t)valid_end) != 0) {
                rc = ny_error_errno(NY_EIO, "truncating log segment %s", path);
                if (fd >= 0) close(fd);
                break;
            }
            rc = ny_io_sync(fd, 0, path);
            close(fd);
            if (rc != NY_OK) break;
            rc = segs_push(w, names[i], valid_end);
            w->total_bytes += valid_end;
            i++;
            break;
        }
        rc = segs_push(w, names[i], fsize);
        w->total_bytes += fsize;
    }
    /* Segments after a cut are garbage now. */
    for (size_t j = i; rc == NY_OK && j < n; j++) {
        char path[4096];
        seg_path(w, names[j], path, sizeof path);
        struct stat st;
        if (info && stat(path, &st) == 0 && j > i) {
            info->cut = 1;
            info->cut_bytes += (uint64_t)st.st_size;
        }
        if (unlink(path) != 0 && errno != ENOENT) rc = ny_error_errno(NY_EIO, "removing %s", path);
    }
    free(names);
    if (rc == NY_OK) {
        w->last_lsn = expect ? expect - 1 : ckpt_lsn;
        if (w->last_lsn < ckpt_lsn) w->last_lsn = ckpt_lsn;
        w->synced_lsn = w->last_lsn;
        if (w->nsegs == 0) {
            rc = seg_create(w, w->last_lsn + 1);
        } else {
            char path[4096];
            seg_path(w, w->segs[w->nsegs - 1].first_lsn, path, sizeof path);
            w->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
            if (w->fd < 0) rc = ny_error_errno(ny_rc_from_errno(errno), "opening log segment %s", path);
        }
        if (rc == NY_OK) rc = ny_io_sync_dir(dir);
    }
    if (rc != NY_OK) {
        if (w->fd >= 0) close(w->fd);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w->segs);
        free(w->dir);
        free(w);
        return rc;
    }
    *out = w;
    return NY_OK;
}

int ny_wal_append(ny_wal *w, uint32_t type, const void *body, size_t len, uint64_t *lsn)
{
    if (len > REC_MAX) return ny_error(NY_EINVAL, "log record too large (%zu bytes)", len);
    unsigned char hdr[REC_HDR];
    uint32_t l32 = (uint32_t)len;
    pthread_mutex_lock(&w->mu);
    if (w->broken) {
        int b = w->broken;
        pthread_mutex_unlock(&w->mu);
        return ny_error(b, "the write-ahead log failed earlier (a sync error); reopen the collection");
    }
    uint64_t my = w->last_lsn + 1;
    memcpy(hdr, &l32, 4);
    memcpy(hdr + 4, &type, 4);
    memcpy(hdr + 8, &my, 8);
    uint64_t sum = rec_checksum(hdr, body, len);
    memcpy(hdr + 16, &sum, 8);
    seg *cur = &w->segs[w->nsegs - 1];
    int rc = ny_io_write(w->fd, hdr, REC_HDR, "write-ahead log");
    if (rc == NY_OK && len) rc = ny_io_write(w->fd, body, len, "write-ahead log");
    if (rc != NY_OK) {
        /* Remove the partial record so that the next append starts clean. */
        if (ftruncate(w->fd, (off_t)cur->size) != 0) w->broken = NY_EIO;
        pthread_mutex_unlock(&w->mu);
        return rc;
    }
    cur->size += REC_HDR + len;
    w->total_bytes += REC_HDR + len;
    w->last_lsn = my;
    pthread_mutex_unlock(&w->mu);
    *lsn = my;
    return NY_OK;
}

/* Called with mu held; returns with mu held. */
static int sync_upto_locked(ny_wal *w, uint64_t lsn)
{
    while (w->synced_lsn < lsn) {
        if (w->broken) return ny_error(w->broken, "the write-ahead log failed to sync; reopen the collection");
        if (!w->syncing) {
            w->syncing = 1;
            uint64_t target = w->last_lsn;
            int fd = w->fd;
            pthread_mutex_unlock(&w->mu);
            int rc = ny_io_sync(fd, 1, "write-ahead log");
            pthread_mutex_lock(&w->mu);
            w->syncing = 0;
            if (rc != NY_OK) w->broken = rc;
            else if (target > w->synced_lsn) w->synced_lsn = target;
            pthread_cond_broadcast(&w->cv);
            if (rc != NY_OK) return rc;
        } else {
            pthread_cond_wait(&w->cv, &w->mu);
        }
    }
    return NY_OK;
}

int ny_wal_sync(ny_wal *w, uint64_t lsn)
{
    pthread_mutex_lock(&w->mu);
    int rc = sync_upto_locked(w, lsn);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int ny_wal_flush(ny_wal *w)
{
    pthread_mutex_lock(&w->mu);
    int rc = sync_upto_locked(w, w->last_lsn);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int ny_wal_dirty(ny_wal *w)
{
    pthread_mutex_lock(&w->mu);
    int d = w->synced_lsn < w->last_lsn;
    pthread_mutex_unlock(&w->mu);
    return d;
}

int ny_wal_rotate(ny_wal *w, uint64_t *last_lsn)
{
    pthread_mutex_lock(&w->mu);
    int rc = sync_upto_locked(w, w->last_lsn);
    while (rc == NY_OK && w->syncing) pthread_cond_wait(&w->cv, &w->mu);
    if (rc == NY_OK) {
        *last_lsn = w->last_lsn;
        if (w->segs[w->nsegs - 1].size > SEG_HDR) {
            int old = w->fd;
            rc = seg_create(w, w->last_lsn + 1);
            if (rc == NY_OK) close(old);
            else w->fd = old;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int ny_wal_truncate_upto(ny_wal *w, uint64_t lsn)
{
    pthread_mutex_lock(&w->mu);
    int rc = NY_OK;
    size_t drop = 0;
    /* Segment i holds [first_i, first_{i+1}); it can go if first_{i+1}-1 <= lsn. */
    while (drop + 1 < w->nsegs && w->segs[drop + 1].first_lsn - 1 <= lsn) {
        char path[4096];
        seg_path(w, w->segs[drop].first_lsn, path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = ny_error_errno(NY_EIO, "removing log segment %s", path);
            break;
        }
        w->total_bytes -= w->segs[drop].size;
        drop++;
    }
    if (drop) {
        memmove(w->segs, w->segs + drop, (w->nsegs - drop) * sizeof *w->segs);
        w->nsegs -= drop;
    }
    pthread_mutex_unlock(&w->mu);
    if (drop && rc == NY_OK) rc = ny_io_sync_dir(w->dir);
    return rc;
}

uint64_t ny_wal_last_lsn(ny_wal *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t v = w->last_lsn;
    pthread_mutex_unlock(&w->mu);
    return v;
}

uint64_t ny_wal_bytes(ny_wal *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t v = w->total_bytes;
    pthread_mutex_unlock(&w->mu);
    return v;
}

int ny_wal_close(ny_wal *w)
{
    if (!w) return NY_OK;
    int rc = NY_OK;
    pthread_mutex_lock(&w->mu);
    if (!w->broken) rc = sync_upto_locked(w, w->last_lsn);
    while (w->syncing) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (w->fd >= 0) close(w->fd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->segs);
    free(w->dir);
    free(w);
    return rc;
}
