/*
 * http.c -- libmicrohttpd glue of the REST server: request bodies, auth,
 * routing, the Qdrant response envelope, structured logs, Prometheus
 * metrics, signals and clean shutdown.
 *
 * Request life cycle (MHD calls the access handler several times):
 *   1st call   route lookup (404/405), auth (401/403), Content-Length check
 *              (413); errors are answered at once, before the body is read.
 *   next calls body chunks: accumulated up to max_body (413 past it), or for
 *              snapshot uploads streamed to a temporary file.
 *   last call  JSON parse (400), handler, envelope, MHD_queue_response.
 *   completed  access log line and metrics, then the request is freed.
 *
 * Shutdown (SIGTERM/SIGINT, caught by sigwait in the main thread): stop
 * accepting connections, answer new requests on open connections with 503,
 * wait for the requests in flight to finish, stop MHD, close the database
 * (checkpoints every collection), flush and fsync the log.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "server/server.h"

/* ===== Routes =========================================================== */

enum { B_NONE = 0, B_JSON = 1, B_UPLOAD = 2, B_VEC = 3 /* JSON holding vectors */ };

typedef struct route {
    const char *method;
    const char *pattern; /* segments; "*" captures one */
    const char *op;      /* Qdrant's operationId */
    int (*fn)(req *r);
    int write;           /* needs a read-write key */
    int body;
} route;

static int h_root(req *r);
static int h_health(req *r);
static int h_metrics(req *r);
static int h_telemetry(req *r);
static int h_cluster(req *r);

static const route routes[] = {
    {"GET", "/", "root", h_root, 0, B_NONE},
    {"GET", "/healthz", "healthz", h_health, 0, B_NONE},
    {"GET", "/livez", "livez", h_health, 0, B_NONE},
    {"GET", "/readyz", "readyz", h_health, 0, B_NONE},
    {"GET", "/metrics", "metrics", h_metrics, 0, B_NONE},
    {"GET", "/telemetry", "telemetry", h_telemetry, 0, B_NONE},
    {"GET", "/cluster", "cluster_status", h_cluster, 0, B_NONE},
    {"GET", "/collections", "get_collections", h_collections_list, 0, B_NONE},
    {"GET", "/aliases", "get_collections_aliases", h_aliases_list, 0, B_NONE},
    {"POST", "/collections/aliases", "update_aliases", h_aliases_update, 1, B_JSON},
    {"GET", "/collections/*", "get_collection", h_collection_get, 0, B_NONE},
    {"PUT", "/collections/*", "create_collection", h_collection_create, 1, B_JSON},
    {"PATCH", "/collections/*", "update_collection", h_collection_update, 1, B_JSON},
    {"DELETE", "/collections/*", "delete_collection", h_collection_delete, 1, B_NONE},
    {"GET", "/collections/*/exists", "collection_exists", h_collection_exists, 0, B_NONE},
    {"GET", "/collections/*/aliases", "get_collection_aliases", h_collection_aliases, 0, B_NONE},
    {"PUT", "/collections/*/index", "create_field_index", h_index_create, 1, B_JSON},
    {"DELETE", "/collections/*/index/*", "delete_field_index", h_index_delete, 1, B_NONE},
    {"GET", "/collections/*/snapshots", "list_snapshots", h_snapshot_list, 0, B_NONE},
    {"POST", "/collections/*/snapshots", "create_snapshot", h_snapshot_create, 1, B_NONE},
    {"POST", "/collections/*/snapshots/upload", "recover_from_uploaded_snapshot", h_snapshot_upload, 1, B_UPLOAD},
    {"PUT", "/collections/*/snapshots/recover", "recover_from_snapshot", h_snapshot_recover, 1, B_JSON},
    {"GET", "/collections/*/snapshots/*", "get_snapshot", h_snapshot_get, 0, B_NONE},
    {"DELETE", "/collections/*/snapshots/*", "delete_snapshot", h_snapshot_delete, 1, B_NONE},
    {"GET", "/collections/*/points/*", "get_point", h_point_get, 0, B_NONE},
    {"POST", "/collections/*/points", "get_points", h_points_get, 0, B_JSON},
    {"PUT", "/collections/*/points", "upsert_points", h_points_upsert, 1, B_VEC},
    {"POST", "/collections/*/points/delete", "delete_points", h_points_delete, 1, B_JSON},
    {"PUT", "/collections/*/points/vectors", "update_vectors", h_vectors_update, 1, B_VEC},
    {"POST", "/collections/*/points/vectors/delete", "delete_vectors", h_vectors_delete, 1, B_JSON},
    {"POST", "/collections/*/points/payload", "set_payload", h_payload_set, 1, B_JSON},
    {"PUT", "/collections/*/points/payload", "overwrite_payload", h_payload_overwrite, 1, B_JSON},
    {"POST", "/collections/*/points/payload/delete", "delete_payload", h_payload_delete, 1, B_JSON},
    {"POST", "/collections/*/points/payload/clear", "clear_payload", h_payload_clear, 1, B_JSON},
    {"POST", "/collections/*/points/batch", "batch_update", h_points_batch, 1, B_VEC},
    {"POST", "/collections/*/points/scroll", "scroll_points", h_scroll, 0, B_JSON},
    {"POST", "/collections/*/points/count", "count_points", h_count, 0, B_JSON},
    {"POST", "/collections/*/points/search", "search_points", h_search, 0, B_VEC},
    {"POST", "/collections/*/points/search/batch", "search_batch_points", h_search_batch, 0, B_VEC},
    {"POST", "/collections/*/points/query", "query_points", h_query, 0, B_VEC},
    {"POST", "/collections/*/points/query/batch", "query_batch_points", h_query_batch, 0, B_VEC},
    {"POST", "/collections/*/points/recommend", "recommend_points", h_recommend, 0, B_VEC},
    {"POST", "/collections/*/points/recommend/batch", "recommend_batch_points", h_recommend_batch, 0, B_VEC},
};
#define NROUTES (sizeof routes / sizeof routes[0])
#define ROUTE_UNKNOWN NROUTES /* metrics slot for unmatched requests */

