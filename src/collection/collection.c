/*
 * collection.c -- points, payloads and the point map of a collection; the
 * write path (validate -> log -> apply -> group-committed sync) and the
 * read path (retrieve, scroll, count, search).
 *
 * Every write is turned into one WAL record that names its points by id
 * (a delete by filter is resolved to ids first), so replay after a crash
 * runs the very same apply functions on the very same input.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collection/coll.h"
#include "collection/coll_index.h"
#include "collection/coll_quant.h"
#include "filter/filter.h"
#include "storage/fileio.h"

/* ===== Point ids ======================================================= */

void ny_coll_norm_id(ny_point_id *dst, const ny_point_id *src)
{
    memset(dst, 0, sizeof *dst);
    dst->is_uuid = src->is_uuid ? 1 : 0;
    if (dst->is_uuid) memcpy(dst->uuid, src->uuid, 16);
    else dst->num = src->num;
}

static int id_eq(const ny_point_id *a, const ny_point_id *b)
{
    if (a->is_uuid != b->is_uuid) return 0;
    return a->is_uuid ? !memcmp(a->uuid, b->uuid, 16) : a->num == b->num;
}

static uint64_t id_hash(const ny_point_id *id)
{
    if (id->is_uuid) return ny_hash64(id->uuid, 16) ^ 0x5bd1e995u;
    uint64_t z = id->num + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void id_str(const ny_point_id *id, char buf[37])
{
    ny_point_id_format(id, buf);
}

static int check_id(const ny_point_id *id, size_t i)
{
    if (id->is_uuid != 0 && id->is_uuid != 1)
        return ny_error(NY_EINVAL, "point %zu: invalid id (is_uuid must be 0 or 1)", i);
    return NY_OK;
}

/* ===== Point map ======================================================= */

uint32_t ny_coll_lookup(const ny_collection *c, const ny_point_id *id)
{
    if (!c->hcap) return NY_VID_NONE;
    size_t mask = c->hcap - 1, h = id_hash(id) & mask;
    for (;;) {
        uint32_t v = c->htab[h];
        if (v == NY_VID_NONE) return NY_VID_NONE;
        if (id_eq(&c->ids[v], id)) return v;
        h = (h + 1) & mask;
    }
}

static int htab_grow(ny_collection *c, size_t need)
{
    if (need * 2 <= c->hcap) return NY_OK;
    size_t nc = c->hcap ? c->hcap : 1024;
    while (need * 2 > nc) nc *= 2;
    uint32_t *nt = malloc(nc * sizeof *nt);
    if (!nt) return ny_error(NY_ENOMEM, "out of memory (point map)");
    memset(nt, 0xff, nc * sizeof *nt);
    for (size_t i = 0; i < c->hcap; i++) {
        uint32_t v = c->htab[i];
        if (v == NY_VID_NONE) continue;
        size_t h = id_hash(&c->ids[v]) & (nc - 1);
        while (nt[h] != NY_VID_NONE) h = (h + 1) & (nc - 1);
        nt[h] = v;
    }
    free(c->htab);
    c->htab = nt;
    c->hcap = nc;
    return NY_OK;
}

static void htab_insert(ny_collection *c, uint32_t vid)
{
    size_t mask = c->hcap - 1, h = id_hash(&c->ids[vid]) & mask;
    while (c->htab[h] != NY_VID_NONE) h = (h + 1) & mask;
    c->htab[h] = vid;
}

static void htab_remove(ny_collection *c, uint32_t vid)
{
    size_t mask = c->hcap - 1, h = id_hash(&c->ids[vid]) & mask;
    while (c->htab[h] != vid) h = (h + 1) & mask;
    /* Backward-shift deletion keeps probe chains intact. */
    size_t j = h;
    for (;;) {
        c->htab[h] = NY_VID_NONE;
        for (;;) {
            j = (j + 1) & mask;
            uint32_t v = c->htab[j];
            if (v == NY_VID_NONE) return;
            size_t home = id_hash(&c->ids[v]) & mask;
            /* move v to h if its home is not in (h, j] cyclically */
            if (h <= j ? (home <= h || home > j) : (home <= h && home > j)) {
                c->htab[h] = v;
                h = j;
                break;
            }
        }
    }
}

int ny_coll_map_grow(ny_collection *c, uint32_t need)
{
    if (need <= c->vcap) return NY_OK;
    size_t nc = c->vcap ? c->vcap : 1024;
    while (nc < need) nc *= 2;
    if (nc > NY_VID_NONE - 1) nc = NY_VID_NONE - 1;
    if (nc < need) return ny_error(NY_EFULL, "collection is full (2^32 - 1 points)");
    ny_point_id *ni = realloc(c->ids, nc * sizeof *ni);
    if (ni) c->ids = ni;
    json_t **np = realloc(c->payloads, nc * sizeof *np);
    if (np) c->payloads = np;
    uint8_t *nl = realloc(c->live, nc);
    if (nl) c->live = nl;
    uint32_t *npi = realloc(c->pend_idx, nc * sizeof *npi);
    if (npi) c->pend_idx = npi;
    uint8_t *nfl = realloc(c->pend_fly, nc);
    if (nfl) c->pend_fly = nfl;
    if (!ni || !np || !nl || !npi || !nfl) return ny_error(NY_ENOMEM, "out of memory (point map)");
    memset(c->pend_idx + c->vcap, 0xff, (nc - c->vcap) * sizeof *npi);
    memset(c->pend_fly + c->vcap, 0, nc - c->vcap);
    memset(c->payloads + c->vcap, 0, (nc - c->vcap) * sizeof *np);
    memset(c->live + c->vcap, 0, nc - c->vcap);
    memset(c->ids + c->vcap, 0, (nc - c->vcap) * sizeof *ni);
    c->vcap = (uint32_t)nc;
    return NY_OK;
}

/* Allocates a vector id (free list first).  Called with rw held exclusively. */
static int vid_alloc(ny_collection *c, uint32_t *out)
{
    if (c->nfree) {
        *out = c->freel[--c->nfree];
        return NY_OK;
    }
    int rc = ny_coll_map_grow(c, c->nvid + 1);
    if (rc != NY_OK) return rc;
    *out = c->nvid++;
    return NY_OK;
}

static int vid_free(ny_collection *c, uint32_t vid)
{
    if (c->nfree == c->capfree) {
        size_t nc = c->capfree ? c->capfree * 2 : 256;
        uint32_t *nf = realloc(c->freel, nc * sizeof *nf);
        if (!nf) return ny_error(NY_ENOMEM, "out of memory (free list)");
        c->freel = nf;
        c->capfree = nc;
    }
    c->freel[c->nfree++] = vid;
    return NY_OK;
}

/* Adds a point to the map (rw held exclusively).  Used by apply and by the
 * checkpoint loader (which passes a fixed vid). */
int ny_coll_map_put(ny_collection *c, const ny_point_id *id, uint32_t vid, json_t *payload)
{
    int rc = ny_coll_map_grow(c, vid + 1);
    if (rc == NY_OK) rc = htab_grow(c, c->count + 1);
    if (rc != NY_OK) return rc;
    ny_coll_norm_id(&c->ids[vid], id);
    c->live[vid] = 1;
    c->payloads[vid] = payload;
    ny_coll_index_set(c, vid, payload);
    htab_insert(c, vid);
    c->count++;
    if (vid >= c->nvid) c->nvid = vid + 1;
    c->sorted_valid = 0;
    return NY_OK;
}

/* Rebuilds the free list from the live flags (after loading a checkpoint). */
int ny_coll_rebuild_freelist(ny_collection *c)
{
    c->nfree = 0;
    for (uint32_t v = c->nvid; v-- > 0;) {
        if (!c->live[v]) {
            int rc = vid_free(c, v);
            if (rc != NY_OK) return rc;
        }
    }
    return NY_OK;
}

/* ===== Byte buffers for WAL records ==================================== */

typedef struct bbuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} bbuf;

static void bb_put(bbuf *b, const void *d, size_t n)
{
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n) nc *= 2;
        unsigned char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void bb_u32(bbuf *b, uint32_t v) { bb_put(b, &v, 4); }

static void bb_id(bbuf *b, const ny_point_id *id)
{
    unsigned char x[17];
    x[0] = id->is_uuid ? 1 : 0;
    if (id->is_uuid) memcpy(x + 1, id->uuid, 16);
    else {
        memcpy(x + 1, &id->num, 8);
        memset(x + 9, 0, 8);
    }
    bb_put(b, x, 17);
}

static void bb_str(bbuf *b, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0;
    bb_u32(b, n);
    if (n) bb_put(b, s, n);
}

typedef struct brd {
    const unsigned char *p;
    size_t len, pos;
    int bad;
} brd;

static const unsigned char *br_get(brd *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *q = r->p + r->pos;
    r->pos += n;
    return q;
}

static uint32_t br_u32(brd *r)
{
    const unsigned char *q = br_get(r, 4);
    uint32_t v = 0;
    if (q) memcpy(&v, q, 4);
    return v;
}

static void br_id(brd *r, ny_point_id *id)
{
    const unsigned char *q = br_get(r, 17);
    memset(id, 0, sizeof *id);
    if (!q) return;
    if (q[0] > 1) {
        r->bad = 1;
        return;
    }
    id->is_uuid = q[0];
    if (q[0]) memcpy(id->uuid, q + 1, 16);
    else memcpy(&id->num, q + 1, 8);
}

