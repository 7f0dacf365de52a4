/*
 * config.c -- settings of `nearly serve`.
 *
 * Every setting has a dotted key in Qdrant's config layout; the same key is
 * reachable from a config file (JSON, or the block-mapping subset of YAML
 * that Qdrant's config.yaml uses), from Qdrant's environment variables
 * (QDRANT__SERVICE__API_KEY = service.api_key) and from NEARLY_* variables.
 * Precedence: defaults < file < environment < command line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "server/server.h"

void ny_server_config_defaults(ny_server_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 6333;
    snprintf(c->data_dir, sizeof c->data_dir, "./data");
    c->max_body = 32u << 20;
    c->max_upload = (size_t)16 << 30;
    c->conn_timeout = 60;
    c->max_conns = 256;
    c->log_json = 1;
    c->access_log = 1;
}

static int set_str(char *dst, size_t cap, const char *key, const char *v)
{
    if (strlen(v) >= cap) return ny_error(NY_EINVAL, "setting %s: value too long", key);
    memcpy(dst, v, strlen(v) + 1);
    return NY_OK;
}

static int parse_u64(const char *key, const char *v, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*v)) v++;
    if (*v == '-' || !*v) return ny_error(NY_EINVAL, "setting %s: '%s' is not a non-negative integer", key, v);
    unsigned long long x = strtoull(v, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (errno || *end) return ny_error(NY_EINVAL, "setting %s: '%s' is not a non-negative integer", key, v);
    if (x < lo || x > hi) return ny_error(NY_EINVAL, "setting %s: %llu is outside [%llu, %llu]", key, x, lo, hi);
    *out = x;
    return NY_OK;
}

static int parse_bool(const char *key, const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) *out = 0;
    else return ny_error(NY_EINVAL, "setting %s: '%s' is not a boolean", key, v);
    return NY_OK;
}

int ny_server_config_set(ny_server_config *c, const char *key, const char *v)
{
    unsigned long long x;
    int rc;
    if (!strcmp(key, "service.host")) return set_str(c->host, sizeof c->host, key, v);
    if (!strcmp(key, "service.http_port")) {
        if ((rc = parse_u64(key, v, 0, 65535, &x))) return rc;
        c->port = (int)x;
        return NY_OK;
    }
    if (!strcmp(key, "service.api_key")) return set_str(c->api_key, sizeof c->api_key, key, v);
    if (!strcmp(key, "service.read_only_api_key")) return set_str(c->ro_api_key, sizeof c->ro_api_key, key, v);
    if (!strcmp(key, "service.max_request_size_mb")) {
        if ((rc = parse_u64(key, v, 1, 1 << 20, &x))) return rc;
        c->max_body = (size_t)x << 20;
        return NY_OK;
    }
    if (!strcmp(key, "service.max_upload_size_mb")) {
        if ((rc = parse_u64(key, v, 1, 1 << 24, &x))) return rc;
        c->max_upload = (size_t)x << 20;
        return NY_OK;
    }
    if (!strcmp(key, "service.timeout_sec") || !strcmp(key, "service.connection_timeout_sec")) {
        if ((rc = parse_u64(key, v, 1, 86400, &x))) return rc;
        c->conn_timeout = (unsigned)x;
        return NY_OK;
    }
    if (!strcmp(key, "service.max_connections")) {
        if ((rc = parse_u64(key, v, 1, 100000, &x))) return rc;
        c->max_conns = (unsigned)x;
        return NY_OK;
    }
    if (!strcmp(key, "storage.storage_path")) return set_str(c->data_dir, sizeof c->data_dir, key, v);
    if (!strcmp(key, "storage.snapshots_path")) return set_str(c->snapshots_dir, sizeof c->snapshots_dir, key, v);
    if (!strcmp(key, "logger.file")) return set_str(c->log_file, sizeof c->log_file, key, v);
    if (!strcmp(key, "logger.format")) {
        if (!strcasecmp(v, "json")) c->log_json = 1;
        else if (!strcasecmp(v, "text")) c->log_json = 0;
        else return ny_error(NY_EINVAL, "setting %s: '%s' is not json or text", key, v);
        return NY_OK;
    }
    if (!strcmp(key, "logger.access_log")) return parse_bool(key, v, &c->access_log);
    return ny_error(NY_ENOTFOUND, "unknown setting '%s'", key);
}

/* Settings of Qdrant's config that have no meaning here are accepted and
 * ignored, so that an existing config.yaml can be reused. */
static int set_lenient(ny_server_config *c, const char *key, const char *v)
{
    int rc = ny_server_config_set(c, key, v);
    if (rc == NY_ENOTFOUND) {
        fprintf(stderr, "nearly serve: ignoring setting '%s'\n", key);
        return NY_OK;
    }
    return rc;
}

static int load_json(ny_server_config *c, json_t *v, char *prefix, size_t plen)
{
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        size_t n = strlen(prefix);
        if (n + strlen(key) + 2 > plen) return ny_error(NY_EINVAL, "config: key too long");
        snprintf(prefix + n, plen - n, "%s%s", n ? "." : "", key);
        int rc = NY_OK;
        char tmp[64];
        if (json_is_object(val)) rc = load_json(c, val, prefix, plen);
        else if (json_is_string(val)) rc = set_lenient(c, prefix, json_string_value(val));
        else if (json_is_integer(val)) {
            snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(val));
            rc = set_lenient(c, prefix, tmp);
        } else if (json_is_boolean(val)) rc = set_lenient(c, prefix, json_is_true(val) ? "true" : "false");
        else if (!json_is_null(val)) rc = set_lenient(c, prefix, "");
        prefix[n] = 0;
        if (rc) return rc;
    }
    return NY_OK;
}