/* Matches url against pattern; captures go to caps (pointers into the
 * split copy).  Returns the number of literal segments matched, or -1. */
static int match(const char *pattern, char **segs, int nsegs, char **caps, int *ncaps)
{
    int lit = 0, i = 0;
    *ncaps = 0;
    const char *p = pattern;
    if (!strcmp(p, "/")) return nsegs == 0 ? 1 : -1;
    while (*p) {
        if (*p == '/') p++;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (i >= nsegs) return -1;
        if (len == 1 && *p == '*') {
            if (*ncaps < 4) caps[(*ncaps)++] = segs[i];
        } else {
            if (strlen(segs[i]) != len || memcmp(segs[i], p, len)) return -1;
            lit++;
        }
        i++;
        p += len;
    }
    return i == nsegs ? lit : -1;
}

/* ===== Metrics ========================================================== */

#define NBUCKETS 12
static const double bucket_le[NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                           0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

typedef struct route_metrics {
    _Atomic uint64_t status[600];
    _Atomic uint64_t bucket[NBUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
} route_metrics;

/* ===== Server state ===================================================== */

struct srv {
    ny_server_config cfg;
    ny_db *db;
    struct MHD_Daemon *d;
    char snapdir[4200];
    _Atomic uint64_t op_seq;
    _Atomic int draining;
    _Atomic int inflight;
    route_metrics metrics[NROUTES + 1];
    double started;
    FILE *log;
    pthread_mutex_t log_mu;
};

ny_db *srv_db(srv *s)
{
    return s->db;
}

const char *srv_snapshots_dir(srv *s)
{
    return s->snapdir;
}

uint64_t srv_next_op(srv *s)
{
    return atomic_fetch_add_explicit(&s->op_seq, 1, memory_order_relaxed);
}

/* ===== Logs ============================================================= */

static void log_ts(char *buf, size_t n)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, n - k, ".%03dZ", (int)(tv.tv_usec / 1000));
}

/* One log event: level, message and extra key/value pairs given as a
 * pre-rendered JSON fragment (",\"k\":v..."), or plain text. */
static void log_event(srv *s, const char *level, const char *msg, const char *json_extra, const char *text_extra)
{
    char ts[40];
    log_ts(ts, sizeof ts);
    sb b;
    sb_init(&b);
    if (s->cfg.log_json) {
        sb_puts(&b, "{\"ts\":\"");
        sb_puts(&b, ts);
        sb_puts(&b, "\",\"level\":\"");
        sb_puts(&b, level);
        sb_puts(&b, "\",\"msg\":");
        sb_json_str(&b, msg);
        if (json_extra) sb_puts(&b, json_extra);
        sb_puts(&b, "}\n");
    } else {
        sb_printf(&b, "%s %-5s %s%s%s\n", ts, level, msg, text_extra ? " " : "", text_extra ? text_extra : "");
    }
    if (b.p) {
        pthread_mutex_lock(&s->log_mu);
        fwrite(b.p, 1, b.n, s->log);
        fflush(s->log);
        pthread_mutex_unlock(&s->log_mu);
    }
    sb_free(&b);
}

