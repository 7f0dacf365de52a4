/*
 * config.c -- collection configuration: Qdrant's CreateCollection and
 * UpdateCollection bodies, validated and normalised into the
 * CollectionConfig shape that ny_collection_info_json reports.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collection/coll.h"
#include "quant/quant.h"
#include "storage/fileio.h"

int ny_check_name(const char *name, const char *what)
{
    if (!name || !*name) return ny_error(NY_EINVAL, "%s name is empty", what);
    size_t n = strlen(name);
    if (n > 255) return ny_error(NY_EINVAL, "%s name is longer than 255 characters", what);
    if (name[0] == '.') return ny_error(NY_EINVAL, "%s name '%s' must not start with '.'", what, name);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return ny_error(NY_EINVAL, "%s name '%.64s' has an invalid character '%c' (allowed: A-Z a-z 0-9 _ . -)",
                            what, name, ch);
    }
    return NY_OK;
}

/* ---- field validation helpers.  Each returns NY_OK or NY_EINVAL with a
 * message naming "section.field". */

static int get_uint(json_t *obj, const char *sec, const char *key, long long min, long long max,
                    int nullable, json_t *dst, long long def)
{
    json_t *v = json_object_get(obj, key);
    if (!v || (json_is_null(v) && nullable)) {
        if (def >= 0) json_object_set_new(dst, key, json_integer(def));
        else if (def == -2) json_object_set_new(dst, key, json_null());
        return NY_OK;
    }
    if (!json_is_integer(v))
        return ny_error(NY_EINVAL, "%s.%s: expected an integer", sec, key);
    long long x = json_integer_value(v);
    if (x < min || x > max)
        return ny_error(NY_EINVAL, "%s.%s: %lld is out of range [%lld, %lld]", sec, key, x, min, max);
    json_object_set_new(dst, key, json_integer(x));
    return NY_OK;
}

static int get_bool(json_t *obj, const char *sec, const char *key, json_t *dst, int def)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (def >= 0) json_object_set_new(dst, key, json_boolean(def));
        return NY_OK;
    }
    if (!json_is_boolean(v)) return ny_error(NY_EINVAL, "%s.%s: expected true or false", sec, key);
    json_object_set_new(dst, key, json_boolean(json_is_true(v)));
    return NY_OK;
}

static int get_num(json_t *obj, const char *sec, const char *key, double min, double max, json_t *dst, double def)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (!isnan(def)) json_object_set_new(dst, key, json_real(def));
        return NY_OK;
    }
    if (!json_is_number(v)) return ny_error(NY_EINVAL, "%s.%s: expected a number", sec, key);
    double x = json_number_value(v);
    if (!(x >= min && x <= max)) return ny_error(NY_EINVAL, "%s.%s: %g is out of range [%g, %g]", sec, key, x, min, max);
    json_object_set_new(dst, key, json_real(x));
    return NY_OK;
}

static int section(json_t *body, const char *key, json_t **out)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v)) return NY_OK;
    if (!json_is_object(v)) return ny_error(NY_EINVAL, "%s: expected an object", key);
    *out = v;
    return NY_OK;
}

#define TRY(x) do { int rc_ = (x); if (rc_ != NY_OK) return rc_; } while (0)

static const char *const distances[] = {"Cosine", "Euclid", "Dot"};

static int parse_distance(json_t *v, const char *sec, ny_metric *m, const char **name)
{
    if (!json_is_string(v)) return ny_error(NY_EINVAL, "%s.distance: expected one of \"Cosine\", \"Euclid\", \"Dot\"", sec);
    const char *s = json_string_value(v);
    if (!strcmp(s, "Cosine")) *m = NY_COSINE, *name = distances[0];
    else if (!strcmp(s, "Euclid")) *m = NY_L2, *name = distances[1];
    else if (!strcmp(s, "Dot")) *m = NY_DOT, *name = distances[2];
    else if (!strcmp(s, "Manhattan"))
        return ny_error(NY_EINVAL, "%s.distance: \"Manhattan\" is not supported by Nearly (use Cosine, Euclid or Dot)", sec);
    else return ny_error(NY_EINVAL, "%s.distance: unknown distance \"%.40s\" (expected Cosine, Euclid or Dot)", sec, s);
    return NY_OK;
}

