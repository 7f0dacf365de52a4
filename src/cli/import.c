/*
 * import.c -- `nearly import`: streams .fvecs / .npy / .jsonl / .csv / .tsv
 * files (or standard input) into a collection, either directly into a data
 * directory (embedded) or through a server's REST API.
 *
 * Pipeline: the main thread parses rows into batches taken from a fixed
 * pool (writers + 2 batches); writer threads upsert them (embedded: one
 * writer, since the collection serialises writes and indexes a batch on all
 * cores; HTTP: --parallel connections, PUT .../points?wait=true).  Memory is
 * therefore the pool plus the reader's input buffer, whatever the file size.
 *
 * Progress and resume: batches carry sequence numbers and the input
 * position after their last row.  They complete in any order; the
 * committed position advances over the contiguous prefix of completed
 * batches.  The durable position (embedded: the last committed batch that
 * was written with wait=1, one per second; HTTP: every batch, wait=true) is
 * saved in a small state file at most once a second, and the state file is
 * deleted when the import completes.  --resume restarts just after the
 * durable position; re-sent rows are upserts of the same ids, so nothing is
 * duplicated.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/httpc.h"
#include "cli/ingest.h"
#include "common/common.h"
#include "storage/wal.h"

#define MAX_FILES 4096
#define PROBE_MAX 200000

typedef struct ipos {
    uint32_t file;
    uint64_t off, row, line, aux_off, aux_row, aux_line, grow;
} ipos;

typedef struct slot {
    ing_batch b;
    uint64_t seq;
    ipos end;
    uint64_t rej;   /* rows rejected in this batch's span of the input (reader + target) */
    uint64_t trej;  /* of which rejected by the target */
    int last, wait, done;
    struct slot *next;
} slot;

typedef struct imp {
    /* options */
    const char *collection, *data_dir, *url, *api_key, *state_opt, *distance, *summary_json, *wal_dir;
    const char *files[MAX_FILES];
    int nfiles;
    ing_fmt fmt;
    ing_opts o;
    size_t batch;
    int parallel, create, strict, resume, dry_run, progress;
    double log_every, probe_rate, probe_idle, sync_every;
    /* target */
    ny_db *db;
    ny_collection *coll;
    ny_wal *wal; /* --wal-only: batches go to a bare write-ahead log (benchmark of parsing + WAL) */
    ny_metric metric;
    size_t dim;
    int coll_ready;
    /* pipeline */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot *slots;
    int nslots;
    slot *freel, *qhead, *qtail;
    slot **ring;
    uint64_t next_seq, committed;
    int reader_done, failed;
    char fail_msg[1024];
    ipos commit_pos, durable_pos;
    uint64_t commit_rows, commit_rej, durable_rows, durable_rej;
    double last_wait, last_state;
    /* counters (this run) */
    _Atomic uint64_t rows_acked, rejected, bytes_pos, bytes_acked;
    uint64_t bytes_start;
    uint64_t fstart[MAX_FILES + 1]; /* byte position of each file in the whole input */
    uint64_t base_rows, base_rej; /* from a resumed state */
    uint64_t total_bytes;
    double t0;
    /* state file */
    char state_path[4096];
    char key[32];
    pthread_mutex_t state_mu;
    /* progress / probe threads */
    int tty, finished;
    pthread_cond_t cv_fin;
    double *lat;
    size_t nlat, nidle;
} imp;

static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

/* ===== Messages ========================================================= */

static pthread_mutex_t g_out_mu = PTHREAD_MUTEX_INITIALIZER;

static void clear_bar(imp *m)
{
    if (m->tty) fprintf(stderr, "\r\033[K");
}