static void logf_(srv *s, const char *level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(srv *s, const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_event(s, level, msg, NULL, NULL);
}

/* ===== Replies ========================================================== */

int fail(req *r, int status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(r->err);
    r->err = strdup(msg);
    r->status = status;
    return 0;
}

int fail_rc(req *r, int rc, const char *what)
{
    const char *m = ny_errmsg();
    if (!m || !*m) m = ny_strerror(rc);
    switch (rc) {
    case NY_EINVAL: return fail(r, 400, "Wrong input: %s", m);
    case NY_EDIM: return fail(r, 400, "Wrong input: %s", m);
    case NY_ENOTFOUND: return fail(r, 404, "Not found: %s", m);
    case NY_EEXIST: return fail(r, 409, "Wrong input: %s", m);
    case NY_EREADONLY: return fail(r, 403, "Forbidden: %s", m);
    case NY_EBUSY: return fail(r, 409, "Conflict: %s", m);
    case NY_EFULL: return fail(r, 507, "Service internal error: %s: no space left: %s", what, m);
    case NY_ENOMEM: return fail(r, 503, "Service internal error: %s: out of memory: %s", what, m);
    case NY_ECORRUPT: return fail(r, 500, "Service internal error: %s: corrupt data: %s", what, m);
    default: return fail(r, 500, "Service internal error: %s: %s", what, m);
    }
}

int reply_json(req *r, json_t *result)
{
    r->status = 200;
    r->out.n = 0;
    if (!result) {
        sb_puts(&r->out, "null");
        return 0;
    }
    sb_json(&r->out, result);
    json_decref(result);
    return 0;
}

int reply_raw(req *r, const char *text)
{
    r->status = 200;
    r->out.n = 0;
    sb_puts(&r->out, text);
    return 0;
}

int reply_update(req *r, int wait)
{
    r->status = 200;
    r->out.n = 0;
    sb_printf(&r->out, "{\"operation_id\":%llu,\"status\":\"%s\"}", (unsigned long long)srv_next_op(r->s),
              wait ? "completed" : "acknowledged");
    return 0;
}

int req_timed_out(req *r)
{
    if (r->deadline <= 0 || ny_now() <= r->deadline) return 0;
    fail(r, 408, "Timeout error: the operation took longer than timeout=%s seconds", req_arg(r, "timeout"));
    return 1;
}

const char *req_arg(req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int req_wait(req *r)
{
    const char *w = req_arg(r, "wait");
    if (!w) return 0;
    if (!strcmp(w, "true") || !*w) return 1;
    if (!strcmp(w, "false")) return 0;
    fail(r, 400, "Format error in query string: wait: expected true or false, got '%.40s'", w);
    return -1;
}

ny_collection *req_collection(req *r)
{
    ny_collection *c = NULL;
    const char *name = r->args[0];
    int rc = ny_db_get_collection(r->s->db, name, &c);
    if (rc == NY_OK) return c;
    if (rc == NY_ENOTFOUND || rc == NY_EINVAL) fail(r, 404, "Not found: Collection `%s` doesn't exist!", name);
    else fail_rc(r, rc, "opening the collection");
    return NULL;
}

json_t *req_body(req *r)
{
    if (!r->json) {
        fail(r, 400, "Json deserialize error: the request needs a JSON object body");
        return NULL;
    }
    return r->json;
}

int check_fields(req *r, const json_t *obj, const char *ctx, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        if (!strcmp(key, "shard_key") && !json_is_null(val)) {
            fail(r, 400, "Wrong input: shard keys are not supported: collections have a single shard");
            return -1;
        }
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, key)) {
                ok = 1;
                break;
            }
        if (ok) continue;
        sb b;
        sb_init(&b);
        for (const char *const *a = allowed; *a; a++) {
            if (a != allowed) sb_puts(&b, ", ");
            sb_printf(&b, "`%s`", *a);
        }
        fail(r, 400, "Json deserialize error: %s%sunknown field `%.100s`, expected one of %s", ctx ? ctx : "",
             ctx ? ": " : "", key, b.p ? b.p : "");
        sb_free(&b);
        return -1;
    }
    return 0;
}

/* ===== Simple handlers ================================================== */

static int h_root(req *r)
{
    json_t *v = json_pack("{s:s, s:s, s:s}", "title", "qdrant - vector search engine", "version",
                          NY_QDRANT_API_VERSION, "commit", "nearly-" NEARLY_VERSION);
    /* Clients read the root object itself, not an envelope. */
    char *t = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    r->status = 200;
    r->raw = MHD_create_response_from_buffer(strlen(t), t, MHD_RESPMEM_MUST_FREE);
    if (r->raw) MHD_add_response_header(r->raw, "Content-Type", "application/json");
    else free(t);
    return 0;
}

static int h_health(req *r)
{
    const char *msg = !strcmp(r->route, "healthz") ? "healthz check passed"
                      : !strcmp(r->route, "livez") ? "livez check passed"
                                                   : "all shards are ready";
    r->status = 200;
    r->raw = MHD_create_response_from_buffer(strlen(msg), (void *)msg, MHD_RESPMEM_PERSISTENT);
    if (r->raw) MHD_add_response_header(r->raw, "Content-Type", "text/plain; charset=utf-8");
    return 0;
}

static int h_cluster(req *r)
{
    return reply_raw(r, "{\"status\":\"disabled\"}");
}

static size_t current_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, res = 0;
    int k = fscanf(f, "%lu %lu", &size, &res);
    fclose(f);
    return k == 2 ? (size_t)res * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

/* Collections and their point counts, for /metrics and /telemetry; with
 * per != NULL, one `collection_points{collection="..."} N` line each. */
static void collection_stats(srv *s, size_t *ncoll, size_t *npoints, sb *per)
{
    *ncoll = *npoints = 0;
    char *list = NULL;
    if (ny_db_list_collections(s->db, &list) != NY_OK) return;
    json_t *names = json_loads(list, 0, NULL);
    ny_free(list);
    if (!json_is_array(names)) {
        json_decref(names);
        return;
    }
    *ncoll = json_array_size(names);
    for (size_t i = 0; i < *ncoll; i++) {
        ny_collection *c;
        if (ny_db_get_collection(s->db, json_string_value(json_array_get(names, i)), &c) != NY_OK) continue;
        size_t n = 0;
        if (ny_collection_count(c, NULL, &n) == NY_OK) *npoints += n;
        if (per) {
            sb_puts(per, "collection_points{collection=");
            sb_json_str(per, ny_collection_name(c)); /* names are [A-Za-z0-9_.-]: no escaping needed */
            sb_printf(per, "} %zu\n", n);
        }
        ny_collection_release(c);
    }
    json_decref(names);
}