/* HnswConfigDiff fields into dst (defaults applied when `defaults`). */
static int hnsw_fields(json_t *src, const char *sec, json_t *dst, int defaults)
{
    json_t *empty = json_object();
    json_t *s = src ? src : empty;
    int rc = NY_OK;
    if (rc == NY_OK) rc = get_uint(s, sec, "m", 0, 512, 1, dst, defaults ? 16 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "ef_construct", 4, 100000, 1, dst, defaults ? 100 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "full_scan_threshold", 0, 1LL << 40, 1, dst, defaults ? 10000 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "max_indexing_threads", 0, 4096, 1, dst, defaults ? 0 : -1);
    if (rc == NY_OK) rc = get_bool(s, sec, "on_disk", dst, defaults ? 0 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "payload_m", 0, 512, 1, dst, -1);
    if (rc == NY_OK) {
        json_t *m = json_object_get(dst, "m");
        if (m && json_integer_value(m) == 1)
            rc = ny_error(NY_EINVAL, "%s.m: must be 0 (no graph) or at least 2", sec);
    }
    json_decref(empty);
    return rc;
}

static int optimizer_fields(json_t *s, const char *sec, json_t *dst, int defaults)
{
    json_t *empty = json_object();
    if (!s) s = empty;
    int rc = get_num(s, sec, "deleted_threshold", 0, 1, dst, defaults ? 0.2 : NAN);
    if (rc == NY_OK) rc = get_uint(s, sec, "vacuum_min_vector_number", 100, 1LL << 40, 1, dst, defaults ? 1000 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "default_segment_number", 0, 1 << 20, 1, dst, defaults ? 0 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "max_segment_size", 1, 1LL << 40, 1, dst, defaults ? -2 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "memmap_threshold", 0, 1LL << 40, 1, dst, defaults ? -2 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "indexing_threshold", 0, 1LL << 40, 1, dst, defaults ? 10000 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "flush_interval_sec", 0, 1LL << 32, 1, dst, defaults ? 5 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "max_optimization_threads", 0, 4096, 1, dst, defaults ? -2 : -1);
    json_decref(empty);
    return rc;
}

static int wal_fields(json_t *s, const char *sec, json_t *dst, int defaults)
{
    json_t *empty = json_object();
    if (!s) s = empty;
    int rc = get_uint(s, sec, "wal_capacity_mb", 1, 1 << 20, 1, dst, defaults ? 32 : -1);
    if (rc == NY_OK) rc = get_uint(s, sec, "wal_segments_ahead", 0, 1 << 20, 1, dst, defaults ? 0 : -1);
    json_decref(empty);
    return rc;
}

static int quant_check(json_t *q, const char *sec)
{
    if (!q || json_is_null(q)) return NY_OK;
    if (!json_is_object(q)) return ny_error(NY_EINVAL, "%s: expected an object or null", sec);
    int kinds = 0;
    const char *key;
    json_t *v;
    json_object_foreach(q, key, v) {
        if (strcmp(key, "scalar") && strcmp(key, "product") && strcmp(key, "binary"))
            return ny_error(NY_EINVAL, "%s: unknown quantization \"%.40s\" (expected scalar, product or binary)", sec, key);
        if (!json_is_object(v)) return ny_error(NY_EINVAL, "%s.%s: expected an object", sec, key);
        kinds++;
    }
    if (kinds != 1) return ny_error(NY_EINVAL, "%s: expected exactly one of scalar, product, binary", sec);
    /* The codec's own checks (types, ranges; "product" is not supported). */
    char *txt = json_dumps(q, JSON_COMPACT);
    if (!txt) return ny_error(NY_ENOMEM, "out of memory");
    ny_quant_config qc;
    int rc = ny_quant_config_from_json(txt, &qc, NULL);
    free(txt);
    if (rc != NY_OK) return ny_error(rc, "%s: %s", sec, ny_errmsg());
    return NY_OK;
}

int ny_cfg_refresh(ny_cfg *c)
{
    json_t *conf = json_object_get(c->root, "config");
    json_t *vec = json_object_get(json_object_get(json_object_get(conf, "params"), "vectors"), "size");
    json_t *dist = json_object_get(json_object_get(json_object_get(conf, "params"), "vectors"), "distance");
    json_t *h = json_object_get(conf, "hnsw_config");
    if (!json_is_integer(vec) || !h) return ny_error(NY_ECORRUPT, "collection config: params.vectors.size is missing");
    const char *dn;
    if (parse_distance(dist, "params.vectors", &c->metric, &dn) != NY_OK)
        return ny_error(NY_ECORRUPT, "collection config: bad distance");
    c->dim = (size_t)json_integer_value(vec);
    c->m = (size_t)json_integer_value(json_object_get(h, "m"));
    c->ef_construct = (size_t)json_integer_value(json_object_get(h, "ef_construct"));
    c->full_scan_kb = (size_t)json_integer_value(json_object_get(h, "full_scan_threshold"));
    if (!json_is_object(json_object_get(c->root, "payload_schema")))
        json_object_set_new(c->root, "payload_schema", json_object());
    return NY_OK;
}

