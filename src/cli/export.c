/*
 * export.c -- `nearly export`: writes a collection out, in id order, as
 * .jsonl ({"id", "vector", payload fields...} per line) or as .npy
 * (float32, shape (n, dim)) plus a payloads .jsonl ({"id", payload
 * fields...} per row), in the shapes `nearly import` reads back: importing
 * an export reproduces the points exactly (vectors are printed with 9
 * significant digits, which round-trips every float32).
 *
 * Reads page by page (scroll), so memory is one page whatever the size.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/httpc.h"
#include "cli/ingest.h"
#include "common/common.h"

typedef struct page {
    size_t n, cap, dim;
    ny_point_id *ids;
    float *vecs;
    char **pls; /* JSON object text or NULL */
    int has_next;
    ny_point_id next;
} page;

typedef struct exp_ctx {
    const char *collection, *data_dir, *url, *api_key, *out, *payloads, *id_field, *vector_field, *payload_field;
    ing_fmt fmt;
    size_t batch;
    ny_db *db;
    ny_collection *coll;
    httpc h;
    size_t dim;
} exp_ctx;

static void page_reset(page *p)
{
    for (size_t i = 0; i < p->n; i++) free(p->pls[i]);
    p->n = 0;
}

static int page_room(page *p, size_t n, size_t dim)
{
    if (n <= p->cap && dim == p->dim) return 0;
    free(p->ids);
    free(p->vecs);
    free(p->pls);
    p->ids = calloc(n, sizeof *p->ids);
    p->vecs = malloc(n * dim * sizeof(float));
    p->pls = calloc(n, sizeof *p->pls);
    p->cap = n;
    p->dim = dim;
    return p->ids && p->vecs && p->pls ? 0 : -1;
}

static int fetch_embedded(exp_ctx *x, const ny_point_id *off, page *p)
{
    ny_read_opts ro = {"true", 1};
    ny_records r;
    int rc = ny_collection_scroll(x->coll, off, x->batch, NULL, &ro, &r);
    if (rc != NY_OK) return rc;
    if (page_room(p, x->batch, x->dim)) {
        ny_records_free(&r);
        return ny_error(NY_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < r.n; i++) {
        p->ids[i] = r.items[i].id;
        if (!r.items[i].vector) {
            ny_records_free(&r);
            return ny_error(NY_EINTERNAL, "scroll returned a point without its vector");
        }
        memcpy(p->vecs + i * x->dim, r.items[i].vector, x->dim * sizeof(float));
        p->pls[i] = r.items[i].payload_json ? strdup(r.items[i].payload_json) : NULL;
        p->n = i + 1;
    }
    p->has_next = r.has_next;
    p->next = r.next;
    ny_records_free(&r);
    return NY_OK;
}

static int json_to_id(json_t *v, ny_point_id *id)
{
    memset(id, 0, sizeof *id);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        id->num = (uint64_t)json_integer_value(v);
        return NY_OK;
    }
    if (json_is_string(v)) return ny_point_id_parse(json_string_value(v), id);
    return ny_error(NY_EINVAL, "server returned an id that is not an integer or a UUID");
}

static void id_json(const ny_point_id *id, char *buf, size_t n)
{
    char s[37];
    ny_point_id_format(id, s);
    snprintf(buf, n, id->is_uuid ? "\"%s\"" : "%s", s);
}

