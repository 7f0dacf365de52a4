/*
 * api_coll.c -- collections, aliases, payload indexes and snapshots.
 *
 * Snapshots live in <snapshots_dir>/<collection>/<name>.snapshot, with the
 * hex SHA-256 in <name>.snapshot.checksum.  Every name that reaches a path
 * is checked against [A-Za-z0-9_.-] (no '/', no leading '.'), and recover
 * from a location only reads files whose real path is inside the snapshots
 * directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/server.h"
#include "server/sha256.h"

/* ===== Collections ====================================================== */

int h_collections_list(req *r)
{
    char *list = NULL;
    int rc = ny_db_list_collections(srv_db(r->s), &list);
    if (rc) return fail_rc(r, rc, "listing collections");
    json_t *names = json_loads(list, 0, NULL);
    ny_free(list);
    if (!json_is_array(names)) {
        json_decref(names);
        return fail(r, 500, "Service internal error: bad collection list");
    }
    sb *o = &r->out;
    r->status = 200;
    sb_puts(o, "{\"collections\":[");
    for (size_t i = 0; i < json_array_size(names); i++) {
        if (i) sb_putc(o, ',');
        sb_puts(o, "{\"name\":");
        sb_json_str(o, json_string_value(json_array_get(names, i)));
        sb_putc(o, '}');
    }
    sb_puts(o, "]}");
    json_decref(names);
    return 0;
}

int h_collection_get(req *r)
{
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    char *info = NULL;
    int rc = ny_collection_info_json(c, &info);
    ny_collection_release(c);
    if (rc) return fail_rc(r, rc, "reading collection info");
    reply_raw(r, info);
    ny_free(info);
    return 0;
}

static int check_name(req *r, const char *name)
{
    if (valid_name(name)) return 0;
    fail(r, 422,
         "Validation error in path parameters: [name: collection name must be 1 to 255 characters of "
         "[A-Za-z0-9_.-], not starting with '.', got '%.100s']",
         name);
    return -1;
}

int h_collection_create(req *r)
{
    const char *name = r->args[0];
    if (check_name(r, name)) return 0;
    json_t *b = req_body(r);
    if (!b) return 0;
    static const char *const allowed[] = {"vectors", "shard_number", "sharding_method", "replication_factor",
                                          "write_consistency_factor", "on_disk_payload", "hnsw_config",
                                          "wal_config", "optimizers_config", "quantization_config",
                                          "sparse_vectors", "strict_mode_config", "metadata", "init_from", NULL};
    if (check_fields(r, b, NULL, allowed)) return 0;
    /* Validation Qdrant answers with 422 (the rest is the engine's). */
    json_t *vec = json_object_get(b, "vectors");
    json_t *size = json_is_object(vec) ? json_object_get(vec, "size") : NULL;
    if (json_is_integer(size) && (json_integer_value(size) < 1 || json_integer_value(size) > 65536))
        return fail(r, 422, "Validation error in JSON body: [vectors.size: value %lld invalid, must be from 1 to 65536]",
                    (long long)json_integer_value(size));
    json_t *hnsw = json_object_get(b, "hnsw_config");
    json_t *ef = json_is_object(hnsw) ? json_object_get(hnsw, "ef_construct") : NULL;
    if (json_is_integer(ef) && json_integer_value(ef) < 4)
        return fail(r, 422, "Validation error in JSON body: [hnsw_config.ef_construct: value %lld invalid, must be 4 or larger]",
                    (long long)json_integer_value(ef));
    char *text = json_text(b);
    if (!text) return fail(r, 503, "Service internal error: out of memory");
    int rc = ny_db_create_collection(srv_db(r->s), name, text);
    free(text);
    if (rc == NY_EEXIST) return fail(r, 409, "Wrong input: Collection `%s` already exists!", name);
    if (rc) return fail_rc(r, rc, "creating the collection");
    return reply_raw(r, "true");
}

int h_collection_update(req *r)
{
    json_t *b = req_body(r);
    if (!b) return 0;
    static const char *const allowed[] = {"vectors", "optimizers_config", "params", "hnsw_config",
                                          "quantization_config", "sparse_vectors", "strict_mode_config",
                                          "metadata", NULL};
    if (check_fields(r, b, NULL, allowed)) return 0;
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    char *text = json_text(b);
    int rc = text ? ny_collection_update_config(c, text) : NY_ENOMEM;
    free(text);
    ny_collection_release(c);
    if (rc) return fail_rc(r, rc, "updating the collection");
    return reply_raw(r, "true");
}

