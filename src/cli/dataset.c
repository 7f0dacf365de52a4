/* dataset.c -- loading benchmark data set directories (see dataset.h). */
#include "cli/dataset.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/fvecs.h"

void dataset_free(dataset *ds)
{
    free(ds->base);
    free(ds->queries);
    free(ds->gt);
    memset(ds, 0, sizeof *ds);
}

int dataset_load(const char *cmd, const char *dir, size_t limit_queries, int need_gt, dataset *ds)
{
    return dataset_load_ex(cmd, dir, limit_queries, need_gt, 0, ds);
}

int dataset_load_ex(const char *cmd, const char *dir, size_t limit_queries, int need_gt, int skip_base, dataset *ds)
{
    char path[4200];
    size_t qdim = 0, gn = 0;
    memset(ds, 0, sizeof *ds);
    snprintf(path, sizeof path, "%s/base.fvecs", dir);
    if (skip_base) {
        vecs_reader r;
        if (vecs_open(path, &r) != NY_OK) goto err;
        ds->n = r.n;
        ds->dim = r.dim;
        vecs_close(&r);
    } else if (fvecs_load(path, 0, &ds->base, &ds->n, &ds->dim) != NY_OK) {
        goto err;
    }
    if (ds->n == 0) {
        fprintf(stderr, "%s: %s holds no vectors\n", cmd, path);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/query.fvecs", dir);
    if (fvecs_load(path, limit_queries, &ds->queries, &ds->nq, &qdim) != NY_OK) goto err;
    if (ds->nq == 0) {
        fprintf(stderr, "%s: %s holds no vectors\n", cmd, path);
        goto fail;
    }
    if (qdim != ds->dim) {
        fprintf(stderr, "%s: %s has dimension %zu but base.fvecs has %zu\n", cmd, path, qdim, ds->dim);
        goto fail;
    }
    if (!need_gt) return 0;
    snprintf(path, sizeof path, "%s/groundtruth.ivecs", dir);
    if (ivecs_load(path, ds->nq, &ds->gt, &gn, &ds->gt_k) != NY_OK) goto err;
    if (gn < ds->nq) {
        fprintf(stderr, "%s: %s has %zu rows for %zu queries\n", cmd, path, gn, ds->nq);
        goto fail;
    }
    for (size_t i = 0; i < ds->nq * ds->gt_k; i++)
        if (ds->gt[i] < 0 || (size_t)ds->gt[i] >= ds->n) {
            fprintf(stderr, "%s: %s: query %zu lists id %d, outside the base (n = %zu)\n", cmd, path,
                    i / ds->gt_k, (int)ds->gt[i], ds->n);
            goto fail;
        }
    return 0;
err:
    fprintf(stderr, "%s: %s\n", cmd, ny_errmsg());
fail:
    dataset_free(ds);
    return -1;
}

static int metric_from_word(const char *s, ny_metric *out)
{
    if (!strncasecmp(s, "l2", 2) || !strncasecmp(s, "euclid", 6)) *out = NY_L2;
    else if (!strncasecmp(s, "cos", 3) || !strncasecmp(s, "angular", 7) || !strncasecmp(s, "ip", 2))
        *out = NY_COSINE; /* gen_data.py writes "ip (vectors are unit-norm, so == cosine)" */
    else if (!strncasecmp(s, "dot", 3)) *out = NY_DOT;
    else return -1;
    return 0;
}

int dataset_metric(const char *dir, ny_metric *out, const char **how)
{
    char name[1024];
    snprintf(name, sizeof name, "%s", dir);
    size_t len = strlen(name);
    while (len > 1 && name[len - 1] == '/') name[--len] = 0;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dash = strrchr(base, '-');
    if (dash && metric_from_word(dash + 1, out) == 0) {
        *how = "from the directory name";
        return 0;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    if (j) {
        const char *m = json_string_value(json_object_get(j, "metric"));
        int rc = m ? metric_from_word(m, out) : -1;
        json_decref(j);
        if (rc == 0) {
            *how = "from meta.json";
            return 0;
        }
    }
    return -1;
}
