/*
 * ingest.h -- streaming readers for `nearly import`: .fvecs, .npy
 * (float16/32/64, C order), .jsonl and .csv/.tsv.  A reader holds one
 * bounded input buffer (it grows only up to the longest line, capped by
 * max_line); rows are parsed straight into a batch, so memory never depends
 * on the size of the file.
 *
 * Every row gets a position (file offset after it, data row index, line
 * number) so that an import can report bad rows as "file:line: reason" and
 * resume after the last acknowledged row.
 */
#ifndef NY_CLI_INGEST_H
#define NY_CLI_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "nearly.h"

typedef enum { FMT_AUTO = 0, FMT_FVECS, FMT_NPY, FMT_JSONL, FMT_CSV, FMT_TSV } ing_fmt;

/* Parses "fvecs", "npy", "jsonl" (or "ndjson"), "csv", "tsv". */
int ing_fmt_parse(const char *s, ing_fmt *out);
/* From the file name's extension; FMT_AUTO if unknown. */
ing_fmt ing_fmt_guess(const char *path);
const char *ing_fmt_name(ing_fmt f);

typedef struct ing_opts {
    const char *id_field;      /* jsonl/csv; default "id" */
    const char *vector_field;  /* jsonl/csv; default "vector" */
    const char *payload_field; /* jsonl: take the payload from this object field; NULL: the other fields */
    int auto_id;               /* jsonl/csv without an id: id = id_offset + data row index */
    uint64_t id_offset;        /* fvecs/npy/auto ids: id = id_offset + row index */
    size_t max_line;           /* longest accepted line (bytes) */
    const char *payloads_path; /* fvecs/npy: companion .jsonl with one {"id"?, payload} per row */
} ing_opts;

/* A batch of parsed rows. */
typedef struct ing_batch {
    size_t n, cap, dim;
    ny_point_id *ids;
    float *vecs;        /* cap * dim */
    size_t *pl_off;     /* offset in arena of a NUL-terminated JSON object, or SIZE_MAX */
    uint64_t *lines;    /* source line (text) or record index + 1 (binary) */
    uint32_t *files;    /* index of the source file */
    char *arena;
    size_t alen, acap;
} ing_batch;

int ing_batch_init(ing_batch *b, size_t cap, size_t dim);
void ing_batch_free(ing_batch *b);
void ing_batch_clear(ing_batch *b);
const char *ing_batch_payload(const ing_batch *b, size_t i); /* NULL if none */

typedef struct ing_reader {
    ing_fmt fmt;
    char path[1024];     /* as shown in messages ("-" = standard input) */
    uint32_t file_index;
    int fd;
    int owns_fd;
    uint64_t size;       /* file size, 0 if unknown (pipe) */
    /* input buffer: buf[bpos..blen) are unread bytes; boff = file offset of buf[0] */
    char *buf;
    size_t bcap, bpos, blen;
    uint64_t boff;
    int eof;
    size_t max_line;
    size_t dim;          /* 0 until known */
    uint64_t row;        /* data rows consumed (including rejected ones) */
    uint64_t line;       /* text: number of the last line read; binary: records read */
    uint64_t grow;       /* global row index for ids (set by the caller; advanced per row) */
    /* npy */
    int npy_bytes, npy_swap;
    uint64_t npy_rows;
    /* csv/tsv */
    char delim;
    char **cols;
    size_t ncols;
    int id_col, vec_col;
    char *rec;           /* record assembly (quoted newlines) and unquoting */
    size_t rcap;
    size_t *fstart, *flen;
    size_t fcap;
    uint64_t data_start; /* offset of the first data row (after any header) */
    /* scratch */
    float *tmpv;
    size_t tmpcap;
    char *kbuf;
    size_t kcap;
    struct ing_reader *aux; /* payloads file of fvecs/npy */
    const ing_opts *o;
} ing_reader;

/* Opens path ("-" = fd 0) of format fmt (not FMT_AUTO) and parses its
 * header.  dim: the collection's dimension if known (else 0). */
int ing_open(ing_reader *r, const char *path, ing_fmt fmt, uint32_t file_index, size_t dim, const ing_opts *o);
void ing_close(ing_reader *r);
/* Byte offset just after the last consumed row (and after the header). */
uint64_t ing_offset(const ing_reader *r);
/* Continues at a position saved by an earlier import: byte offset, data
 * row count and line number (and those of the payloads file). */
int ing_seek(ing_reader *r, uint64_t off, uint64_t row, uint64_t line, uint64_t aux_off, uint64_t aux_row,
             uint64_t aux_line);

enum { ING_EOF = 0, ING_ROW = 1, ING_BAD = 2 };
/* Parses the next row into b (which must have room: b->n < b->cap).
 * ING_ROW: a row was added.  ING_BAD: the row was rejected (consumed); err
 * gets "reason" and *bad_line its line.  ING_EOF: end of input.  A negative
 * NY_E* code is a fatal error (I/O, unreadable header; ny_errmsg). */
int ing_next(ing_reader *r, ing_batch *b, char *err, size_t errlen, uint64_t *bad_line);

/* ---- Helpers shared with export and tests. */

/* Parses a JSON number at s (JSON grammar) into a correctly rounded float;
 * returns the end or NULL. */
const char *ing_parse_float(const char *s, const char *end, float *out);
/* Skips (and validates) one JSON value; NULL with a message in err. */
const char *ing_skip_json(const char *s, const char *end, char *err, size_t errlen);
/* Appends the shortest-form-independent exact text of f ("%.9g"). */
int ing_format_float(char *buf, float f);

#endif