/* Returns a malloc'd NUL-terminated copy, or NULL for an empty string. */
static char *br_str(brd *r, int *oom)
{
    uint32_t n = br_u32(r);
    const unsigned char *q = br_get(r, n);
    if (!q || !n) return NULL;
    char *s = malloc(n + 1);
    if (!s) {
        *oom = 1;
        return NULL;
    }
    memcpy(s, q, n);
    s[n] = 0;
    return s;
}

/* ===== Apply (runtime and replay) ====================================== */

static int cmp_idx_by_id(const void *a, const void *b, void *ctx)
{
    const ny_point_id *ids = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = ny_point_id_cmp(&ids[x], &ids[y]);
    if (c) return c;
    return x < y ? -1 : x > y;
}

static int index_threads(size_t n) { return n >= 32 ? ny_cpu_count() : 1; }

/* Replacing a point's vector never edits it in place: the new vector goes
 * into the pending set under a fresh vector id (the indexer thread moves
 * it into the index later), then the map is switched over under the
 * exclusive lock, then the old vector id is deleted from the index (or the
 * pending set) and recycled.  A reader (which holds the map lock shared
 * for its whole call) therefore always sees each point with a vector that
 * is in the index or the pending set, and never a vector id the map does
 * not vouch for. */

/* Allocates m vector ids (rw exclusive, since arrays may grow). */
static int vids_alloc(ny_collection *c, size_t m, uint32_t *out)
{
    int rc = NY_OK;
    size_t got = 0;
    pthread_rwlock_wrlock(&c->rw);
    for (; got < m && rc == NY_OK; got++) rc = vid_alloc(c, &out[got]);
    if (rc != NY_OK) {
        got--;
        while (got > 0) vid_free(c, out[--got]);
    }
    pthread_rwlock_unlock(&c->rw);
    return rc;
}

/* ---- Pending vectors (logged and applied, not yet indexed).  rw held
 * exclusively. */

static int pend_add(ny_collection *c, uint32_t vid, const float *vec)
{
    if (c->npend == c->pcap) {
        size_t nc = c->pcap ? c->pcap * 2 : 4096;
        uint32_t *nv = realloc(c->pend_vid, nc * sizeof *nv);
        if (nv) c->pend_vid = nv;
        float *nf = realloc(c->pend_vec, nc * c->dim * sizeof *nf);
        if (nf) c->pend_vec = nf;
        float *ni = realloc(c->pend_inv, nc * sizeof *ni);
        if (ni) c->pend_inv = ni;
        if (!nv || !nf || !ni) return ny_error(NY_ENOMEM, "out of memory (pending vectors)");
        c->pcap = nc;
    }
    float *dst = c->pend_vec + c->npend * c->dim;
    memcpy(dst, vec, c->dim * sizeof(float));
    double ss = 0;
    for (size_t d = 0; d < c->dim; d++) ss += (double)dst[d] * dst[d];
    c->pend_inv[c->npend] = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    c->pend_vid[c->npend] = vid;
    c->pend_idx[vid] = (uint32_t)c->npend;
    c->npend++;
    atomic_store(&c->npend_a, c->npend);
    return NY_OK;
}

static void pend_remove(ny_collection *c, uint32_t vid)
{
    uint32_t p = c->pend_idx[vid];
    if (p == NY_VID_NONE) return;
    size_t last = c->npend - 1;
    if (p != last) {
        uint32_t mv = c->pend_vid[last];
        c->pend_vid[p] = mv;
        memcpy(c->pend_vec + (size_t)p * c->dim, c->pend_vec + last * c->dim, c->dim * sizeof(float));
        c->pend_inv[p] = c->pend_inv[last];
        c->pend_idx[mv] = p;
    }
    c->pend_idx[vid] = NY_VID_NONE;
    c->npend--;
    atomic_store(&c->npend_a, c->npend);
}

static void pend_broadcast(ny_collection *c, pthread_cond_t *cv)
{
    pthread_mutex_lock(&c->pend_mu);
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(&c->pend_mu);
}

/* Takes a chunk of pending vectors, marks it in flight and inserts it
 * into the index without holding rw or wmu: searches keep scanning the
 * chunk exactly (and deduplicate what the index already returns), writers
 * keep appending.  A writer retiring a vector of the chunk waits for the
 * chunk (vids_retire), so a vector id is never recycled while in flight. */
int ny_coll_pending_drain(ny_collection *c, size_t max)
{
    pthread_mutex_lock(&c->idx_mu);
    pthread_rwlock_wrlock(&c->rw);
    size_t m = NY_MIN(max, c->npend);
    uint32_t *vids = malloc((m ? m : 1) * sizeof *vids);
    float *buf = ny_aalloc((m ? m : 1) * c->dim * sizeof(float));
    if (vids && buf) {
        memcpy(vids, c->pend_vid + (c->npend - m), m * sizeof *vids);
        memcpy(buf, c->pend_vec + (c->npend - m) * c->dim, m * c->dim * sizeof(float));
        for (size_t j = 0; j < m; j++) c->pend_fly[vids[j]] = 1;
    }
    pthread_rwlock_unlock(&c->rw);
    int rc = (vids && buf) ? NY_OK : ny_error(NY_ENOMEM, "out of memory (indexing)");
    if (rc == NY_OK && m) rc = ny_hnsw_add_batch(c->index, vids, 0, buf, m, index_threads(m));
    /* quantization_config set on a small collection: train once it has
     * enough vectors, here rather than in the first search. */
    if (rc == NY_OK && m && ny_hnsw_quant_train_if_due(c->index) < 0)
        fprintf(stderr, "nearly: collection %s: quantizer training failed: %s (retried later)\n", c->name, ny_errmsg());
    if (vids && buf) {
        pthread_rwlock_wrlock(&c->rw);
        for (size_t j = 0; j < m; j++) {
            c->pend_fly[vids[j]] = 0;
            /* after a failed batch, what did get in counts as indexed */
            if (rc == NY_OK || ny_hnsw_contains(c->index, vids[j])) pend_remove(c, vids[j]);
        }
        pthread_rwlock_unlock(&c->rw);
    }
    pthread_mutex_unlock(&c->idx_mu);
    free(vids);
    ny_afree(buf, (m ? m : 1) * c->dim * sizeof(float));
    if (m) pend_broadcast(c, &c->done_cv);
    return rc == NY_OK ? (int)m : rc;
}

enum { INDEX_CHUNK = 2048 };

static void *indexer_main(void *arg)
{
    ny_collection *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->pend_mu);
        while (!atomic_load(&c->indexer_stop) && atomic_load(&c->npend_a) == 0)
            pthread_cond_wait(&c->work_cv, &c->pend_mu);
        pthread_mutex_unlock(&c->pend_mu);
        if (atomic_load(&c->indexer_stop)) break;
        int r = ny_coll_pending_drain(c, INDEX_CHUNK);
        if (r < 0) {
            fprintf(stderr, "nearly: collection %s: background indexing failed: %s (retrying)\n", c->name, ny_errmsg());
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_mutex_lock(&c->pend_mu);
            if (!atomic_load(&c->indexer_stop)) pthread_cond_timedwait(&c->work_cv, &c->pend_mu, &ts);
            pthread_mutex_unlock(&c->pend_mu);
        }
    }
    return NULL;
}

/* Flow control: a writer waits while the pending set holds pend_max
 * vectors or more, so that the exact scan every search does over it stays
 * bounded.  Without an indexer thread the writer indexes inline. */
static void flow_wait(ny_collection *c)
{
    if (atomic_load(&c->npend_a) < c->pend_max) return;
    if (!c->async_index) {
        pthread_mutex_lock(&c->wmu);
        while (!atomic_load(&c->closed) && atomic_load(&c->npend_a) >= c->pend_max)
            if (ny_coll_pending_drain(c, INDEX_CHUNK) <= 0) break;
        pthread_mutex_unlock(&c->wmu);
        return;
    }
    pthread_mutex_lock(&c->pend_mu);
    while (!atomic_load(&c->closed) && atomic_load(&c->npend_a) >= c->pend_max) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&c->done_cv, &c->pend_mu, &ts);
    }
    pthread_mutex_unlock(&c->pend_mu);
}

/* Deletes replaced / removed vector ids from the index (or the pending
 * set) and recycles them. */
static void vids_retire(ny_collection *c, const uint32_t *v, size_t m)
{
    if (!m) return;
    int fly = 0;
    pthread_rwlock_wrlock(&c->rw);
    for (size_t j = 0; j < m; j++) {
        if (c->pend_fly[v[j]]) fly = 1;
        else pend_remove(c, v[j]);
    }
    pthread_rwlock_unlock(&c->rw);
    if (fly) {
        /* Some are in the chunk being indexed: wait for it (the indexer
         * holds idx_mu while the chunk is in flight); then they are in the
         * index (or, if the chunk failed, still pending). */
        pthread_mutex_lock(&c->idx_mu);
        pthread_mutex_unlock(&c->idx_mu);
        pthread_rwlock_wrlock(&c->rw);
        for (size_t j = 0; j < m; j++) pend_remove(c, v[j]);
        pthread_rwlock_unlock(&c->rw);
    }
    for (size_t j = 0; j < m; j++) {
        if (ny_hnsw_contains(c->index, v[j])) ny_hnsw_delete(c->index, v[j]);
        vid_free(c, v[j]);
    }
}