/* YAML subset: "key: value" lines, nesting by indentation, '#' comments,
 * quoted or bare scalars.  Lists and flow collections are not used by the
 * settings read here and are reported as errors if they hold one of them. */
static int load_yaml(ny_server_config *c, char *text)
{
    char keys[16][128];
    int indents[16];
    int depth = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *hash = NULL;
        int q = 0;
        for (char *p = line; *p; p++) {
            if (*p == '"' || *p == '\'') q = !q;
            if (*p == '#' && !q && (p == line || isspace((unsigned char)p[-1]))) {
                hash = p;
                break;
            }
        }
        if (hash) *hash = 0;
        size_t len = strlen(line);
        while (len && isspace((unsigned char)line[len - 1])) line[--len] = 0;
        int ind = 0;
        while (line[ind] == ' ') ind++;
        if (!line[ind]) continue;
        if (line[ind] == '-' || line[ind] == '\t') continue; /* list items: not settings we read */
        char *colon = strchr(line + ind, ':');
        if (!colon) return ny_error(NY_EINVAL, "config line %d: expected 'key: value'", lineno);
        *colon = 0;
        char *k = line + ind, *v = colon + 1;
        while (isspace((unsigned char)*v)) v++;
        while (depth > 0 && indents[depth - 1] >= ind) depth--;
        if (depth >= 16 || strlen(k) >= 128) return ny_error(NY_EINVAL, "config line %d: nesting too deep", lineno);
        snprintf(keys[depth], sizeof keys[depth], "%s", k);
        indents[depth] = ind;
        if (!*v) {
            depth++;
            continue;
        }
        size_t vl = strlen(v);
        if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
            v[vl - 1] = 0;
            v++;
        } else if (!strcmp(v, "null") || !strcmp(v, "~")) {
            continue;
        }
        char full[1024] = "";
        for (int i = 0; i <= depth; i++) {
            strncat(full, keys[i], sizeof full - strlen(full) - 2);
            if (i < depth) strcat(full, ".");
        }
        int rc = set_lenient(c, full, v);
        if (rc) return rc;
    }
    return NY_OK;
}

int ny_server_config_load_file(ny_server_config *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return ny_error_errno(NY_EIO, "config file %s", path);
    char *text = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return ny_error(NY_ENOMEM, "config file %s: out of memory", path);
            }
            text = t;
        }
        size_t k = fread(text + n, 1, 4096, f);
        n += k;
        if (k == 0) break;
        if (n > (1u << 20)) {
            free(text);
            fclose(f);
            return ny_error(NY_EINVAL, "config file %s: larger than 1 MiB", path);
        }
    }
    fclose(f);
    text[n] = 0;
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    int rc;
    if (*p == '{') {
        json_error_t e;
        json_t *v = json_loads(text, 0, &e);
        if (!v) rc = ny_error(NY_EINVAL, "config file %s: line %d: %s", path, e.line, e.text);
        else {
            char prefix[1024] = "";
            rc = load_json(c, v, prefix, sizeof prefix);
            json_decref(v);
        }
    } else {
        rc = load_yaml(c, text);
    }
    free(text);
    return rc;
}

int ny_server_config_load_env(ny_server_config *c)
{
    static const struct {
        const char *env, *key;
    } map[] = {
        {"QDRANT__SERVICE__HOST", "service.host"},
        {"QDRANT__SERVICE__HTTP_PORT", "service.http_port"},
        {"QDRANT__SERVICE__API_KEY", "service.api_key"},
        {"QDRANT__SERVICE__READ_ONLY_API_KEY", "service.read_only_api_key"},
        {"QDRANT__SERVICE__MAX_REQUEST_SIZE_MB", "service.max_request_size_mb"},
        {"QDRANT__STORAGE__STORAGE_PATH", "storage.storage_path"},
        {"QDRANT__STORAGE__SNAPSHOTS_PATH", "storage.snapshots_path"},
        {"NEARLY_HOST", "service.host"},
        {"NEARLY_PORT", "service.http_port"},
        {"NEARLY_API_KEY", "service.api_key"},
        {"NEARLY_READ_ONLY_API_KEY", "service.read_only_api_key"},
        {"NEARLY_MAX_REQUEST_SIZE_MB", "service.max_request_size_mb"},
        {"NEARLY_MAX_UPLOAD_SIZE_MB", "service.max_upload_size_mb"},
        {"NEARLY_TIMEOUT_SEC", "service.timeout_sec"},
        {"NEARLY_MAX_CONNECTIONS", "service.max_connections"},
        {"NEARLY_DATA_DIR", "storage.storage_path"},
        {"NEARLY_SNAPSHOTS_DIR", "storage.snapshots_path"},
        {"NEARLY_LOG_FILE", "logger.file"},
        {"NEARLY_LOG_FORMAT", "logger.format"},
        {"NEARLY_ACCESS_LOG", "logger.access_log"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = getenv(map[i].env);
        if (!v) continue;
        int rc = ny_server_config_set(c, map[i].key, v);
        if (rc) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", ny_errmsg());
            return ny_error(rc, "environment %s: %s", map[i].env, msg);
        }
    }
    return NY_OK;
}