static int h_telemetry(req *r)
{
    size_t nc, np;
    collection_stats(r->s, &nc, &np, NULL);
    sb *o = &r->out;
    r->status = 200;
    sb_printf(o,
              "{\"id\":\"nearly\",\"app\":{\"name\":\"nearly\",\"version\":\"%s\",\"nearly_version\":\"%s\","
              "\"simd\":\"%s\",\"cpus\":%d},\"collections\":{\"number_of_collections\":%zu,\"points\":%zu},"
              "\"memory\":{\"resident_bytes\":%zu,\"peak_resident_bytes\":%zu},\"uptime_sec\":%.3f}",
              NY_QDRANT_API_VERSION, NEARLY_VERSION, ny_simd_name(ny_simd_active()), ny_cpu_count(), nc, np,
              current_rss(), ny_peak_rss(), ny_now() - r->s->started);
    return 0;
}

static int h_metrics(req *r)
{
    srv *s = r->s;
    size_t nc, np;
    sb per;
    sb_init(&per);
    collection_stats(s, &nc, &np, &per);
    sb b;
    sb_init(&b);
    sb_printf(&b, "# HELP app_info information about the server\n# TYPE app_info gauge\n"
                  "app_info{name=\"nearly\",version=\"%s\",nearly_version=\"%s\"} 1\n",
              NY_QDRANT_API_VERSION, NEARLY_VERSION);
    sb_printf(&b, "# HELP collections_total number of collections\n# TYPE collections_total gauge\n"
                  "collections_total %zu\n",
              nc);
    sb_printf(&b, "# HELP points_total number of points in all collections\n# TYPE points_total gauge\n"
                  "points_total %zu\n",
              np);
    sb_puts(&b, "# HELP collection_points number of points per collection\n# TYPE collection_points gauge\n");
    if (per.p) sb_puts(&b, per.p);
    sb_free(&per);
    sb_printf(&b, "# HELP memory_resident_bytes resident set size\n# TYPE memory_resident_bytes gauge\n"
                  "memory_resident_bytes %zu\n"
                  "# HELP memory_peak_resident_bytes peak resident set size\n"
                  "# TYPE memory_peak_resident_bytes gauge\nmemory_peak_resident_bytes %zu\n",
              current_rss(), ny_peak_rss());
    sb_printf(&b, "# HELP uptime_seconds seconds since the server started\n# TYPE uptime_seconds gauge\n"
                  "uptime_seconds %.3f\n",
              ny_now() - s->started);
    sb_puts(&b, "# HELP rest_responses_total requests answered, by endpoint and status\n"
                "# TYPE rest_responses_total counter\n");
    for (size_t i = 0; i <= NROUTES; i++) {
        const char *op = i < NROUTES ? routes[i].op : "unknown";
        const char *m = i < NROUTES ? routes[i].method : "";
        for (int st = 100; st < 600; st++) {
            uint64_t n = atomic_load_explicit(&s->metrics[i].status[st], memory_order_relaxed);
            if (n) sb_printf(&b, "rest_responses_total{method=\"%s\",endpoint=\"%s\",status=\"%d\"} %llu\n", m, op, st,
                             (unsigned long long)n);
        }
    }
    sb_puts(&b, "# HELP rest_responses_duration_seconds request latency, by endpoint\n"
                "# TYPE rest_responses_duration_seconds histogram\n");
    for (size_t i = 0; i <= NROUTES; i++) {
        route_metrics *rm = &s->metrics[i];
        uint64_t cnt = atomic_load_explicit(&rm->count, memory_order_relaxed);
        if (!cnt) continue;
        const char *op = i < NROUTES ? routes[i].op : "unknown";
        const char *m = i < NROUTES ? routes[i].method : "";
        uint64_t cum = 0;
        for (int k = 0; k < NBUCKETS; k++) {
            cum += atomic_load_explicit(&rm->bucket[k], memory_order_relaxed);
            sb_printf(&b, "rest_responses_duration_seconds_bucket{method=\"%s\",endpoint=\"%s\",le=\"%g\"} %llu\n",
                      m, op, bucket_le[k], (unsigned long long)cum);
        }
        sb_printf(&b, "rest_responses_duration_seconds_bucket{method=\"%s\",endpoint=\"%s\",le=\"+Inf\"} %llu\n", m,
                  op, (unsigned long long)cnt);
        sb_printf(&b, "rest_responses_duration_seconds_sum{method=\"%s\",endpoint=\"%s\"} %.6f\n", m, op,
                  (double)atomic_load_explicit(&rm->sum_us, memory_order_relaxed) / 1e6);
        sb_printf(&b, "rest_responses_duration_seconds_count{method=\"%s\",endpoint=\"%s\"} %llu\n", m, op,
                  (unsigned long long)cnt);
    }
    if (b.oom) {
        sb_free(&b);
        return fail(r, 503, "Service internal error: out of memory");
    }
    r->status = 200;
    r->raw = MHD_create_response_from_buffer(b.n, b.p, MHD_RESPMEM_MUST_FREE);
    if (!r->raw) {
        sb_free(&b);
        return fail(r, 503, "Service internal error: out of memory");
    }
    MHD_add_response_header(r->raw, "Content-Type", "text/plain; version=0.0.4");
    return 0;
}