/* Upserts n points; payloads are owned (consumed) references, NULL = {}.
 * vecs[i] points at dim floats (any alignment).  With keep_payload, the
 * points must exist and keep their payload (update_vectors). */
static int apply_points(ny_collection *c, size_t n, const ny_point_id *ids, const void *const *vecs, json_t **pls,
                        int keep_payload)
{
    int rc = NY_OK;
    size_t dim = c->dim, n1 = n ? n : 1;
    uint32_t *order = malloc(n1 * sizeof *order);
    uint32_t *vids = malloc(n1 * sizeof *vids);
    uint32_t *old = malloc(n1 * sizeof *old);
    uint32_t *src = malloc(n1 * sizeof *src);
    uint8_t *keep = malloc(n1);
    float *buf = ny_aalloc(n1 * dim * sizeof(float));
    size_t m = 0, nold = 0;
    if (!order || !vids || !old || !src || !keep || !buf) {
        rc = ny_error(NY_ENOMEM, "out of memory (upsert)");
        goto out;
    }
    memset(keep, 1, n);
    if (n > 1) {
        /* Within a batch the last occurrence of an id wins. */
        for (size_t i = 0; i < n; i++) order[i] = (uint32_t)i;
        qsort_r(order, n, sizeof *order, cmp_idx_by_id, (void *)ids);
        for (size_t i = 0; i + 1 < n; i++)
            if (id_eq(&ids[order[i]], &ids[order[i + 1]])) keep[order[i]] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!keep[i]) continue;
        if (keep_payload && ny_coll_lookup(c, &ids[i]) == NY_VID_NONE) continue;
        memcpy(buf + m * dim, vecs[i], dim * sizeof(float));
        src[m++] = (uint32_t)i;
    }
    if (!m) goto out;
    if ((rc = vids_alloc(c, m, vids)) != NY_OK) goto out;
    /* The vectors go to the pending set (searches scan it exactly); the
     * indexer thread inserts them into the index in the background (at
     * open, once the log is replayed). */
    pthread_rwlock_wrlock(&c->rw);
    for (size_t j = 0; j < m && rc == NY_OK; j++) rc = pend_add(c, vids[j], buf + j * dim);
    pthread_rwlock_unlock(&c->rw);
    if (!c->defer_index) pend_broadcast(c, &c->work_cv);
    if (rc != NY_OK) {
        vids_retire(c, vids, m);
        goto out;
    }
    atomic_fetch_add(&c->vecs_since_ckpt, m);
    pthread_rwlock_wrlock(&c->rw);
    for (size_t j = 0; j < m && rc == NY_OK; j++) {
        size_t i = src[j];
        uint32_t o = ny_coll_lookup(c, &ids[i]);
        json_t *pl = keep_payload ? NULL : pls[i];
        if (o != NY_VID_NONE) {
            if (keep_payload) {
                pl = c->payloads[o];
            } else {
                json_decref(c->payloads[o]);
            }
            c->payloads[o] = NULL;
            ny_coll_index_set(c, o, NULL);
            htab_remove(c, o);
            c->live[o] = 0;
            c->count--;
            old[nold++] = o;
        }
        rc = ny_coll_map_put(c, &ids[i], vids[j], pl);
        if (rc != NY_OK) json_decref(pl);
        else if (!keep_payload) pls[i] = NULL;
    }
    c->sorted_valid = 0;
    pthread_rwlock_unlock(&c->rw);
    vids_retire(c, old, nold);
out:
    for (size_t i = 0; pls && i < n; i++) json_decref(pls[i]), pls[i] = NULL;
    free(order);
    free(vids);
    free(old);
    free(src);
    free(keep);
    ny_afree(buf, n1 * dim * sizeof(float));
    return rc;
}

static int apply_upsert(ny_collection *c, size_t n, const ny_point_id *ids, const void *const *vecs, json_t **pls)
{
    return apply_points(c, n, ids, vecs, pls, 0);
}

static int apply_update_vectors(ny_collection *c, size_t n, const ny_point_id *ids, const void *const *vecs)
{
    return apply_points(c, n, ids, vecs, NULL, 1);
}

static int apply_delete(ny_collection *c, size_t n, const ny_point_id *ids, size_t *deleted)
{
    uint32_t *vids = malloc((n ? n : 1) * sizeof *vids);
    if (!vids) return ny_error(NY_ENOMEM, "out of memory (delete)");
    size_t m = 0;
    pthread_rwlock_wrlock(&c->rw);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = ny_coll_lookup(c, &ids[i]);
        if (v == NY_VID_NONE) continue; /* absent, or a duplicate already removed */
        htab_remove(c, v);
        c->live[v] = 0;
        json_decref(c->payloads[v]);
        c->payloads[v] = NULL;
        ny_coll_index_set(c, v, NULL);
        c->count--;
        vids[m++] = v;
    }
    if (m) c->sorted_valid = 0;
    pthread_rwlock_unlock(&c->rw);
    vids_retire(c, vids, m);
    free(vids);
    if (deleted) *deleted = m;
    return NY_OK;
}

enum { POP_SET, POP_OVERWRITE, POP_DELETE_KEYS, POP_CLEAR };

typedef struct payload_op {
    int kind;
    json_t *obj;              /* SET / OVERWRITE */
    const char *key;          /* SET: nested path or NULL */
    const char *const *keys;  /* DELETE_KEYS */
    size_t nkeys;
} payload_op;

static void apply_payload_one(ny_collection *c, uint32_t v, const payload_op *op)
{
    json_t *p = c->payloads[v];
    switch (op->kind) {
    case POP_SET:
        if (!p) p = c->payloads[v] = json_object();
        if (!p) return;
        ny_payload_set(p, op->key, op->obj);
        break;
    case POP_OVERWRITE:
        json_decref(p);
        c->payloads[v] = json_object_size(op->obj) ? json_deep_copy(op->obj) : NULL;
        break;
    case POP_DELETE_KEYS:
        if (!p) return;
        for (size_t k = 0; k < op->nkeys; k++) ny_payload_delete(p, op->keys[k]);
        break;
    case POP_CLEAR:
        json_decref(p);
        c->payloads[v] = NULL;
        break;
    }
    if (c->payloads[v] && json_object_size(c->payloads[v]) == 0) {
        json_decref(c->payloads[v]);
        c->payloads[v] = NULL;
    }
    ny_coll_index_set(c, v, c->payloads[v]);
}

static int apply_payload(ny_collection *c, size_t n, const ny_point_id *ids, const payload_op *op)
{
    pthread_rwlock_wrlock(&c->rw);
    for (size_t i = 0; i < n; i++) {
        uint32_t v = ny_coll_lookup(c, &ids[i]);
        if (v != NY_VID_NONE) apply_payload_one(c, v, op);
    }
    pthread_rwlock_unlock(&c->rw);
    return NY_OK;
}

/* ===== Record decoding (replay) ======================================== */

static int decode_ids(brd *r, size_t *n, ny_point_id **ids)
{
    *n = br_u32(r);
    if (r->bad || *n > (r->len - r->pos) / 17) return NY_ECORRUPT;
    *ids = malloc((*n ? *n : 1) * sizeof **ids);
    if (!*ids) return ny_error(NY_ENOMEM, "out of memory (replay)");
    for (size_t i = 0; i < *n; i++) br_id(r, &(*ids)[i]);
    return r->bad ? NY_ECORRUPT : NY_OK;
}

static int parse_obj(const char *text, size_t len, json_t **out)
{
    *out = NULL;
    if (!text || !len) return NY_OK;
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    if (!json_is_object(j)) {
        json_decref(j);
        return NY_ECORRUPT;
    }
    if (json_object_size(j) == 0) json_decref(j), j = NULL;
    *out = j;
    return NY_OK;
}

