/*
 * hnsw_disk.c -- moves an HNSW index's float vector rows out of anonymous
 * memory into a memory-mapped file (vectors.on_disk), keeping their
 * address: the rows are written to an unnamed file in the given directory
 * and the file is mapped over the same range with MAP_FIXED (an atomic
 * replacement, identical contents, so concurrent searches never notice).
 * The kernel can then evict them: with quantized search only rescoring
 * touches rows (oversampling * k per query), so RSS stays near graph +
 * codes.  The file has no name (O_TMPFILE, or created and unlinked at
 * once): the durable copy of the vectors is the checkpoint + WAL, and the
 * space is given back when the index is freed.  Rows of nodes added later
 * live in RAM until the next call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/common.h"
#include "index/hnsw.h"

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
    snprintf(p, n, "%s/.nyvec.XXXXXX", dir);
    int fd2 = mkostemp(p, O_CLOEXEC);
    if (fd2 >= 0) unlink(p);
    free(p);
    return fd2;
}

int ny_hnsw_vectors_to_disk(ny_hnsw *h, const char *dir, size_t *bytes_out)
{
    if (bytes_out) *bytes_out = 0;
    if (!h || !dir) return ny_error(NY_EINVAL, "hnsw_vectors_to_disk: NULL argument");
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) pg = 4096;
    ny_hnsw_excl_lock(h);
    ny_hnsw_view v;
    ny_hnsw_get_view(h, &v);
    size_t bytes = ny_hnsw_node_count(h) * v.dimp * sizeof(float);
    bytes -= bytes % (size_t)pg;
    int rc = NY_OK;
    if (bytes == 0) goto out;
    int fd = open_unnamed(dir);
    if (fd < 0) {
        rc = ny_error_errno(ny_rc_from_errno(errno), "hnsw_vectors_to_disk: cannot create a file in %s", dir);
        goto out;
    }
    const char *src = (const char *)v.vecs;
    size_t off = 0;
    while (off < bytes) {
        ssize_t w = write(fd, src + off, bytes - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = ny_error_errno(ny_rc_from_errno(errno), "hnsw_vectors_to_disk: write to %s", dir);
            break;
        }
        off += (size_t)w;
    }
    if (rc == NY_OK) {
        void *p = mmap((void *)src, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
        if (p == MAP_FAILED) rc = ny_error_errno(NY_EIO, "hnsw_vectors_to_disk: cannot map the vector file");
        /* Not needed again soon: let the kernel write them back and evict. */
        else posix_fadvise(fd, 0, (off_t)bytes, POSIX_FADV_DONTNEED);
    }
    close(fd);
    if (rc == NY_OK && bytes_out) *bytes_out = bytes;
out:
    ny_hnsw_excl_unlock(h);
    return rc;
}