int h_collection_delete(req *r)
{
    /* Qdrant answers 200 with `false` when there was nothing to delete;
     * clients' recreate_collection relies on it. */
    int rc = ny_db_drop_collection(srv_db(r->s), r->args[0]);
    if (rc == NY_ENOTFOUND || (rc == NY_EINVAL && !valid_name(r->args[0]))) return reply_raw(r, "false");
    if (rc) return fail_rc(r, rc, "deleting the collection");
    return reply_raw(r, "true");
}

int h_collection_exists(req *r)
{
    ny_collection *c = NULL;
    int rc = ny_db_get_collection(srv_db(r->s), r->args[0], &c);
    if (rc == NY_OK) {
        /* an alias is not a collection */
        int same = !strcmp(ny_collection_name(c), r->args[0]);
        ny_collection_release(c);
        return reply_raw(r, same ? "{\"exists\":true}" : "{\"exists\":false}");
    }
    if (rc == NY_ENOTFOUND || rc == NY_EINVAL) return reply_raw(r, "{\"exists\":false}");
    return fail_rc(r, rc, "looking up the collection");
}

/* ===== Aliases ========================================================== */

static int alias_json(req *r, const char *collection)
{
    char *list = NULL;
    int rc = ny_db_alias_list(srv_db(r->s), collection, &list);
    if (rc) return fail_rc(r, rc, "listing aliases");
    r->status = 200;
    sb_puts(&r->out, "{\"aliases\":");
    sb_puts(&r->out, list);
    sb_puts(&r->out, "}");
    ny_free(list);
    return 0;
}

int h_aliases_list(req *r)
{
    return alias_json(r, NULL);
}

int h_collection_aliases(req *r)
{
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    ny_collection_release(c);
    return alias_json(r, r->args[0]);
}

typedef struct alias_op {
    int kind; /* 0 create, 1 delete, 2 rename */
    const char *a, *b;
    char old_target[256]; /* delete: the collection, for rollback */
} alias_op;

static int alias_apply(ny_db *db, alias_op *op)
{
    switch (op->kind) {
    case 0: return ny_db_alias_create(db, op->a, op->b);
    case 1: return ny_db_alias_delete(db, op->a);
    default: return ny_db_alias_rename(db, op->a, op->b);
    }
}

static void alias_undo(ny_db *db, const alias_op *op)
{
    switch (op->kind) {
    case 0: ny_db_alias_delete(db, op->a); break;
    case 1: if (op->old_target[0]) ny_db_alias_create(db, op->a, op->old_target); break;
    default: ny_db_alias_rename(db, op->b, op->a); break;
    }
}

static const char *alias_target(ny_db *db, const char *alias, char *buf, size_t n)
{
    char *list = NULL;
    buf[0] = 0;
    if (ny_db_alias_list(db, NULL, &list)) return buf;
    json_t *v = json_loads(list, 0, NULL);
    ny_free(list);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i);
        const char *an = json_string_value(json_object_get(e, "alias_name"));
        const char *cn = json_string_value(json_object_get(e, "collection_name"));
        if (an && cn && !strcmp(an, alias)) snprintf(buf, n, "%s", cn);
    }
    json_decref(v);
    return buf;
}

/* Actions are applied in order; if one fails, those already applied are
 * undone, so the request takes effect entirely or not at all. */