int ny_coll_replay(void *ctx, uint64_t lsn, uint32_t type, const void *body, size_t len)
{
    ny_collection *c = ctx;
    brd r = {body, len, 0, 0};
    int rc = NY_OK, oom = 0;
    size_t n = 0;
    ny_point_id *ids = NULL;
    switch (type) {
    case REC_UPSERT:
    case REC_UPDATE_VECTORS: {
        n = br_u32(&r);
        uint32_t dim = br_u32(&r);
        if (r.bad || dim != c->dim || n > len) {
            rc = NY_ECORRUPT;
            break;
        }
        ids = malloc((n ? n : 1) * sizeof *ids);
        const void **vecs = malloc((n ? n : 1) * sizeof *vecs);
        json_t **pls = calloc(n ? n : 1, sizeof *pls);
        if (!ids || !vecs || !pls) {
            free(vecs);
            free(pls);
            rc = ny_error(NY_ENOMEM, "out of memory (replay)");
            break;
        }
        for (size_t i = 0; i < n && rc == NY_OK; i++) {
            br_id(&r, &ids[i]);
            vecs[i] = br_get(&r, dim * sizeof(float));
            if (type == REC_UPSERT) {
                uint32_t pl = br_u32(&r);
                const unsigned char *pt = br_get(&r, pl);
                if (!r.bad) rc = parse_obj((const char *)pt, pl, &pls[i]);
            }
            if (r.bad) rc = NY_ECORRUPT;
        }
        if (rc == NY_OK) {
            rc = type == REC_UPSERT ? apply_upsert(c, n, ids, vecs, pls) : apply_update_vectors(c, n, ids, vecs);
        }
        for (size_t i = 0; i < n; i++) json_decref(pls[i]);
        free(vecs);
        free(pls);
        break;
    }
    case REC_DELETE:
        rc = decode_ids(&r, &n, &ids);
        if (rc == NY_OK) rc = apply_delete(c, n, ids, NULL);
        break;
    case REC_SET_PAYLOAD:
    case REC_OVERWRITE_PAYLOAD:
    case REC_CLEAR_PAYLOAD:
    case REC_DELETE_KEYS: {
        payload_op op = {0};
        char *key = NULL, *obj = NULL, **keys = NULL;
        if (type == REC_SET_PAYLOAD) key = br_str(&r, &oom);
        if (type == REC_SET_PAYLOAD || type == REC_OVERWRITE_PAYLOAD) {
            obj = br_str(&r, &oom);
            json_error_t err;
            op.obj = obj ? json_loads(obj, 0, &err) : json_object();
            if (!json_is_object(op.obj)) rc = NY_ECORRUPT;
        }
        op.key = key;
        if (rc == NY_OK && type == REC_DELETE_KEYS) {
            op.nkeys = br_u32(&r);
            if (r.bad || op.nkeys > len) rc = NY_ECORRUPT;
            else {
                keys = calloc(op.nkeys ? op.nkeys : 1, sizeof *keys);
                if (!keys) oom = 1;
                for (size_t k = 0; !oom && k < op.nkeys; k++) keys[k] = br_str(&r, &oom);
                op.keys = (const char *const *)keys;
                if (r.bad) rc = NY_ECORRUPT;
            }
        }
        op.kind = type == REC_SET_PAYLOAD ? POP_SET : type == REC_OVERWRITE_PAYLOAD ? POP_OVERWRITE
                : type == REC_CLEAR_PAYLOAD ? POP_CLEAR : POP_DELETE_KEYS;
        if (oom) rc = ny_error(NY_ENOMEM, "out of memory (replay)");
        if (rc == NY_OK) rc = decode_ids(&r, &n, &ids);
        if (rc == NY_OK) rc = apply_payload(c, n, ids, &op);
        free(key);
        free(obj);
        json_decref(op.obj);
        for (size_t k = 0; keys && k < op.nkeys; k++) free(keys[k]);
        free(keys);
        break;
    }
    default:
        rc = NY_ECORRUPT;
    }
    free(ids);
    if (rc == NY_ECORRUPT)
        return ny_error(NY_ECORRUPT, "collection %s: log record %llu (type %u) is malformed",
                        c->name, (unsigned long long)lsn, type);
    return rc;
}

/* ===== Write path ====================================================== */

static int compile_filter(ny_collection *c, const char *filter_json, ny_fexpr **out);

static int check_open(ny_collection *c)
{
    if (!c) return ny_error(NY_EINVAL, "collection is NULL");
    if (atomic_load(&c->dropped)) return ny_error(NY_ECLOSED, "collection %s was dropped", c->name);
    if (atomic_load(&c->closed)) return ny_error(NY_ECLOSED, "collection %s is closed", c->name);
    return NY_OK;
}

/* Logs the record, then applies it with apply(); on return the caller
 * releases wmu and (if wait) syncs. */
static int log_record(ny_collection *c, uint32_t type, bbuf *b, uint64_t *lsn)
{
    if (b->oom) return ny_error(NY_ENOMEM, "out of memory (log record)");
    return ny_wal_append(c->wal, type, b->p, b->len, lsn);
}

static int finish_write(ny_collection *c, int rc, uint64_t lsn, int wait)
{
    pthread_mutex_unlock(&c->wmu);
    if (rc == NY_OK && wait && lsn) rc = ny_wal_sync(c->wal, lsn);
    return rc;
}

static int check_vector(const ny_collection *c, const float *v, size_t i, const ny_point_id *id)
{
    if (!v) return ny_error(NY_EINVAL, "point %zu: vector is missing", i);
    for (size_t d = 0; d < c->dim; d++) {
        if (!isfinite(v[d])) {
            char s[37];
            id_str(id, s);
            return ny_error(NY_EINVAL, "point %s: vector component %zu is %s (vectors must be finite)", s, d,
                            isnan(v[d]) ? "NaN" : "infinite");
        }
    }
    return NY_OK;
}

int ny_collection_upsert(ny_collection *c, const ny_point *pts, size_t n, int wait)
{
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    if (n == 0) return NY_OK;
    if (!pts) return ny_error(NY_EINVAL, "points is NULL");
    if (n > UINT32_MAX / 2) return ny_error(NY_EINVAL, "too many points in one batch");
    json_t **pls = calloc(n, sizeof *pls);
    ny_point_id *ids = malloc(n * sizeof *ids);
    const void **vecs = malloc(n * sizeof *vecs);
    bbuf b = {0};
    if (!pls || !ids || !vecs) {
        rc = ny_error(NY_ENOMEM, "out of memory (upsert)");
        goto out;
    }
    /* Validate the whole batch before anything is logged. */
    bb_u32(&b, (uint32_t)n);
    bb_u32(&b, (uint32_t)c->dim);
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_id(&pts[i].id, i)) != NY_OK) goto out;
        ny_coll_norm_id(&ids[i], &pts[i].id);
        if ((rc = check_vector(c, pts[i].vector, i, &ids[i])) != NY_OK) goto out;
        vecs[i] = pts[i].vector;
        size_t plen = 0;
        const char *pj = pts[i].payload_json;
        if (pj) {
            json_error_t err;
            plen = strlen(pj);
            pls[i] = json_loadb(pj, plen, 0, &err);
            if (!pls[i]) {
                char s[37];
                id_str(&ids[i], s);
                rc = ny_error(NY_EINVAL, "point %s: payload is not valid JSON (%s)", s, err.text);
                goto out;
            }
            if (!json_is_object(pls[i])) {
                char s[37];
                id_str(&ids[i], s);
                rc = ny_error(NY_EINVAL, "point %s: payload must be a JSON object", s);
                goto out;
            }
            if (json_object_size(pls[i]) == 0) {
                json_decref(pls[i]);
                pls[i] = NULL;
                plen = 0;
            }
        }
        bb_id(&b, &ids[i]);
        bb_put(&b, pts[i].vector, c->dim * sizeof(float));
        bb_u32(&b, (uint32_t)plen);
        if (plen) bb_put(&b, pj, plen);
    }
    uint64_t lsn = 0;
    flow_wait(c);
    pthread_mutex_lock(&c->wmu);
    rc = check_open(c);
    if (rc == NY_OK) rc = log_record(c, REC_UPSERT, &b, &lsn);
    if (rc == NY_OK) rc = apply_upsert(c, n, ids, vecs, pls);
    rc = finish_write(c, rc, lsn, wait);
out:
    if (pls)
        for (size_t i = 0; i < n; i++) json_decref(pls[i]);
    free(pls);
    free(ids);
    free(vecs);
    free(b.p);
    return rc;
}

int ny_collection_update_vectors(ny_collection *c, const ny_point_id *ids_in, const float *vectors, size_t n, int wait)
{
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    if (n == 0) return NY_OK;
    if (!ids_in || !vectors) return ny_error(NY_EINVAL, "ids or vectors is NULL");
    ny_point_id *ids = malloc(n * sizeof *ids);
    const void **vecs = malloc(n * sizeof *vecs);
    bbuf b = {0};
    if (!ids || !vecs) {
        rc = ny_error(NY_ENOMEM, "out of memory");
        goto out;
    }
    bb_u32(&b, (uint32_t)n);
    bb_u32(&b, (uint32_t)c->dim);
    for (size_t i = 0; i < n; i++) {
        if ((rc = check_id(&ids_in[i], i)) != NY_OK) goto out;
        ny_coll_norm_id(&ids[i], &ids_in[i]);
        vecs[i] = vectors + i * c->dim;
        if ((rc = check_vector(c, vecs[i], i, &ids[i])) != NY_OK) goto out;
        bb_id(&b, &ids[i]);
        bb_put(&b, vecs[i], c->dim * sizeof(float));
    }
    uint64_t lsn = 0;
    flow_wait(c);
    pthread_mutex_lock(&c->wmu);
    rc = check_open(c);
    for (size_t i = 0; rc == NY_OK && i < n; i++) {
        if (ny_coll_lookup(c, &ids[i]) == NY_VID_NONE) {
            char s[37];
            id_str(&ids[i], s);
            rc = ny_error(NY_ENOTFOUND, "point %s does not exist (nothing was updated)", s);
        }
    }
    if (rc == NY_OK) rc = log_record(c, REC_UPDATE_VECTORS, &b, &lsn);
    if (rc == NY_OK) rc = apply_update_vectors(c, n, ids, vecs);
    rc = finish_write(c, rc, lsn, wait);
out:
    free(ids);
    free(vecs);
    free(b.p);
    return rc;
}

/* Resolves a selector to the ids of existing points (called under wmu, so
 * the map cannot change).  With ids: those that exist, as given. */
