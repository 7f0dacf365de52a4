/*
 * coll_quant.h -- a collection's quantization_config applied to its HNSW
 * index (src/index/hnsw_quant.c).
 */
#ifndef NY_COLL_QUANT_H
#define NY_COLL_QUANT_H

#include "collection/coll.h"

/* Makes the index's quantization match config.quantization_config (set,
 * replaced or removed; nothing done when they already agree, e.g. after a
 * load restored it).  Caller holds cfg_mu or owns the collection. */
int ny_coll_quant_sync(ny_collection *c);

/* vectors.on_disk / hnsw_config.on_disk: moves the indexed vectors' float
 * rows / the graph's link lists into memory-mapped files in the collection
 * directory (ny_hnsw_vectors_to_disk, ny_hnsw_graph_to_disk; only what was
 * added since the last call is written).  Called after a load, after each
 * checkpoint and after a config update; nothing when both are false.
 * Takes cfg_mu: the caller must not hold it.  Setting a flag back to false
 * takes effect when the collection is next opened. */
int ny_coll_vectors_sync(ny_collection *c);
/* The config's params.vectors.on_disk and hnsw_config.on_disk. */
void ny_coll_disk_flags(ny_collection *c, int *vec, int *graph);

/* The vector search used by collections: on codes with rescoring when the
 * index is quantized and the params do not say ignore, else float HNSW. */
int ny_coll_quant_search(ny_collection *c, const ny_search_params *p, const float *q, size_t k,
                         const ny_filter *flt, uint32_t *ids, float *dists);

#endif