int h_aliases_update(req *r)
{
    json_t *b = req_body(r);
    if (!b) return 0;
    static const char *const allowed[] = {"actions", NULL};
    if (check_fields(r, b, NULL, allowed)) return 0;
    json_t *actions = json_object_get(b, "actions");
    if (!json_is_array(actions)) return fail(r, 400, "Json deserialize error: missing field `actions` (a list)");
    size_t n = json_array_size(actions);
    alias_op *ops = calloc(n ? n : 1, sizeof *ops);
    if (!ops) return fail(r, 503, "Service internal error: out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(actions, i);
        json_t *x;
        if (!json_is_object(a) || json_object_size(a) != 1) {
            free(ops);
            return fail(r, 400, "Json deserialize error: actions[%zu]: expected one of `create_alias`, "
                                "`delete_alias`, `rename_alias`", i);
        }
        if ((x = json_object_get(a, "create_alias"))) {
            ops[i].kind = 0;
            ops[i].a = json_string_value(json_object_get(x, "alias_name"));
            ops[i].b = json_string_value(json_object_get(x, "collection_name"));
        } else if ((x = json_object_get(a, "delete_alias"))) {
            ops[i].kind = 1;
            ops[i].a = json_string_value(json_object_get(x, "alias_name"));
            ops[i].b = "";
        } else if ((x = json_object_get(a, "rename_alias"))) {
            ops[i].kind = 2;
            ops[i].a = json_string_value(json_object_get(x, "old_alias_name"));
            ops[i].b = json_string_value(json_object_get(x, "new_alias_name"));
        } else {
            free(ops);
            return fail(r, 400, "Json deserialize error: actions[%zu]: unknown action `%s`, expected one of "
                                "`create_alias`, `delete_alias`, `rename_alias`",
                        i, json_object_iter_key(json_object_iter(a)));
        }
        if (!ops[i].a || !ops[i].b) {
            free(ops);
            return fail(r, 400, "Json deserialize error: actions[%zu]: missing alias or collection name", i);
        }
    }
    ny_db *db = srv_db(r->s);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind == 1) alias_target(db, ops[i].a, ops[i].old_target, sizeof ops[i].old_target);
        int rc = alias_apply(db, &ops[i]);
        if (rc) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", ny_errmsg());
            for (size_t j = i; j-- > 0;) alias_undo(db, &ops[j]);
            free(ops);
            int st = rc == NY_ENOTFOUND ? 404 : rc == NY_EEXIST ? 409 : rc == NY_EINVAL ? 400 : 500;
            return fail(r, st, "%s: actions[%zu]: %s", st == 404 ? "Not found" : st == 500 ? "Service internal error" : "Wrong input", i, msg);
        }
    }
    free(ops);
    return reply_raw(r, "true");
}

/* ===== Payload indexes ================================================== */

int h_index_create(req *r)
{
    json_t *b = req_body(r);
    if (!b) return 0;
    static const char *const allowed[] = {"field_name", "field_schema", NULL};
    if (check_fields(r, b, NULL, allowed)) return 0;
    int wait = req_wait(r);
    if (wait < 0) return 0;
    const char *field = json_string_value(json_object_get(b, "field_name"));
    if (!field) return fail(r, 400, "Json deserialize error: missing field `field_name`");
    json_t *schema = json_object_get(b, "field_schema");
    if (!schema || json_is_null(schema))
        return fail(r, 400, "Wrong input: `field_schema` is required (e.g. \"keyword\", \"integer\", \"float\")");
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    char *text = json_text(schema);
    int rc = text ? ny_collection_create_payload_index(c, field, text, wait) : NY_ENOMEM;
    free(text);
    ny_collection_release(c);
    if (rc) return fail_rc(r, rc, "creating the payload index");
    return reply_update(r, wait);
}

int h_index_delete(req *r)
{
    int wait = req_wait(r);
    if (wait < 0) return 0;
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    int rc = ny_collection_delete_payload_index(c, r->args[1], wait);
    ny_collection_release(c);
    if (rc) return fail_rc(r, rc, "deleting the payload index");
    return reply_update(r, wait);
}

/* ===== Snapshots ======================================================== */

static int coll_snapdir(req *r, const char *name, char *out, size_t n, int create)
{
    if (!valid_name(name)) return fail(r, 404, "Not found: Collection `%.100s` doesn't exist!", name), -1;
    snprintf(out, n, "%s/%s", srv_snapshots_dir(r->s), name);
    if (create && mkdir(out, 0755) && errno != EEXIST)
        return fail(r, 500, "Service internal error: cannot create %s: %s", out, strerror(errno)), -1;
    return 0;
}

static void describe(sb *o, const char *dir, const char *file)
{
    char path[PATH_MAX + 64], ck[80] = "";
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (stat(path, &st)) st.st_size = 0, st.st_mtime = 0;
    snprintf(path, sizeof path, "%s/%s.checksum", dir, file);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(ck, sizeof ck, f)) ck[0] = 0;
        fclose(f);
        ck[strcspn(ck, " \n")] = 0;
    }
    struct tm tm;
    char ts[32];
    gmtime_r(&st.st_mtime, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    sb_puts(o, "{\"name\":");
    sb_json_str(o, file);
    sb_printf(o, ",\"creation_time\":\"%s\",\"size\":%lld,\"checksum\":", ts, (long long)st.st_size);
    if (ck[0]) sb_json_str(o, ck);
    else sb_puts(o, "null");
    sb_putc(o, '}');
}

