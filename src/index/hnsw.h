/*
 * hnsw.h -- internal view of the HNSW index (src/index/hnsw.c): checks used
 * by tests and by the load path.  Not part of the public API.
 */
#ifndef NY_INDEX_HNSW_H
#define NY_INDEX_HNSW_H

#include <stddef.h>

#include "nearly.h"

/* Checks the structure: every link id names an allocated node, no self
 * links, no duplicate links in a list, link counts within bounds, levels
 * within the maximum level, the id maps agree with each other and with the
 * live/deleted flags, the entry point is valid.  Returns NY_OK or
 * NY_ECORRUPT with a message naming the first problem.  Must not run
 * concurrently with inserts, deletes or vacuum (searches are fine). */
int ny_hnsw_validate(const ny_hnsw *h);

/* Number of live nodes reachable on level 0 from the entry point. */
size_t ny_hnsw_reachable(const ny_hnsw *h);

/* Number of internal nodes allocated (live + tombstones + free slots). */
size_t ny_hnsw_node_count(const ny_hnsw *h);

#endif
