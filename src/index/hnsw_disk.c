/*
 * hnsw_disk.c -- moves parts of an HNSW index out of anonymous memory into
 * memory-mapped files, keeping their addresses:
 *
 *   ny_hnsw_vectors_to_disk  the float vector rows (vectors.on_disk)
 *   ny_hnsw_graph_to_disk    the level-0 link lists and the upper-level
 *                            link arena (hnsw_config.on_disk)
 *
 * Each region gets one unnamed file (O_TMPFILE, or created and unlinked at
 * once) in the given directory.  A call appends the region's bytes not yet
 * in the file (whole pages, from the end of what an earlier call moved) and
 * maps the file over that same address range with MAP_SHARED | MAP_FIXED:
 * an atomic replacement with identical contents, so concurrent searches
 * never notice.  Inserts and deletes wait meanwhile (the index's exclusive
 * lock), and links they write afterwards land in the shared mapping, i.e.
 * in the page cache of the file.  The kernel can then write the pages back
 * and evict them under memory pressure: with quantized search only
 * rescoring touches vector rows (oversampling * k per query), and the graph
 * pages a query walks are read back on demand.  The files have no name:
 * the durable copy is the checkpoint + WAL, and the space is given back
 * when the index is freed.  Rows and links of nodes added after a call live
 * in RAM until the next call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/common.h"
#include "index/hnsw.h"

typedef struct disk_region {
    int fd;        /* -1 until the first move */
    size_t mapped; /* bytes from the region's start that are file-backed */
} disk_region;

struct ny_hnsw_disk {
    disk_region vec, link0, upper;
};

void ny_hnsw_disk_free(struct ny_hnsw_disk *d)
{
    if (!d) return;
    if (d->vec.fd >= 0) close(d->vec.fd);
    if (d->link0.fd >= 0) close(d->link0.fd);
    if (d->upper.fd >= 0) close(d->upper.fd);
    free(d);
}

static int open_unnamed(const char *dir)
{
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
#endif
    size_t n = strlen(dir) + 32;
    char *p = malloc(n);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    snprintf(p, n, "%s/.nyidx.XXXXXX", dir);
    int fd2 = mkostemp(p, O_CLOEXEC);
    if (fd2 >= 0) unlink(p);
    free(p);
    return fd2;
}

/* The index's disk state, created on first use.  Excl lock held. */
static struct ny_hnsw_disk *disk_of(ny_hnsw *h)
{
    struct ny_hnsw_disk *d = ny_hnsw_disk_get(h);
    if (d) return d;
    d = malloc(sizeof *d);
    if (!d) return NULL;
    d->vec.fd = d->link0.fd = d->upper.fd = -1;
    d->vec.mapped = d->link0.mapped = d->upper.mapped = 0;
    ny_hnsw_disk_set(h, d);
    return d;
}

/* mmap(MAP_SHARED | MAP_FIXED) through the raw system call rather than the
 * libc wrapper: ThreadSanitizer intercepts mmap and models it as a write of
 * the whole range, which here it is not (the bytes mapped in are the bytes
 * that were there, and readers may legitimately run meanwhile). */
static void *map_fixed(void *at, size_t len, int fd, off_t off)
{
    long r = syscall(SYS_mmap, at, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, off);
    return r == -1 ? MAP_FAILED : (void *)r;
}

/* Moves base[r->mapped, bytes) (bytes rounded down to whole pages) to the
 * region's file and maps it in place.  Excl lock held. */
static int move_region(disk_region *r, const char *dir, const void *base, size_t bytes, int evict, const char *what)
{
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) pg = 4096;
    bytes -= bytes % (size_t)pg;
    if (bytes <= r->mapped) return NY_OK;
    if (r->fd < 0) {
        r->fd = open_unnamed(dir);
        if (r->fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "hnsw %s to disk: cannot create a file in %s", what, dir);
    }
    const char *src = (const char *)base;
    size_t off = r->mapped;
    while (off < bytes) {
        ssize_t w = pwrite(r->fd, src + off, bytes - off, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            /* Drop the partial tail so the file matches what is mapped. */
            (void)!ftruncate(r->fd, (off_t)r->mapped);
            errno = e;
            return ny_error_errno(ny_rc_from_errno(e ? e : ENOSPC), "hnsw %s to disk: write to a file in %s", what, dir);
        }
        off += (size_t)w;
    }
    void *at = (void *)(src + r->mapped);
    void *p = map_fixed(at, bytes - r->mapped, r->fd, (off_t)r->mapped);
    if (p == MAP_FAILED) return ny_error_errno(NY_EIO, "hnsw %s to disk: cannot map the file", what);
    /* Searches read scattered rows and lists: no read-ahead and no mapping
     * of neighbouring pages on a fault (they would only inflate RSS). */
    madvise(at, bytes - r->mapped, MADV_RANDOM);
    /* Not needed again soon: write them back now so that the kernel can
     * drop them from the page cache (it keeps dirty pages). */
    if (evict && fdatasync(r->fd) == 0)
        posix_fadvise(r->fd, (off_t)r->mapped, (off_t)(bytes - r->mapped), POSIX_FADV_DONTNEED);
    r->mapped = bytes;
    return NY_OK;
}

