/*
 * coll_quant.c -- see coll_quant.h.
 */
#include "collection/coll_quant.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/common.h"
#include "quant/quant.h"

/* Canonical text of a quantization_config (NULL for none). */
static int canonical(const char *json, char **out)
{
    *out = NULL;
    if (!json) return NY_OK;
    ny_quant_config qc;
    int always_ram = 0;
    int rc = ny_quant_config_from_json(json, &qc, &always_ram);
    if (rc == NY_OK) rc = ny_quant_config_to_json(&qc, always_ram, out);
    return rc;
}

int ny_coll_quant_sync(ny_collection *c)
{
    json_t *q = json_object_get(json_object_get(c->cfg.root, "config"), "quantization_config");
    char *want_raw = (q && !json_is_null(q)) ? json_dumps(q, JSON_COMPACT) : NULL;
    if (q && !json_is_null(q) && !want_raw) return ny_error(NY_ENOMEM, "out of memory");
    char *want = NULL, *have = NULL;
    int rc = canonical(want_raw, &want);
    if (rc == NY_OK) rc = ny_hnsw_get_quantization(c->index, &have);
    if (rc == NY_OK && !((!want && !have) || (want && have && !strcmp(want, have))))
        rc = ny_hnsw_set_quantization(c->index, want_raw);
    free(want_raw);
    free(want);
    free(have);
    return rc;
}

void ny_coll_disk_flags(ny_collection *c, int *vec, int *graph)
{
    pthread_mutex_lock(&c->cfg_mu);
    json_t *conf = json_object_get(c->cfg.root, "config");
    *vec = json_is_true(json_object_get(json_object_get(json_object_get(conf, "params"), "vectors"), "on_disk"));
    *graph = json_is_true(json_object_get(json_object_get(conf, "hnsw_config"), "on_disk"));
    pthread_mutex_unlock(&c->cfg_mu);
}

int ny_coll_vectors_sync(ny_collection *c)
{
    int vec, graph;
    ny_coll_disk_flags(c, &vec, &graph);
    int rc = NY_OK;
    if (vec) rc = ny_hnsw_vectors_to_disk(c->index, c->dir, NULL);
    if (rc == NY_OK && graph) rc = ny_hnsw_graph_to_disk(c->index, c->dir, NULL);
    return rc;
}

int ny_coll_quant_search(ny_collection *c, const ny_search_params *p, const float *q, size_t k,
                         const ny_filter *flt, uint32_t *ids, float *dists)
{
    /* Without a (trained) quantizer ny_hnsw_search_quant is the float
     * search; it trains at the first search once there are enough vectors. */
    if (p->quant_ignore) return ny_hnsw_search(c->index, q, k, p->hnsw_ef, flt, ids, dists);
    return ny_hnsw_search_quant(c->index, q, k, p->hnsw_ef, flt, p->quant_rescore, p->quant_oversampling, ids, dists);
}
