/*
 * fvecs.h -- the TEXMEX .fvecs / .ivecs formats used by the benchmark
 * tools: each record is a little-endian int32 d followed by d float32
 * (fvecs) or int32 (ivecs) values; every record of a file has the same d.
 *
 * Readers check every record: a record whose d differs from the first one,
 * or a file that ends inside a record, is an NY_ECORRUPT error whose
 * message names the file, the record index and what is wrong.  An empty
 * file is valid and holds zero records (dim 0).
 */
#ifndef NY_CLI_FVECS_H
#define NY_CLI_FVECS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define VECS_MAX_DIM (1u << 20)

/* ---- Streaming reader */
typedef struct vecs_reader {
    FILE *f;
    char path[1024];
    size_t dim;   /* from the first record; 0 for an empty file */
    size_t n;     /* records the file size accounts for (whole ones) */
    size_t row;   /* index of the next record to read */
    char *buf;    /* stdio buffer */
} vecs_reader;

/* Opens path and reads the first record's dimension. */
int vecs_open(const char *path, vecs_reader *r);
/* Reads up to max_rows records into out (max_rows * dim 4-byte values);
 * *got receives the number read (0 at the end of the file). */
int vecs_read(vecs_reader *r, void *out, size_t max_rows, size_t *got);
void vecs_close(vecs_reader *r);

/* ---- Whole files.  *data is malloc'd (free with free()); limit > 0 reads
 * only the first `limit` records. */
int fvecs_load(const char *path, size_t limit, float **data, size_t *n, size_t *dim);
int ivecs_load(const char *path, size_t limit, int32_t **data, size_t *n, size_t *dim);

/* ---- Writer: records of a fixed dimension, appended in batches. */
typedef struct vecs_writer {
    FILE *f;
    char path[1024];
    size_t dim;   /* fixed by the first write */
    size_t rows;
    int failed;
    char *buf;
} vecs_writer;

/* Creates (truncates) path. */
int vecs_create(const char *path, vecs_writer *w);
/* Appends n records of dim 4-byte values (float or int32). */
int vecs_write(vecs_writer *w, const void *rows, size_t n, size_t dim);
/* Flushes and closes; reports any write error (disk full, ...).  Also
 * closes the file after a failure. */
int vecs_finish(vecs_writer *w);

int fvecs_save(const char *path, const float *data, size_t n, size_t dim);
int ivecs_save(const char *path, const int32_t *data, size_t n, size_t dim);

#endif