int h_snapshot_create(req *r)
{
    int wait = req_wait(r);
    if (wait < 0) return 0;
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    char dir[PATH_MAX];
    if (coll_snapdir(r, ny_collection_name(c), dir, sizeof dir, 1)) {
        ny_collection_release(c);
        return 0;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char stamp[64], name[400], path[PATH_MAX + 512], tmp[PATH_MAX + 600];
    strftime(stamp, sizeof stamp, "%Y-%m-%d-%H-%M-%S", &tm);
    /* at most 200 bytes of the collection name: file names end at 255 */
    snprintf(name, sizeof name, "%.200s-%llu-%s.snapshot", ny_collection_name(c),
             (unsigned long long)now.tv_sec * 1000000ull + (unsigned long long)now.tv_nsec / 1000, stamp);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    int rc = ny_collection_snapshot(c, tmp);
    ny_collection_release(c);
    if (rc) {
        unlink(tmp);
        return fail_rc(r, rc, "creating the snapshot");
    }
    char hex[65];
    if (sha256_file(tmp, hex)) {
        unlink(tmp);
        return fail(r, 500, "Service internal error: reading the snapshot: %s", strerror(errno));
    }
    char ckpath[PATH_MAX + 600];
    snprintf(ckpath, sizeof ckpath, "%s.checksum", path);
    FILE *f = fopen(ckpath, "w");
    if (!f || fprintf(f, "%s\n", hex) < 0 || fclose(f)) {
        unlink(tmp);
        return fail(r, 500, "Service internal error: writing the checksum: %s", strerror(errno));
    }
    if (rename(tmp, path)) {
        unlink(tmp);
        unlink(ckpath);
        return fail(r, 500, "Service internal error: renaming the snapshot: %s", strerror(errno));
    }
    r->status = 200;
    describe(&r->out, dir, name);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int h_snapshot_list(req *r)
{
    ny_collection *c = req_collection(r);
    if (!c) return 0;
    char dir[PATH_MAX];
    int bad = coll_snapdir(r, ny_collection_name(c), dir, sizeof dir, 0);
    ny_collection_release(c);
    if (bad) return 0;
    r->status = 200;
    sb_putc(&r->out, '[');
    DIR *d = opendir(dir);
    if (d) {
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!valid_snapshot_name(e->d_name)) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                char **t = realloc(names, cap * sizeof *t);
                if (!t) break;
                names = t;
            }
            names[n] = strdup(e->d_name);
            if (names[n]) n++;
        }
        closedir(d);
        if (n) qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n; i++) {
            if (i) sb_putc(&r->out, ',');
            describe(&r->out, dir, names[i]);
            free(names[i]);
        }
        free(names);
    }
    sb_putc(&r->out, ']');
    return 0;
}

static int snapshot_path(req *r, char *path, size_t n)
{
    char dir[PATH_MAX], name[256];
    /* an alias names its collection's snapshots; a dropped collection's
     * snapshots stay reachable under its name */
    snprintf(name, sizeof name, "%s", r->args[0]);
    ny_collection *c = NULL;
    if (ny_db_get_collection(srv_db(r->s), r->args[0], &c) == NY_OK) {
        snprintf(name, sizeof name, "%s", ny_collection_name(c));
        ny_collection_release(c);
    }
    if (coll_snapdir(r, name, dir, sizeof dir, 0)) return -1;
    if (!valid_snapshot_name(r->args[1])) {
        fail(r, 404, "Not found: Snapshot `%.100s` not found (names end in .snapshot and use [A-Za-z0-9_.-])",
             r->args[1]);
        return -1;
    }
    snprintf(path, n, "%s/%s", dir, r->args[1]);
    return 0;
}

int h_snapshot_get(req *r)
{
    char path[PATH_MAX + 300];
    if (snapshot_path(r, path, sizeof path)) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        if (fd >= 0) close(fd);
        return fail(r, 404, "Not found: Snapshot `%s` of collection `%s` not found", r->args[1], r->args[0]);
    }
    r->raw = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
    if (!r->raw) {
        close(fd);
        return fail(r, 503, "Service internal error: out of memory");
    }
    MHD_add_response_header(r->raw, "Content-Type", "application/octet-stream");
    char cd[400];
    snprintf(cd, sizeof cd, "attachment; filename=\"%s\"", r->args[1]);
    MHD_add_response_header(r->raw, "Content-Disposition", cd);
    r->status = 200;
    return 0;
}