static int build_create(json_t *body, json_t **out)
{
    *out = NULL;
    if (!json_is_object(body)) return ny_error(NY_EINVAL, "collection config: expected a JSON object");
    static const char *const known[] = {
        "vectors", "shard_number", "sharding_method", "replication_factor", "write_consistency_factor",
        "on_disk_payload", "hnsw_config", "wal_config", "optimizers_config", "init_from",
        "quantization_config", "sparse_vectors", "strict_mode_config", "metadata", "uuid", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) {
        int ok = 0;
        for (int i = 0; known[i]; i++) ok |= !strcmp(key, known[i]);
        if (!ok) return ny_error(NY_EINVAL, "collection config: unknown field \"%.64s\"", key);
    }
    json_t *sv = json_object_get(body, "sparse_vectors");
    if (sv && !json_is_null(sv) && !(json_is_object(sv) && json_object_size(sv) == 0))
        return ny_error(NY_EINVAL, "sparse_vectors: sparse vectors are not supported");
    json_t *init = json_object_get(body, "init_from");
    if (init && !json_is_null(init)) return ny_error(NY_EINVAL, "init_from: not supported (use a snapshot)");
    json_t *sm = json_object_get(body, "sharding_method");
    if (sm && !json_is_null(sm) && !(json_is_string(sm) && !strcmp(json_string_value(sm), "auto")))
        return ny_error(NY_EINVAL, "sharding_method: only \"auto\" is supported");

    json_t *vectors = json_object_get(body, "vectors");
    if (!vectors || json_is_null(vectors)) return ny_error(NY_EINVAL, "vectors: required (e.g. {\"size\": 128, \"distance\": \"Cosine\"})");
    if (!json_is_object(vectors)) return ny_error(NY_EINVAL, "vectors: expected an object {\"size\": N, \"distance\": ...}");
    if (!json_object_get(vectors, "size") && !json_object_get(vectors, "distance")) {
        if (json_object_size(vectors) == 0) return ny_error(NY_EINVAL, "vectors: expected {\"size\": N, \"distance\": ...}");
        return ny_error(NY_EINVAL, "vectors: named vectors are not supported; use one unnamed vector {\"size\": N, \"distance\": ...}");
    }
    json_t *root = json_object(), *conf = json_object(), *params = json_object(), *vp = json_object();
    json_t *hnsw = json_object(), *opt = json_object(), *wal = json_object();
    json_object_set_new(root, "config", conf);
    json_object_set_new(root, "payload_schema", json_object());
    json_object_set_new(conf, "params", params);
    json_object_set_new(params, "vectors", vp);
    json_object_set_new(conf, "hnsw_config", hnsw);
    json_object_set_new(conf, "optimizer_config", opt);
    json_object_set_new(conf, "wal_config", wal);
    int rc = NY_OK;
    json_object_foreach(vectors, key, v) {
        if (strcmp(key, "size") && strcmp(key, "distance") && strcmp(key, "on_disk") && strcmp(key, "hnsw_config") &&
            strcmp(key, "quantization_config") && strcmp(key, "datatype") && strcmp(key, "multivector_config")) {
            rc = ny_error(NY_EINVAL, "vectors: unknown field \"%.64s\" (named vectors are not supported)", key);
            goto out;
        }
    }
    json_t *size = json_object_get(vectors, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 1 || json_integer_value(size) > 65536) {
        rc = ny_error(NY_EINVAL, "vectors.size: expected an integer in [1, 65536]");
        goto out;
    }
    json_object_set_new(vp, "size", json_integer(json_integer_value(size)));
    ny_metric m;
    const char *dn;
    rc = parse_distance(json_object_get(vectors, "distance"), "vectors", &m, &dn);
    if (rc != NY_OK) goto out;
    json_object_set_new(vp, "distance", json_string(dn));
    rc = get_bool(vectors, "vectors", "on_disk", vp, -1);
    if (rc != NY_OK) goto out;
    json_t *dt = json_object_get(vectors, "datatype");
    if (dt && !json_is_null(dt) && !(json_is_string(dt) && !strcmp(json_string_value(dt), "float32"))) {
        rc = ny_error(NY_EINVAL, "vectors.datatype: only \"float32\" is supported");
        goto out;
    }
    json_t *mv = json_object_get(vectors, "multivector_config");
    if (mv && !json_is_null(mv)) {
        rc = ny_error(NY_EINVAL, "vectors.multivector_config: multivectors are not supported");
        goto out;
    }
    rc = get_uint(body, "collection", "shard_number", 1, 1, 1, params, 1);
    if (rc == NY_OK) rc = get_uint(body, "collection", "replication_factor", 1, 1, 1, params, 1);
    if (rc == NY_OK) rc = get_uint(body, "collection", "write_consistency_factor", 1, 1, 1, params, 1);
    if (rc == NY_OK) rc = get_bool(body, "collection", "on_disk_payload", params, 1);
    if (rc != NY_OK) {
        if (strstr(ny_errmsg(), "out of range"))
            rc = ny_error(NY_EINVAL, "%s (Nearly runs one shard, one replica)", ny_errmsg());
        goto out;
    }
    json_t *sec;
    if ((rc = section(body, "hnsw_config", &sec)) != NY_OK) goto out;
    if ((rc = hnsw_fields(sec, "hnsw_config", hnsw, 1)) != NY_OK) goto out;
    json_t *vh = json_object_get(vectors, "hnsw_config");
    if (vh && !json_is_null(vh)) {
        if (!json_is_object(vh)) {
            rc = ny_error(NY_EINVAL, "vectors.hnsw_config: expected an object");
            goto out;
        }
        if ((rc = hnsw_fields(vh, "vectors.hnsw_config", hnsw, 0)) != NY_OK) goto out;
    }
    if ((rc = section(body, "optimizers_config", &sec)) != NY_OK) goto out;
    if ((rc = optimizer_fields(sec, "optimizers_config", opt, 1)) != NY_OK) goto out;
    if ((rc = section(body, "wal_config", &sec)) != NY_OK) goto out;
    if ((rc = wal_fields(sec, "wal_config", wal, 1)) != NY_OK) goto out;
    json_t *q = json_object_get(body, "quantization_config");
    json_t *vq = json_object_get(vectors, "quantization_config");
    if (vq && !json_is_null(vq)) q = vq;
    if ((rc = quant_check(q, "quantization_config")) != NY_OK) goto out;
    json_object_set(conf, "quantization_config", q ? q : json_null());
    json_t *md = json_object_get(body, "metadata");
    if (md && !json_is_null(md)) {
        if (!json_is_object(md)) {
            rc = ny_error(NY_EINVAL, "metadata: expected an object");
            goto out;
        }
        json_object_set(conf, "metadata", md);
    }
    json_t *strict = json_object_get(body, "strict_mode_config");
    if (strict && !json_is_null(strict)) {
        if (!json_is_object(strict)) {
            rc = ny_error(NY_EINVAL, "strict_mode_config: expected an object");
            goto out;
        }
        json_object_set(conf, "strict_mode_config", strict);
    }
out:
    if (rc != NY_OK) json_decref(root);
    else *out = root;
    return rc;
}