/* ===== Request handling ================================================= */

typedef struct upload {
    struct MHD_PostProcessor *pp;
    int fd;
    int got_file;
    size_t bytes;
    int too_large;
    int io_error;
    char path[4400];
} upload;

typedef struct conn_req {
    req r;
    const route *rt;
    int route_idx;
    int too_large;
    int done;          /* a response was queued */
    int counted;       /* counted in s->inflight */
    upload *up;
    vecpool pool;      /* vectors parsed ahead of jansson */
    size_t in_bytes, out_bytes;
} conn_req;

static enum MHD_Result queue_reply(conn_req *cr)
{
    req *r = &cr->r;
    struct MHD_Response *resp = r->raw;
    r->raw = NULL;
    if (!resp) {
        sb b;
        sb_init(&b);
        double t = ny_now() - r->t0;
        if (r->err) {
            sb_puts(&b, "{\"status\":{\"error\":");
            sb_json_str(&b, r->err);
            sb_printf(&b, "},\"time\":%.6f}", t);
        } else {
            sb_puts(&b, "{\"result\":");
            if (r->out.oom) {
                r->status = 503;
                b.n = 0;
                sb_printf(&b, "{\"status\":{\"error\":\"Service internal error: out of memory\"},\"time\":%.6f}", t);
            } else {
                sb_putn(&b, r->out.p ? r->out.p : "null", r->out.p ? r->out.n : 4);
                sb_printf(&b, ",\"status\":\"ok\",\"time\":%.6f}", t);
            }
        }
        if (b.oom) {
            sb_free(&b);
            return MHD_NO;
        }
        resp = MHD_create_response_from_buffer(b.n, b.p, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            sb_free(&b);
            return MHD_NO;
        }
        cr->out_bytes = b.n;
        MHD_add_response_header(resp, "Content-Type", "application/json");
    }
    if (r->status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (atomic_load(&r->s->draining)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)(r->status ? r->status : 500), resp);
    MHD_destroy_response(resp);
    cr->done = 1;
    return ret;
}

/* Constant-time comparison of a presented key with a configured one. */
static int key_eq(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char d = (unsigned char)(na != nb);
    for (size_t i = 0; i < na; i++) d |= (unsigned char)(a[i] ^ b[i % (nb ? nb : 1)]);
    return d == 0 && nb > 0;
}

/* 0: allowed; else the status already recorded in r. */
static int check_auth(conn_req *cr)
{
    srv *s = cr->r.s;
    if (!s->cfg.api_key[0] && !s->cfg.ro_api_key[0]) return 0;
    if (cr->rt && (cr->rt->fn == h_health || cr->rt->fn == h_root)) return 0;
    const char *key = MHD_lookup_connection_value(cr->r.conn, MHD_HEADER_KIND, "api-key");
    if (!key) {
        const char *a = MHD_lookup_connection_value(cr->r.conn, MHD_HEADER_KIND, "Authorization");
        if (a && !strncasecmp(a, "Bearer ", 7)) key = a + 7;
    }
    if (!key) return fail(&cr->r, 401, "Must provide an API key or an Authorization bearer token"), 401;
    if (s->cfg.api_key[0] && key_eq(key, s->cfg.api_key)) return 0;
    if (s->cfg.ro_api_key[0] && key_eq(key, s->cfg.ro_api_key)) {
        if (cr->rt && cr->rt->write) return fail(&cr->r, 403, "Forbidden: Write access denied: read-only API key"), 403;
        return 0;
    }
    return fail(&cr->r, 401, "Invalid API key or JWT"), 401;
}

static enum MHD_Result upload_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                   const char *content_type, const char *transfer_encoding, const char *data,
                                   uint64_t off, size_t size)
{
    conn_req *cr = cls;
    upload *up = cr->up;
    if (strcmp(key, "snapshot")) return MHD_YES; /* other form fields are ignored */
    up->got_file = 1;
    if (up->too_large || up->io_error) return MHD_YES;
    if (up->bytes + size > cr->r.s->cfg.max_upload) {
        up->too_large = 1;
        return MHD_YES;
    }
    while (size) {
        ssize_t k = write(up->fd, data, size);
        if (k < 0) {
            if (errno == EINTR) continue;
            up->io_error = errno;
            return MHD_YES;
        }
        data += k;
        size -= (size_t)k;
        up->bytes += (size_t)k;
    }
    return MHD_YES;
}

