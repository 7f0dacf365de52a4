/*
 * test_util.c -- the REST server's helpers: SHA-256 (snapshot checksums),
 * float and string rendering, point id / vector / selector parsing, names
 * used in paths, and settings (YAML, JSON, environment).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "server/sha256.h"
#include "t.h"

static void hex_of(const void *data, size_t n, size_t chunk, char out[65])
{
    sha256_ctx c;
    sha256_init(&c);
    const unsigned char *p = data;
    while (n) {
        size_t k = n < chunk ? n : chunk;
        sha256_update(&c, p, k);
        p += k;
        n -= k;
    }
    sha256_hex(&c, out);
}

TEST(sha256_known_vectors)
{
    char h[65];
    hex_of("", 0, 1, h);
    CHECK(!strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    hex_of("abc", 3, 1, h);
    CHECK(!strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), 7, h);
    CHECK(!strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* one million 'a', fed in chunks of every size 1..97 */
    size_t n = 1000000;
    char *a = malloc(n);
    REQUIRE(a);
    memset(a, 'a', n);
    for (size_t chunk = 1; chunk < 98; chunk += 13) {
        hex_of(a, n, chunk, h);
        CHECKF(!strcmp(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "chunk %zu: %s", chunk, h);
    }
    /* file variant agrees with the streaming one */
    char path[512];
    snprintf(path, sizeof path, "%s/f.bin", t_tmpdir());
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    fwrite(a, 1, 123457, f);
    fclose(f);
    char h2[65];
    hex_of(a, 123457, 4096, h);
    CHECK(sha256_file(path, h2) == 0);
    CHECK(!strcmp(h, h2));
    CHECK(sha256_file("/nonexistent/x", h2) == -1);
    free(a);
}

TEST(float_rendering_round_trips)
{
    unsigned long long st = 1;
    for (int i = 0; i < 20000; i++) {
        float f = t_randf(&st) * powf(10.0f, (float)(i % 40) - 20.0f);
        sb b;
        sb_init(&b);
        sb_float(&b, f);
        REQUIRE(b.p);
        CHECKF(strtof(b.p, NULL) == f, "%.9g rendered as %s", (double)f, b.p);
        CHECKF(b.n <= 16, "%s too long", b.p);
        sb_free(&b);
    }
    sb b;
    sb_init(&b);
    sb_float(&b, 1.0f);
    sb_putc(&b, ' ');
    sb_float(&b, -3.0f);
    sb_putc(&b, ' ');
    sb_float(&b, 0.1f);
    sb_putc(&b, ' ');
    sb_float(&b, NAN);
    CHECKF(!strcmp(b.p, "1.0 -3.0 0.1 null"), "%s", b.p);
    sb_free(&b);
}

TEST(json_strings_escape)
{
    const char *s = "a\"b\\c\n\t\x01\x1f/é";
    sb b;
    sb_init(&b);
    sb_json_str(&b, s);
    json_error_t e;
    json_t *v = json_loads(b.p, JSON_DECODE_ANY, &e);
    REQUIRE(v);
    CHECK(json_is_string(v) && !strcmp(json_string_value(v), s));
    json_decref(v);
    sb_free(&b);
    /* big appends grow the buffer */
    sb_init(&b);
    for (int i = 0; i < 10000; i++) sb_printf(&b, "%d,", i);
    CHECK(b.n > 40000 && !b.oom);
    CHECK(!strncmp(b.p, "0,1,2,", 6));
    sb_free(&b);
}

static json_t *J(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!v) abort();
    return v;
}

TEST(point_ids)
{
    char err[256];
    ny_point_id id;
    json_t *v = J("42");
    CHECK(parse_point_id(v, &id, err, sizeof err) == 0 && !id.is_uuid && id.num == 42);
    json_decref(v);
    v = J("\"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\"");
    CHECK(parse_point_id(v, &id, err, sizeof err) == 0 && id.is_uuid && id.uuid[0] == 0x5c && id.uuid[15] == 0x26);
    json_decref(v);
    const char *bad[] = {"-1", "\"42\"", "1.5", "\"xyz\"", "null", "[1]", "{}", "\"\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = J(bad[i]);
        err[0] = 0;
        CHECKF(parse_point_id(v, &id, err, sizeof err) == -1 && err[0], "%s accepted", bad[i]);
        json_decref(v);
    }
}

