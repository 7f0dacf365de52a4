/*
 * server.h -- `nearly serve`: Qdrant-compatible REST server (internal).
 *
 * Layout of src/server:
 *   config.c     settings: defaults < config file < environment < command line
 *   util.c       string builder, float/ID/vector parsing, JSON helpers
 *   http.c       libmicrohttpd glue: bodies, auth, routing, envelope, logs,
 *                metrics, signals
 *   api_coll.c   collections, aliases, payload indexes, snapshots
 *   api_points.c point writes and reads (upsert, retrieve, payload, scroll,
 *                count)
 *   api_search.c search, query, recommend (and their batches)
 *
 * Threading model: libmicrohttpd runs one thread per connection (handlers may
 * block on fsync when `wait=true`, which would stall a shared event loop).
 * Every ny_db / ny_collection call is thread-safe, so handlers share the one
 * ny_db handle with no extra locking.  Metrics are relaxed atomics; the log
 * file is written under a mutex, one line per event.
 */
#ifndef NY_SERVER_H
#define NY_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "nearly.h"

/* The version reported by GET /: the Qdrant API version this server speaks.
 * Clients check major == 1 and |minor - theirs| <= 1. */
#define NY_QDRANT_API_VERSION "1.19.0"

/* ===== Settings ========================================================= */

typedef struct ny_server_config {
    char host[256];
    int port;
    char data_dir[4096];
    char snapshots_dir[4096];  /* "" = <data_dir>/snapshots */
    char api_key[512];         /* "" = no auth */
    char ro_api_key[512];      /* read-only key, "" = none */
    size_t max_body;           /* bytes; default 32 MiB */
    size_t max_upload;         /* snapshot upload limit, bytes */
    unsigned conn_timeout;     /* idle connection timeout, seconds */
    unsigned max_conns;        /* simultaneous connections */
    char log_file[4096];       /* "" = stderr */
    int log_json;              /* 1: JSON lines, 0: plain text */
    int access_log;            /* 1: log every request */
} ny_server_config;

void ny_server_config_defaults(ny_server_config *c);
/* Loads a JSON or YAML (block mapping subset) file in Qdrant's layout
 * (service.host, service.http_port, service.api_key, storage.storage_path,
 * ...).  Returns NY_OK or a NY_E* code with ny_errmsg() set. */
int ny_server_config_load_file(ny_server_config *c, const char *path);
/* Applies NEARLY_* and QDRANT__* environment variables. */
int ny_server_config_load_env(ny_server_config *c);
/* Sets one dotted key (e.g. "service.http_port") from a string. */
int ny_server_config_set(ny_server_config *c, const char *key, const char *value);

/* Runs the server until SIGTERM/SIGINT.  Returns a process exit code. */
int ny_server_run(const ny_server_config *cfg);

/* ===== String builder =================================================== */

typedef struct sb {
    char *p;
    size_t n, cap;
    int oom;
} sb;

void sb_init(sb *b);
void sb_free(sb *b);
void sb_putn(sb *b, const char *s, size_t n);
void sb_puts(sb *b, const char *s);
void sb_putc(sb *b, char c);
void sb_printf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal (quoted, escaped). */
void sb_json_str(sb *b, const char *s);
/* The shortest decimal that reads back as the same float. */
void sb_float(sb *b, float f);
void sb_point_id(sb *b, const ny_point_id *id);
/* Appends the compact serialisation of a jansson value. */
void sb_json(sb *b, const json_t *v);

/* ===== Requests ========================================================= */

typedef struct srv srv;

typedef struct req {
    srv *s;
    struct MHD_Connection *conn;
    const char *method;
    const char *url;
    const char *route;       /* operation id, for logs and metrics */
    char *args[4];           /* path parameters (unescaped) */
    int nargs;
    /* body */
    char *body;
    size_t body_len, body_cap;
    json_t *json;            /* parsed body object (NULL when empty) */
    /* response */
    int status;
    sb out;                  /* result JSON (envelope added by http.c) */
    char *err;               /* error message (malloc) */
    struct MHD_Response *raw;/* complete response (downloads, text) */
    double t0;
    double deadline;         /* ?timeout=SECONDS: give up after this (0: none) */
} req;

/* Sets an error reply (status + message).  Returns 0 so handlers can
 * `return fail(...)`. */