static int mkdir_p(const char *path)
{
    char tmp[4400];
    if (strlen(path) >= sizeof tmp) return -1;
    strcpy(tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
    return 0;
}

static int upload_start(conn_req *cr)
{
    req *r = &cr->r;
    if (!valid_name(r->args[0])) return fail(r, 404, "Not found: Collection `%s` doesn't exist!", r->args[0]);
    upload *up = calloc(1, sizeof *up);
    if (!up) return fail(r, 503, "Service internal error: out of memory");
    up->fd = -1;
    cr->up = up;
    char dir[4300];
    snprintf(dir, sizeof dir, "%s/.uploads", r->s->snapdir);
    if (mkdir_p(dir)) return fail(r, 500, "Service internal error: cannot create %s: %s", dir, strerror(errno));
    snprintf(up->path, sizeof up->path, "%s/upload-XXXXXX", dir);
    up->fd = mkstemp(up->path);
    if (up->fd < 0) {
        up->path[0] = 0;
        return fail(r, 500, "Service internal error: cannot create a temporary file: %s", strerror(errno));
    }
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && !strncasecmp(ct, "multipart/form-data", 19)) {
        up->pp = MHD_create_post_processor(r->conn, 65536, upload_iter, cr);
        if (!up->pp) return fail(r, 400, "Bad request: malformed multipart/form-data content type");
    }
    return 0;
}

static void upload_feed(conn_req *cr, const char *data, size_t size)
{
    upload *up = cr->up;
    if (up->pp) {
        if (MHD_post_process(up->pp, data, size) != MHD_YES) up->io_error = up->io_error ? up->io_error : EINVAL;
        return;
    }
    up->got_file = 1; /* raw body (application/octet-stream) */
    upload_iter(cr, MHD_POSTDATA_KIND, "snapshot", NULL, NULL, NULL, data, up->bytes, size);
}

static void upload_free(upload *up)
{
    if (!up) return;
    if (up->pp) MHD_destroy_post_processor(up->pp);
    if (up->fd >= 0) close(up->fd);
    if (up->path[0]) unlink(up->path);
    free(up);
}