static void msg(imp *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg(imp *m, const char *fmt, ...)
{
    pthread_mutex_lock(&g_out_mu);
    clear_bar(m);
    va_list ap;
    va_start(ap, fmt);
    fputs("import: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    pthread_mutex_unlock(&g_out_mu);
}

static void fail(imp *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(imp *m, const char *fmt, ...)
{
    pthread_mutex_lock(&m->mu);
    if (!m->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->fail_msg, sizeof m->fail_msg, fmt, ap);
        va_end(ap);
        m->failed = 1;
    }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

/* A reader-side error: stops reading, but batches already queued are still
 * written (the writers drain the queue). */
static void rfail(imp *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rfail(imp *m, const char *fmt, ...)
{
    pthread_mutex_lock(&m->mu);
    if (!m->fail_msg[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->fail_msg, sizeof m->fail_msg, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&m->mu);
}

static const char *file_name(imp *m, uint32_t fi)
{
    if (fi >= (uint32_t)m->nfiles) return "?";
    return strcmp(m->files[fi], "-") ? m->files[fi] : "<stdin>";
}

/* ===== State file ======================================================= */

static void make_key(imp *m)
{
    ny_hasher h, h2;
    ny_hasher_init(&h);
    ny_hasher_init(&h2);
    const char *parts[] = {m->collection, ing_fmt_name(m->fmt), m->o.id_field, m->o.vector_field,
                           m->o.payload_field ? m->o.payload_field : "", m->o.payloads_path ? m->o.payloads_path : ""};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) ny_hasher_update(&h, parts[i], strlen(parts[i]) + 1);
    ny_hasher_update(&h, &m->o.id_offset, sizeof m->o.id_offset);
    ny_hasher_update(&h, &m->o.auto_id, sizeof m->o.auto_id);
    for (int i = 0; i < m->nfiles; i++) {
        char rp[PATH_MAX];
        const char *p = m->files[i];
        if (strcmp(p, "-") && realpath(p, rp)) p = rp;
        ny_hasher_update(&h, p, strlen(p) + 1);
        struct stat st;
        if (strcmp(m->files[i], "-") && stat(m->files[i], &st) == 0) {
            uint64_t v[2] = {(uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec};
            ny_hasher_update(&h2, v, sizeof v);
        }
    }
    uint64_t a = ny_hasher_final(&h), b = ny_hasher_final(&h2);
    snprintf(m->key, sizeof m->key, "%016llx", (unsigned long long)(b ^ a));
    if (m->state_opt) {
        snprintf(m->state_path, sizeof m->state_path, "%s", m->state_opt);
    } else {
        snprintf(m->state_path, sizeof m->state_path, "%s/.import-%s-%016llx.json", m->data_dir ? m->data_dir : ".",
                 m->collection, (unsigned long long)a);
    }
}

static int write_state(imp *m, const ipos *p, uint64_t rows, uint64_t rej)
{
    json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "version", 1, "key",
                          m->key, "collection", m->collection, "file", (json_int_t)p->file, "offset", (json_int_t)p->off,
                          "row", (json_int_t)p->row, "line", (json_int_t)p->line, "aux_offset", (json_int_t)p->aux_off,
                          "aux_row", (json_int_t)p->aux_row, "aux_line", (json_int_t)p->aux_line, "global_row",
                          (json_int_t)p->grow, "imported", (json_int_t)rows, "rejected", (json_int_t)rej);
    if (!o) return NY_ENOMEM;
    json_t *fl = json_array();
    for (int i = 0; i < m->nfiles; i++) json_array_append_new(fl, json_string(m->files[i]));
    json_object_set_new(o, "files", fl);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", m->state_path);
    pthread_mutex_lock(&m->state_mu);
    int rc = NY_OK;
    FILE *f = fopen(tmp, "w");
    if (!f || json_dumpf(o, f, JSON_INDENT(1)) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        rc = ny_error_errno(NY_EIO, "cannot write the import state file %s", tmp);
    }
    if (f && fclose(f) != 0 && rc == NY_OK) rc = ny_error_errno(NY_EIO, "cannot write %s", tmp);
    if (rc == NY_OK && rename(tmp, m->state_path) != 0) rc = ny_error_errno(NY_EIO, "cannot rename %s", tmp);
    pthread_mutex_unlock(&m->state_mu);
    json_decref(o);
    return rc;
}

static int read_state(imp *m, ipos *p, uint64_t *rows, uint64_t *rej)
{
    json_error_t e;
    json_t *o = json_load_file(m->state_path, 0, &e);
    if (!o) return 0;
    const char *key = json_string_value(json_object_get(o, "key"));
    int ok = key && !strcmp(key, m->key);
    if (!ok) {
        json_decref(o);
        fprintf(stderr,
                "import: %s belongs to an import of different or modified files (size or modification time changed): "
                "cannot resume; run without --resume to start over\n",
                m->state_path);
        return -1;
    }
#define G(name) ((uint64_t)json_integer_value(json_object_get(o, name)))
    p->file = (uint32_t)G("file");
    p->off = G("offset");
    p->row = G("row");
    p->line = G("line");
    p->aux_off = G("aux_offset");
    p->aux_row = G("aux_row");
    p->aux_line = G("aux_line");
    p->grow = G("global_row");
    *rows = G("imported");
    *rej = G("rejected");
#undef G
    json_decref(o);
    return 1;
}

/* ===== Target: embedded or HTTP ========================================= */

static const char *qdrant_distance(ny_metric mt)
{
    return mt == NY_L2 ? "Euclid" : mt == NY_DOT ? "Dot" : "Cosine";
}

/* Extracts a readable error from a Qdrant-style response body. */
static void http_error_text(const char *body, char *out, size_t n)
{
    json_error_t e;
    json_t *j = json_loads(body, 0, &e);
    const char *s = NULL;
    if (j) {
        json_t *st = json_object_get(j, "status");
        if (json_is_object(st)) s = json_string_value(json_object_get(st, "error"));
        else if (json_is_string(st)) s = json_string_value(st);
    }
    snprintf(out, n, "%.300s", s ? s : body);
    json_decref(j);
}

static int noop_replay(void *ctx, uint64_t lsn, uint32_t type, const void *body, size_t len)
{
    (void)ctx, (void)lsn, (void)type, (void)body, (void)len;
    return 0;
}

static int open_target(imp *m)
{
    if (m->dry_run) return NY_OK;
    if (m->wal_dir) {
        if (make_dirs("import", m->wal_dir) != 0) return NY_EIO;
        int rc = ny_wal_open(m->wal_dir, 0, noop_replay, NULL, &m->wal, NULL);
        if (rc != NY_OK) fprintf(stderr, "import: %s\n", ny_errmsg());
        m->dry_run = 1; /* no collection, no state file */
        return rc;
    }
    if (m->data_dir) {
        int rc = ny_db_open(m->data_dir, &m->db);
        if (rc != NY_OK) {
            fprintf(stderr, "import: cannot open data directory %s: %s%s\n", m->data_dir, ny_errmsg(),
                    rc == NY_EBUSY ? " (a server is using it? import through --url instead)" : "");
            return rc;
        }
        rc = ny_db_get_collection(m->db, m->collection, &m->coll);
        if (rc == NY_OK) {
            m->dim = ny_collection_dim(m->coll);
            m->metric = ny_collection_metric(m->coll);
            m->coll_ready = 1;
        } else if (rc != NY_ENOTFOUND) {
            fprintf(stderr, "import: collection %s: %s\n", m->collection, ny_errmsg());
            return rc;
        }
        return NY_OK;
    }
    httpc h;
    int rc = httpc_init(&h, m->url, m->api_key);
    if (rc != NY_OK) {
        fprintf(stderr, "import: %s\n", ny_errmsg());
        return rc;
    }
    char path[512];
    snprintf(path, sizeof path, "/collections/%s", m->collection);
    int st;
    const char *body;
    rc = httpc_request(&h, "GET", path, NULL, 0, &st, &body, NULL);
    if (rc != NY_OK) {
        fprintf(stderr, "import: %s\n", ny_errmsg());
        httpc_close(&h);
        return rc;
    }
    if (st == 200) {
        json_error_t e;
        json_t *j = json_loads(body, 0, &e);
        json_t *v = json_object_get(json_object_get(json_object_get(json_object_get(j, "result"), "config"), "params"),
                                    "vectors");
        json_t *size = json_object_get(v, "size");
        const char *dist = json_string_value(json_object_get(v, "distance"));
        if (!json_is_integer(size)) {
            fprintf(stderr, "import: %s: cannot read the vector size of collection %s (named vectors are not supported)\n",
                    m->url, m->collection);
            json_decref(j);
            httpc_close(&h);
            return NY_EINVAL;
        }
        m->dim = (size_t)json_integer_value(size);
        m->metric = dist && !strcmp(dist, "Euclid") ? NY_L2 : dist && !strcmp(dist, "Dot") ? NY_DOT : NY_COSINE;
        m->coll_ready = 1;
        json_decref(j);
    } else if (st != 404) {
        char e[400];
        http_error_text(body, e, sizeof e);
        fprintf(stderr, "import: GET %s%s: HTTP %d: %s\n", m->url, path, st, e);
        httpc_close(&h);
        return NY_EIO;
    }
    httpc_close(&h);
    return NY_OK;
}

/* Creates the collection once the dimension is known. */
static int ensure_collection(imp *m, size_t dim)
{
    if (m->dry_run) {
        m->dim = dim;
        m->coll_ready = 1;
        return NY_OK;
    }
    if (m->coll_ready) return NY_OK;
    if (!m->create) {
        fprintf(stderr, "import: collection %s does not exist (use --create --distance cosine|l2|dot)\n", m->collection);
        return NY_ENOTFOUND;
    }
    ny_metric mt = NY_COSINE;
    if (m->distance && ny_metric_parse(m->distance, &mt) != NY_OK) {
        fprintf(stderr, "import: --distance: %s\n", ny_errmsg());
        return NY_EINVAL;
    }
    char cfg[256];
    snprintf(cfg, sizeof cfg, "{\"vectors\":{\"size\":%zu,\"distance\":\"%s\"}}", dim, qdrant_distance(mt));
    if (m->data_dir) {
        int rc = ny_db_create_collection(m->db, m->collection, cfg);
        if (rc == NY_OK) rc = ny_db_get_collection(m->db, m->collection, &m->coll);
        if (rc != NY_OK) {
            fprintf(stderr, "import: cannot create collection %s: %s\n", m->collection, ny_errmsg());
            return rc;
        }
    } else {
        httpc h;
        httpc_init(&h, m->url, m->api_key);
        char path[512];
        snprintf(path, sizeof path, "/collections/%s", m->collection);
        int st;
        const char *body;
        int rc = httpc_request(&h, "PUT", path, cfg, strlen(cfg), &st, &body, NULL);
        if (rc != NY_OK || st != 200) {
            char e[400];
            if (rc == NY_OK) http_error_text(body, e, sizeof e);
            fprintf(stderr, "import: cannot create collection %s: %s\n", m->collection,
                    rc != NY_OK ? ny_errmsg() : e);
            httpc_close(&h);
            return rc != NY_OK ? rc : NY_EIO;
        }
        httpc_close(&h);
    }
    msg(m, "created collection %s (%zu dimensions, %s)", m->collection, dim, ny_metric_name(mt));
    m->dim = dim;
    m->metric = mt;
    m->coll_ready = 1;
    return NY_OK;
}

/* ===== Writers ========================================================== */

typedef struct writer {
    imp *m;
    httpc h;
    char *body;
    size_t blen, bcap;
    ny_point *pts;
} writer;

static int bput(writer *w, const char *s, size_t n)
{
    if (w->blen + n + 1 > w->bcap) {
        size_t c = w->bcap ? w->bcap * 2 : 1 << 20;
        while (c < w->blen + n + 1) c *= 2;
        char *b = realloc(w->body, c);
        if (!b) return -1;
        w->body = b;
        w->bcap = c;
    }
    memcpy(w->body + w->blen, s, n);
    w->blen += n;
    w->body[w->blen] = 0;
    return 0;
}

static int bputs(writer *w, const char *s) { return bput(w, s, strlen(s)); }

/* {"points":[...]} for rows [from, to) of b. */
static int build_body(writer *w, const ing_batch *b, size_t from, size_t to)
{
    w->blen = 0;
    if (bputs(w, "{\"points\":[")) return -1;
    char num[40];
    for (size_t i = from; i < to; i++) {
        char id[37];
        ny_point_id_format(&b->ids[i], id);
        if (bputs(w, i > from ? ",{\"id\":" : "{\"id\":") || (b->ids[i].is_uuid && bputs(w, "\"")) || bputs(w, id) ||
            (b->ids[i].is_uuid && bputs(w, "\"")) || bputs(w, ",\"vector\":["))
            return -1;
        const float *v = b->vecs + i * b->dim;
        for (size_t d = 0; d < b->dim; d++) {
            int k = ing_format_float(num + 1, v[d]);
            num[0] = ',';
            if (d == 0 ? bput(w, num + 1, (size_t)k) : bput(w, num, (size_t)k + 1)) return -1;
        }
        if (bputs(w, "]")) return -1;
        const char *pl = ing_batch_payload(b, i);
        if (pl && (bputs(w, ",\"payload\":") || bputs(w, pl))) return -1;
        if (bputs(w, "}")) return -1;
    }
    return bputs(w, "]}");
}

/* Sends rows [from, to).  Returns 0 (stored), 1 (rejected by the server as
 * bad input; err set), -1 (fatal; the import fails). */
static int http_send(writer *w, const ing_batch *b, size_t from, size_t to, char *err, size_t errn)
{
    imp *m = w->m;
    if (build_body(w, b, from, to)) {
        snprintf(err, errn, "out of memory (request body)");
        return -1;
    }
    char path[512];
    snprintf(path, sizeof path, "/collections/%s/points?wait=true", m->collection);
    double backoff = 0.2;
    for (int attempt = 0;; attempt++) {
        int st = 0;
        const char *resp = NULL;
        int rc = httpc_request(&w->h, "PUT", path, w->body, w->blen, &st, &resp, NULL);
        if (rc == NY_OK && st == 200) return 0;
        if (rc == NY_OK && (st == 400 || st == 422)) {
            http_error_text(resp, err, errn);
            return 1;
        }
        if (rc == NY_OK && (st == 401 || st == 403 || st == 404)) {
            char e[400];
            http_error_text(resp, e, sizeof e);
            snprintf(err, errn, "HTTP %d from %s: %s", st, m->url, e);
            return -1;
        }
        if (rc == NY_OK) snprintf(err, errn, "HTTP %d from %s", st, m->url);
        else snprintf(err, errn, "%s", ny_errmsg());
        if (attempt >= 8 || g_interrupted > 1) return -1;
        msg(m, "%s; retrying in %.1f s", err, backoff);
        struct timespec ts = {(time_t)backoff, (long)((backoff - (double)(time_t)backoff) * 1e9)};
        nanosleep(&ts, NULL);
        backoff = backoff * 2 > 5 ? 5 : backoff * 2;
    }
}

/* --wal-only: one log record per batch, encoded like an upsert (count,
 * dim, then per point: id, vector, payload length and text). */
static long wal_batch(writer *w, slot *s)
{
    imp *m = w->m;
    const ing_batch *b = &s->b;
    w->blen = 0;
    uint32_t hdr[2] = {(uint32_t)b->n, (uint32_t)b->dim};
    if (bput(w, (const char *)hdr, sizeof hdr)) goto oom;
    for (size_t i = 0; i < b->n; i++) {
        unsigned char id[17];
        id[0] = (unsigned char)b->ids[i].is_uuid;
        if (b->ids[i].is_uuid) memcpy(id + 1, b->ids[i].uuid, 16);
        else memcpy(id + 1, &b->ids[i].num, 8), memset(id + 9, 0, 8);
        const char *pl = ing_batch_payload(b, i);
        uint32_t pn = pl ? (uint32_t)strlen(pl) : 0;
        if (bput(w, (const char *)id, sizeof id) || bput(w, (const char *)(b->vecs + i * b->dim), b->dim * sizeof(float)) ||
            bput(w, (const char *)&pn, 4) || (pn && bput(w, pl, pn)))
            goto oom;
    }
    uint64_t lsn;
    int rc = ny_wal_append(m->wal, 1, w->body, w->blen, &lsn);
    if (rc == NY_OK && s->wait) rc = ny_wal_sync(m->wal, lsn);
    if (rc != NY_OK) {
        fail(m, "write-ahead log: %s", ny_errmsg());
        return -1;
    }
    return 0;
oom:
    fail(m, "out of memory (log record)");
    return -1;
}

static void report_bad(imp *m, const ing_batch *b, size_t i, const char *why)
{
    msg(m, "%s:%llu: rejected: %s", file_name(m, b->files[i]), (unsigned long long)b->lines[i], why);
}

/* Writes one batch; returns rows rejected by the target, or -1 (fatal). */
static long write_batch(writer *w, slot *s)
{
    imp *m = w->m;
    ing_batch *b = &s->b;
    if (m->wal && b->n) return wal_batch(w, s);
    if (m->dry_run || b->n == 0) {
        s->wait = 0; /* nothing was synced */
        return 0;
    }
    long rej = 0;
    if (m->data_dir) {
        for (size_t i = 0; i < b->n; i++) {
            w->pts[i].id = b->ids[i];
            w->pts[i].vector = b->vecs + i * b->dim;
            w->pts[i].payload_json = ing_batch_payload(b, i);
        }
        int rc = ny_collection_upsert(m->coll, w->pts, b->n, s->wait);
        if (rc == NY_OK) return 0;
        if (rc != NY_EINVAL && rc != NY_EDIM) {
            fail(m, "writing to collection %s: %s", m->collection, ny_errmsg());
            return -1;
        }
        /* Something in the batch is invalid for the collection: find it row by row. */
        long last_ok = -1;
        for (size_t i = 0; i < b->n; i++) {
            rc = ny_collection_upsert(m->coll, &w->pts[i], 1, 0);
            if (rc == NY_OK) {
                last_ok = (long)i;
                continue;
            }
            if (rc != NY_EINVAL && rc != NY_EDIM) {
                fail(m, "writing to collection %s: %s", m->collection, ny_errmsg());
                return -1;
            }
            report_bad(m, b, i, ny_errmsg());
            rej++;
            if (m->strict) {
                fail(m, "%s:%llu: bad row (--strict)", file_name(m, b->files[i]), (unsigned long long)b->lines[i]);
                return -1;
            }
        }
        if (last_ok < 0) s->wait = 0;
        if (s->wait && last_ok >= 0 && ny_collection_upsert(m->coll, &w->pts[last_ok], 1, 1) != NY_OK) {
            fail(m, "writing to collection %s: %s", m->collection, ny_errmsg());
            return -1;
        }
        return rej;
    }
    char err[512];
    int r = http_send(w, b, 0, b->n, err, sizeof err);
    if (r == 0) return 0;
    if (r < 0) {
        fail(m, "%s", err);
        return -1;
    }
    for (size_t i = 0; i < b->n; i++) {
        r = http_send(w, b, i, i + 1, err, sizeof err);
        if (r < 0) {
            fail(m, "%s", err);
            return -1;
        }
        if (r == 1) {
            report_bad(m, b, i, err);
            rej++;
            if (m->strict) {
                fail(m, "%s:%llu: bad row (--strict)", file_name(m, b->files[i]), (unsigned long long)b->lines[i]);
                return -1;
            }
        }
    }
    return rej;
}

/* Marks s done and advances the committed prefix (m->mu held). */
static void complete(imp *m, slot *s, long rej)
{
    s->done = 1;
    s->rej += rej > 0 ? (uint64_t)rej : 0;
    s->trej = rej > 0 ? (uint64_t)rej : 0;
    atomic_fetch_add(&m->rows_acked, s->b.n - (rej > 0 ? (uint64_t)rej : 0));
    if (rej > 0) atomic_fetch_add(&m->rejected, (uint64_t)rej);
    int durable = 0;
    slot *c;
    while ((c = m->ring[m->committed % (uint64_t)m->nslots]) && c->done && c->seq == m->committed) {
        m->ring[m->committed % (uint64_t)m->nslots] = NULL;
        m->commit_pos = c->end;
        m->commit_rows += c->b.n - c->trej;
        m->commit_rej += c->rej;
        if (c->wait) {
            m->durable_pos = c->end;
            m->durable_rows = m->commit_rows;
            m->durable_rej = m->commit_rej;
            durable = 1;
        }
        m->committed++;
        atomic_store(&m->bytes_acked, m->fstart[NY_MIN(c->end.file, (uint32_t)m->nfiles)] + c->end.off);
        c->done = 0;
        c->next = m->freel;
        m->freel = c;
    }
    if (durable && !m->dry_run && ny_now() - m->last_state >= m->sync_every) {
        m->last_state = ny_now();
        ipos p = m->durable_pos;
        uint64_t rows = m->durable_rows, rj = m->durable_rej;
        pthread_mutex_unlock(&m->mu);
        if (write_state(m, &p, rows, rj) != NY_OK) msg(m, "warning: %s", ny_errmsg());
        pthread_mutex_lock(&m->mu);
    }
    pthread_cond_broadcast(&m->cv);
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    imp *m = w->m;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        while (!m->qhead && !m->reader_done && !m->failed) pthread_cond_wait(&m->cv, &m->mu);
        if (!m->qhead || m->failed) {
            pthread_mutex_unlock(&m->mu);
            break;
        }
        slot *s = m->qhead;
        m->qhead = s->next;
        if (!m->qhead) m->qtail = NULL;
        if (m->data_dir || m->wal) {
            double now = ny_now();
            s->wait = s->last || now - m->last_wait >= m->sync_every;
            if (s->wait) m->last_wait = now;
        } else {
            s->wait = 1;
        }
        pthread_mutex_unlock(&m->mu);
        long rej = write_batch(w, s);
        pthread_mutex_lock(&m->mu);
        if (rej < 0) {
            pthread_cond_broadcast(&m->cv);
            pthread_mutex_unlock(&m->mu);
            break;
        }
        complete(m, s, rej);
        pthread_mutex_unlock(&m->mu);
    }
    return NULL;
}

/* ===== Progress and search probe ======================================== */

static void human_bytes(char *out, size_t n, double b)
{
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000 && i < 4) b /= 1000, i++;
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void progress_line(imp *m, int final_line)
{
    double el = ny_now() - m->t0;
    uint64_t rows = atomic_load(&m->rows_acked), rej = atomic_load(&m->rejected), bytes = atomic_load(&m->bytes_acked);
    if (!m->total_bytes) bytes = atomic_load(&m->bytes_pos); /* a pipe: what was read */
    double rate = el > 0 ? (double)rows / el : 0;
    char rb[32], tb[32];
    human_bytes(rb, sizeof rb, (double)bytes);
    human_bytes(tb, sizeof tb, (double)m->total_bytes);
    char eta[32] = "";
    if (m->total_bytes && bytes > m->bytes_start && el > 1) {
        double left = el * (double)(m->total_bytes - NY_MIN(bytes, m->total_bytes)) / (double)(bytes - m->bytes_start);
        snprintf(eta, sizeof eta, "  ETA %d:%02d", (int)(left / 60), (int)fmod(left, 60));
    }
    pthread_mutex_lock(&g_out_mu);
    if (m->tty && !final_line) {
        double frac = m->total_bytes ? (double)bytes / (double)m->total_bytes : 0;
        if (frac > 1) frac = 1;
        char bar[33];
        int full = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < full ? '=' : i == full ? '>' : ' ';
        bar[30] = 0;
        if (m->total_bytes)
            fprintf(stderr, "\r\033[K[%s] %5.1f%%  %llu rows  %s/%s  %.0f rows/s%s", bar, 100 * frac,
                    (unsigned long long)rows, rb, tb, rate, eta);
        else
            fprintf(stderr, "\r\033[K%llu rows  %s  %.0f rows/s", (unsigned long long)rows, rb, rate);
        if (rej) fprintf(stderr, "  %llu rejected", (unsigned long long)rej);
        fflush(stderr);
    } else if (!m->tty) {
        fprintf(stderr, "import: %llu rows, %llu rejected, %s of %s done, %.0f rows/s, %.0f s%s\n",
                (unsigned long long)rows, (unsigned long long)rej, rb, m->total_bytes ? tb : "?", rate, el, eta);
    }
    pthread_mutex_unlock(&g_out_mu);
}

static void *progress_main(void *arg)
{
    imp *m = arg;
    double period = m->tty ? 0.25 : m->log_every;
    pthread_mutex_lock(&m->mu);
    while (!m->finished) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + period;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&m->cv_fin, &m->mu, &ts);
        if (m->finished) break;
        pthread_mutex_unlock(&m->mu);
        progress_line(m, 0);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    if (m->tty) progress_line(m, 0), fputc('\n', stderr);
    return NULL;
}

typedef struct probe {
    imp *m;
    httpc h;
    float *q;
    char *body;
    size_t bcap;
    uint64_t rng;
    double until; /* 0: until finished */
} probe;

static double probe_once(probe *p)
{
    imp *m = p->m;
    for (size_t d = 0; d < m->dim; d++) {
        p->rng = p->rng * 6364136223846793005ull + 1442695040888963407ull;
        p->q[d] = (float)((double)(p->rng >> 11) / 9007199254740992.0 * 2 - 1);
    }
    double t = ny_now();
    if (m->data_dir) {
        ny_search_params sp;
        memset(&sp, 0, sizeof sp);
        sp.vector = p->q;
        sp.limit = 10;
        sp.quant_rescore = -1;
        ny_records r;
        if (ny_collection_search(m->coll, &sp, &r) != NY_OK) return -1;
        ny_records_free(&r);
    } else {
        size_t need = m->dim * 18 + 64;
        if (need > p->bcap) {
            free(p->body);
            p->body = malloc(need);
            p->bcap = need;
            if (!p->body) return -1;
        }
        size_t l = (size_t)sprintf(p->body, "{\"limit\":10,\"vector\":[");
        for (size_t d = 0; d < m->dim; d++) {
            if (d) p->body[l++] = ',';
            l += (size_t)ing_format_float(p->body + l, p->q[d]);
        }
        l += (size_t)sprintf(p->body + l, "]}");
        char path[512];
        snprintf(path, sizeof path, "/collections/%s/points/search", m->collection);
        int st;
        const char *resp;
        if (httpc_request(&p->h, "POST", path, p->body, l, &st, &resp, NULL) != NY_OK || st != 200) return -1;
    }
    return ny_now() - t;
}

static void *probe_main(void *arg)
{
    probe *p = arg;
    imp *m = p->m;
    double next = ny_now();
    for (;;) {
        pthread_mutex_lock(&m->mu);
        int fin = m->finished;
        pthread_mutex_unlock(&m->mu);
        if (fin || (p->until && ny_now() >= p->until)) break;
        double lat = probe_once(p);
        if (lat >= 0 && m->nlat < PROBE_MAX) m->lat[m->nlat++] = lat;
        next += 1.0 / m->probe_rate;
        double w = next - ny_now();
        if (w > 0) {
            struct timespec ts = {(time_t)w, (long)((w - (double)(time_t)w) * 1e9)};
            nanosleep(&ts, NULL);
        } else {
            next = ny_now();
        }
    }
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_d);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* ===== Reader (main thread) ============================================= */

static slot *take_slot(imp *m)
{
    pthread_mutex_lock(&m->mu);
    while (!m->freel && !m->failed) pthread_cond_wait(&m->cv, &m->mu);
    slot *s = m->failed ? NULL : m->freel;
    if (s) m->freel = s->next;
    pthread_mutex_unlock(&m->mu);
    if (s) {
        ing_batch_clear(&s->b);
        s->rej = s->trej = 0;
        s->last = 0;
        s->next = NULL;
    }
    return s;
}

static void submit(imp *m, slot *s, const ipos *end, int last)
{
    pthread_mutex_lock(&m->mu);
    s->end = *end;
    s->last = last;
    s->seq = m->next_seq++;
    s->done = 0;
    m->ring[s->seq % (uint64_t)m->nslots] = s;
    s->next = NULL;
    if (m->qtail) m->qtail->next = s;
    else m->qhead = s;
    m->qtail = s;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static void fill_pos(const ing_reader *r, ipos *p)
{
    p->file = r->file_index;
    p->off = ing_offset(r);
    p->row = r->row;
    p->line = r->line;
    p->grow = r->grow;
    if (r->aux) {
        p->aux_off = ing_offset(r->aux);
        p->aux_row = r->aux->row;
        p->aux_line = r->aux->line;
    } else {
        p->aux_off = p->aux_row = p->aux_line = 0;
    }
}

/* Reads every input; returns 0, or 1 on an error (already reported). */
static int read_all(imp *m, const ipos *start)
{
    slot *s = NULL;
    uint64_t done_bytes = 0, grow = start->grow;
    int err = 0;
    ipos pos = *start, good = *start;
    for (int fi = 0; fi < m->nfiles && !err; fi++) {
        ing_fmt f = m->fmt != FMT_AUTO ? m->fmt : ing_fmt_guess(m->files[fi]);
        struct stat st;
        uint64_t fsize = strcmp(m->files[fi], "-") && stat(m->files[fi], &st) == 0 ? (uint64_t)st.st_size : 0;
        if ((uint32_t)fi < start->file) {
            done_bytes += fsize;
            continue;
        }
        ing_reader r;
        if (ing_open(&r, m->files[fi], f, (uint32_t)fi, m->dim, &m->o) != NY_OK) {
            rfail(m, "%s", ny_errmsg());
            err = 1;
            break;
        }
        if ((uint32_t)fi == start->file && start->off &&
            ing_seek(&r, start->off, start->row, start->line, start->aux_off, start->aux_row, start->aux_line) != NY_OK) {
            rfail(m, "%s", ny_errmsg());
            ing_close(&r);
            err = 1;
            break;
        }
        r.grow = grow;
        if (r.aux) r.aux->grow = grow;
        char e[512];
        for (;;) {
            if (g_interrupted) break;
            if (!s && !(s = take_slot(m))) {
                err = 1;
                break;
            }
            uint64_t line;
            int rc = ing_next(&r, &s->b, e, sizeof e, &line);
            if (rc == ING_EOF) break;
            if (rc < 0) {
                rfail(m, "%s", ny_errmsg());
                err = 1;
                break;
            }
            if (rc == ING_BAD) {
                msg(m, "%s:%llu: rejected: %s", r.path, (unsigned long long)line, e);
                s->rej++;
                atomic_fetch_add(&m->rejected, 1);
                if (m->strict) {
                    rfail(m, "%s:%llu: bad row (--strict): %s", r.path, (unsigned long long)line, e);
                    err = 1;
                    break;
                }
                continue;
            }
            if (!m->coll_ready) {
                if (ensure_collection(m, r.dim) != NY_OK) {
                    rfail(m, "cannot create the collection");
                    err = 1;
                    break;
                }
            }
            if (m->dim && r.dim != m->dim) {
                rfail(m, "%s: vectors have dimension %zu, the collection has %zu", r.path, r.dim, m->dim);
                err = 1;
                break;
            }
            fill_pos(&r, &good);
            if (s->b.n == s->b.cap) {
                fill_pos(&r, &pos);
                atomic_store(&m->bytes_pos, done_bytes + pos.off);
                submit(m, s, &pos, 0);
                s = NULL;
            }
        }
        if (!err && !g_interrupted) {
            /* whole file consumed: continue at the start of the next one */
            fill_pos(&r, &pos);
            pos.file = (uint32_t)fi + 1;
            pos.off = pos.row = pos.line = pos.aux_off = pos.aux_row = pos.aux_line = 0;
        } else {
            fill_pos(&r, &pos);
        }
        grow = r.grow;
        if (!err && !g_interrupted) done_bytes += fsize ? fsize : ing_offset(&r);
        atomic_store(&m->bytes_pos, err || g_interrupted ? done_bytes + ing_offset(&r) : done_bytes);
        ing_close(&r);
        if (g_interrupted) break;
    }
    /* With --strict, the rows before the bad one are still written (the
     * position stays at the end of the last complete batch, so a resume
     * re-reads from there). */
    if (s) {
        if (s->b.n || !err) submit(m, s, err ? &good : &pos, 1);
        else {
            pthread_mutex_lock(&m->mu);
            s->next = m->freel;
            m->freel = s;
            pthread_mutex_unlock(&m->mu);
        }
    }
    pthread_mutex_lock(&m->mu);
    m->reader_done = 1;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return err;
}

/* ===== Command ========================================================== */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nearly import --collection NAME (--data-dir DIR | --url http://HOST:PORT [--api-key K])\n"
            "                     [options] FILE...     (FILE '-' = standard input, needs --format)\n"
            "\n"
            "Streams rows into a collection in bounded memory.\n"
            "  --format F          fvecs | npy | jsonl | csv | tsv (default: from each file's extension)\n"
            "  --create            create the collection if it does not exist\n"
            "  --distance D        cosine (default) | l2 | dot, for --create\n"
            "  --id-field NAME     jsonl/csv id field (default id): unsigned integer or UUID\n"
            "  --vector-field NAME jsonl/csv vector field (default vector); csv: \"[1,2]\", \"1 2\" or \"1,2\"\n"
            "  --payload-field NAME  jsonl: payload is this object field (default: every other field)\n"
            "  --payloads FILE     fvecs/npy: .jsonl with one line per row: {\"id\"?: ..., payload fields}\n"
            "  --auto-id           rows without an id get id-offset + row number\n"
            "  --id-offset N       first id for fvecs/npy rows and --auto-id (default 0)\n"
            "  --batch N           rows per batch (default 1024)\n"
            "  --parallel N        concurrent HTTP requests (default 4)\n"
            "  --strict            stop at the first bad row (default: report it and skip it)\n"
            "  --resume            continue an interrupted import of the same files\n"
            "  --sync-every SECONDS  embedded: make a batch durable and save the progress this often (default 1)\n"
            "  --state FILE        where progress is kept (default DATA_DIR/.import-NAME-HASH.json,\n"
            "                      or ./.import-NAME-HASH.json with --url)\n"
            "  --max-line BYTES    longest accepted text line (default 64 MB)\n"
            "  --progress / --no-progress   force the progress bar on or off (default: on a terminal)\n"
            "  --log-every SECONDS  period of the progress lines when not on a terminal (default 10)\n"
            "  --dry-run           parse and validate only\n"
            "  --wal-only DIR      benchmark: append the batches to a bare write-ahead log in DIR (no collection)\n"
            "  --summary-json FILE  write the final figures as JSON\n"
            "  --probe-search QPS  measure search latency at this rate while importing\n"
            "  --probe-idle SECONDS  ... and before importing (needs an existing collection)\n");
}

static int parse_args(imp *m, int argc, char **argv)
{
    const char *v;
    for (int i = 1; i < argc; i++) {
        int r = 0;
        size_t z;
#define OPT(name) ((r = arg_opt(argc, argv, &i, name, &v)) != 0)
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--create")) m->create = 1;
        else if (!strcmp(a, "--strict")) m->strict = 1;
        else if (!strcmp(a, "--resume")) m->resume = 1;
        else if (!strcmp(a, "--auto-id")) m->o.auto_id = 1;
        else if (!strcmp(a, "--dry-run")) m->dry_run = 1;
        else if (!strcmp(a, "--progress")) m->progress = 1;
        else if (!strcmp(a, "--no-progress")) m->progress = 0;
        else if (OPT("--collection")) { if (r < 0) goto missing; m->collection = v; }
        else if (OPT("--data-dir")) { if (r < 0) goto missing; m->data_dir = v; }
        else if (OPT("--url")) { if (r < 0) goto missing; m->url = v; }
        else if (OPT("--api-key")) { if (r < 0) goto missing; m->api_key = v; }
        else if (OPT("--state")) { if (r < 0) goto missing; m->state_opt = v; }
        else if (OPT("--distance")) { if (r < 0) goto missing; m->distance = v; }
        else if (OPT("--summary-json")) { if (r < 0) goto missing; m->summary_json = v; }
        else if (OPT("--wal-only")) { if (r < 0) goto missing; m->wal_dir = v; }
        else if (OPT("--id-field")) { if (r < 0) goto missing; m->o.id_field = v; }
        else if (OPT("--vector-field")) { if (r < 0) goto missing; m->o.vector_field = v; }
        else if (OPT("--payload-field")) { if (r < 0) goto missing; m->o.payload_field = v; }
        else if (OPT("--payloads")) { if (r < 0) goto missing; m->o.payloads_path = v; }
        else if (OPT("--format")) {
            if (r < 0) goto missing;
            if (ing_fmt_parse(v, &m->fmt) != NY_OK) {
                fprintf(stderr, "import: --format: %s\n", ny_errmsg());
                return 2;
            }
        } else if (OPT("--id-offset")) {
            if (r < 0 || arg_size("import", "--id-offset", v, 0, SIZE_MAX, &z)) goto bad;
            m->o.id_offset = z;
        } else if (OPT("--batch")) {
            if (r < 0 || arg_size("import", "--batch", v, 1, 1000000, &m->batch)) goto bad;
        } else if (OPT("--parallel")) {
            if (r < 0 || arg_size("import", "--parallel", v, 1, 64, &z)) goto bad;
            m->parallel = (int)z;
        } else if (OPT("--max-line")) {
            if (r < 0 || arg_size("import", "--max-line", v, 1024, (size_t)1 << 34, &m->o.max_line)) goto bad;
        } else if (OPT("--log-every") || OPT("--probe-search") || OPT("--probe-idle") || OPT("--sync-every")) {
            if (r < 0) goto missing;
            char *e;
            double d = strtod(v, &e);
            if (*e || !(d > 0) || d > 1e6) {
                fprintf(stderr, "import: %s: '%s' is not a positive number\n", a, v);
                return 2;
            }
            if (!strncmp(a, "--log-every", 11)) m->log_every = d;
            else if (!strncmp(a, "--probe-search", 14)) m->probe_rate = d;
            else if (!strncmp(a, "--sync-every", 12)) m->sync_every = d;
            else m->probe_idle = d;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "import: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else {
            if (m->nfiles == MAX_FILES) {
                fprintf(stderr, "import: too many files (at most %d)\n", MAX_FILES);
                return 2;
            }
            m->files[m->nfiles++] = a;
        }
        continue;
    missing:
        fprintf(stderr, "import: %s needs a value\n", a);
        return 2;
    bad:
        if (r < 0) fprintf(stderr, "import: %s needs a value\n", a);
        return 2;
#undef OPT
    }
    if (!m->collection) {
        fprintf(stderr, "import: --collection is required\n");
        return 2;
    }
    if (!m->dry_run && !m->wal_dir && !!m->data_dir == !!m->url) {
        fprintf(stderr, "import: give exactly one of --data-dir DIR and --url URL\n");
        return 2;
    }
    if (m->nfiles == 0) {
        fprintf(stderr, "import: no input files (use '-' and --format for standard input)\n");
        return 2;
    }
    for (int i = 0; i < m->nfiles; i++) {
        if (!strcmp(m->files[i], "-") && m->fmt == FMT_AUTO) {
            fprintf(stderr, "import: reading standard input needs --format\n");
            return 2;
        }
        if (m->fmt == FMT_AUTO && ing_fmt_guess(m->files[i]) == FMT_AUTO) {
            fprintf(stderr, "import: %s: cannot tell the format from the name; use --format\n", m->files[i]);
            return 2;
        }
    }
    if (m->o.payloads_path && m->nfiles != 1) {
        fprintf(stderr, "import: --payloads goes with exactly one .fvecs/.npy file\n");
        return 2;
    }
    return -1;
}

int cmd_import(int argc, char **argv)
{
    imp *m = calloc(1, sizeof *m);
    if (!m) return 1;
    m->batch = 1024;
    m->parallel = 4;
    m->progress = -1;
    m->log_every = 10;
    m->sync_every = 1;
    m->o.id_field = "id";
    m->o.vector_field = "vector";
    int ret = parse_args(m, argc, argv);
    if (ret >= 0) {
        free(m);
        return ret;
    }
    ret = 1;
    g_interrupted = 0;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->state_mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    pthread_cond_init(&m->cv_fin, NULL);
    m->tty = m->progress < 0 ? isatty(2) : m->progress;
    make_key(m);

    ipos start;
    memset(&start, 0, sizeof start);
    if (m->resume && !m->dry_run) {
        int sr = read_state(m, &start, &m->base_rows, &m->base_rej);
        if (sr < 0) goto out_free;
        if (sr == 0) msg(m, "no saved progress in %s: starting from the beginning", m->state_path);
        else
            msg(m, "resuming after %llu rows (%s, byte %llu)", (unsigned long long)m->base_rows,
                file_name(m, start.file), (unsigned long long)start.off);
        start.grow = sr ? start.grow : 0;
    } else if (!m->dry_run && access(m->state_path, F_OK) == 0) {
        msg(m, "note: an earlier import of these files was interrupted; starting over (--resume continues it)");
    }
    m->commit_pos = m->durable_pos = start;
    m->commit_rows = m->durable_rows = m->base_rows;
    m->commit_rej = m->durable_rej = m->base_rej;

    if (open_target(m) != NY_OK) goto out_free;
    if (!m->coll_ready && !m->create && !m->dry_run) {
        fprintf(stderr, "import: collection %s does not exist (use --create --distance cosine|l2|dot)\n", m->collection);
        goto out_target;
    }
    for (int i = 0; i < m->nfiles; i++) {
        struct stat st;
        m->fstart[i] = m->total_bytes;
        if (strcmp(m->files[i], "-") && stat(m->files[i], &st) == 0) m->total_bytes += (uint64_t)st.st_size;
    }
    m->fstart[m->nfiles] = m->total_bytes;
    m->bytes_start = m->fstart[NY_MIN(start.file, (uint32_t)m->nfiles)] + start.off;
    atomic_store(&m->bytes_acked, m->bytes_start);

    /* Pool, writers. */
    int nw = m->data_dir || m->dry_run ? 1 : m->parallel;
    if (m->wal_dir) m->data_dir = NULL;
    m->nslots = nw + 2;
    m->slots = calloc((size_t)m->nslots, sizeof *m->slots);
    m->ring = calloc((size_t)m->nslots, sizeof *m->ring);
    writer *ws = calloc((size_t)nw, sizeof *ws);
    pthread_t *wt = calloc((size_t)nw, sizeof *wt);
    if (!m->slots || !m->ring || !ws || !wt) {
        fprintf(stderr, "import: out of memory\n");
        free(ws);
        free(wt);
        goto out_target;
    }
    for (int i = 0; i < m->nslots; i++) {
        if (ing_batch_init(&m->slots[i].b, m->batch, m->dim) != NY_OK) {
            fprintf(stderr, "import: %s\n", ny_errmsg());
            free(ws);
            free(wt);
            goto out_slots;
        }
        m->slots[i].next = m->freel;
        m->freel = &m->slots[i];
    }
    m->committed = m->next_seq = 0;
    m->lat = m->probe_rate > 0 ? calloc(PROBE_MAX, sizeof *m->lat) : NULL;

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    /* Idle search latency, before anything is written. */
    probe pr;
    memset(&pr, 0, sizeof pr);
    pr.m = m;
    pr.rng = 42;
    pthread_t pt;
    int probing = 0;
    if (m->lat && !m->dry_run) {
        if (m->url) httpc_init(&pr.h, m->url, m->api_key);
        if (m->coll_ready && m->dim) {
            pr.q = malloc(m->dim * sizeof(float));
            if (m->probe_idle > 0 && pr.q) {
                pr.until = ny_now() + m->probe_idle;
                probe_main(&pr);
                m->nidle = m->nlat;
                pr.until = 0;
            }
            if (pr.q && pthread_create(&pt, NULL, probe_main, &pr) == 0) probing = 1;
        } else {
            msg(m, "note: --probe-search needs an existing collection; no latency figures");
        }
    }

    m->t0 = ny_now();
    m->last_wait = m->last_state = m->t0;
    int nstarted = 0;
    for (int i = 0; i < nw; i++) {
        ws[i].m = m;
        ws[i].pts = calloc(m->batch, sizeof(ny_point));
        if (m->url) httpc_init(&ws[i].h, m->url, m->api_key);
        if (!ws[i].pts || pthread_create(&wt[i], NULL, writer_main, &ws[i]) != 0) {
            fail(m, "cannot start writer threads");
            break;
        }
        nstarted++;
    }
    pthread_t progt;
    int prog = m->tty || m->log_every > 0;
    if (prog && pthread_create(&progt, NULL, progress_main, m) != 0) prog = 0;

    int rerr = m->failed ? 1 : read_all(m, &start);
    for (int i = 0; i < nstarted; i++) pthread_join(wt[i], NULL);
    pthread_mutex_lock(&m->mu);
    m->finished = 1;
    pthread_cond_broadcast(&m->cv_fin);
    pthread_mutex_unlock(&m->mu);
    if (prog) pthread_join(progt, NULL);
    if (probing) pthread_join(pt, NULL);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    double secs = ny_now() - m->t0;

    /* Make everything committed durable, then record where we are. */
    int ok = !m->failed && !rerr && !g_interrupted;
    if (m->coll) {
        ny_collection_release(m->coll);
        m->coll = NULL;
    }
    if (m->wal) {
        if (ny_wal_close(m->wal) != NY_OK) fprintf(stderr, "import: write-ahead log: %s\n", ny_errmsg());
        m->wal = NULL;
    }
    if (m->db) {
        ny_db_close(m->db); /* checkpoints: everything committed is durable */
        m->db = NULL;
        m->durable_pos = m->commit_pos;
        m->durable_rows = m->commit_rows;
        m->durable_rej = m->commit_rej;
    }
    if (!m->dry_run) {
        if (ok) {
            unlink(m->state_path);
        } else if (write_state(m, &m->durable_pos, m->durable_rows, m->durable_rej) != NY_OK) {
            fprintf(stderr, "import: %s\n", ny_errmsg());
        }
    }
    uint64_t rows = atomic_load(&m->rows_acked), rej = atomic_load(&m->rejected);
    if (m->fail_msg[0]) fprintf(stderr, "import: error: %s\n", m->fail_msg);
    if (!ok && !m->dry_run)
        fprintf(stderr, "import: %s; %llu rows are stored; run the same command with --resume to continue\n",
                g_interrupted ? "interrupted" : "stopped", (unsigned long long)m->durable_rows);
    char rb[32];
    human_bytes(rb, sizeof rb, (double)atomic_load(&m->bytes_pos));
    size_t peak = ny_peak_rss();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec * 1e-6;
    fprintf(stderr, "import: %s%llu rows imported, %llu rejected, %.2f s (%.0f rows/s, %.2f CPU s), %s read, peak RSS %.1f MB\n",
            m->wal_dir ? "(WAL only) " : m->dry_run ? "(dry run) " : "", (unsigned long long)rows, (unsigned long long)rej, secs,
            secs > 0 ? (double)rows / secs : 0, cpu, rb, (double)peak / 1e6);
    double p50i = 0, p99i = 0, p50 = 0, p99 = 0;
    if (m->lat) {
        size_t nb = m->nlat - m->nidle;
        p50i = pct(m->lat, m->nidle, 0.5);
        p99i = pct(m->lat, m->nidle, 0.99);
        p50 = pct(m->lat + m->nidle, nb, 0.5);
        p99 = pct(m->lat + m->nidle, nb, 0.99);
        fprintf(stderr, "import: search latency idle p50 %.2f ms p99 %.2f ms (%zu queries); during import p50 %.2f ms "
                        "p99 %.2f ms (%zu queries)\n",
                p50i * 1e3, p99i * 1e3, m->nidle, p50 * 1e3, p99 * 1e3, nb);
    }
    if (m->summary_json) {
        json_t *j = json_pack("{s:I, s:I, s:f, s:f, s:f, s:I, s:I, s:s, s:b}", "rows", (json_int_t)rows, "rejected",
                              (json_int_t)rej, "seconds", secs, "cpu_seconds", cpu, "rows_per_s", secs > 0 ? (double)rows / secs : 0.0,
                              "bytes", (json_int_t)atomic_load(&m->bytes_pos), "peak_rss", (json_int_t)peak, "mode",
                              m->wal_dir ? "wal-only" : m->dry_run ? "dry-run" : m->url ? "http" : "embedded", "complete", ok);
        if (j && m->lat)
            json_object_set_new(j, "search_latency_ms",
                                json_pack("{s:f, s:f, s:I, s:f, s:f, s:I}", "idle_p50", p50i * 1e3, "idle_p99",
                                          p99i * 1e3, "idle_n", (json_int_t)m->nidle, "import_p50", p50 * 1e3,
                                          "import_p99", p99 * 1e3, "import_n", (json_int_t)(m->nlat - m->nidle)));
        if (!j || json_dump_file(j, m->summary_json, JSON_INDENT(2)) != 0)
            fprintf(stderr, "import: cannot write %s\n", m->summary_json);
        json_decref(j);
    }
    ret = ok ? 0 : g_interrupted ? 130 : 1;
    for (int i = 0; i < nw; i++) {
        free(ws[i].pts);
        free(ws[i].body);
        httpc_close(&ws[i].h);
    }
    free(ws);
    free(wt);
    free(pr.q);
    free(pr.body);
    httpc_close(&pr.h);
    free(m->lat);
out_slots:
    for (int i = 0; i < m->nslots; i++) ing_batch_free(&m->slots[i].b);
out_target:
    if (m->coll) ny_collection_release(m->coll);
    if (m->db) ny_db_close(m->db);
out_free:
    free(m->slots);
    free(m->ring);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->state_mu);
    pthread_cond_destroy(&m->cv);
    pthread_cond_destroy(&m->cv_fin);
    free(m);
    return ret;
}