int fail(req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Error reply from an engine return code and ny_errmsg(). */
int fail_rc(req *r, int rc, const char *what);
/* Success reply whose result is a jansson value (reference stolen). */
int reply_json(req *r, json_t *result);
/* Success reply whose result is the literal JSON text `text`. */
int reply_raw(req *r, const char *text);
/* {"operation_id": N, "status": "completed"|"acknowledged"} */
int reply_update(req *r, int wait);

/* 1 (after recording 408) when the request's ?timeout has passed. */
int req_timed_out(req *r);
/* Query-string argument or NULL. */
const char *req_arg(req *r, const char *name);
/* ?wait=true.  Returns 1/0; a malformed value records a 400 and gives -1. */
int req_wait(req *r);
/* Opens the collection named by the first path argument; on failure records
 * 404 and returns NULL. */
ny_collection *req_collection(req *r);
/* Requires a JSON object body.  Returns it, or NULL after recording 400. */
json_t *req_body(req *r);
/* Checks that every key of obj is in the NULL-terminated list `allowed`;
 * records 400 naming the first unknown field.  Returns 0 if ok. */
int check_fields(req *r, const json_t *obj, const char *ctx, const char *const *allowed);

/* Data directory handle and paths, for handlers. */
ny_db *srv_db(srv *s);
const char *srv_snapshots_dir(srv *s);
uint64_t srv_next_op(srv *s);

/* ===== JSON parsing helpers (util.c) ==================================== */

/* Parses an ExtendedPointId (u64 integer or UUID string). */
int parse_point_id(const json_t *v, ny_point_id *out, char *err, size_t errlen);
/* Parses a dense vector of dim floats into out.  Errors name the problem
 * ("expected dim: 4, got 3", "element 2 is not a number"). */
int parse_vector(const json_t *v, size_t dim, float *out, char *err, size_t errlen);
/* Unwraps a VectorStruct for a collection with one unnamed vector: a list,
 * or {"": list}.  Returns the list or NULL with err set. */
const json_t *unwrap_vector(const json_t *v, char *err, size_t errlen);
/* Validates a with_payload value; 0 if ok. */
int check_with_payload(const json_t *v, char *err, size_t errlen);
/* with_vector: true/false, or a list of vector names (only "" exists).
 * Returns 0/1, or -1 with err set. */
int parse_with_vector(const json_t *v, int dflt, char *err, size_t errlen);
/* Vectors parsed ahead of jansson (see vec_rewrite in util.c). */
typedef struct vecpool {
    float *data;
    size_t n, cap;
    size_t *off;      /* per vector: offset, length */
    size_t nvec, cap_vec;
} vecpool;
void vec_rewrite(char *body, size_t len, vecpool *pool);
void vecpool_free(vecpool *p);
/* Makes pool the one references resolve against in this thread (NULL: none). */
void vecpool_set_current(const vecpool *p);
/* 1 if v is a reference to a pooled vector. */
int is_vecref(const json_t *v);
/* Dumps v compactly (NULL when v is NULL or JSON null); free with free(). */
char *json_text(const json_t *v);
/* Collection / snapshot names safe to use in a file path. */
int valid_name(const char *s);
int valid_snapshot_name(const char *s);

/* ===== Handlers ========================================================= */

int h_collections_list(req *r);
int h_collection_get(req *r);
int h_collection_create(req *r);
int h_collection_update(req *r);
int h_collection_delete(req *r);
int h_collection_exists(req *r);
int h_aliases_update(req *r);
int h_aliases_list(req *r);
int h_collection_aliases(req *r);
int h_index_create(req *r);
int h_index_delete(req *r);
int h_snapshot_create(req *r);
int h_snapshot_list(req *r);
int h_snapshot_get(req *r);
int h_snapshot_delete(req *r);
int h_snapshot_recover(req *r);
/* Upload: the body was streamed to a temporary file (r->body holds its path). */
int h_snapshot_upload(req *r);

int h_points_upsert(req *r);
int h_points_get(req *r);
int h_point_get(req *r);
int h_points_delete(req *r);
int h_vectors_update(req *r);
int h_vectors_delete(req *r);
int h_payload_set(req *r);
int h_payload_overwrite(req *r);
int h_payload_delete(req *r);
int h_payload_clear(req *r);
int h_points_batch(req *r);
int h_scroll(req *r);
int h_count(req *r);

int h_search(req *r);
int h_search_batch(req *r);
int h_query(req *r);
int h_query_batch(req *r);
int h_recommend(req *r);
int h_recommend_batch(req *r);

#endif