static void finish(conn_req *cr)
{
    req *r = &cr->r;
    if (r->err) return; /* decided earlier (auth, upload start, ...) */
    if (cr->too_large) {
        fail(r, 413, "Payload error: the request body exceeds the limit of %zu bytes "
                     "(service.max_request_size_mb)",
             r->s->cfg.max_body);
        return;
    }
    if (cr->rt->body == B_VEC && r->body_len) vec_rewrite(r->body, r->body_len, &cr->pool);
    if ((cr->rt->body == B_JSON || cr->rt->body == B_VEC) && r->body_len) {
        json_error_t e;
        r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &e);
        if (!r->json) {
            fail(r, 400, "Json deserialize error: %s at line %d column %d", e.text, e.line, e.column);
            return;
        }
        if (!json_is_object(r->json)) {
            fail(r, 400, "Json deserialize error: expected a JSON object as the request body");
            return;
        }
    }
    if (cr->rt->body == B_UPLOAD) {
        upload *up = cr->up;
        if (up->too_large) {
            fail(r, 413, "Payload error: the snapshot exceeds the upload limit of %zu bytes", r->s->cfg.max_upload);
            return;
        }
        if (up->io_error) {
            fail(r, up->io_error == EINVAL ? 400 : 500, "%s: %s",
                 up->io_error == EINVAL ? "Bad request: malformed multipart body" : "Service internal error",
                 strerror(up->io_error));
            return;
        }
        if (!up->got_file) {
            fail(r, 400, "Bad request: the form has no `snapshot` file field");
            return;
        }
        if (fsync(up->fd)) {
            fail(r, 500, "Service internal error: writing the upload: %s", strerror(errno));
            return;
        }
        r->body = up->path; /* borrowed: the handler reads the file */
    }
    const char *to = req_arg(r, "timeout");
    if (to) {
        char *e;
        double t = strtod(to, &e);
        if (e == to || *e || !(t > 0) || t > 1e9) {
            fail(r, 400, "Format error in query string: timeout: expected a positive number of seconds, got '%.40s'", to);
            return;
        }
        r->deadline = r->t0 + t;
    }
    vecpool_set_current(&cr->pool);
    cr->rt->fn(r);
    vecpool_set_current(NULL);
    if (cr->rt->body == B_UPLOAD) r->body = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
    srv *s = cls;
    conn_req *cr = *con_cls;
    if (!cr) {
        cr = calloc(1, sizeof *cr);
        if (!cr) return MHD_NO;
        *con_cls = cr;
        req *r = &cr->r;
        r->s = s;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->t0 = ny_now();
        sb_init(&r->out);
        cr->route_idx = ROUTE_UNKNOWN;
        r->route = "unknown";
        atomic_fetch_add(&s->inflight, 1);
        cr->counted = 1;
        if (atomic_load(&s->draining)) {
            fail(r, 503, "Service unavailable: the server is shutting down");
            return queue_reply(cr);
        }
        /* Route: split the path, prefer the match with the most literal
         * segments; a path match with the wrong method gives 405. */
        char *copy = strdup(url);
        if (!copy) return MHD_NO;
        char *segs[16];
        int nsegs = 0, toolong = 0;
        char *save = NULL;
        for (char *p = strtok_r(copy, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
            if (nsegs == 16) {
                toolong = 1;
                break;
            }
            segs[nsegs++] = p;
        }
        int best = -1, best_any = -1;
        char *caps[4];
        int ncaps = 0;
        for (size_t i = 0; i < NROUTES && !toolong; i++) {
            char *c[4];
            int nc;
            int lit = match(routes[i].pattern, segs, nsegs, c, &nc);
            if (lit < 0) continue;
            if (lit > best_any) best_any = lit;
            if (strcmp(routes[i].method, method)) continue;
            if (lit > best) {
                best = lit;
                cr->rt = &routes[i];
                cr->route_idx = (int)i;
                ncaps = nc;
                memcpy(caps, c, sizeof c);
            }
        }
        if (cr->rt && best < best_any) cr->rt = NULL, cr->route_idx = ROUTE_UNKNOWN;
        if (cr->rt) {
            r->route = cr->rt->op;
            for (int i = 0; i < ncaps; i++) {
                r->args[i] = strdup(caps[i]);
                if (!r->args[i]) {
                    free(copy);
                    return MHD_NO;
                }
            }
            r->nargs = ncaps;
        }
        free(copy);
        if (!cr->rt) {
            if (best_any >= 0) fail(r, 405, "Method Not Allowed: %s %s", method, url);
            else fail(r, 404, "Not found: no endpoint %s %s", method, url);
            return queue_reply(cr);
        }
        if (check_auth(cr)) return queue_reply(cr);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        size_t limit = cr->rt->body == B_UPLOAD ? s->cfg.max_upload : s->cfg.max_body;
        if (cl && strtoull(cl, NULL, 10) > limit) {
            /* A moderately larger body is read and dropped so that the
             * client, still sending, sees the 413 instead of a reset; a huge
             * one is refused at once and the connection closed. */
            if (strtoull(cl, NULL, 10) - limit > ((size_t)64 << 20) || cr->rt->body == B_UPLOAD) {
                fail(r, 413, "Payload error: the request body (%s bytes) exceeds the limit of %zu bytes", cl, limit);
                return queue_reply(cr);
            }
            cr->too_large = 1;
        }
        if (cr->rt->body == B_UPLOAD && upload_start(cr)) return queue_reply(cr);
        if (r->err) return queue_reply(cr);
        return MHD_YES;
    }
    req *r = &cr->r;
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        cr->in_bytes += n;
        if (cr->done) return MHD_YES;
        if (cr->too_large || cr->rt->body == B_NONE) return MHD_YES; /* dropped */
        if (cr->rt->body == B_UPLOAD) {
            upload_feed(cr, upload_data, n);
            return MHD_YES;
        }
        if (cr->too_large || r->body_len + n > s->cfg.max_body) {
            cr->too_large = 1;
            return MHD_YES;
        }
        if (r->body_len + n + 1 > r->body_cap) {
            size_t cap = r->body_cap ? r->body_cap : 4096;
            while (cap < r->body_len + n + 1) cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b) {
                cr->too_large = 1;
                return MHD_YES;
            }
            r->body = b;
            r->body_cap = cap;
        }
        memcpy(r->body + r->body_len, upload_data, n);
        r->body_len += n;
        r->body[r->body_len] = 0;
        return MHD_YES;
    }
    if (cr->done) return MHD_YES;
    finish(cr);
    return queue_reply(cr);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    srv *s = cls;
    conn_req *cr = *con_cls;
    if (!cr) return;
    *con_cls = NULL;
    req *r = &cr->r;
    double dt = ny_now() - r->t0;
    int status = r->status ? r->status : 500;
    if (!cr->done) status = 499; /* client went away before an answer */
    route_metrics *rm = &s->metrics[cr->route_idx];
    if (status >= 100 && status < 600) atomic_fetch_add_explicit(&rm->status[status], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rm->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rm->sum_us, (uint64_t)(dt * 1e6), memory_order_relaxed);
    for (int k = 0; k < NBUCKETS; k++)
        if (dt <= bucket_le[k]) {
            atomic_fetch_add_explicit(&rm->bucket[k], 1, memory_order_relaxed);
            break;
        }
    if (s->cfg.access_log || status >= 500) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        char addr[64] = "-";
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof addr);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof addr);
        }
        sb j, t;
        sb_init(&j);
        sb_init(&t);
        sb_puts(&j, ",\"method\":");
        sb_json_str(&j, r->method);
        sb_puts(&j, ",\"path\":");
        sb_json_str(&j, r->url);
        sb_printf(&j, ",\"endpoint\":\"%s\",\"status\":%d,\"ms\":%.3f,\"bytes_in\":%zu,\"bytes_out\":%zu,\"remote\":\"%s\"",
                  r->route, status, dt * 1e3, cr->in_bytes, cr->out_bytes, addr);
        sb_printf(&t, "%s %s %d %.3fms in=%zu out=%zu %s", r->method, r->url, status, dt * 1e3, cr->in_bytes,
                  cr->out_bytes, addr);
        if (r->err) {
            sb_puts(&j, ",\"error\":");
            sb_json_str(&j, r->err);
            sb_puts(&t, " error=");
            sb_puts(&t, r->err);
        }
        log_event(s, status >= 500 ? "error" : status >= 400 ? "warn" : "info", "request", j.p, t.p);
        sb_free(&j);
        sb_free(&t);
    }
    upload_free(cr->up);
    vecpool_free(&cr->pool);
    for (int i = 0; i < r->nargs; i++) free(r->args[i]);
    if (r->raw) MHD_destroy_response(r->raw);
    json_decref(r->json);
    free(r->body);
    free(r->err);
    sb_free(&r->out);
    if (cr->counted) atomic_fetch_sub(&s->inflight, 1);
    free(cr);
}

