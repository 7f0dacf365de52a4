/*
 * hnsw.h -- internal view of the HNSW index (src/index/hnsw.c): checks used
 * by tests and by the load path.  Not part of the public API.
 */
#ifndef NY_INDEX_HNSW_H
#define NY_INDEX_HNSW_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

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

/* ---- Narrow internal view, for the quantized search (hnsw_quant.c) ---- *
 * Every array lives in a reserved region that never moves, so the pointers
 * stay valid for the index's lifetime.  Node i's level-0 list is
 * link0[i * stride0]: [count | ids]; its level-l list (1 <= l <= level[i])
 * is upper[uoff[i] + (l - 1) * strideu].  Counts and ids are read with
 * acquire (writers store them with release). */
#define NY_HNSW_F_USED 2u
#define NY_HNSW_F_LIVE 4u
#define NY_HNSW_F_DEL 8u

typedef struct ny_hnsw_view {
    size_t dim, dimp, nmax;
    ny_metric metric;
    const float *vecs; /* rows of dimp floats (normalised for COSINE) */
    const _Atomic uint32_t *link0;
    uint32_t stride0;
    const _Atomic uint32_t *upper;
    const uint32_t *uoff;
    uint32_t strideu;
    const uint8_t *level;
    const _Atomic uint8_t *flags;
    const uint32_t *i2e;
} ny_hnsw_view;

void ny_hnsw_get_view(const ny_hnsw *h, ny_hnsw_view *v);
/* (top level << 32) | entry node; low 32 bits UINT32_MAX when empty. */
uint64_t ny_hnsw_entry(const ny_hnsw *h);
/* Reader section: nodes seen inside are not recycled before exit. */
int ny_hnsw_read_enter(const ny_hnsw *h);
void ny_hnsw_read_exit(const ny_hnsw *h, int slot);
/* Excludes inserts, deletes, vacuum and save (not searches). */
void ny_hnsw_excl_lock(ny_hnsw *h);
void ny_hnsw_excl_unlock(ny_hnsw *h);
/* Waits for every reader section active at the call (hold excl_lock). */
void ny_hnsw_grace(ny_hnsw *h);

/* Quantization state attached to the index (hnsw_quant.c). */
struct ny_hnsw_qstate;
struct ny_hnsw_qstate *ny_hnsw_qstate_get(const ny_hnsw *h);
void ny_hnsw_qstate_set(ny_hnsw *h, struct ny_hnsw_qstate *q);
/* Hooks called by hnsw.c: encode node's row on insert (before it is
 * linked), free, and persist next to the index file (path + ".quant"). */
void ny_hnsw_q_on_add(struct ny_hnsw_qstate *q, uint32_t node, const float *row);
void ny_hnsw_q_free(struct ny_hnsw_qstate *q);
int ny_hnsw_q_save(const ny_hnsw *h, const char *path);
int ny_hnsw_q_load(ny_hnsw *h, const char *path);

/* Regions moved to memory-mapped files (hnsw_disk.c).  get/set and
 * upper_words need the excl lock (or no concurrent inserts); disk_free is
 * called by ny_hnsw_free after the regions are unmapped. */
struct ny_hnsw_disk;
struct ny_hnsw_disk *ny_hnsw_disk_get(const ny_hnsw *h);
void ny_hnsw_disk_set(ny_hnsw *h, struct ny_hnsw_disk *d);
void ny_hnsw_disk_free(struct ny_hnsw_disk *d);
/* Load path (ny_hnsw_load_ex): moves the first `bytes` of a region (whole
 * pages; what an earlier call moved is kept) to its file in dir, written
 * back and dropped from the page cache at once, so that loading a file
 * larger than the memory given to the process keeps little of it resident. */
enum { NY_HNSW_DISK_VECS, NY_HNSW_DISK_LINK0, NY_HNSW_DISK_UPPER };
int ny_hnsw_disk_move(ny_hnsw *h, const char *dir, int region, size_t bytes);
/* Read-ahead advice for the on-disk vector rows: sequential (1) while
 * something reads them all in order (encoding), random (0, the default)
 * for searches.  Excl lock held; no effect if the rows are in RAM. */
void ny_hnsw_disk_vec_advise(ny_hnsw *h, int sequential);
/* uint32 words of the upper-level arena in use. */
size_t ny_hnsw_upper_words(const ny_hnsw *h);

#endif