static int resolve_selector(ny_collection *c, const ny_selector *sel, ny_point_id **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!sel) return ny_error(NY_EINVAL, "selector is NULL");
    if (sel->filter_json && sel->n_ids)
        return ny_error(NY_EINVAL, "selector: give either point ids or a filter, not both");
    if (!sel->filter_json) {
        if (sel->n_ids && !sel->ids) return ny_error(NY_EINVAL, "selector: ids is NULL");
        ny_point_id *ids = malloc((sel->n_ids ? sel->n_ids : 1) * sizeof *ids);
        if (!ids) return ny_error(NY_ENOMEM, "out of memory");
        size_t m = 0;
        for (size_t i = 0; i < sel->n_ids; i++) {
            int rc = check_id(&sel->ids[i], i);
            if (rc != NY_OK) {
                free(ids);
                return rc;
            }
            ny_point_id id;
            ny_coll_norm_id(&id, &sel->ids[i]);
            if (ny_coll_lookup(c, &id) != NY_VID_NONE) ids[m++] = id;
        }
        *out = ids;
        *nout = m;
        return NY_OK;
    }
    ny_fexpr *f;
    int rc = compile_filter(c, sel->filter_json, &f);
    if (rc != NY_OK) return rc;
    size_t cap = 64, m = 0;
    ny_point_id *ids = malloc(cap * sizeof *ids);
    if (!ids) rc = ny_error(NY_ENOMEM, "out of memory");
    /* Payload indexes narrow the filter to candidates (a superset, each
     * re-checked below); without them every live point is evaluated. */
    uint64_t ncand = 0;
    uint64_t *cand = f ? ny_coll_index_candidates(c, f, &ncand) : NULL;
    for (uint32_t v = 0; rc == NY_OK && v < c->nvid; v++) {
        if (cand && !((cand[v >> 6] >> (v & 63)) & 1)) {
            if (!cand[v >> 6]) v |= 63; /* skip the empty word */
            continue;
        }
        if (!c->live[v] || !ny_filter_match(f, &c->ids[v], c->payloads[v])) continue;
        if (m == cap) {
            cap *= 2;
            ny_point_id *ni = realloc(ids, cap * sizeof *ni);
            if (!ni) {
                rc = ny_error(NY_ENOMEM, "out of memory");
                break;
            }
            ids = ni;
        }
        ids[m++] = c->ids[v];
    }
    free(cand);
    ny_filter_free(f);
    if (rc != NY_OK) {
        free(ids);
        return rc;
    }
    *out = ids;
    *nout = m;
    return NY_OK;
}

static void bb_ids(bbuf *b, const ny_point_id *ids, size_t n)
{
    bb_u32(b, (uint32_t)n);
    for (size_t i = 0; i < n; i++) bb_id(b, &ids[i]);
}

int ny_collection_delete(ny_collection *c, const ny_selector *sel, int wait, size_t *deleted)
{
    if (deleted) *deleted = 0;
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    ny_point_id *ids = NULL;
    size_t n = 0;
    uint64_t lsn = 0;
    bbuf b = {0};
    pthread_mutex_lock(&c->wmu);
    rc = check_open(c);
    if (rc == NY_OK) rc = resolve_selector(c, sel, &ids, &n);
    if (rc == NY_OK && n) {
        bb_ids(&b, ids, n);
        rc = log_record(c, REC_DELETE, &b, &lsn);
        if (rc == NY_OK) rc = apply_delete(c, n, ids, deleted);
    }
    rc = finish_write(c, rc, lsn, wait);
    free(ids);
    free(b.p);
    return rc;
}

static int parse_payload_arg(const char *json, json_t **out)
{
    *out = NULL;
    if (!json) return ny_error(NY_EINVAL, "payload is NULL");
    json_error_t err;
    json_t *j = json_loads(json, 0, &err);
    if (!j) return ny_error(NY_EINVAL, "payload is not valid JSON (%s)", err.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return ny_error(NY_EINVAL, "payload must be a JSON object");
    }
    *out = j;
    return NY_OK;
}

/* Common body of the four payload operations. */
static int payload_write(ny_collection *c, const ny_selector *sel, uint32_t type, payload_op *op,
                         const char *key, const char *obj_text, const char *const *keys, int wait)
{
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    ny_point_id *ids = NULL;
    size_t n = 0;
    uint64_t lsn = 0;
    bbuf b = {0};
    if (type == REC_SET_PAYLOAD) bb_str(&b, key);
    if (type == REC_SET_PAYLOAD || type == REC_OVERWRITE_PAYLOAD) {
        char *compact = json_dumps(op->obj, JSON_COMPACT);
        if (!compact) return ny_error(NY_ENOMEM, "out of memory");
        bb_str(&b, compact);
        free(compact);
    }
    if (type == REC_DELETE_KEYS) {
        bb_u32(&b, (uint32_t)op->nkeys);
        for (size_t k = 0; k < op->nkeys; k++) bb_str(&b, keys[k]);
    }
    (void)obj_text;
    pthread_mutex_lock(&c->wmu);
    rc = check_open(c);
    if (rc == NY_OK) rc = resolve_selector(c, sel, &ids, &n);
    if (rc == NY_OK && n) {
        bb_ids(&b, ids, n);
        rc = log_record(c, type, &b, &lsn);
        if (rc == NY_OK) rc = apply_payload(c, n, ids, op);
    }
    rc = finish_write(c, rc, lsn, wait);
    free(ids);
    free(b.p);
    return rc;
}

int ny_collection_set_payload(ny_collection *c, const ny_selector *sel, const char *payload_json,
                              const char *key, int wait)
{
    payload_op op = {.kind = POP_SET};
    int rc = check_open(c);
    if (rc == NY_OK) rc = parse_payload_arg(payload_json, &op.obj);
    if (rc == NY_OK && key && *key) rc = ny_path_check(key);
    op.key = key && *key ? key : NULL;
    if (rc == NY_OK) rc = payload_write(c, sel, REC_SET_PAYLOAD, &op, op.key, payload_json, NULL, wait);
    json_decref(op.obj);
    return rc;
}

int ny_collection_overwrite_payload(ny_collection *c, const ny_selector *sel, const char *payload_json, int wait)
{
    payload_op op = {.kind = POP_OVERWRITE};
    int rc = check_open(c);
    if (rc == NY_OK) rc = parse_payload_arg(payload_json, &op.obj);
    if (rc == NY_OK) rc = payload_write(c, sel, REC_OVERWRITE_PAYLOAD, &op, NULL, payload_json, NULL, wait);
    json_decref(op.obj);
    return rc;
}

int ny_collection_delete_payload_keys(ny_collection *c, const ny_selector *sel, const char *const *keys,
                                      size_t nkeys, int wait)
{
    payload_op op = {.kind = POP_DELETE_KEYS, .nkeys = nkeys, .keys = keys};
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    if (nkeys && !keys) return ny_error(NY_EINVAL, "keys is NULL");
    for (size_t k = 0; k < nkeys; k++) {
        if (!keys[k]) return ny_error(NY_EINVAL, "keys[%zu] is NULL", k);
        if ((rc = ny_path_check(keys[k])) != NY_OK) return rc;
    }
    return payload_write(c, sel, REC_DELETE_KEYS, &op, NULL, NULL, keys, wait);
}

int ny_collection_clear_payload(ny_collection *c, const ny_selector *sel, int wait)
{
    payload_op op = {.kind = POP_CLEAR};
    return payload_write(c, sel, REC_CLEAR_PAYLOAD, &op, NULL, NULL, NULL, wait);
}

/* ===== Read path ======================================================= */

/* Compiles filter_json (NULL allowed) with the collection's payload schema
 * (full-text keys use token semantics); a filter without conditions
 * becomes NULL so that callers skip evaluating it. */
static int compile_filter(ny_collection *c, const char *filter_json, ny_fexpr **out)
{
    *out = NULL;
    if (!filter_json) return NY_OK;
    pthread_mutex_lock(&c->cfg_mu);
    json_t *schema = json_object_get(c->cfg.root, "payload_schema");
    int rc = ny_filter_compile_schema(filter_json, json_object_size(schema) ? schema : NULL, out);
    pthread_mutex_unlock(&c->cfg_mu);
    if (rc == NY_OK && ny_filter_is_match_all(*out)) {
        ny_filter_free(*out);
        *out = NULL;
    }
    return rc;
}

void ny_free(void *p) { free(p); }

void ny_records_free(ny_records *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].vector);
        free(r->items[i].payload_json);
    }
    free(r->items);
    memset(r, 0, sizeof *r);
}

typedef struct read_ctx {
    json_t *sel;      /* with_payload selector or NULL */
    int with_vector;
} read_ctx;

static int read_ctx_init(read_ctx *rc_, const ny_read_opts *o)
{
    memset(rc_, 0, sizeof *rc_);
    if (!o) return NY_OK;
    rc_->with_vector = o->with_vector;
    if (o->with_payload_json) {
        json_error_t err;
        json_t *s = json_loads(o->with_payload_json, JSON_DECODE_ANY, &err);
        if (!s) return ny_error(NY_EINVAL, "with_payload: invalid JSON (%s)", err.text);
        int rc = ny_payload_selector_check(s);
        if (rc != NY_OK) {
            json_decref(s);
            return rc;
        }
        if (json_is_false(s)) {
            json_decref(s);
            s = NULL;
        }
        rc_->sel = s;
    }
    return NY_OK;
}