/* ===== Main loop ======================================================== */

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int e = getaddrinfo(host, ps, &hints, &ai);
    if (e || !ai) return ny_error(NY_EINVAL, "cannot resolve host '%s': %s", host, gai_strerror(e));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return NY_OK;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    log_event(cls, "warn", msg, ",\"source\":\"microhttpd\"", "(microhttpd)");
}

int ny_server_run(const ny_server_config *cfg)
{
    srv *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "nearly serve: out of memory\n");
        return 1;
    }
    s->cfg = *cfg;
    s->started = ny_now();
    pthread_mutex_init(&s->log_mu, NULL);
    s->log = stderr;
    int code = 1;
    if (cfg->log_file[0]) {
        s->log = fopen(cfg->log_file, "a");
        if (!s->log) {
            fprintf(stderr, "nearly serve: cannot open log file %s: %s\n", cfg->log_file, strerror(errno));
            free(s);
            return 1;
        }
    }
    if (cfg->snapshots_dir[0]) snprintf(s->snapdir, sizeof s->snapdir, "%s", cfg->snapshots_dir);
    else snprintf(s->snapdir, sizeof s->snapdir, "%s/snapshots", cfg->data_dir);

    /* Signals: block them in every thread (MHD's threads inherit the mask)
     * and take them synchronously with sigwait below. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (mkdir_p(cfg->data_dir)) {
        logf_(s, "error", "cannot create data directory %s: %s", cfg->data_dir, strerror(errno));
        goto out;
    }
    if (mkdir_p(s->snapdir)) {
        logf_(s, "error", "cannot create snapshots directory %s: %s", s->snapdir, strerror(errno));
        goto out;
    }
    int rc = ny_db_open(cfg->data_dir, &s->db);
    if (rc) {
        logf_(s, "error", "cannot open data directory %s: %s", cfg->data_dir, ny_errmsg());
        goto out;
    }
    {
        /* uploads interrupted by a crash leave temporary files behind (the
         * data directory lock is held: no other server uses them) */
        char up[4400];
        snprintf(up, sizeof up, "%s/.uploads", s->snapdir);
        DIR *d = opendir(up);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)))
                if (!strncmp(e->d_name, "upload-", 7)) unlinkat(dirfd(d), e->d_name, 0);
            closedir(d);
        }
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (resolve(cfg->host, cfg->port, &ss, &sl)) {
        logf_(s, "error", "%s", ny_errmsg());
        goto out;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->conn_timeout,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_conns,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                            MHD_OPTION_END);
    if (!s->d) {
        logf_(s, "error", "cannot listen on %s:%d: %s", cfg->host, cfg->port, strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : cfg->port;
    {
        sb extra, text;
        sb_init(&extra);
        sb_init(&text);
        sb_puts(&extra, ",\"host\":");
        sb_json_str(&extra, cfg->host);
        sb_printf(&extra, ",\"port\":%d,\"data_dir\":", port);
        sb_json_str(&extra, cfg->data_dir);
        sb_printf(&extra, ",\"version\":\"%s\",\"auth\":%s,\"simd\":\"%s\"", NEARLY_VERSION,
                  cfg->api_key[0] || cfg->ro_api_key[0] ? "true" : "false", ny_simd_name(ny_simd_active()));
        sb_printf(&text, "http://%s:%d data_dir=%s", cfg->host, port, cfg->data_dir);
        log_event(s, "info", "listening", extra.p, text.p);
        sb_free(&extra);
        sb_free(&text);
    }

    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    logf_(s, "info", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&s->draining, 1);
    MHD_socket lsock = MHD_quiesce_daemon(s->d);
    if (lsock != MHD_INVALID_SOCKET) close(lsock);
    /* Let the requests in flight finish (bounded by the connection timeout). */
    double until = ny_now() + (cfg->conn_timeout > 30 ? 30 : cfg->conn_timeout);
    while (atomic_load(&s->inflight) > 0 && ny_now() < until) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(s->d);
    s->d = NULL;
    code = 0;
out:
    if (s->d) MHD_stop_daemon(s->d);
    if (s->db) {
        ny_db_close(s->db);
        logf_(s, "info", "data directory closed");
    }
    fflush(s->log);
    if (s->log != stderr) {
        fsync(fileno(s->log));
        fclose(s->log);
    } else {
        fsync(STDERR_FILENO); /* harmless on a pipe or terminal */
    }
    pthread_mutex_destroy(&s->log_mu);
    free(s);
    return code;
}
