/*
 * coll.h -- internals of collections (collection.c, config.c, persist.c,
 * db.c).  Not part of the public API.
 *
 * Locking, outermost first:
 *   c->ckpt_mu  one checkpoint or snapshot at a time
 *   c->wmu      serialises writers: WAL order == apply order
 *   c->idx_mu   one pending-set drain at a time (the background indexer
 *               holds it while it inserts a chunk, without wmu, so writers
 *               keep going; a writer that must retire a vector of the chunk
 *               in flight waits for it by taking idx_mu)
 *   c->rw       the point map, payloads and ids: writers take it
 *               exclusively only while they change the map; readers
 *               (retrieve, scroll, count, search) hold it shared for the
 *               whole call, so payload JSON they read cannot change under
 *               them.  The HNSW index is concurrent on its own.
 *   c->sort_mu  the sorted-id cache used by scroll (built under rw shared)
 *   c->cfg_mu   the configuration JSON
 */
#ifndef NY_COLL_H
#define NY_COLL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/common.h"
#include "storage/wal.h"

#define NY_VID_NONE UINT32_MAX
/* Default flow-control limit on vectors waiting to be indexed. */
#define NY_PENDING_MAX_DEFAULT 20000

/* WAL record types. */
enum {
    REC_UPSERT = 1,
    REC_DELETE = 2,
    REC_SET_PAYLOAD = 3,
    REC_OVERWRITE_PAYLOAD = 4,
    REC_DELETE_KEYS = 5,
    REC_CLEAR_PAYLOAD = 6,
    REC_UPDATE_VECTORS = 7
};

/* Parsed, normalised configuration. */
typedef struct ny_cfg {
    size_t dim;
    ny_metric metric;
    size_t m, ef_construct, full_scan_kb;
    json_t *root; /* {"config": CollectionConfig, "payload_schema": {...}} */
} ny_cfg;

struct ny_collection {
    struct ny_db *db;
    char *name;
    char *dir;
    atomic_int refs;
    atomic_int closed;   /* db closed or collection dropped */
    atomic_int dropped;

    pthread_mutex_t ckpt_mu;
    pthread_mutex_t wmu;
    pthread_rwlock_t rw;
    pthread_mutex_t sort_mu;
    pthread_mutex_t cfg_mu;

    ny_cfg cfg;
    size_t dim;
    ny_metric metric;

    ny_hnsw *index;
    ny_wal *wal;
    uint64_t ckpt_lsn;
    uint64_t ckpt_bytes;       /* size of the last checkpoint's files */
    double ckpt_time;
    _Atomic uint64_t vecs_since_ckpt; /* vectors indexed since the checkpoint */

    /* Point map (vid = vector id in the index). */
    ny_point_id *ids;          /* [vcap] */
    json_t **payloads;         /* [vcap]; NULL = {} */
    uint8_t *live;             /* [vcap] */
    uint32_t vcap, nvid;       /* allocated, high-water mark */
    uint32_t *freel;
    size_t nfree, capfree;
    uint32_t *htab;            /* open addressing, linear probing, vids */
    size_t hcap;
    size_t count;

    struct ny_pindex *pidx;    /* payload indexes (coll_index.c) */
    /* Vectors logged and applied but not yet in the index: every upsert
     * (and the log replay at open) puts vectors here; a background thread
     * indexes them in chunks; searches scan them exactly.  Changed under rw
     * exclusive; drained under idx_mu (see ny_coll_pending_drain). */
    pthread_mutex_t idx_mu;
    pthread_mutex_t pend_mu;   /* guards the two condition variables */
    pthread_cond_t work_cv;    /* pending vectors arrived / stop */
    pthread_cond_t done_cv;    /* a chunk was indexed */
    atomic_size_t npend_a;     /* npend, readable without rw */
    size_t pend_max;           /* flow control: writers wait above this */
    int async_index;           /* indexer thread running since open */
    uint8_t *pend_fly;         /* [vcap]: in the chunk being indexed */
    uint32_t *pend_idx;        /* [vcap]: position in pend_vid, or NY_VID_NONE */
    uint32_t *pend_vid;
    float *pend_vec;           /* npend x dim, as given (the index normalises
                                * cosine vectors itself: normalising twice
                                * would change the last bits) */
    float *pend_inv;           /* npend: 1/norm, for cosine distances */
    size_t npend, pcap;
    int defer_index;           /* set while replaying */
    pthread_t indexer;
    int indexer_started;
    atomic_int indexer_stop;

    uint32_t *sorted;          /* scroll cache */
    size_t nsorted;
    int sorted_valid;
};

/* ---- config.c */
int ny_cfg_from_create(const char *json, ny_cfg *out);
int ny_cfg_from_stored(json_t *root, ny_cfg *out); /* takes root's reference */
void ny_cfg_free(ny_cfg *c);
/* Recomputes the cached fields from root. */
int ny_cfg_refresh(ny_cfg *c);
int ny_cfg_apply_update(ny_cfg *c, const char *patch_json); /* validates first */
int ny_cfg_save(const ny_cfg *c, const char *dir);
int ny_cfg_load(const char *dir, ny_cfg *out);
int ny_check_name(const char *name, const char *what);

/* ---- collection.c */
int ny_coll_open(struct ny_db *db, const char *name, const char *dir, ny_collection **out);
/* Final checkpoint (if checkpoint), WAL close, marks closed. */
void ny_coll_shutdown(ny_collection *c, int checkpoint);
void ny_coll_ref(ny_collection *c);
uint32_t ny_coll_lookup(const ny_collection *c, const ny_point_id *id);
/* Point map updates used by the checkpoint loader (rw held or no sharing). */
int ny_coll_map_put(ny_collection *c, const ny_point_id *id, uint32_t vid, json_t *payload);
int ny_coll_rebuild_freelist(ny_collection *c);
int ny_coll_map_grow(ny_collection *c, uint32_t need);
void ny_coll_norm_id(ny_point_id *dst, const ny_point_id *src);

/* ---- persist.c */
int ny_persist_checkpoint(ny_collection *c);  /* takes ckpt_mu */
int ny_persist_load(ny_collection *c);        /* checkpoint files, if any */
int ny_persist_snapshot(ny_collection *c, const char *path);
/* Verifies a snapshot file and extracts it into dir (created). */
int ny_persist_extract_snapshot(const char *path, const char *dir);
/* Background maintenance: checkpoint when the log has grown too much. */
int ny_persist_maybe_checkpoint(ny_collection *c);
/* Indexes up to max pending vectors (takes idx_mu; callers must not hold
 * rw or idx_mu).  Returns the number indexed or an NY_E* code. */
int ny_coll_pending_drain(ny_collection *c, size_t max);
/* Writers call this to apply a decoded record (also used by replay). */
int ny_coll_replay(void *ctx, uint64_t lsn, uint32_t type, const void *body, size_t len);

#endif
