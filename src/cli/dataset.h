/* dataset.h -- a benchmark data set directory: base.fvecs, query.fvecs,
 * groundtruth.ivecs (the layout of /work/shared/data and `nearly gen`). */
#ifndef NY_CLI_DATASET_H
#define NY_CLI_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "nearly.h"

typedef struct dataset {
    float *base, *queries;
    int32_t *gt;       /* nq x gt_k, or NULL */
    size_t n, nq, dim, gt_k;
} dataset;

/* Loads DIR/base.fvecs and DIR/query.fvecs (at most limit_queries queries
 * when > 0) and, when need_gt, DIR/groundtruth.ivecs, checking that the
 * dimensions agree and that every ground-truth id is in [0, n).  Prints
 * "cmd: <message>" and returns non-zero on error. */
int dataset_load(const char *cmd, const char *dir, size_t limit_queries, int need_gt, dataset *ds);
/* The same; skip_base only reads base.fvecs's header (n and dim; base
 * stays NULL), for runs that load a saved index. */
int dataset_load_ex(const char *cmd, const char *dir, size_t limit_queries, int need_gt, int skip_base, dataset *ds);
void dataset_free(dataset *ds);

/* Infers the metric of DIR: from its name (…-angular, …-euclidean,
 * …-cosine, …-l2, …-dot) or from the "metric" field of DIR/meta.json
 * (written by `nearly gen` and gen_data.py).  Returns 0 and sets *out and
 * *how (a short description of where it came from), or -1. */
int dataset_metric(const char *dir, ny_metric *out, const char **how);

#endif