TEST(vectors_and_selectors)
{
    char err[256];
    float out[4];
    json_t *v = J("[1, 2.5, -3, 0]");
    CHECK(parse_vector(v, 4, out, err, sizeof err) == 0 && out[1] == 2.5f && out[2] == -3.0f);
    CHECK(parse_vector(v, 3, out, err, sizeof err) == -1 && strstr(err, "expected dim: 3, got 4"));
    json_decref(v);
    v = J("[1, \"x\", 3, 4]");
    CHECK(parse_vector(v, 4, out, err, sizeof err) == -1 && strstr(err, "element 1"));
    json_decref(v);
    v = J("[1e39, 0, 0, 0]");
    CHECK(parse_vector(v, 4, out, err, sizeof err) == -1 && strstr(err, "float range"));
    json_decref(v);
    v = J("{\"\": [1, 2]}");
    CHECK(unwrap_vector(v, err, sizeof err) == json_object_get(v, ""));
    json_decref(v);
    v = J("{\"image\": [1, 2]}");
    CHECK(unwrap_vector(v, err, sizeof err) == NULL && strstr(err, "image"));
    json_decref(v);
    const char *good[] = {"true", "false", "null", "[\"a\", \"b.c\"]", "{\"include\": [\"a\"]}", "{\"exclude\": []}"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        v = J(good[i]);
        CHECKF(check_with_payload(v, err, sizeof err) == 0, "%s: %s", good[i], err);
        json_decref(v);
    }
    const char *badp[] = {"1", "[1]", "{\"include\": 1}", "{\"inclde\": []}", "{\"include\": [], \"exclude\": []}", "{}"};
    for (size_t i = 0; i < sizeof badp / sizeof badp[0]; i++) {
        v = J(badp[i]);
        CHECKF(check_with_payload(v, err, sizeof err) == -1, "%s accepted", badp[i]);
        json_decref(v);
    }
    v = J("[\"\"]");
    CHECK(parse_with_vector(v, 0, err, sizeof err) == 1);
    json_decref(v);
    v = J("[\"text\"]");
    CHECK(parse_with_vector(v, 0, err, sizeof err) == -1);
    json_decref(v);
    CHECK(parse_with_vector(NULL, 1, err, sizeof err) == 1);
}