int h_snapshot_delete(req *r)
{
    int wait = req_wait(r);
    if (wait < 0) return 0;
    char path[PATH_MAX + 300], ck[PATH_MAX + 320];
    if (snapshot_path(r, path, sizeof path)) return 0;
    if (unlink(path)) {
        if (errno == ENOENT)
            return fail(r, 404, "Not found: Snapshot `%s` of collection `%s` not found", r->args[1], r->args[0]);
        return fail(r, 500, "Service internal error: deleting the snapshot: %s", strerror(errno));
    }
    snprintf(ck, sizeof ck, "%s.checksum", path);
    unlink(ck);
    return reply_raw(r, "true");
}

/* Restores collection args[0] from `path` after checking the checksum. */
static int restore(req *r, const char *path, const char *checksum)
{
    const char *name = r->args[0];
    if (check_name(r, name)) return 0;
    if (checksum && *checksum) {
        char hex[65];
        if (sha256_file(path, hex)) return fail(r, 500, "Service internal error: reading the snapshot: %s", strerror(errno));
        if (strcasecmp(hex, checksum))
            return fail(r, 400, "Wrong input: Snapshot checksum mismatch: expected %.64s, got %s", checksum, hex);
    }
    int rc = ny_db_restore_snapshot(srv_db(r->s), name, path, 1);
    if (rc == NY_ECORRUPT || rc == NY_EINVAL) return fail(r, 400, "Wrong input: invalid snapshot: %s", ny_errmsg());
    if (rc) return fail_rc(r, rc, "recovering the snapshot");
    return reply_raw(r, "true");
}

int h_snapshot_recover(req *r)
{
    json_t *b = req_body(r);
    if (!b) return 0;
    static const char *const allowed[] = {"location", "priority", "checksum", "api_key", NULL};
    if (check_fields(r, b, NULL, allowed)) return 0;
    if (req_wait(r) < 0) return 0;
    const char *loc = json_string_value(json_object_get(b, "location"));
    if (!loc) return fail(r, 400, "Json deserialize error: missing field `location`");
    json_t *ck = json_object_get(b, "checksum");
    if (ck && !json_is_null(ck) && !json_is_string(ck))
        return fail(r, 400, "Json deserialize error: `checksum` must be a string");
    json_t *pr = json_object_get(b, "priority");
    if (pr && !json_is_null(pr)) {
        const char *p = json_string_value(pr);
        if (!p || (strcmp(p, "no_sync") && strcmp(p, "snapshot") && strcmp(p, "replica")))
            return fail(r, 400, "Json deserialize error: unknown variant of `priority`, expected `no_sync`, "
                                "`snapshot` or `replica`");
    }
    const char *p = loc;
    if (!strncmp(p, "file://", 7)) p += 7;
    else if (strstr(p, "://"))
        return fail(r, 400, "Wrong input: snapshot location `%.200s`: only file:// locations inside the snapshots "
                            "directory are supported (upload the file to /collections/%s/snapshots/upload instead)",
                    loc, r->args[0]);
    char want[PATH_MAX + 300];
    if (p[0] != '/') { /* relative: a snapshot name of this collection */
        if (!valid_snapshot_name(p) || !valid_name(r->args[0]))
            return fail(r, 400, "Wrong input: snapshot location `%.200s` is not a file:// URL or a snapshot name", loc);
        snprintf(want, sizeof want, "%s/%s/%s", srv_snapshots_dir(r->s), r->args[0], p);
        p = want;
    }
    char real[PATH_MAX], base[PATH_MAX];
    if (!realpath(srv_snapshots_dir(r->s), base))
        return fail(r, 500, "Service internal error: snapshots directory: %s", strerror(errno));
    if (!realpath(p, real)) return fail(r, 404, "Not found: snapshot file `%.200s`: %s", loc, strerror(errno));
    size_t bl = strlen(base);
    if (strncmp(real, base, bl) || real[bl] != '/')
        return fail(r, 403, "Forbidden: snapshot location `%.200s` is outside the snapshots directory", loc);
    struct stat st;
    if (stat(real, &st) || !S_ISREG(st.st_mode))
        return fail(r, 400, "Wrong input: snapshot location `%.200s` is not a regular file", loc);
    return restore(r, real, json_string_value(ck));
}

int h_snapshot_upload(req *r)
{
    if (req_wait(r) < 0) return 0;
    const char *pr = req_arg(r, "priority");
    if (pr && strcmp(pr, "no_sync") && strcmp(pr, "snapshot") && strcmp(pr, "replica"))
        return fail(r, 400, "Format error in query string: priority: expected no_sync, snapshot or replica");
    return restore(r, r->body, req_arg(r, "checksum"));
}