/* Fills rec for vid (rw held shared). */
static int make_record(ny_collection *c, uint32_t vid, const read_ctx *rx, ny_record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->id = c->ids[vid];
    if (rx->with_vector) {
        rec->vector = malloc(c->dim * sizeof(float));
        if (!rec->vector) return ny_error(NY_ENOMEM, "out of memory");
        if (c->pend_idx[vid] != NY_VID_NONE) {
            /* exactly what the index will store */
            memcpy(rec->vector, c->pend_vec + (size_t)c->pend_idx[vid] * c->dim, c->dim * sizeof(float));
            if (c->metric == NY_COSINE) ny_normalize(rec->vector, c->dim);
        } else if (ny_hnsw_get_vector(c->index, vid, rec->vector) != NY_OK) {
            free(rec->vector);
            rec->vector = NULL;
        }
    }
    if (rx->sel) {
        json_t *empty = NULL, *p = c->payloads[vid];
        if (!p) p = empty = json_object();
        json_t *s = p ? ny_payload_select(p, rx->sel) : NULL;
        rec->payload_json = s ? json_dumps(s, JSON_COMPACT) : strdup("{}");
        json_decref(s);
        json_decref(empty);
        if (!rec->payload_json) {
            free(rec->vector);
            rec->vector = NULL;
            return ny_error(NY_ENOMEM, "out of memory");
        }
    }
    return NY_OK;
}

typedef struct recvec {
    ny_record *items;
    size_t n, cap;
} recvec;

static ny_record *recvec_push(recvec *v)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        ny_record *ni = realloc(v->items, nc * sizeof *ni);
        if (!ni) return NULL;
        v->items = ni;
        v->cap = nc;
    }
    return &v->items[v->n++];
}

static void recvec_fail(recvec *v, ny_records *out)
{
    ny_records tmp = {.items = v->items, .n = v->n};
    ny_records_free(&tmp);
    memset(out, 0, sizeof *out);
}

int ny_collection_retrieve(ny_collection *c, const ny_point_id *ids, size_t n, const ny_read_opts *opts,
                           ny_records *out)
{
    if (!out) return ny_error(NY_EINVAL, "out is NULL");
    memset(out, 0, sizeof *out);
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    if (n && !ids) return ny_error(NY_EINVAL, "ids is NULL");
    for (size_t i = 0; i < n; i++)
        if ((rc = check_id(&ids[i], i)) != NY_OK) return rc;
    read_ctx rx;
    if ((rc = read_ctx_init(&rx, opts)) != NY_OK) return rc;
    recvec v = {0};
    pthread_rwlock_rdlock(&c->rw);
    for (size_t i = 0; i < n && rc == NY_OK; i++) {
        ny_point_id id;
        ny_coll_norm_id(&id, &ids[i]);
        uint32_t vid = ny_coll_lookup(c, &id);
        if (vid == NY_VID_NONE) continue;
        ny_record *r = recvec_push(&v);
        if (!r) rc = ny_error(NY_ENOMEM, "out of memory");
        else if ((rc = make_record(c, vid, &rx, r)) != NY_OK) v.n--;
    }
    pthread_rwlock_unlock(&c->rw);
    json_decref(rx.sel);
    if (rc != NY_OK) {
        recvec_fail(&v, out);
        return rc;
    }
    out->items = v.items;
    out->n = v.n;
    return NY_OK;
}

static int cmp_vid_by_id(const void *a, const void *b, void *ctx)
{
    const ny_point_id *ids = ctx;
    return ny_point_id_cmp(&ids[*(const uint32_t *)a], &ids[*(const uint32_t *)b]);
}

/* Makes sure the sorted cache is valid (rw held shared, sort_mu held). */
static int sorted_refresh(ny_collection *c)
{
    if (c->sorted_valid) return NY_OK;
    uint32_t *s = realloc(c->sorted, (c->count ? c->count : 1) * sizeof *s);
    if (!s) return ny_error(NY_ENOMEM, "out of memory (scroll)");
    c->sorted = s;
    size_t m = 0;
    for (uint32_t v = 0; v < c->nvid; v++)
        if (c->live[v]) s[m++] = v;
    qsort_r(s, m, sizeof *s, cmp_vid_by_id, c->ids);
    c->nsorted = m;
    c->sorted_valid = 1;
    return NY_OK;
}

/* Scroll: appends vid's record to v, or -- the page being full -- records
 * vid as the next page's offset.  Returns 1 when the scroll must stop
 * (page full, or an error left in *rc), 0 to go on. */
static int scroll_take(ny_collection *c, uint32_t vid, size_t limit, const read_ctx *rx, recvec *v, ny_records *out,
                       int *rc)
{
    if (v->n == limit) {
        out->has_next = 1;
        out->next = c->ids[vid];
        return 1;
    }
    ny_record *r = recvec_push(v);
    if (!r) {
        *rc = ny_error(NY_ENOMEM, "out of memory");
        return 1;
    }
    if ((*rc = make_record(c, vid, rx, r)) != NY_OK) {
        v->n--;
        return 1;
    }
    return 0;
}

int ny_collection_scroll(ny_collection *c, const ny_point_id *offset, size_t limit, const char *filter_json,
                         const ny_read_opts *opts, ny_records *out)
{
    if (!out) return ny_error(NY_EINVAL, "out is NULL");
    memset(out, 0, sizeof *out);
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    if (offset && (rc = check_id(offset, 0)) != NY_OK) return rc;
    ny_fexpr *f = NULL;
    if ((rc = compile_filter(c, filter_json, &f)) != NY_OK) return rc;
    read_ctx rx;
    if ((rc = read_ctx_init(&rx, opts)) != NY_OK) {
        ny_filter_free(f);
        return rc;
    }
    ny_point_id off;
    if (offset) ny_coll_norm_id(&off, offset);
    recvec v = {0};
    pthread_rwlock_rdlock(&c->rw);
    pthread_mutex_lock(&c->sort_mu);
    /* Payload indexes narrow the filter to candidates (re-checked below).
     * Few of them: sort just those by id instead of walking the id order. */
    uint64_t ncand = 0;
    uint64_t *cand = f ? ny_coll_index_candidates(c, f, &ncand) : NULL;
    uint32_t *few = NULL;
    size_t nfew = 0;
    if (cand && ncand <= c->count / 8 && (few = malloc((ncand ? ncand : 1) * sizeof *few))) {
        size_t nw = ((size_t)c->nvid + 63) / 64;
        for (size_t w = 0; w < nw; w++)
            for (uint64_t x = cand[w]; x; x &= x - 1) {
                uint32_t vid = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(x));
                if (offset && ny_point_id_cmp(&c->ids[vid], &off) < 0) continue;
                if (ny_filter_match(f, &c->ids[vid], c->payloads[vid])) few[nfew++] = vid;
            }
        qsort_r(few, nfew, sizeof *few, cmp_vid_by_id, c->ids);
        for (size_t i = 0; i < nfew; i++) {
            if (scroll_take(c, few[i], limit, &rx, &v, out, &rc)) break;
        }
    } else {
        rc = sorted_refresh(c);
    }
    if (rc == NY_OK && !few) {
        size_t lo = 0, hi = c->nsorted;
        if (offset) {
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (ny_point_id_cmp(&c->ids[c->sorted[mid]], &off) < 0) lo = mid + 1;
                else hi = mid;
            }
        }
        for (size_t i = lo; i < c->nsorted; i++) {
            uint32_t vid = c->sorted[i];
            if (cand && !((cand[vid >> 6] >> (vid & 63)) & 1)) continue;
            if (f && !ny_filter_match(f, &c->ids[vid], c->payloads[vid])) continue;
            if (scroll_take(c, vid, limit, &rx, &v, out, &rc)) break;
        }
    }
    pthread_mutex_unlock(&c->sort_mu);
    pthread_rwlock_unlock(&c->rw);
    free(few);
    free(cand);
    json_decref(rx.sel);
    ny_filter_free(f);
    if (rc != NY_OK) {
        recvec_fail(&v, out);
        return rc;
    }
    out->items = v.items;
    out->n = v.n;
    return NY_OK;
}

int ny_collection_count(ny_collection *c, const char *filter_json, size_t *out)
{
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    if (!out) return ny_error(NY_EINVAL, "out is NULL");
    ny_fexpr *f = NULL;
    if ((rc = compile_filter(c, filter_json, &f)) != NY_OK) return rc;
    pthread_rwlock_rdlock(&c->rw);
    size_t n = 0;
    int planned = 0;
    if (!f) n = c->count;
    else n = ny_coll_index_count(c, f, &planned);
    if (f && !planned)
        for (uint32_t v = 0; v < c->nvid; v++)
            if (c->live[v] && ny_filter_match(f, &c->ids[v], c->payloads[v])) n++;
    pthread_rwlock_unlock(&c->rw);
    ny_filter_free(f);
    *out = n;
    return NY_OK;
}

/* ---- Search */

typedef struct sfilter {
    ny_collection *c;
    ny_fexpr *f;
} sfilter;

static int allow_cb(uint32_t vid, void *ctx)
{
    sfilter *s = ctx;
    ny_collection *c = s->c;
    if (vid >= c->nvid || !c->live[vid]) return 0;
    return !s->f || ny_filter_match(s->f, &c->ids[vid], c->payloads[vid]);
}

/* Estimates how many live points match f (rw held shared): exact below
 * 20000 points, otherwise from a deterministic sample of 2000 slots. */