int ny_cfg_from_create(const char *text, ny_cfg *out)
{
    memset(out, 0, sizeof *out);
    if (!text) return ny_error(NY_EINVAL, "collection config is NULL");
    json_error_t err;
    json_t *body = json_loads(text, 0, &err);
    if (!body) return ny_error(NY_EINVAL, "collection config: invalid JSON at line %d: %s", err.line, err.text);
    json_t *root;
    int rc = build_create(body, &root);
    json_decref(body);
    if (rc != NY_OK) return rc;
    return ny_cfg_from_stored(root, out);
}

int ny_cfg_from_stored(json_t *root, ny_cfg *out)
{
    memset(out, 0, sizeof *out);
    out->root = root;
    int rc = ny_cfg_refresh(out);
    if (rc != NY_OK) {
        json_decref(root);
        out->root = NULL;
    }
    return rc;
}

void ny_cfg_free(ny_cfg *c)
{
    json_decref(c->root);
    c->root = NULL;
}

int ny_cfg_apply_update(ny_cfg *c, const char *patch_json)
{
    if (!patch_json) return ny_error(NY_EINVAL, "update body is NULL");
    json_error_t err;
    json_t *p = json_loads(patch_json, 0, &err);
    if (!p) return ny_error(NY_EINVAL, "update body: invalid JSON at line %d: %s", err.line, err.text);
    json_t *copy = json_deep_copy(c->root);
    json_t *conf = json_object_get(copy, "config");
    int rc = NY_OK;
    if (!json_is_object(p)) {
        rc = ny_error(NY_EINVAL, "update body: expected a JSON object");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(p, key, v) {
        if (json_is_null(v)) continue;
        if (!strcmp(key, "hnsw_config")) {
            if (!json_is_object(v)) rc = ny_error(NY_EINVAL, "hnsw_config: expected an object");
            else rc = hnsw_fields(v, "hnsw_config", json_object_get(conf, "hnsw_config"), 0);
        } else if (!strcmp(key, "optimizers_config")) {
            if (!json_is_object(v)) rc = ny_error(NY_EINVAL, "optimizers_config: expected an object");
            else rc = optimizer_fields(v, "optimizers_config", json_object_get(conf, "optimizer_config"), 0);
        } else if (!strcmp(key, "params")) {
            json_t *params = json_object_get(conf, "params");
            if (!json_is_object(v)) rc = ny_error(NY_EINVAL, "params: expected an object");
            if (rc == NY_OK) rc = get_uint(v, "params", "replication_factor", 1, 1, 1, params, -1);
            if (rc == NY_OK) rc = get_uint(v, "params", "write_consistency_factor", 1, 1, 1, params, -1);
            if (rc == NY_OK) rc = get_bool(v, "params", "on_disk_payload", params, -1);
        } else if (!strcmp(key, "quantization_config")) {
            if (json_is_string(v) && !strcmp(json_string_value(v), "Disabled")) {
                json_object_set_new(conf, "quantization_config", json_null());
            } else {
                rc = quant_check(v, "quantization_config");
                if (rc == NY_OK) json_object_set(conf, "quantization_config", v);
            }
        } else if (!strcmp(key, "vectors")) {
            /* {"": {"on_disk": ..., "hnsw_config": {...}}} for the unnamed vector */
            json_t *vp = json_object_get(json_object_get(conf, "params"), "vectors");
            if (!json_is_object(v)) {
                rc = ny_error(NY_EINVAL, "vectors: expected an object");
            } else {
                const char *vk;
                json_t *vv;
                json_object_foreach(v, vk, vv) {
                    if (strcmp(vk, "") != 0) {
                        rc = ny_error(NY_EINVAL, "vectors: unknown vector \"%.64s\" (the collection has one unnamed vector, \"\")", vk);
                        break;
                    }
                    if (!json_is_object(vv)) {
                        rc = ny_error(NY_EINVAL, "vectors[\"\"]: expected an object");
                        break;
                    }
                    rc = get_bool(vv, "vectors[\"\"]", "on_disk", vp, -1);
                    json_t *h = json_object_get(vv, "hnsw_config");
                    if (rc == NY_OK && h && !json_is_null(h))
                        rc = hnsw_fields(h, "vectors[\"\"].hnsw_config", json_object_get(conf, "hnsw_config"), 0);
                    if (rc != NY_OK) break;
                }
            }
        } else if (!strcmp(key, "metadata")) {
            if (!json_is_object(v)) rc = ny_error(NY_EINVAL, "metadata: expected an object");
            else {
                json_t *md = json_object_get(conf, "metadata");
                if (!md) json_object_set_new(conf, "metadata", md = json_object());
                json_object_update(md, v);
            }
        } else if (!strcmp(key, "sparse_vectors") || !strcmp(key, "strict_mode_config")) {
            if (!json_is_object(v) || (!strcmp(key, "sparse_vectors") && json_object_size(v)))
                rc = ny_error(NY_EINVAL, "%s: not supported", key);
        } else {
            rc = ny_error(NY_EINVAL, "update body: unknown field \"%.64s\"", key);
        }
        if (rc != NY_OK) break;
    }
    if (rc == NY_OK) {
        /* The graph keeps the m / ef_construct it was built with: new
         * values are recorded and reported, not applied to the graph. */
        json_decref(c->root);
        c->root = copy;
        copy = NULL;
        rc = ny_cfg_refresh(c);
    }
out:
    json_decref(copy);
    json_decref(p);
    return rc;
}

int ny_cfg_save(const ny_cfg *c, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *s = json_dumps(c->root, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!s) return ny_error(NY_ENOMEM, "out of memory (config)");
    int rc = ny_io_write_atomic(path, s, strlen(s));
    free(s);
    return rc;
}

int ny_cfg_load(const char *dir, ny_cfg *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *s;
    int rc = ny_io_read_file(path, &s, NULL);
    if (rc != NY_OK) return rc;
    json_error_t err;
    json_t *root = json_loads(s, 0, &err);
    free(s);
    if (!root) return ny_error(NY_ECORRUPT, "%s: invalid JSON at line %d: %s", path, err.line, err.text);
    rc = ny_cfg_from_stored(root, out);
    if (rc != NY_OK) return ny_error(rc, "%s: %s", path, ny_errmsg());
    return NY_OK;
}