static int fetch_http(exp_ctx *x, const ny_point_id *off, page *p)
{
    char body[256], oid[64] = "null";
    if (off) id_json(off, oid, sizeof oid);
    snprintf(body, sizeof body, "{\"limit\":%zu,\"offset\":%s,\"with_payload\":true,\"with_vector\":true}", x->batch,
             oid);
    char path[512];
    snprintf(path, sizeof path, "/collections/%s/points/scroll", x->collection);
    int st;
    const char *resp;
    int rc = httpc_request(&x->h, "POST", path, body, strlen(body), &st, &resp, NULL);
    if (rc != NY_OK) return rc;
    json_error_t e;
    json_t *j = json_loads(resp, 0, &e);
    if (st != 200 || !j) {
        json_decref(j);
        return ny_error(NY_EIO, "POST %s: HTTP %d: %.300s", path, st, resp);
    }
    json_t *res = json_object_get(j, "result"), *pts = json_object_get(res, "points");
    if (!json_is_array(pts)) {
        json_decref(j);
        return ny_error(NY_EIO, "POST %s: unexpected response (no result.points)", path);
    }
    if (page_room(p, json_array_size(pts) > x->batch ? json_array_size(pts) : x->batch, x->dim)) {
        json_decref(j);
        return ny_error(NY_ENOMEM, "out of memory");
    }
    size_t i;
    json_t *pt;
    rc = NY_OK;
    json_array_foreach(pts, i, pt) {
        if ((rc = json_to_id(json_object_get(pt, "id"), &p->ids[i])) != NY_OK) break;
        json_t *v = json_object_get(pt, "vector");
        if (!json_is_array(v) || json_array_size(v) != x->dim) {
            rc = ny_error(NY_EIO, "server returned a vector of the wrong shape");
            break;
        }
        for (size_t d = 0; d < x->dim; d++) p->vecs[i * x->dim + d] = (float)json_number_value(json_array_get(v, d));
        json_t *pl = json_object_get(pt, "payload");
        p->pls[i] = json_is_object(pl) && json_object_size(pl) ? json_dumps(pl, JSON_COMPACT) : NULL;
        p->n = i + 1;
    }
    json_t *nx = json_object_get(res, "next_page_offset");
    p->has_next = rc == NY_OK && nx && !json_is_null(nx);
    if (p->has_next) rc = json_to_id(nx, &p->next);
    json_decref(j);
    return rc;
}

/* Writes payload members (without braces) after a comma, checking that no
 * key collides with the id / vector fields when flattened. */
static int write_payload(exp_ctx *x, FILE *f, const ny_point_id *id, const char *pl, int with_vector)
{
    if (!pl) {
        if (x->payload_field) fprintf(f, ",\"%s\":{}", x->payload_field);
        return NY_OK;
    }
    if (x->payload_field) {
        fprintf(f, ",\"%s\":%s", x->payload_field, pl);
        return NY_OK;
    }
    json_error_t e;
    json_t *o = json_loads(pl, 0, &e);
    if (!json_is_object(o)) {
        json_decref(o);
        return ny_error(NY_EINTERNAL, "payload of a point is not an object");
    }
    char s[37];
    ny_point_id_format(id, s);
    if (json_object_get(o, x->id_field) || (with_vector && json_object_get(o, x->vector_field))) {
        json_decref(o);
        return ny_error(NY_EINVAL,
                        "point %s: payload key \"%s\" or \"%s\" collides with the id/vector fields; use "
                        "--payload-field payload (and the same option when importing)",
                        s, x->id_field, x->vector_field);
    }
    if (json_object_size(o)) {
        char *t = json_dumps(o, JSON_COMPACT);
        if (!t) {
            json_decref(o);
            return ny_error(NY_ENOMEM, "out of memory");
        }
        size_t l = strlen(t);
        fputc(',', f);
        fwrite(t + 1, 1, l - 2, f);
        free(t);
    }
    json_decref(o);
    return NY_OK;
}

static void npy_header(char *h, size_t total, unsigned long long n, size_t dim)
{
    memset(h, ' ', total);
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    size_t hl = total - 10;
    h[8] = (char)(hl & 0xff);
    h[9] = (char)(hl >> 8);
    int k = snprintf(h + 10, hl, "{'descr': '<f4', 'fortran_order': False, 'shape': (%llu, %zu), }", n, dim);
    h[10 + k] = ' ';
    h[total - 1] = '\n';
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nearly export --collection NAME (--data-dir DIR | --url http://HOST:PORT [--api-key K])\n"
               "                     --out FILE.jsonl | --out FILE.npy [--payloads FILE.jsonl]\n"
               "  --format jsonl|npy   default: from the --out extension\n"
               "  --payloads FILE      npy: where payloads go (default FILE.payloads.jsonl)\n"
               "  --id-field NAME      default id\n"
               "  --vector-field NAME  default vector\n"
               "  --payload-field NAME write the payload as one object field instead of top-level fields\n"
               "  --batch N            points per page (default 1024)\n"
               "Import the result with: nearly import --collection NAME ... FILE.jsonl\n"
               "                    or: nearly import --collection NAME ... FILE.npy --payloads FILE.payloads.jsonl\n");
}