static size_t estimate_matches(ny_collection *c, ny_fexpr *f)
{
    const ny_point_id *hid;
    size_t nh;
    if (ny_filter_ids(f, &hid, &nh)) return nh; /* at most these points */
    if (c->nvid <= 20000) {
        size_t n = 0;
        for (uint32_t v = 0; v < c->nvid; v++)
            if (c->live[v] && ny_filter_match(f, &c->ids[v], c->payloads[v])) n++;
        return n;
    }
    size_t seen = 0, hit = 0;
    uint64_t x = 0x9E3779B97F4A7C15ull ^ c->nvid;
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t v = (uint32_t)(x % c->nvid);
        if (!c->live[v]) continue;
        seen++;
        if (ny_filter_match(f, &c->ids[v], c->payloads[v])) hit++;
    }
    if (!seen) return 0;
    return (size_t)((double)hit / (double)seen * (double)c->count) + (hit ? 1 : 0);
}

int ny_collection_search(ny_collection *c, const ny_search_params *p, ny_records *out)
{
    if (!out) return ny_error(NY_EINVAL, "out is NULL");
    memset(out, 0, sizeof *out);
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    if (!p || !p->vector) return ny_error(NY_EINVAL, "search: vector is missing");
    if (p->limit < 1) return ny_error(NY_EINVAL, "search: limit must be at least 1");
    if (p->limit > (1u << 24) || p->offset > (1u << 24)) return ny_error(NY_EINVAL, "search: limit/offset too large");
    for (size_t d = 0; d < c->dim; d++)
        if (!isfinite(p->vector[d]))
            return ny_error(NY_EINVAL, "search: query component %zu is not finite", d);
    if (p->has_score_threshold && !isfinite(p->score_threshold))
        return ny_error(NY_EINVAL, "search: score_threshold must be finite");
    ny_fexpr *f = NULL;
    if ((rc = compile_filter(c, p->filter_json, &f)) != NY_OK) return rc;
    read_ctx rx;
    if ((rc = read_ctx_init(&rx, &p->read)) != NY_OK) {
        ny_filter_free(f);
        return rc;
    }
    size_t k = p->offset + p->limit;
    float *q = malloc(c->dim * sizeof(float));
    uint32_t *ids = malloc(k * sizeof *ids);
    float *dists = malloc(k * sizeof *dists);
    recvec v = {0};
    if (!q || !ids || !dists) {
        rc = ny_error(NY_ENOMEM, "out of memory (search)");
        goto out;
    }
    memcpy(q, p->vector, c->dim * sizeof(float));
    if (c->metric == NY_COSINE) ny_normalize(q, c->dim);

    pthread_rwlock_rdlock(&c->rw);
    sfilter sf = {c, f};
    ny_filter flt = {.allow = allow_cb, .ctx = &sf};
    pthread_mutex_lock(&c->cfg_mu);
    size_t cfg_m = c->cfg.m, fst_kb = c->cfg.full_scan_kb;
    pthread_mutex_unlock(&c->cfg_mu);
    int exact = p->exact || cfg_m == 0;
    size_t fst_vectors = fst_kb * 1024 / (c->dim * sizeof(float));
    size_t est = c->count;
    int planned = 0, got = 0;
    /* With payload indexes that narrow f, the planner in coll_index.c picks
     * the plan; otherwise estimate by sampling and choose here. */
    if (f) got = ny_coll_index_search(c, f, q, k, p->hnsw_ef, exact, fst_vectors, cfg_m, ids, dists, &planned);
    if (!planned) {
        if (f) {
            est = estimate_matches(c, f);
            if (est <= fst_vectors) exact = 1;
        } else if (c->count <= fst_vectors / 4) {
            exact = 1;
        }
        if (exact) {
            got = ny_hnsw_search_exact(c->index, q, k, &flt, ids, dists);
        } else {
            got = ny_coll_quant_search(c, p, q, k, &flt, ids, dists);
            /* A restrictive filter can starve the graph walk: fall back to a
             * scan when it found fewer results than there are matches. */
            if (got >= 0 && (size_t)got < k && f && est > (size_t)got)
                got = ny_hnsw_search_exact(c->index, q, k, &flt, ids, dists);
        }
    }
    if (got < 0) rc = got;
    /* Vectors not indexed yet (upserted or recovered from the log, being
     * indexed in the background): scan them exactly and merge. */
    for (size_t pi = 0; rc == NY_OK && pi < c->npend; pi++) {
        uint32_t vid = c->pend_vid[pi];
        if (!allow_cb(vid, &sf)) continue;
        const float *pv = c->pend_vec + pi * c->dim;
        float d = c->metric == NY_COSINE ? -ny_dot(q, pv, c->dim) * c->pend_inv[pi] : ny_distance(c->metric, q, pv, c->dim);
        if ((size_t)got == k && !(d < dists[got - 1])) continue;
        /* The indexer may be inserting this vector right now: the index
         * may or may not have returned it already. */
        int dup = 0;
        for (int x = 0; x < got && !dup; x++) dup = ids[x] == vid;
        if (dup) continue;
        int j = got < (int)k ? got++ : got - 1;
        while (j > 0 && dists[j - 1] > d) {
            ids[j] = ids[j - 1];
            dists[j] = dists[j - 1];
            j--;
        }
        ids[j] = vid;
        dists[j] = d;
    }
    size_t rank = 0;
    for (int i = 0; rc == NY_OK && i < got; i++) {
        if (ids[i] >= c->nvid || !c->live[ids[i]]) continue;
        float score = ny_score(c->metric, dists[i]);
        if (p->has_score_threshold) {
            if (c->metric == NY_L2 ? score > p->score_threshold : score < p->score_threshold) break;
        }
        if (rank++ < p->offset) continue;
        ny_record *r = recvec_push(&v);
        if (!r) {
            rc = ny_error(NY_ENOMEM, "out of memory");
            break;
        }
        if ((rc = make_record(c, ids[i], &rx, r)) != NY_OK) {
            v.n--;
            break;
        }
        r->score = score;
    }
    pthread_rwlock_unlock(&c->rw);
out:
    free(q);
    free(ids);
    free(dists);
    json_decref(rx.sel);
    ny_filter_free(f);
    if (rc != NY_OK) {
        recvec_fail(&v, out);
        return rc;
    }
    out->items = v.items;
    out->n = v.n;
    return NY_OK;
}

/* ===== Information and configuration =================================== */

size_t ny_collection_dim(const ny_collection *c) { return c ? c->dim : 0; }
ny_metric ny_collection_metric(const ny_collection *c) { return c ? c->metric : NY_L2; }
const char *ny_collection_name(const ny_collection *c) { return c ? c->name : NULL; }

static int count_field_cb(const json_t *v, void *ctx)
{
    (void)v;
    (void)ctx;
    return 1;
}

int ny_collection_info_json(ny_collection *c, char **json_out)
{
    if (!json_out) return ny_error(NY_EINVAL, "json_out is NULL");
    *json_out = NULL;
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    pthread_mutex_lock(&c->cfg_mu);
    json_t *conf = json_deep_copy(json_object_get(c->cfg.root, "config"));
    json_t *schema = json_deep_copy(json_object_get(c->cfg.root, "payload_schema"));
    pthread_mutex_unlock(&c->cfg_mu);
    if (!conf || !schema) {
        json_decref(conf);
        json_decref(schema);
        return ny_error(NY_ENOMEM, "out of memory");
    }
    ny_hnsw_stats st;
    ny_hnsw_get_stats(c->index, &st);
    pthread_rwlock_rdlock(&c->rw);
    size_t points = c->count;
    const char *field;
    json_t *fi;
    json_object_foreach(schema, field, fi) {
        size_t n = 0;
        for (uint32_t v = 0; v < c->nvid; v++)
            if (c->live[v] && c->payloads[v] && ny_path_foreach(c->payloads[v], field, count_field_cb, NULL)) n++;
        json_object_set_new(fi, "points", json_integer((json_int_t)n));
    }
    pthread_rwlock_unlock(&c->rw);
    json_t *info = json_object();
    pthread_rwlock_rdlock(&c->rw);
    size_t pending = c->npend;
    pthread_rwlock_unlock(&c->rw);
    json_object_set_new(info, "status", json_string(pending ? "yellow" : "green"));
    json_object_set_new(info, "optimizer_status", json_string("ok"));
    json_object_set_new(info, "indexed_vectors_count", json_integer((json_int_t)st.count));
    json_object_set_new(info, "points_count", json_integer((json_int_t)points));
    json_object_set_new(info, "segments_count", json_integer(1));
    json_object_set_new(info, "config", conf);
    json_object_set_new(info, "payload_schema", schema);
    *json_out = json_dumps(info, JSON_COMPACT);
    json_decref(info);
    return *json_out ? NY_OK : ny_error(NY_ENOMEM, "out of memory");
}

int ny_collection_update_config(ny_collection *c, const char *patch_json)
{
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    pthread_mutex_lock(&c->cfg_mu);
    json_t *backup = json_deep_copy(c->cfg.root);
    if (!backup) rc = ny_error(NY_ENOMEM, "out of memory");
    if (rc == NY_OK) rc = ny_cfg_apply_update(&c->cfg, patch_json);
    if (rc == NY_OK) {
        rc = ny_cfg_save(&c->cfg, c->dir);
        if (rc == NY_OK) rc = ny_coll_quant_sync(c);
        if (rc != NY_OK) {
            json_decref(c->cfg.root);
            c->cfg.root = backup;
            backup = NULL;
            ny_cfg_refresh(&c->cfg);
        }
    }
    json_decref(backup);
    pthread_mutex_unlock(&c->cfg_mu);
    /* on_disk switched on: move what the index holds now (later additions
     * follow at each checkpoint).  The config is saved either way; a
     * failure leaves the data in RAM and is retried at the next checkpoint. */
    if (rc == NY_OK && ny_coll_vectors_sync(c) != NY_OK)
        fprintf(stderr, "nearly: collection %s: vectors/graph stay in RAM for now: %s\n", c->name, ny_errmsg());
    return rc;
}

