/*
 * quant_json.c -- Qdrant's quantization_config <-> ny_quant_config.
 * Schema and mapping in quant.h.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "quant/quant.h"

static int get_bool(json_t *o, const char *key, int *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return NY_OK;
    if (!json_is_boolean(v)) return ny_error(NY_EINVAL, "quantization_config: \"%s\" must be a boolean", key);
    if (out) *out = json_is_true(v);
    return NY_OK;
}

static int check_keys(json_t *o, const char *what, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(key, *a)) ok = 1;
        if (!ok) return ny_error(NY_EINVAL, "quantization_config.%s: unknown field \"%s\"", what, key);
    }
    return NY_OK;
}

static int parse_scalar(json_t *o, ny_quant_config *cfg, int *always_ram)
{
    static const char *const keys[] = {"type", "quantile", "always_ram", "per_dimension", NULL};
    int rc = check_keys(o, "scalar", keys);
    if (rc) return rc;
    ny_quant_config_init(cfg, NY_QUANT_SQ8);
    cfg->quantile = 1.0f; /* Qdrant's default: min/max */
    json_t *t = json_object_get(o, "type");
    if (!t || !json_is_string(t))
        return ny_error(NY_EINVAL, "quantization_config.scalar: \"type\" is required (\"int8\")");
    if (!strcmp(json_string_value(t), "int4")) cfg->kind = NY_QUANT_SQ4;
    else if (strcmp(json_string_value(t), "int8") != 0)
        return ny_error(NY_EINVAL, "quantization_config.scalar.type \"%s\" is not supported (\"int8\" or \"int4\")",
                        json_string_value(t));
    json_t *q = json_object_get(o, "quantile");
    if (q && !json_is_null(q)) {
        if (!json_is_number(q)) return ny_error(NY_EINVAL, "quantization_config.scalar.quantile must be a number");
        double v = json_number_value(q);
        if (!(v >= 0.5 && v <= 1.0))
            return ny_error(NY_EINVAL, "quantization_config.scalar.quantile %g is not in [0.5, 1]", v);
        cfg->quantile = (float)v;
    }
    if ((rc = get_bool(o, "always_ram", always_ram))) return rc;
    return get_bool(o, "per_dimension", &cfg->per_dim);
}

static int parse_binary(json_t *o, ny_quant_config *cfg, int *always_ram)
{
    static const char *const keys[] = {"always_ram", "encoding", "query_encoding", NULL};
    int rc = check_keys(o, "binary", keys);
    if (rc) return rc;
    ny_quant_config_init(cfg, NY_QUANT_BINARY);
    if ((rc = get_bool(o, "always_ram", always_ram))) return rc;
    json_t *e = json_object_get(o, "encoding");
    if (e && !json_is_null(e)) {
        if (!json_is_string(e)) return ny_error(NY_EINVAL, "quantization_config.binary.encoding must be a string");
        const char *s = json_string_value(e);
        if (!strcmp(s, "two_bits") || !strcmp(s, "one_and_half_bits"))
            return ny_error(NY_EINVAL, "quantization_config.binary.encoding \"%s\" is not supported (only \"one_bit\")", s);
        if (strcmp(s, "one_bit") != 0)
            return ny_error(NY_EINVAL, "quantization_config.binary.encoding \"%s\" is unknown", s);
    }
    json_t *qe = json_object_get(o, "query_encoding");
    if (qe && !json_is_null(qe)) {
        if (!json_is_string(qe))
            return ny_error(NY_EINVAL, "quantization_config.binary.query_encoding must be a string");
        const char *s = json_string_value(qe);
        if (!strcmp(s, "default") || !strcmp(s, "scalar4bits")) cfg->query_bits = 4;
        else if (!strcmp(s, "binary")) cfg->query_bits = 1;
        else if (!strcmp(s, "scalar8bits")) cfg->query_bits = 8;
        else return ny_error(NY_EINVAL, "quantization_config.binary.query_encoding \"%s\" is unknown", s);
    }
    return NY_OK;
}

int ny_quant_config_from_json(const char *json, ny_quant_config *cfg, int *always_ram)
{
    if (!json || !cfg) return ny_error(NY_EINVAL, "quantization_config: NULL argument");
    json_error_t err;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &err);
    if (!root) return ny_error(NY_EINVAL, "quantization_config: invalid JSON: %s", err.text);
    int rc;
    if (always_ram) *always_ram = 0;
    if (!json_is_object(root) || json_object_size(root) != 1) {
        rc = ny_error(NY_EINVAL, "quantization_config must be an object with one of \"scalar\", \"binary\"");
    } else {
        const char *key = json_object_iter_key(json_object_iter(root));
        json_t *v = json_object_get(root, key);
        if (!strcmp(key, "product"))
            rc = ny_error(NY_EINVAL, "quantization_config: product quantization is not supported (use scalar or binary)");
        else if (strcmp(key, "scalar") != 0 && strcmp(key, "binary") != 0)
            rc = ny_error(NY_EINVAL, "quantization_config: unknown method \"%s\" (expected scalar or binary)", key);
        else if (!json_is_object(v))
            rc = ny_error(NY_EINVAL, "quantization_config.%s must be an object", key);
        else if (!strcmp(key, "scalar"))
            rc = parse_scalar(v, cfg, always_ram);
        else
            rc = parse_binary(v, cfg, always_ram);
    }
    json_decref(root);
    return rc;
}

int ny_quant_config_to_json(const ny_quant_config *cfg, int always_ram, char **out)
{
    if (!cfg || !out) return ny_error(NY_EINVAL, "quantization_config: NULL argument");
    json_t *inner = json_object(), *root = json_object();
    if (!inner || !root) {
        json_decref(inner);
        json_decref(root);
        return ny_error(NY_ENOMEM, "out of memory");
    }
    if (cfg->kind == NY_QUANT_SQ8 || cfg->kind == NY_QUANT_SQ4) {
        json_object_set_new(inner, "type", json_string(cfg->kind == NY_QUANT_SQ4 ? "int4" : "int8"));
        /* Round-trip through float: print the float's shortest decimal. */
        char buf[32];
        snprintf(buf, sizeof buf, "%.6g", (double)(cfg->quantile > 0 ? cfg->quantile : 1.0f));
        json_object_set_new(inner, "quantile", json_real(strtod(buf, NULL)));
        json_object_set_new(inner, "always_ram", json_boolean(always_ram));
        if (cfg->per_dim) json_object_set_new(inner, "per_dimension", json_true());
        json_object_set_new(root, "scalar", inner);
    } else if (cfg->kind == NY_QUANT_BINARY) {
        int qb = cfg->query_bits ? cfg->query_bits : 4;
        const char *qe = qb == 1 ? "binary" : qb == 8 ? "scalar8bits" : "scalar4bits";
        json_object_set_new(inner, "always_ram", json_boolean(always_ram));
        json_object_set_new(inner, "encoding", json_string("one_bit"));
        json_object_set_new(inner, "query_encoding", json_string(qe));
        json_object_set_new(root, "binary", inner);
    } else {
        json_decref(inner);
        json_decref(root);
        return ny_error(NY_EINVAL, "quantization kind %d has no JSON form", (int)cfg->kind);
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!s) return ny_error(NY_ENOMEM, "out of memory");
    *out = s;
    return NY_OK;
}