TEST(names_safe_for_paths)
{
    CHECK(valid_name("my-coll_1.v2"));
    const char *bad[] = {"", ".", "..", ".hidden", "a/b", "../x", "a b", "a\\b", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECKF(!valid_name(bad[i]), "'%s' accepted", bad[i]);
    char longname[300];
    memset(longname, 'a', 256);
    longname[256] = 0;
    CHECK(!valid_name(longname));
    CHECK(valid_snapshot_name("c-123-2024-01-01.snapshot"));
    CHECK(!valid_snapshot_name(".snapshot"));
    CHECK(!valid_snapshot_name("x.snapshot.checksum"));
    CHECK(!valid_snapshot_name("../x.snapshot"));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

TEST(settings_file_env_precedence)
{
    ny_server_config c;
    ny_server_config_defaults(&c);
    CHECK(c.port == 6333 && !strcmp(c.host, "127.0.0.1") && c.max_body == 32u << 20);
    char path[512];
    snprintf(path, sizeof path, "%s/config.yaml", t_tmpdir());
    write_file(path, "# Qdrant-style config\n"
                     "log_level: INFO\n"
                     "storage:\n"
                     "  storage_path: /tmp/somewhere   # comment\n"
                     "  performance:\n"
                     "    max_search_threads: 0\n"
                     "service:\n"
                     "  host: 0.0.0.0\n"
                     "  http_port: 7000\n"
                     "  api_key: \"s3cret # not a comment\"\n"
                     "  max_request_size_mb: 8\n");
    CHECK_RC(ny_server_config_load_file(&c, path), NY_OK);
    CHECK(c.port == 7000);
    CHECK(!strcmp(c.host, "0.0.0.0"));
    CHECK(!strcmp(c.data_dir, "/tmp/somewhere"));
    CHECKF(!strcmp(c.api_key, "s3cret # not a comment"), "%s", c.api_key);
    CHECK(c.max_body == 8u << 20);
    snprintf(path, sizeof path, "%s/config.json", t_tmpdir());
    write_file(path, "{\"service\": {\"http_port\": 7100, \"read_only_api_key\": \"ro\"}, \"logger\": {\"format\": \"text\"}}");
    CHECK_RC(ny_server_config_load_file(&c, path), NY_OK);
    CHECK(c.port == 7100 && !strcmp(c.ro_api_key, "ro") && c.log_json == 0);
    write_file(path, "{\"service\": {\"http_port\": 70000}}");
    CHECK(ny_server_config_load_file(&c, path) == NY_EINVAL);
    CHECK(strstr(ny_errmsg(), "http_port"));
    write_file(path, "service:\n  http_port: abc\n");
    CHECK(ny_server_config_load_file(&c, path) == NY_EINVAL);
    CHECK(ny_server_config_load_file(&c, "/nonexistent/config.yaml") == NY_EIO);
    /* environment: Qdrant's names, then NEARLY_* (which win) */
    setenv("QDRANT__SERVICE__API_KEY", "from-qdrant", 1);
    setenv("QDRANT__SERVICE__HTTP_PORT", "7200", 1);
    setenv("NEARLY_PORT", "7300", 1);
    CHECK_RC(ny_server_config_load_env(&c), NY_OK);
    CHECK(!strcmp(c.api_key, "from-qdrant"));
    CHECK(c.port == 7300);
    setenv("NEARLY_MAX_REQUEST_SIZE_MB", "-5", 1);
    CHECK(ny_server_config_load_env(&c) == NY_EINVAL);
    CHECK(strstr(ny_errmsg(), "NEARLY_MAX_REQUEST_SIZE_MB"));
    unsetenv("NEARLY_MAX_REQUEST_SIZE_MB");
    unsetenv("QDRANT__SERVICE__API_KEY");
    unsetenv("QDRANT__SERVICE__HTTP_PORT");
    unsetenv("NEARLY_PORT");
    CHECK(ny_server_config_set(&c, "service.nope", "1") == NY_ENOTFOUND);
    CHECK_RC(ny_server_config_set(&c, "logger.access_log", "false"), NY_OK);
    CHECK(c.access_log == 0);
}

/* Parses body with and without vec_rewrite and checks that every vector
 * found at the given JSON pointer paths is identical, and that the rest of
 * the document is untouched. */
static void vec_case(const char *body, const char *const *vec_paths, size_t nvec, const char *const *keep_paths,
                     size_t nkeep)
{
    json_t *ref = json_loads(body, 0, NULL);
    REQUIRE(ref);
    char *copy = strdup(body);
    vecpool pool = {0};
    vec_rewrite(copy, strlen(copy), &pool);
    json_t *got = json_loads(copy, 0, NULL);
    REQUIRE(got);
    vecpool_set_current(&pool);
    for (size_t i = 0; i < nvec; i++) {
        /* path: keys separated by '/', numbers index arrays */
        const json_t *a = ref, *b = got;
        char path[256];
        snprintf(path, sizeof path, "%s", vec_paths[i]);
        for (char *t = strtok(path, "/"); t; t = strtok(NULL, "/")) {
            if (json_is_array(a)) a = json_array_get(a, (size_t)atoi(t)), b = json_array_get(b, (size_t)atoi(t));
            else a = json_object_get(a, t), b = json_object_get(b, t);
        }
        REQUIRE(a && b);
        CHECKF(is_vecref(b), "%s was not rewritten", vec_paths[i]);
        size_t dim = json_array_size(a);
        float x[64], y[64];
        char err[256];
        REQUIRE(dim <= 64);
        CHECK(parse_vector(a, dim, x, err, sizeof err) == 0);
        CHECKF(parse_vector(b, dim, y, err, sizeof err) == 0, "%s", err);
        for (size_t k = 0; k < dim; k++) CHECKF(x[k] == y[k] || (x[k] != x[k] && y[k] != y[k]), "%s[%zu]: %.9g vs %.9g", vec_paths[i], k, (double)x[k], (double)y[k]);
        if (dim > 1) CHECK(parse_vector(b, dim - 1, y, err, sizeof err) == -1 && strstr(err, "expected dim"));
    }
    for (size_t i = 0; i < nkeep; i++) {
        const json_t *a = ref, *b = got;
        char path[256];
        snprintf(path, sizeof path, "%s", keep_paths[i]);
        for (char *t = strtok(path, "/"); t; t = strtok(NULL, "/")) {
            if (json_is_array(a)) a = json_array_get(a, (size_t)atoi(t)), b = json_array_get(b, (size_t)atoi(t));
            else a = json_object_get(a, t), b = json_object_get(b, t);
        }
        CHECKF(a && b && json_equal(a, b), "%s changed", keep_paths[i]);
    }
    vecpool_set_current(NULL);
    json_decref(ref);
    json_decref(got);
    vecpool_free(&pool);
    free(copy);
}

TEST(vector_fast_path_matches_jansson)
{
    const char *b1 =
        "{\"points\": [{\"id\": 1, \"vector\": [0.1, -2.5e-3, 3, 1e-30, 123456789.123456789, -0.0, 0.30000000000000004,"
        " 3.4e38, 1.4e-45, 4.9e-324, 9007199254740993, 0.1234567890123456789], \"payload\": {\"vector\": [1, 2, 3, 4, 5, 6, 7, 8],"
        " \"s\": \"\\\"vector\\\": [1,2,3,4,5,6,7,8,9]\"}},"
        " {\"id\": 2, \"vector\": [1,2,3,4,5,6,7,8,9,10,11], \"payload\": null}]}";
    const char *v1[] = {"points/0/vector", "points/1/vector"};
    const char *k1[] = {"points/0/payload", "points/0/id", "points/1/id"};
    vec_case(b1, v1, 2, k1, 3);
    const char *b2 = "{\"batch\": {\"ids\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], \"vectors\": [[1.5, 2.5, 3.5, 4.5, 5.5, 6.5],"
                     " [ 1 , 2 , 3 , 4 , 5 , 6 ]], \"payloads\": [{\"vectors\": [[1,2,3,4,5,6,7,8,9]]}, {}]}}";
    const char *v2[] = {"batch/vectors/0", "batch/vectors/1"};
    const char *k2[] = {"batch/ids", "batch/payloads"};
    vec_case(b2, v2, 2, k2, 2);
    const char *b3 = "{\"query\": {\"recommend\": {\"positive\": [1, [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]],"
                     " \"negative\": [[-1e2, 2E+1, 3e-1, 4, 5, 6, 7, 8]]}}, \"filter\": {\"must\": [{\"has_id\": [1,2,3,4,5,6,7,8,9,10,11,12]},"
                     " {\"key\": \"vector\", \"match\": {\"any\": [1,2,3,4,5,6,7,8,9]}}]}, \"limit\": 5}";
    const char *v3[] = {"query/recommend/positive/1", "query/recommend/negative/0"};
    const char *k3[] = {"filter", "query/recommend/positive/0", "limit"};
    vec_case(b3, v3, 2, k3, 3);
    const char *b4 = "{\"searches\": [{\"query\": {\"nearest\": [0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625]}},"
                     " {\"vector\": [1e39, 1, 1, 1, 1, 1, 1, 1], \"limit\": 1}]}";
    const char *v4[] = {"searches/0/query/nearest"};
    vec_case(b4, v4, 1, NULL, 0);
    /* 1e39 overflows float: still refused with the same message */
    char *c = strdup(b4);
    vecpool pool = {0};
    vec_rewrite(c, strlen(c), &pool);
    json_t *g = json_loads(c, 0, NULL);
    REQUIRE(g);
    vecpool_set_current(&pool);
    float out[8];
    char err[256];
    const json_t *v = json_object_get(json_array_get(json_object_get(g, "searches"), 1), "vector");
    CHECK(parse_vector(v, 8, out, err, sizeof err) == -1 && strstr(err, "float range"));
    vecpool_set_current(NULL);
    /* without the pool a reference is just a string */
    CHECK(!is_vecref(json_object_get(json_object_get(json_array_get(json_object_get(g, "searches"), 0), "query"), "nearest")));
    json_decref(g);
    vecpool_free(&pool);
    free(c);
    /* malformed bodies are left for jansson to refuse; no crash */
    const char *bad[] = {"{\"vector\": [1, 2, 3, 4, 5, 6, 7", "{\"vector\": [1,,2,3,4,5,6,7,8,9]}", "{\"vector\": [-]}",
                         "{\"vector\": [1.]}", "\"", "[[[[", "{\"vector\": [1e, 2, 3, 4, 5, 6, 7, 8, 9]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *x = strdup(bad[i]);
        vecpool p2 = {0};
        vec_rewrite(x, strlen(x), &p2);
        CHECKF(json_loads(x, 0, NULL) == NULL, "'%s' became valid: %s", bad[i], x);
        vecpool_free(&p2);
        free(x);
    }
    /* random vectors: the fast path agrees with strtod-based parsing */
    unsigned long long st = 99;
    for (int it = 0; it < 200; it++) {
        sb b;
        sb_init(&b);
        sb_puts(&b, "{\"vector\": [");
        for (int k = 0; k < 32; k++) {
            double x = t_randf(&st) * pow(10.0, (double)(it % 30) - 15.0);
            sb_printf(&b, "%s%.*g", k ? "," : "", 1 + it % 18, x);
        }
        sb_puts(&b, "]}");
        const char *vp[] = {"vector"};
        vec_case(b.p, vp, 1, NULL, 0);
        sb_free(&b);
    }
}