static int schema_type_ok(const char *t)
{
    static const char *const types[] = {"keyword", "integer", "float", "bool", "geo", "datetime", "text", "uuid", NULL};
    for (int i = 0; types[i]; i++)
        if (!strcmp(t, types[i])) return 1;
    return 0;
}

int ny_collection_create_payload_index(ny_collection *c, const char *field, const char *schema_json, int wait)
{
    (void)wait; /* the schema is written with fsync either way */
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    if (!field) return ny_error(NY_EINVAL, "field_name is missing");
    if ((rc = ny_path_check(field)) != NY_OK) return ny_error(rc, "field_name: %s", ny_errmsg());
    if (!schema_json) return ny_error(NY_EINVAL, "field_schema is missing");
    json_error_t err;
    json_t *s = json_loads(schema_json, JSON_DECODE_ANY, &err);
    if (!s) return ny_error(NY_EINVAL, "field_schema: invalid JSON (%s)", err.text);
    json_t *entry = json_object();
    const char *type = NULL;
    if (json_is_string(s)) type = json_string_value(s);
    else if (json_is_object(s) && json_is_string(json_object_get(s, "type"))) {
        type = json_string_value(json_object_get(s, "type"));
        json_object_set(entry, "params", s);
    }
    if (!type || !schema_type_ok(type)) {
        json_decref(s);
        json_decref(entry);
        return ny_error(NY_EINVAL, "field_schema: expected one of keyword, integer, float, bool, geo, datetime, text, uuid "
                                   "(or an object with \"type\")");
    }
    json_object_set_new(entry, "data_type", json_string(type));
    json_decref(s);
    pthread_mutex_lock(&c->cfg_mu);
    json_t *schema = json_object_get(c->cfg.root, "payload_schema");
    json_t *old = json_incref(json_object_get(schema, field));
    json_object_set_new(schema, field, entry);
    rc = ny_cfg_save(&c->cfg, c->dir);
    if (rc != NY_OK) {
        if (old) json_object_set(schema, field, old);
        else json_object_del(schema, field);
    }
    json_decref(old);
    json_t *built = rc == NY_OK ? json_deep_copy(entry) : NULL;
    pthread_mutex_unlock(&c->cfg_mu);
    if (rc == NY_OK) rc = built ? ny_coll_index_build(c, field, built) : ny_error(NY_ENOMEM, "out of memory");
    json_decref(built);
    return rc;
}

int ny_collection_delete_payload_index(ny_collection *c, const char *field, int wait)
{
    (void)wait;
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    if (!field) return ny_error(NY_EINVAL, "field_name is missing");
    pthread_mutex_lock(&c->cfg_mu);
    json_t *schema = json_object_get(c->cfg.root, "payload_schema");
    json_t *old = json_incref(json_object_get(schema, field));
    if (!old) rc = ny_error(NY_ENOTFOUND, "no payload index on field \"%.100s\"", field);
    else {
        json_object_del(schema, field);
        rc = ny_cfg_save(&c->cfg, c->dir);
        if (rc != NY_OK) json_object_set(schema, field, old);
    }
    json_decref(old);
    pthread_mutex_unlock(&c->cfg_mu);
    if (rc == NY_OK) ny_coll_index_drop(c, field);
    return rc;
}

int ny_collection_checkpoint(ny_collection *c)
{
    int rc = check_open(c);
    if (rc != NY_OK) return rc;
    return ny_persist_checkpoint(c);
}

/* ===== Lifetime ======================================================== */

void ny_coll_ref(ny_collection *c) { atomic_fetch_add(&c->refs, 1); }

static void stop_indexer(ny_collection *c)
{
    if (!c->indexer_started) return;
    atomic_store(&c->indexer_stop, 1);
    pend_broadcast(c, &c->work_cv);
    pthread_join(c->indexer, NULL);
    c->indexer_started = 0;
}

static void coll_free(ny_collection *c)
{
    stop_indexer(c);
    if (c->wal) ny_wal_close(c->wal);
    ny_hnsw_free(c->index);
    ny_coll_index_free(c);
    for (uint32_t v = 0; v < c->nvid; v++) json_decref(c->payloads[v]);
    free(c->ids);
    free(c->payloads);
    free(c->live);
    free(c->pend_idx);
    free(c->pend_fly);
    free(c->pend_vid);
    free(c->pend_vec);
    free(c->pend_inv);
    free(c->freel);
    free(c->htab);
    free(c->sorted);
    ny_cfg_free(&c->cfg);
    pthread_mutex_destroy(&c->ckpt_mu);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->idx_mu);
    pthread_mutex_destroy(&c->pend_mu);
    pthread_cond_destroy(&c->work_cv);
    pthread_cond_destroy(&c->done_cv);
    pthread_rwlock_destroy(&c->rw);
    pthread_mutex_destroy(&c->sort_mu);
    pthread_mutex_destroy(&c->cfg_mu);
    free(c->name);
    free(c->dir);
    free(c);
}

void ny_collection_release(ny_collection *c)
{
    if (!c) return;
    if (atomic_fetch_sub(&c->refs, 1) == 1) coll_free(c);
}

/* Flow-control limit on the pending set, in vectors: NEARLY_PENDING_MAX
 * if set (at least 1), else NY_PENDING_MAX_DEFAULT. */
static size_t pending_limit(void)
{
    const char *e = getenv("NEARLY_PENDING_MAX");
    if (e && *e) {
        char *end;
        unsigned long long v = strtoull(e, &end, 10);
        if (*end == 0 && v >= 1) return (size_t)v;
        fprintf(stderr, "nearly: NEARLY_PENDING_MAX=%s is not a positive integer; using %d\n", e, NY_PENDING_MAX_DEFAULT);
    }
    return NY_PENDING_MAX_DEFAULT;
}

int ny_coll_open(struct ny_db *db, const char *name, const char *dir, ny_collection **out)
{
    *out = NULL;
    ny_collection *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name)) || !(c->dir = strdup(dir))) {
        if (c) free(c->name);
        free(c);
        return ny_error(NY_ENOMEM, "out of memory (collection)");
    }
    c->db = db;
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->ckpt_mu, NULL);
    pthread_mutex_init(&c->wmu, NULL);
    pthread_mutex_init(&c->idx_mu, NULL);
    pthread_mutex_init(&c->pend_mu, NULL);
    pthread_cond_init(&c->work_cv, NULL);
    pthread_cond_init(&c->done_cv, NULL);
    atomic_init(&c->npend_a, 0);
    c->pend_max = pending_limit();
    pthread_rwlock_init(&c->rw, NULL);
    pthread_mutex_init(&c->sort_mu, NULL);
    pthread_mutex_init(&c->cfg_mu, NULL);
    int rc = ny_cfg_load(dir, &c->cfg);
    if (rc == NY_OK) {
        c->dim = c->cfg.dim;
        c->metric = c->cfg.metric;
        rc = ny_coll_index_init(c);
        if (rc == NY_OK) rc = ny_persist_load(c);
    }
    if (rc == NY_OK) {
        char wdir[4096];
        snprintf(wdir, sizeof wdir, "%s/wal", dir);
        ny_wal_open_info info;
        c->defer_index = 1;
        rc = ny_wal_open(wdir, c->ckpt_lsn, ny_coll_replay, c, &c->wal, &info);
        c->defer_index = 0;
        if (rc == NY_OK) ny_coll_index_loaded(c);
        if (rc == NY_OK && info.cut)
            fprintf(stderr, "nearly: collection %s: recovered %llu log records, discarded a torn tail of %llu bytes\n",
                    name, (unsigned long long)info.replayed, (unsigned long long)info.cut_bytes);
    }
    if (rc != NY_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ny_errmsg());
        coll_free(c);
        return ny_error(rc, "collection %s: %s", name, msg);
    }
    c->ckpt_time = ny_now();
    atomic_init(&c->indexer_stop, 0);
    if (pthread_create(&c->indexer, NULL, indexer_main, c) == 0) c->indexer_started = c->async_index = 1;
    else fprintf(stderr, "nearly: collection %s: no indexer thread; upserts index their vectors themselves\n", name);
    *out = c;
    return NY_OK;
}

void ny_coll_shutdown(ny_collection *c, int checkpoint)
{
    pthread_mutex_lock(&c->wmu);
    int was = atomic_exchange(&c->closed, 1);
    pthread_mutex_unlock(&c->wmu);
    if (was) return;
    stop_indexer(c);
    if (checkpoint && !atomic_load(&c->dropped)) {
        if (ny_persist_checkpoint(c) != NY_OK)
            fprintf(stderr, "nearly: collection %s: checkpoint at close failed: %s (the log still has every write)\n",
                    c->name, ny_errmsg());
    }
    if (c->wal) ny_wal_flush(c->wal);
}