/* Moves region (NY_HNSW_DISK_*) up to bytes to its file.  Excl lock held. */
static int move_locked(ny_hnsw *h, const char *dir, int region, size_t bytes, int evict)
{
    struct ny_hnsw_disk *d = disk_of(h);
    if (!d) return ny_error(NY_ENOMEM, "out of memory");
    ny_hnsw_view v;
    ny_hnsw_get_view(h, &v);
    if (region == NY_HNSW_DISK_VECS) return move_region(&d->vec, dir, v.vecs, bytes, evict, "vectors");
    if (region == NY_HNSW_DISK_LINK0)
        return move_region(&d->link0, dir, (const void *)v.link0, bytes, evict, "level-0 links");
    return move_region(&d->upper, dir, (const void *)v.upper, bytes, evict, "upper links");
}

int ny_hnsw_disk_move(ny_hnsw *h, const char *dir, int region, size_t bytes)
{
    ny_hnsw_excl_lock(h);
    int rc = move_locked(h, dir, region, bytes, 1);
    ny_hnsw_excl_unlock(h);
    return rc;
}

void ny_hnsw_disk_vec_advise(ny_hnsw *h, int sequential)
{
    struct ny_hnsw_disk *d = ny_hnsw_disk_get(h);
    if (!d || d->vec.fd < 0 || !d->vec.mapped) return;
    ny_hnsw_view v;
    ny_hnsw_get_view(h, &v);
    madvise((void *)v.vecs, d->vec.mapped, sequential ? MADV_SEQUENTIAL : MADV_RANDOM);
}

int ny_hnsw_vectors_to_disk(ny_hnsw *h, const char *dir, size_t *bytes_out)
{
    if (bytes_out) *bytes_out = 0;
    if (!h || !dir) return ny_error(NY_EINVAL, "hnsw_vectors_to_disk: NULL argument");
    ny_hnsw_excl_lock(h);
    ny_hnsw_view v;
    ny_hnsw_get_view(h, &v);
    int rc = move_locked(h, dir, NY_HNSW_DISK_VECS, ny_hnsw_node_count(h) * v.dimp * sizeof(float), 1);
    struct ny_hnsw_disk *d = ny_hnsw_disk_get(h);
    if (bytes_out && d) *bytes_out = d->vec.mapped;
    ny_hnsw_excl_unlock(h);
    return rc;
}

int ny_hnsw_graph_to_disk(ny_hnsw *h, const char *dir, size_t *bytes_out)
{
    if (bytes_out) *bytes_out = 0;
    if (!h || !dir) return ny_error(NY_EINVAL, "hnsw_graph_to_disk: NULL argument");
    ny_hnsw_excl_lock(h);
    ny_hnsw_view v;
    ny_hnsw_get_view(h, &v);
    /* Searches read every link list they expand: leave the pages cached
     * (they go when memory runs short, as any file page). */
    int rc = move_locked(h, dir, NY_HNSW_DISK_LINK0, ny_hnsw_node_count(h) * v.stride0 * sizeof(uint32_t), 0);
    if (rc == NY_OK) rc = move_locked(h, dir, NY_HNSW_DISK_UPPER, ny_hnsw_upper_words(h) * sizeof(uint32_t), 0);
    struct ny_hnsw_disk *d = ny_hnsw_disk_get(h);
    if (bytes_out && d) *bytes_out = d->link0.mapped + d->upper.mapped;
    ny_hnsw_excl_unlock(h);
    return rc;
}

void ny_hnsw_disk_usage(const ny_hnsw *h, size_t *vectors, size_t *graph)
{
    if (vectors) *vectors = 0;
    if (graph) *graph = 0;
    if (!h) return;
    ny_hnsw *hm = (ny_hnsw *)h;
    ny_hnsw_excl_lock(hm);
    struct ny_hnsw_disk *d = ny_hnsw_disk_get(h);
    if (d && vectors) *vectors = d->vec.mapped;
    if (d && graph) *graph = d->link0.mapped + d->upper.mapped;
    ny_hnsw_excl_unlock(hm);
}

/* Unmaps the region's pages from this process (the data stays in the file
 * and the page cache) and asks the kernel to drop the clean ones. */
static void evict_region(disk_region *r, const void *base)
{
    if (r->fd < 0 || !r->mapped) return;
    madvise((void *)base, r->mapped, MADV_DONTNEED);
    if (fdatasync(r->fd) == 0) posix_fadvise(r->fd, 0, (off_t)r->mapped, POSIX_FADV_DONTNEED);
}

int ny_hnsw_disk_evict(ny_hnsw *h)
{
    if (!h) return ny_error(NY_EINVAL, "hnsw_disk_evict: NULL index");
    ny_hnsw_excl_lock(h);
    struct ny_hnsw_disk *d = ny_hnsw_disk_get(h);
    if (d) {
        ny_hnsw_view v;
        ny_hnsw_get_view(h, &v);
        evict_region(&d->vec, v.vecs);
        evict_region(&d->link0, (const void *)v.link0);
        evict_region(&d->upper, (const void *)v.upper);
    }
    ny_hnsw_excl_unlock(h);
    return NY_OK;
}
