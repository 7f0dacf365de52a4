/*
 * fvecs.c -- readers and writers for .fvecs / .ivecs files (see fvecs.h).
 * Both value types are 4 bytes, so one implementation serves both formats;
 * the caller decides how to interpret the values.
 */
#include "cli/fvecs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"

#define IOBUF (1u << 20)

static int read_dim(vecs_reader *r, int32_t *d)
{
    size_t got = fread(d, 1, 4, r->f);
    if (got == 4) return 1;
    if (ferror(r->f)) return ny_error_errno(NY_EIO, "%s: read error at record %zu", r->path, r->row);
    if (got == 0) return 0;
    return ny_error(NY_ECORRUPT, "%s: truncated: record %zu has only %zu of the 4 header bytes", r->path, r->row, got);
}

int vecs_open(const char *path, vecs_reader *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", path);
    r->f = fopen(path, "rb");
    if (!r->f) return ny_error_errno(ny_rc_from_errno(errno), "cannot open %s", path);
    r->buf = malloc(IOBUF);
    if (r->buf) setvbuf(r->f, r->buf, _IOFBF, IOBUF);
    struct stat st;
    if (fstat(fileno(r->f), &st) != 0) {
        int rc = ny_error_errno(NY_EIO, "cannot stat %s", path);
        vecs_close(r);
        return rc;
    }
    int32_t d;
    int rc = read_dim(r, &d);
    if (rc < 0) {
        vecs_close(r);
        return rc;
    }
    if (rc == 0) return NY_OK; /* empty file: no records */
    if (d <= 0 || (uint32_t)d > VECS_MAX_DIM) {
        vecs_close(r);
        return ny_error(NY_ECORRUPT, "%s: first record has dimension %d (expected 1..%u): not an fvecs/ivecs file?",
                        path, (int)d, VECS_MAX_DIM);
    }
    r->dim = (size_t)d;
    r->n = (size_t)st.st_size / (4 * (r->dim + 1));
    if (fseek(r->f, 0, SEEK_SET) != 0) {
        rc = ny_error_errno(NY_EIO, "cannot seek in %s", path);
        vecs_close(r);
        return rc;
    }
    return NY_OK;
}

int vecs_read(vecs_reader *r, void *out, size_t max_rows, size_t *got)
{
    *got = 0;
    if (!r->f) return ny_error(NY_ECLOSED, "vecs reader is closed");
    if (r->dim == 0) return NY_OK;
    char *dst = out;
    size_t rowbytes = r->dim * 4;
    while (*got < max_rows) {
        int32_t d;
        int rc = read_dim(r, &d);
        if (rc < 0) return rc;
        if (rc == 0) break;
        if (d != (int32_t)r->dim)
            return ny_error(NY_ECORRUPT, "%s: record %zu has dimension %d, expected %zu (as in record 0)", r->path,
                            r->row, (int)d, r->dim);
        size_t n = fread(dst, 1, rowbytes, r->f);
        if (n != rowbytes) {
            if (ferror(r->f)) return ny_error_errno(NY_EIO, "%s: read error at record %zu", r->path, r->row);
            return ny_error(NY_ECORRUPT, "%s: truncated: record %zu has %zu of its %zu value bytes", r->path, r->row,
                            n, rowbytes);
        }
        dst += rowbytes;
        r->row++;
        (*got)++;
    }
    return NY_OK;
}

void vecs_close(vecs_reader *r)
{
    if (r->f) fclose(r->f);
    free(r->buf);
    r->f = NULL;
    r->buf = NULL;
}

static int load4(const char *path, size_t limit, void **data, size_t *n, size_t *dim)
{
    vecs_reader r;
    *data = NULL;
    *n = *dim = 0;
    int rc = vecs_open(path, &r);
    if (rc) return rc;
    size_t want = r.n + 1; /* one more than the size allows: catches trailing bytes */
    if (limit && limit < want) want = limit;
    void *buf = NULL;
    size_t got = 0;
    if (r.dim) {
        if (want > SIZE_MAX / (r.dim * 4)) {
            vecs_close(&r);
            return ny_error(NY_EINVAL, "%s: too large", path);
        }
        buf = malloc(want * r.dim * 4);
        if (!buf) {
            vecs_close(&r);
            return ny_error(NY_ENOMEM, "%s: out of memory (%zu records of dim %zu)", path, want, r.dim);
        }
        rc = vecs_read(&r, buf, want, &got);
    }
    vecs_close(&r);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *n = got;
    *dim = r.dim;
    return NY_OK;
}

int fvecs_load(const char *path, size_t limit, float **data, size_t *n, size_t *dim)
{
    void *p;
    int rc = load4(path, limit, &p, n, dim);
    *data = p;
    return rc;
}

int ivecs_load(const char *path, size_t limit, int32_t **data, size_t *n, size_t *dim)
{
    void *p;
    int rc = load4(path, limit, &p, n, dim);
    *data = p;
    return rc;
}

int vecs_create(const char *path, vecs_writer *w)
{
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    w->f = fopen(path, "wb");
    if (!w->f) return ny_error_errno(ny_rc_from_errno(errno), "cannot create %s", path);
    w->buf = malloc(IOBUF);
    if (w->buf) setvbuf(w->f, w->buf, _IOFBF, IOBUF);
    return NY_OK;
}

int vecs_write(vecs_writer *w, const void *rows, size_t n, size_t dim)
{
    if (!w->f) return ny_error(NY_ECLOSED, "%s: writer is closed", w->path);
    if (dim == 0 || dim > VECS_MAX_DIM) return ny_error(NY_EINVAL, "%s: dimension %zu out of range", w->path, dim);
    if (w->rows && dim != w->dim)
        return ny_error(NY_EINVAL, "%s: writing dimension %zu into a file of dimension %zu", w->path, dim, w->dim);
    w->dim = dim;
    const char *src = rows;
    int32_t d = (int32_t)dim;
    for (size_t i = 0; i < n; i++) {
        if (fwrite(&d, 4, 1, w->f) != 1 || fwrite(src + i * dim * 4, 4, dim, w->f) != dim) {
            w->failed = 1;
            return ny_error_errno(ny_rc_from_errno(errno), "%s: write failed at record %zu", w->path, w->rows);
        }
        w->rows++;
    }
    return NY_OK;
}

int vecs_finish(vecs_writer *w)
{
    if (!w->f) return ny_error(NY_ECLOSED, "%s: writer is closed", w->path);
    int rc = NY_OK;
    if (fflush(w->f) != 0 || ferror(w->f))
        rc = ny_error_errno(ny_rc_from_errno(errno), "%s: write failed", w->path);
    if (fclose(w->f) != 0 && rc == NY_OK) rc = ny_error_errno(ny_rc_from_errno(errno), "%s: close failed", w->path);
    if (w->failed && rc == NY_OK) rc = ny_error(NY_EIO, "%s: an earlier write failed", w->path);
    w->f = NULL;
    free(w->buf);
    w->buf = NULL;
    return rc;
}

static int save4(const char *path, const void *data, size_t n, size_t dim)
{
    vecs_writer w;
    int rc = vecs_create(path, &w);
    if (rc) return rc;
    rc = vecs_write(&w, data, n, dim);
    int rc2 = vecs_finish(&w);
    return rc ? rc : rc2;
}

int fvecs_save(const char *path, const float *data, size_t n, size_t dim)
{
    return save4(path, data, n, dim);
}

int ivecs_save(const char *path, const int32_t *data, size_t n, size_t dim)
{
    return save4(path, data, n, dim);
}