int cmd_export(int argc, char **argv)
{
    exp_ctx x;
    memset(&x, 0, sizeof x);
    x.h.fd = -1;
    x.batch = 1024;
    x.id_field = "id";
    x.vector_field = "vector";
    const char *v;
    for (int i = 1; i < argc; i++) {
        int r = 0;
#define OPT(name) ((r = arg_opt(argc, argv, &i, name, &v)) != 0)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (OPT("--collection")) { if (r < 0) goto missing; x.collection = v; }
        else if (OPT("--data-dir")) { if (r < 0) goto missing; x.data_dir = v; }
        else if (OPT("--url")) { if (r < 0) goto missing; x.url = v; }
        else if (OPT("--api-key")) { if (r < 0) goto missing; x.api_key = v; }
        else if (OPT("--out")) { if (r < 0) goto missing; x.out = v; }
        else if (OPT("--payloads")) { if (r < 0) goto missing; x.payloads = v; }
        else if (OPT("--id-field")) { if (r < 0) goto missing; x.id_field = v; }
        else if (OPT("--vector-field")) { if (r < 0) goto missing; x.vector_field = v; }
        else if (OPT("--payload-field")) { if (r < 0) goto missing; x.payload_field = v; }
        else if (OPT("--format")) {
            if (r < 0) goto missing;
            if (ing_fmt_parse(v, &x.fmt) != NY_OK || (x.fmt != FMT_JSONL && x.fmt != FMT_NPY)) {
                fprintf(stderr, "export: --format must be jsonl or npy\n");
                return 2;
            }
        } else if (OPT("--batch")) {
            if (r < 0 || arg_size("export", "--batch", v, 1, 100000, &x.batch)) goto bad;
        } else {
            fprintf(stderr, "export: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        continue;
    missing:
        fprintf(stderr, "export: %s needs a value\n", argv[i]);
        return 2;
    bad:
        if (r < 0) fprintf(stderr, "export: %s needs a value\n", argv[i]);
        return 2;
#undef OPT
    }
    if (!x.collection || !x.out || !!x.data_dir == !!x.url) {
        fprintf(stderr, "export: --collection, --out and one of --data-dir / --url are required\n");
        usage(stderr);
        return 2;
    }
    if (x.fmt == FMT_AUTO) x.fmt = ing_fmt_guess(x.out);
    if (x.fmt != FMT_JSONL && x.fmt != FMT_NPY) {
        fprintf(stderr, "export: cannot tell the format of %s: use --format jsonl|npy\n", x.out);
        return 2;
    }
    char plpath[4096];
    if (x.fmt == FMT_NPY) {
        if (x.payloads) snprintf(plpath, sizeof plpath, "%s", x.payloads);
        else {
            snprintf(plpath, sizeof plpath, "%s", x.out);
            char *dot = strrchr(plpath, '.');
            if (dot && !strcmp(dot, ".npy")) *dot = 0;
            strncat(plpath, ".payloads.jsonl", sizeof plpath - strlen(plpath) - 1);
        }
    }
    int ret = 1, rc;
    FILE *f = NULL, *fp = NULL;
    page pg;
    memset(&pg, 0, sizeof pg);
    if (x.data_dir) {
        if ((rc = ny_db_open(x.data_dir, &x.db)) != NY_OK) {
            fprintf(stderr, "export: cannot open %s: %s%s\n", x.data_dir, ny_errmsg(),
                    rc == NY_EBUSY ? " (a server is using it? export through --url instead)" : "");
            return 1;
        }
        if (ny_db_get_collection(x.db, x.collection, &x.coll) != NY_OK) {
            fprintf(stderr, "export: %s\n", ny_errmsg());
            goto out;
        }
        x.dim = ny_collection_dim(x.coll);
    } else {
        if (httpc_init(&x.h, x.url, x.api_key) != NY_OK) {
            fprintf(stderr, "export: %s\n", ny_errmsg());
            return 2;
        }
        char path[512];
        snprintf(path, sizeof path, "/collections/%s", x.collection);
        int st;
        const char *resp;
        if (httpc_request(&x.h, "GET", path, NULL, 0, &st, &resp, NULL) != NY_OK) {
            fprintf(stderr, "export: %s\n", ny_errmsg());
            goto out;
        }
        json_error_t e;
        json_t *j = json_loads(resp, 0, &e);
        json_t *sz = json_object_get(
            json_object_get(json_object_get(json_object_get(json_object_get(j, "result"), "config"), "params"), "vectors"),
            "size");
        if (st != 200 || !json_is_integer(sz)) {
            fprintf(stderr, "export: GET %s: HTTP %d: %.300s\n", path, st, resp);
            json_decref(j);
            goto out;
        }
        x.dim = (size_t)json_integer_value(sz);
        json_decref(j);
    }
    f = fopen(x.out, "wb");
    if (!f) {
        fprintf(stderr, "export: cannot create %s: %m\n", x.out);
        goto out;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    const size_t hdr = 128;
    if (x.fmt == FMT_NPY) {
        fp = fopen(plpath, "wb");
        if (!fp) {
            fprintf(stderr, "export: cannot create %s: %m\n", plpath);
            goto out;
        }
        char h[128];
        npy_header(h, hdr, 0, x.dim);
        fwrite(h, 1, hdr, f);
    }
    unsigned long long n = 0;
    ny_point_id off;
    int have_off = 0;
    double t0 = ny_now();
    char num[32];
    for (;;) {
        page_reset(&pg);
        rc = x.data_dir ? fetch_embedded(&x, have_off ? &off : NULL, &pg) : fetch_http(&x, have_off ? &off : NULL, &pg);
        if (rc != NY_OK) {
            fprintf(stderr, "export: %s\n", ny_errmsg());
            goto out;
        }
        for (size_t i = 0; i < pg.n; i++) {
            char idb[64];
            id_json(&pg.ids[i], idb, sizeof idb);
            const float *vec = pg.vecs + i * x.dim;
            if (x.fmt == FMT_JSONL) {
                fprintf(f, "{\"%s\":%s,\"%s\":[", x.id_field, idb, x.vector_field);
                for (size_t d = 0; d < x.dim; d++) {
                    int k = ing_format_float(num, vec[d]);
                    if (d) fputc(',', f);
                    fwrite(num, 1, (size_t)k, f);
                }
                fputc(']', f);
                if (write_payload(&x, f, &pg.ids[i], pg.pls[i], 1) != NY_OK) {
                    fprintf(stderr, "export: %s\n", ny_errmsg());
                    goto out;
                }
                fputs("}\n", f);
            } else {
                fwrite(vec, sizeof(float), x.dim, f);
                fprintf(fp, "{\"%s\":%s", x.id_field, idb);
                if (write_payload(&x, fp, &pg.ids[i], pg.pls[i], 0) != NY_OK) {
                    fprintf(stderr, "export: %s\n", ny_errmsg());
                    goto out;
                }
                fputs("}\n", fp);
            }
            n++;
        }
        if (!pg.has_next) break;
        off = pg.next;
        have_off = 1;
    }
    if (x.fmt == FMT_NPY) {
        char h[128];
        npy_header(h, hdr, n, x.dim);
        if (fseek(f, 0, SEEK_SET) != 0 || fwrite(h, 1, hdr, f) != hdr) {
            fprintf(stderr, "export: cannot write %s: %m\n", x.out);
            goto out;
        }
    }
    if (fflush(f) != 0 || ferror(f) || (fp && (fflush(fp) != 0 || ferror(fp)))) {
        fprintf(stderr, "export: write error: %m\n");
        goto out;
    }
    fprintf(stderr, "export: %llu points written to %s%s%s in %.2f s\n", n, x.out, fp ? " and " : "",
            fp ? plpath : "", ny_now() - t0);
    ret = 0;
out:
    if (f && fclose(f) != 0 && ret == 0) {
        fprintf(stderr, "export: cannot close %s: %m\n", x.out);
        ret = 1;
    }
    if (fp && fclose(fp) != 0 && ret == 0) {
        fprintf(stderr, "export: cannot close %s: %m\n", plpath);
        ret = 1;
    }
    page_reset(&pg);
    free(pg.ids);
    free(pg.vecs);
    free(pg.pls);
    httpc_close(&x.h);
    if (x.coll) ny_collection_release(x.coll);
    if (x.db) ny_db_close(x.db);
    return ret;
}
