/*
 * hnsw.c -- the HNSW graph index (Malkov & Yashunin), built for concurrent
 * inserts, searches and deletes.
 *
 * Layout.  Every array is indexed by an internal node number and lives in
 * its own reserved virtual range (mmap PROT_NONE) that is committed as the
 * index grows, so nothing ever moves under a concurrent reader:
 *   vecs    rows of dimp floats (dim padded to 16, 64-byte aligned rows)
 *   link0   level-0 lists, fixed stride: [count | 2M ids] as uint32
 *   upper   an arena of upper-level lists [count | M ids]; uoff[i] is node
 *           i's first upper list (only ~1/M of the nodes have one)
 *   level   uint8 level of each node
 *   flags   uint8: lock bit, USED (allocated), LIVE (insert finished),
 *           DEL (deleted: still traversed, never returned)
 *   i2e     internal -> external (caller's) id; e2i external -> internal+1
 * The external/internal split lets a deleted id be inserted again at once
 * (into a fresh or reclaimed node) while searches may still be walking the
 * old, deleted node.
 *
 * Concurrency.  Writers (insert) take a per-node spin lock (a flag bit) to
 * edit that node's lists and never hold two.  Readers take no lock: link
 * ids are stored with release before the count, and loaded with acquire,
 * so a reader that sees an id also sees the node's vector.  The entry point
 * and top level are one atomic 64-bit word (changed under ep_mu).  A
 * search only returns nodes that are LIVE and not DEL.
 * A rwlock orders the rare whole-index operations: inserts and deletes take
 * it shared; vacuum and save take it exclusive.  Searches never touch it.
 *
 * Deletes mark a tombstone.  ny_hnsw_vacuum (run automatically when
 * tombstones reach 1/4 of the live nodes) rewrites every list that points
 * to a tombstone, reconnecting through the tombstone's own neighbours with
 * the selection heuristic, waits for a grace period (readers announce
 * themselves in one of two epoch counters), then recycles the nodes.
 *
 * Search.  Upper levels: greedy descent.  Level 0 without filter and
 * without tombstones: one sorted candidate buffer bounded by ef (expanded
 * entries flagged by the top id bit).  With a filter or tombstones: a
 * candidate min-heap plus a separate result list of allowed nodes, the
 * search going on until ef allowed results are found (hnswlib's rule), so
 * very selective filters still fill the result list.  Neighbours of an
 * expanded node are collected first (marking them visited in a
 * thread-local epoch array), their rows prefetched, then scored.
 */
#include "index/hnsw.h"

#include <errno.h>
#include <fcntl.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "distance/distance.h"

#define NONE32 UINT32_MAX
#define EXP_BIT 0x80000000u /* "expanded" mark in candidate ids */

#define NF_LOCK 1u
#define NF_USED 2u
#define NF_LIVE 4u
#define NF_DEL 8u

#define MAX_LEVEL 31
#define DEFAULT_EF 64
/* Virtual space reserved per index for rows + level-0 links (grown into). */
#define RESERVE_BUDGET ((size_t)64 << 30)
#define MAX_NODES ((size_t)0x7ffffffe)

/* ===== Reserved, growable memory regions =============================== */

typedef struct vreg {
    char *base;
    size_t reserved;
    size_t committed;
} vreg;

#define HUGE_SZ ((size_t)2 << 20)

static int vreg_init(vreg *r, size_t reserve)
{
    reserve = (reserve + HUGE_SZ - 1) & ~(HUGE_SZ - 1);
    size_t len = reserve + HUGE_SZ;
    char *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return ny_error_errno(NY_ENOMEM, "hnsw: cannot reserve %zu bytes of address space", len);
    /* Align the start to 2 MiB so transparent hugepages can back it. */
    uintptr_t a = ((uintptr_t)p + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1);
    size_t head = a - (uintptr_t)p;
    if (head) munmap(p, head);
    size_t tail = len - head - reserve;
    if (tail) munmap((char *)a + reserve, tail);
    r->base = (char *)a;
    r->reserved = reserve;
    r->committed = 0;
#ifdef MADV_HUGEPAGE
    madvise(r->base, reserve, MADV_HUGEPAGE);
#endif
    return NY_OK;
}

static void vreg_free(vreg *r)
{
    if (r->base) munmap(r->base, r->reserved);
    r->base = NULL;
}

/* Makes at least `bytes` of the region usable.  Caller serialises. */
static int vreg_commit(vreg *r, size_t bytes)
{
    if (bytes <= r->committed) return NY_OK;
    if (bytes > r->reserved) return ny_error(NY_EFULL, "hnsw: index capacity exhausted (%zu bytes reserved; pass a larger capacity hint)", r->reserved);
    size_t gran = r->committed < (8u << 20) ? (64u << 10) : HUGE_SZ;
    size_t want = (bytes + gran - 1) & ~(gran - 1);
    if (want > r->reserved) want = r->reserved;
    if (mprotect(r->base + r->committed, want - r->committed, PROT_READ | PROT_WRITE) != 0)
        return ny_error_errno(NY_ENOMEM, "hnsw: cannot commit memory");
    r->committed = want;
    return NY_OK;
}

/* ===== The index ======================================================= */

struct ny_hnsw {
    size_t dim, dimp, row_bytes;
    ny_metric metric;
    size_t m, m0, efc;
    uint64_t seed;
    double mult;
    uint32_t stride0, strideu;
    size_t nmax;
    ny_dist_fn df;
    float alpha; /* neighbour-selection relaxation (see select_heuristic) */
    const struct search_ops *ops;

    vreg r_vec, r_link0, r_level, r_flags, r_uoff, r_upper, r_i2e, r_e2i;
    float *vecs;
    _Atomic uint32_t *link0;
    uint8_t *level;
    _Atomic uint8_t *flags;
    uint32_t *uoff;
    _Atomic uint32_t *upper;
    uint32_t *i2e;
    _Atomic uint32_t *e2i;
    _Atomic size_t e2i_n; /* entries of e2i committed */

    _Atomic size_t n_nodes; /* allocated internal nodes (high water) */
    size_t upper_used;      /* uint32 words of the arena in use */
    uint64_t rng;           /* level generator state (grow_mu) */
    uint32_t *freel;        /* recycled internal nodes (grow_mu) */
    size_t free_n, free_cap;
    pthread_mutex_t grow_mu;
    pthread_mutex_t ep_mu;
    pthread_rwlock_t rw;

    _Atomic uint64_t entry; /* (top level << 32) | entry node, NONE32 if empty */
    _Atomic size_t n_live, n_deleted, max_id;

    /* Quantized codes (src/index/hnsw_quant.c); NULL when not configured. */
    struct ny_hnsw_qstate *_Atomic qstate;
    /* Regions moved to memory-mapped files (src/index/hnsw_disk.c; excl lock). */
    struct ny_hnsw_disk *disk;

    _Alignas(64) _Atomic uint64_t rd_epoch;
    _Alignas(64) _Atomic long rd_cnt0;
    _Alignas(64) _Atomic long rd_cnt1;
};

#define EP_NODE(e) ((uint32_t)(e))
#define EP_LEVEL(e) ((int)((e) >> 32))
#define EP_PACK(lv, n) (((uint64_t)(uint32_t)(lv) << 32) | (uint32_t)(n))

static inline const float *vec_of(const ny_hnsw *h, uint32_t i)
{
    return h->vecs + (size_t)i * h->dimp;
}

static inline _Atomic uint32_t *links_of(const ny_hnsw *h, uint32_t i, int l)
{
    if (l == 0) return h->link0 + (size_t)i * h->stride0;
    return h->upper + h->uoff[i] + (size_t)(l - 1) * h->strideu;
}

static inline uint32_t ld_acq(const _Atomic uint32_t *p) { return atomic_load_explicit(p, memory_order_acquire); }
static inline void st_rel(_Atomic uint32_t *p, uint32_t v) { atomic_store_explicit(p, v, memory_order_release); }
static inline uint8_t flags_of(const ny_hnsw *h, uint32_t i)
{
    return atomic_load_explicit(&h->flags[i], memory_order_acquire);
}
static inline int is_live(const ny_hnsw *h, uint32_t i)
{
    return (flags_of(h, i) & (NF_LIVE | NF_DEL)) == NF_LIVE;
}

static inline void node_lock(ny_hnsw *h, uint32_t i)
{
    while (atomic_fetch_or_explicit(&h->flags[i], NF_LOCK, memory_order_acquire) & NF_LOCK)
        while (atomic_load_explicit(&h->flags[i], memory_order_relaxed) & NF_LOCK) _mm_pause();
}

static inline void node_unlock(ny_hnsw *h, uint32_t i)
{
    atomic_fetch_and_explicit(&h->flags[i], (uint8_t)~NF_LOCK, memory_order_release);
}

static inline void prefetch_row(const ny_hnsw *h, uint32_t i)
{
    const char *p = (const char *)vec_of(h, i);
    size_t lines = h->row_bytes / 64;
    if (lines > 8) lines = 8;
    for (size_t k = 0; k < lines; k++) _mm_prefetch(p + 64 * k, _MM_HINT_T0);
}

/* ---- Readers' grace periods ------------------------------------------ */

static int rd_enter(const ny_hnsw *hc)
{
    ny_hnsw *h = (ny_hnsw *)hc;
    for (;;) {
        uint64_t e = atomic_load(&h->rd_epoch);
        _Atomic long *c = (e & 1) ? &h->rd_cnt1 : &h->rd_cnt0;
        atomic_fetch_add(c, 1);
        if (atomic_load(&h->rd_epoch) == e) return (int)(e & 1);
        atomic_fetch_sub(c, 1);
    }
}

static void rd_exit(const ny_hnsw *hc, int slot)
{
    ny_hnsw *h = (ny_hnsw *)hc;
    atomic_fetch_sub_explicit(slot ? &h->rd_cnt1 : &h->rd_cnt0, 1, memory_order_release);
}

/* Waits until every reader active at the call has finished.  Callers hold
 * the rwlock exclusively (one grace period at a time). */
static void grace_period(ny_hnsw *h)
{
    for (int round = 0; round < 2; round++) {
        uint64_t e = atomic_load(&h->rd_epoch);
        atomic_store(&h->rd_epoch, e + 1);
        _Atomic long *c = (e & 1) ? &h->rd_cnt1 : &h->rd_cnt0;
        while (atomic_load_explicit(c, memory_order_acquire) != 0) sched_yield();
    }
}

/* ===== Thread-local scratch ============================================ */

typedef struct cand {
    float d;
    uint32_t id;
} cand;

typedef struct scratch {
    uint16_t *vis;
    size_t vis_cap;
    uint16_t tag;
    float *q;
    size_t q_cap;
    cand *pool;
    size_t pool_cap;
    cand *heap;
    size_t heap_cap;
    cand *res;
    size_t res_cap;
    cand *sel;
    size_t sel_cap;
    uint32_t *batch;
    size_t batch_cap;
    int busy;
} scratch;

static pthread_key_t g_key;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static _Thread_local scratch *tl_scratch;

static void scratch_destroy(scratch *s)
{
    if (!s) return;
    free(s->vis);
    free(s->q);
    free(s->pool);
    free(s->heap);
    free(s->res);
    free(s->sel);
    free(s->batch);
    free(s);
}

static void key_dtor(void *p) { scratch_destroy(p); }
static void key_init(void) { pthread_key_create(&g_key, key_dtor); }

/* Returns this thread's scratch, or a private one if it is in use (a
 * filter callback searching again). */
static scratch *scratch_get(void)
{
    scratch *s = tl_scratch;
    if (s && !s->busy) {
        s->busy = 1;
        return s;
    }
    scratch *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->busy = 1;
    if (!s) {
        pthread_once(&g_key_once, key_init);
        tl_scratch = n;
        pthread_setspecific(g_key, n);
    }
    return n;
}

static void scratch_put(scratch *s)
{
    if (!s) return;
    if (s == tl_scratch) s->busy = 0;
    else scratch_destroy(s);
}

static int grow_buf(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return NY_OK;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return ny_error(NY_ENOMEM, "hnsw: out of memory (search buffers)");
    *p = q;
    *cap = n;
    return NY_OK;
}

#define GROW(s, f, need) grow_buf((void **)&(s)->f, &(s)->f##_cap, (need), sizeof(*(s)->f))

static int vis_reserve(scratch *s, size_t n)
{
    if (n <= s->vis_cap) return NY_OK;
    size_t cap = s->vis_cap ? s->vis_cap : 1024;
    while (cap < n) cap *= 2;
    uint16_t *v = realloc(s->vis, cap * sizeof *v);
    if (!v) return ny_error(NY_ENOMEM, "hnsw: out of memory (visited set)");
    memset(v + s->vis_cap, 0, (cap - s->vis_cap) * sizeof *v);
    s->vis = v;
    s->vis_cap = cap;
    return NY_OK;
}

static void vis_new(scratch *s)
{
    if (++s->tag == 0) {
        memset(s->vis, 0, s->vis_cap * sizeof *s->vis);
        s->tag = 1;
    }
}

/* 1 if x was already visited; marks it otherwise.  Ids beyond the array
 * (nodes added during this search) grow it; if that fails the node is
 * treated as visited (skipped). */
static inline int vis_test_set(scratch *s, uint32_t x)
{
    if (NY_UNLIKELY(x >= s->vis_cap) && vis_reserve(s, (size_t)x + 1) != NY_OK) return 1;
    if (s->vis[x] == s->tag) return 1;
    s->vis[x] = s->tag;
    return 0;
}

/* Prepares scratch for a search of ef candidates on h. */
static int scratch_prepare(const ny_hnsw *h, scratch *s, size_t ef)
{
    size_t nn = atomic_load_explicit(&h->n_nodes, memory_order_acquire);
    int rc;
    if ((rc = vis_reserve(s, nn + 64)) || (rc = GROW(s, q, h->dimp + 16)) || (rc = GROW(s, pool, ef + 1)) ||
        (rc = GROW(s, batch, h->m0 + 1)))
        return rc;
    return NY_OK;
}

/* ===== Search primitives =============================================== */

/* Inserts (d, id) into the sorted array a[0..*n) of capacity cap, keeping
 * it sorted and dropping the last entry when full.  The caller checked that
 * it belongs (n < cap or d < a[n-1].d).  Returns the position. */
static inline size_t pool_insert(cand *a, size_t *n, size_t cap, float d, uint32_t id)
{
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = (lo + hi) >> 1;
        if (a[mid].d <= d) lo = mid + 1;
        else hi = mid;
    }
    size_t keep = *n < cap ? *n : cap - 1;
    if (keep > lo) memmove(a + lo + 1, a + lo, (keep - lo) * sizeof *a);
    a[lo].d = d;
    a[lo].id = id;
    if (*n < cap) (*n)++;
    return lo;
}

/* Collects the unvisited neighbours of node c at level l into s->batch. */
static inline uint32_t collect(const ny_hnsw *h, scratch *s, uint32_t c, int l)
{
    const _Atomic uint32_t *ll = links_of(h, c, l);
    uint32_t maxl = l ? (uint32_t)h->m : (uint32_t)h->m0;
    uint32_t cnt = ld_acq(ll);
    if (cnt > maxl) cnt = maxl;
    uint32_t *b = s->batch;
    const uint16_t *vis = s->vis;
    size_t vcap = s->vis_cap;
    for (uint32_t j = 0; j < cnt; j++) {
        uint32_t x = ld_acq(ll + 1 + j);
        b[j] = x;
        if (x < vcap) _mm_prefetch((const char *)(vis + x), _MM_HINT_T0);
    }
    uint32_t nb = 0;
    for (uint32_t j = 0; j < cnt; j++) {
        uint32_t x = b[j];
        if (!vis_test_set(s, x)) b[nb++] = x;
    }
    return nb;
}

static inline void prefetch_links(const ny_hnsw *h, uint32_t i, int l)
{
    const char *p = (const char *)links_of(h, i, l);
    _mm_prefetch(p, _MM_HINT_T0);
    _mm_prefetch(p + 64, _MM_HINT_T0);
    if (l == 0) _mm_prefetch(p + 128, _MM_HINT_T0);
}

/* Rows prefetched ahead of the one being scored (2..5 measured alike on
 * glove-100; 1 and 8 were slower). */
#define PF_AHEAD 3u

/* Greedy walk on level l from (*ep, *epd) towards q. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE void greedy_impl(const ny_hnsw *h, const float *q, ny_dist_fn df, uint32_t *ep, float *epd, int l)
{
    uint32_t cur = *ep;
    float curd = *epd;
    for (int changed = 1; changed;) {
        changed = 0;
        const _Atomic uint32_t *ll = links_of(h, cur, l);
        uint32_t cnt = ld_acq(ll);
        if (cnt > h->m) cnt = (uint32_t)h->m;
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t x = ld_acq(ll + 1 + j);
            if (j + 1 < cnt) prefetch_row(h, ld_acq(ll + 2 + j));
            float d = df(q, vec_of(h, x), h->dimp);
            if (d < curd) {
                curd = d;
                cur = x;
                changed = 1;
            }
        }
    }
    *ep = cur;
    *epd = curd;
}

/* Beam search on level l from ep with a sorted pool bounded by ef.  The
 * result is s->pool[0..n) (ids may carry EXP_BIT). */
ALWAYS_INLINE size_t search_layer_impl(const ny_hnsw *h, scratch *s, const float *q, ny_dist_fn df, uint32_t ep, float epd,
                           size_t ef, int l)
{
    cand *pool = s->pool;
    size_t n = 1, cur = 0;
    pool[0].d = epd;
    pool[0].id = ep;
    vis_new(s);
    vis_test_set(s, ep);
    const size_t dimp = h->dimp;
    while (cur < n) {
        uint32_t c = pool[cur].id;
        pool[cur].id |= EXP_BIT;
        /* The next node to expand is likely the next unexpanded one now. */
        for (size_t nx = cur + 1; nx < n; nx++)
            if (!(pool[nx].id & EXP_BIT)) {
                prefetch_links(h, pool[nx].id, l);
                break;
            }
        uint32_t nb = collect(h, s, c, l);
        const uint32_t *b = s->batch;
        for (uint32_t j = 0; j < nb && j < PF_AHEAD; j++) prefetch_row(h, b[j]);
        size_t minpos = cur + 1;
        for (uint32_t j = 0; j < nb; j++) {
            if (j + PF_AHEAD < nb) prefetch_row(h, b[j + PF_AHEAD]);
            float d = df(q, vec_of(h, b[j]), dimp);
            if (n < ef || d < pool[n - 1].d) {
                size_t pos = pool_insert(pool, &n, ef, d, b[j]);
                if (pos < minpos) minpos = pos;
            }
        }
        cur = minpos < cur ? minpos : cur;
        while (cur < n && (pool[cur].id & EXP_BIT)) cur++;
    }
    return n;
}

static inline int filter_allows(const ny_filter *f, uint32_t ext)
{
    if (!f) return 1;
    if (f->bitmap && (ext >= f->nbits || !((f->bitmap[ext >> 6] >> (ext & 63)) & 1))) return 0;
    if (f->allow && !f->allow(ext, f->ctx)) return 0;
    return 1;
}

static inline int allowed(const ny_hnsw *h, uint32_t i, const ny_filter *f)
{
    if (!is_live(h, i)) return 0;
    return filter_allows(f, h->i2e[i]);
}

static inline void heap_push(cand *hp, size_t *n, float d, uint32_t id)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) >> 1;
        if (hp[p].d <= d) break;
        hp[i] = hp[p];
        i = p;
    }
    hp[i].d = d;
    hp[i].id = id;
}

static inline cand heap_pop(cand *hp, size_t *n)
{
    cand top = hp[0], last = hp[--(*n)];
    size_t i = 0, sz = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= sz) break;
        if (c + 1 < sz && hp[c + 1].d < hp[c].d) c++;
        if (hp[c].d >= last.d) break;
        hp[i] = hp[c];
        i = c;
    }
    if (sz) hp[i] = last;
    return top;
}

/* Level-0 search returning only allowed (live, filter-passing) nodes:
 * candidates in a min-heap, results in s->res (sorted, at most ef).  The
 * search continues until ef allowed results are held and no candidate is
 * closer than the worst of them. */
ALWAYS_INLINE int search_filtered_impl(const ny_hnsw *h, scratch *s, const float *q, ny_dist_fn df, uint32_t ep, float epd,
                           size_t ef, const ny_filter *f, size_t *nres_out)
{
    int rc;
    if ((rc = GROW(s, res, ef + 1)) || (rc = GROW(s, heap, 256))) return rc;
    cand *res = s->res;
    size_t nres = 0, hn = 0;
    vis_new(s);
    vis_test_set(s, ep);
    heap_push(s->heap, &hn, epd, ep);
    if (allowed(h, ep, f)) {
        res[0].d = epd;
        res[0].id = ep;
        nres = 1;
    }
    const size_t dimp = h->dimp;
    while (hn) {
        if (nres >= ef && s->heap[0].d > res[nres - 1].d) break;
        cand c = heap_pop(s->heap, &hn);
        if (hn) prefetch_links(h, s->heap[0].id, 0);
        uint32_t nb = collect(h, s, c.id, 0);
        if (hn + nb > s->heap_cap && (rc = GROW(s, heap, hn + nb))) return rc;
        const uint32_t *b = s->batch;
        for (uint32_t j = 0; j < nb && j < PF_AHEAD; j++) prefetch_row(h, b[j]);
        for (uint32_t j = 0; j < nb; j++) {
            if (j + PF_AHEAD < nb) prefetch_row(h, b[j + PF_AHEAD]);
            float d = df(q, vec_of(h, b[j]), dimp);
            if (nres < ef || d < res[nres - 1].d) {
                heap_push(s->heap, &hn, d, b[j]);
                if (allowed(h, b[j], f)) pool_insert(res, &nres, ef, d, b[j]);
            }
        }
    }
    *nres_out = nres;
    return NY_OK;
}

/* ---- Per-ISA, per-metric search loops ---------------------------------
 * The three loops above are instantiated with the distance kernel inlined
 * (rows are padded to 16 floats, so the kernels need no tail), and the
 * index picks one set at creation: no indirect call per distance. */

#define T_AVX512 __attribute__((target("avx512f")))
#define T_AVX2 __attribute__((target("avx2,fma")))

T_AVX512 static inline float k_dot512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_load_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_load_ps(b + i + 16), s1);
    }
    if (i < n) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_load_ps(b + i), s0);
    return -_mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

T_AVX512 static inline float k_l2_512(const float *a, const float *b, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_load_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_load_ps(b + i + 16));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    if (i < n) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_load_ps(b + i));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

T_AVX2 static inline float hsum8(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

T_AVX2 static inline float k_dot256(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_load_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_load_ps(b + i + 8), s1);
    }
    return -hsum8(_mm256_add_ps(s0, s1));
}

T_AVX2 static inline float k_l2_256(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_load_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_load_ps(b + i + 8));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}

typedef void (*greedy_fn)(const ny_hnsw *, const float *, uint32_t *, float *, int);
typedef size_t (*layer_fn)(const ny_hnsw *, scratch *, const float *, uint32_t, float, size_t, int);
typedef int (*filtered_fn)(const ny_hnsw *, scratch *, const float *, uint32_t, float, size_t, const ny_filter *,
                           size_t *);

typedef float (*dist_fn)(const float *, const float *, size_t);

typedef struct search_ops {
    dist_fn dist;
    greedy_fn greedy;
    layer_fn layer;
    filtered_fn filtered;
} search_ops;

#define GEN_OPS(NAME, TARGET, KERNEL)                                                                          \
    TARGET static float dist_##NAME(const float *a, const float *b, size_t n) { return KERNEL(a, b, n); }     \
    TARGET static void greedy_##NAME(const ny_hnsw *h, const float *q, uint32_t *ep, float *epd, int l)         \
    {                                                                                                           \
        greedy_impl(h, q, KERNEL, ep, epd, l);                                                                  \
    }                                                                                                           \
    TARGET static size_t layer_##NAME(const ny_hnsw *h, scratch *s, const float *q, uint32_t ep, float epd,     \
                                      size_t ef, int l)                                                         \
    {                                                                                                           \
        return search_layer_impl(h, s, q, KERNEL, ep, epd, ef, l);                                              \
    }                                                                                                           \
    TARGET static int filtered_##NAME(const ny_hnsw *h, scratch *s, const float *q, uint32_t ep, float epd,     \
                                      size_t ef, const ny_filter *f, size_t *nres)                              \
    {                                                                                                           \
        return search_filtered_impl(h, s, q, KERNEL, ep, epd, ef, f, nres);                                     \
    }                                                                                                           \
    static const search_ops ops_##NAME = {dist_##NAME, greedy_##NAME, layer_##NAME, filtered_##NAME};

GEN_OPS(ip512, T_AVX512, k_dot512)
GEN_OPS(l2_512, T_AVX512, k_l2_512)
GEN_OPS(ip256, T_AVX2, k_dot256)
GEN_OPS(l2_256, T_AVX2, k_l2_256)
static inline float k_l2_scalar(const float *a, const float *b, size_t n) { return ny_l2sq_scalar(a, b, n); }
static inline float k_ip_scalar(const float *a, const float *b, size_t n) { return -ny_dot_scalar(a, b, n); }
GEN_OPS(l2_scalar, , k_l2_scalar)
GEN_OPS(ip_scalar, , k_ip_scalar)

static const search_ops *pick_ops(ny_metric m)
{
    switch (ny_simd_active()) {
    case NY_SIMD_AVX512: return m == NY_L2 ? &ops_l2_512 : &ops_ip512;
    case NY_SIMD_AVX2: return m == NY_L2 ? &ops_l2_256 : &ops_ip256;
    default: return m == NY_L2 ? &ops_l2_scalar : &ops_ip_scalar;
    }
}

/* ===== Neighbour selection ============================================= */

static void sort_cands(cand *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        cand x = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1].d > x.d) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* 1 if candidate ci survives the pruning test against the kept out[0..k):
 * dropped when some kept neighbour is closer to it than the base is,
 * relaxed by alpha (alpha * d(kept, cand) < d(base, cand) drops it). */
static int prune_keeps(const ny_hnsw *h, const cand *ci, const cand *out, size_t k, float alpha)
{
    const float *v = vec_of(h, ci->id);
    for (size_t j = 0; j < k; j++) {
        float dd = h->df(v, vec_of(h, out[j].id), h->dimp), dc = ci->d;
        if (h->metric == NY_COSINE) {
            /* -dot of unit vectors -> squared L2 (= 2 + 2 * -dot), so
             * that alpha scales a true, positive distance. */
            dd = 2 + 2 * dd;
            dc = 2 + 2 * dc;
        }
        if (alpha * dd < dc) return 0;
    }
    return 1;
}

/* The HNSW paper's heuristic (hnswlib getNeighborsByHeuristic2), then a
 * relaxed fill: pass 1 walks the candidates nearest first and keeps one
 * unless an already kept neighbour is closer to it than the base is
 * (exactly hnswlib's choice); if that leaves free slots, pass 2 walks the
 * rejected ones again with the test relaxed by alpha (DiskANN's robust
 * prune: dropped only if alpha * d(kept, cand) < d(base, cand)).
 * alpha = 1.15 for L2 and cosine (1 for dot: no second pass).
 *
 * Why two passes: a single relaxed pass (the earlier code) fills all M
 * slots with near neighbours on clustered data -- inside a Gaussian
 * cluster all pairwise distances are alike, so the relaxed test rejects
 * almost nothing and the diverse, cluster-leaving links never get a slot.
 * On filter_bench's data (100k x 128, 256 clusters, M 16, efc 100) that
 * gave recall@10 0.836 at ef 64 against hnswlib's 0.999; two passes give
 * 0.999.  On glove-100 two passes keep the relaxed pass's gain (ef 80:
 * 0.934, single relaxed pass 0.930, plain heuristic 0.924; ef 160: 0.973 /
 * 0.968 / 0.965) -- docs/HNSW.md.  Deleted nodes are skipped.  c must be
 * sorted; the kept ones are written to out (at most m). */
static size_t select_heuristic(const ny_hnsw *h, const cand *c, size_t n, size_t m, cand *out)
{
    size_t k = 0;
    int skip_del = 1;
    uint8_t taken[n ? n : 1];
    memset(taken, 0, n ? n : 1);
again:
    for (size_t i = 0; i < n && k < m; i++) {
        if (skip_del && (flags_of(h, c[i].id) & NF_DEL)) continue;
        if (prune_keeps(h, &c[i], out, k, 1.0f)) {
            out[k++] = c[i];
            taken[i] = 1;
        }
    }
    if (h->alpha > 1.0f)
        for (size_t i = 0; i < n && k < m; i++) {
            if (taken[i] || (skip_del && (flags_of(h, c[i].id) & NF_DEL))) continue;
            if (prune_keeps(h, &c[i], out, k, h->alpha)) out[k++] = c[i];
        }
    /* Only deleted candidates: link to them anyway (they are still walked,
     * and vacuum will reroute) rather than leave the node unreachable. */
    if (k == 0 && n > 0 && skip_del) {
        skip_del = 0;
        goto again;
    }
    return k;
}

/* Writes a node's list (caller holds the node's lock or has exclusive
 * access): ids first, then the count. */
static void write_list(_Atomic uint32_t *ll, const cand *sel, size_t k)
{
    for (size_t j = 0; j < k; j++) st_rel(ll + 1 + j, sel[j].id);
    st_rel(ll, (uint32_t)k);
}

/* Adds a link n -> i (distance d) at level l, pruning n's list with the
 * heuristic when it is full. */
static void add_link(ny_hnsw *h, uint32_t n, uint32_t i, float d, int l)
{
    size_t maxl = l ? h->m : h->m0;
    cand buf[2 * maxl + 2];
    cand *c = buf, *out = buf + maxl + 1;
    node_lock(h, n);
    _Atomic uint32_t *ll = links_of(h, n, l);
    uint32_t cnt = atomic_load_explicit(ll, memory_order_relaxed);
    if (cnt > maxl) cnt = (uint32_t)maxl;
    for (uint32_t j = 0; j < cnt; j++)
        if (atomic_load_explicit(ll + 1 + j, memory_order_relaxed) == i) {
            node_unlock(h, n);
            return;
        }
    if (cnt < maxl) {
        st_rel(ll + 1 + cnt, i);
        st_rel(ll, cnt + 1);
        node_unlock(h, n);
        return;
    }
    const float *vn = vec_of(h, n);
    size_t nc = 0;
    c[nc].d = d;
    c[nc++].id = i;
    for (uint32_t j = 0; j < cnt; j++) {
        uint32_t x = atomic_load_explicit(ll + 1 + j, memory_order_relaxed);
        if (flags_of(h, x) & NF_DEL) continue;
        c[nc].d = h->df(vn, vec_of(h, x), h->dimp);
        c[nc++].id = x;
    }
    sort_cands(c, nc);
    size_t k = select_heuristic(h, c, nc, maxl, out);
    write_list(ll, out, k);
    node_unlock(h, n);
}

/* Sets a new node's list at level l to the k selected neighbours.  Other
 * inserters may already have linked to it there (they can reach it through
 * its upper level and use it as an entry): their links are kept, and the
 * union is pruned with the heuristic if it does not fit. */
static void set_own_list(ny_hnsw *h, uint32_t i, int l, const cand *sel, size_t k)
{
    size_t maxl = l ? h->m : h->m0;
    node_lock(h, i);
    _Atomic uint32_t *ll = links_of(h, i, l);
    uint32_t cnt = atomic_load_explicit(ll, memory_order_relaxed);
    if (cnt > maxl) cnt = (uint32_t)maxl;
    if (cnt == 0) {
        write_list(ll, sel, k);
        node_unlock(h, i);
        return;
    }
    cand buf[2 * (maxl + k) + 2];
    cand *c = buf, *out = buf + maxl + k + 1;
    size_t nc = 0;
    for (size_t j = 0; j < k; j++) c[nc++] = sel[j];
    const float *vi = vec_of(h, i);
    for (uint32_t j = 0; j < cnt; j++) {
        uint32_t x = atomic_load_explicit(ll + 1 + j, memory_order_relaxed);
        int dup = 0;
        for (size_t t = 0; t < k && !dup; t++) dup = sel[t].id == x;
        if (dup) continue;
        c[nc].id = x;
        c[nc++].d = h->df(vi, vec_of(h, x), h->dimp);
    }
    if (nc <= maxl) {
        write_list(ll, c, nc);
    } else {
        sort_cands(c, nc);
        write_list(ll, out, select_heuristic(h, c, nc, maxl, out));
    }
    node_unlock(h, i);
}

/* ===== Parameters, creation ============================================ */

void ny_hnsw_params_init(ny_hnsw_params *p, size_t dim, ny_metric metric)
{
    memset(p, 0, sizeof *p);
    p->dim = dim;
    p->metric = metric;
    p->m = 16;
    p->ef_construction = 200;
    p->capacity = 0;
    p->seed = 42;
}

static int check_params(const ny_hnsw_params *p)
{
    if (!p) return ny_error(NY_EINVAL, "hnsw: params is NULL");
    if (p->dim < 1 || p->dim > 65536) return ny_error(NY_EINVAL, "hnsw: dim must be 1..65536 (got %zu)", p->dim);
    if (p->metric != NY_L2 && p->metric != NY_DOT && p->metric != NY_COSINE)
        return ny_error(NY_EINVAL, "hnsw: unknown metric %d", (int)p->metric);
    if (p->m < 2 || p->m > 512) return ny_error(NY_EINVAL, "hnsw: m must be 2..512 (got %zu)", p->m);
    if (p->ef_construction < 1 || p->ef_construction > 100000)
        return ny_error(NY_EINVAL, "hnsw: ef_construction must be 1..100000 (got %zu)", p->ef_construction);
    return NY_OK;
}

int ny_hnsw_new(const ny_hnsw_params *p, ny_hnsw **out)
{
    if (!out) return ny_error(NY_EINVAL, "hnsw: out is NULL");
    *out = NULL;
    int rc = check_params(p);
    if (rc) return rc;
    ny_hnsw *h = calloc(1, sizeof *h);
    if (!h) return ny_error(NY_ENOMEM, "hnsw: out of memory");
    h->dim = p->dim;
    h->dimp = (p->dim + 15) & ~(size_t)15;
    h->row_bytes = h->dimp * sizeof(float);
    h->metric = p->metric;
    h->m = p->m;
    h->m0 = 2 * p->m;
    h->efc = NY_MAX(p->ef_construction, p->m);
    h->seed = p->seed;
    h->rng = p->seed;
    h->mult = 1.0 / log((double)p->m);
    h->stride0 = (uint32_t)(1 + h->m0);
    h->strideu = (uint32_t)(1 + h->m);
    h->ops = pick_ops(p->metric);
    h->df = h->ops->dist;
    h->alpha = p->metric == NY_DOT ? 1.0f : 1.15f;
    size_t per_node = h->row_bytes + h->stride0 * 4u + 10;
    size_t nmax = RESERVE_BUDGET / per_node;
    if (p->capacity > nmax / 2) nmax = p->capacity * 2;
    if (nmax > MAX_NODES) nmax = MAX_NODES;
    if (nmax < 1024) nmax = 1024;
    h->nmax = nmax;
    size_t upper_words = nmax * h->strideu * 4 / (h->m - 1) + (1u << 20);
    if (upper_words > ((size_t)1 << 32) - 1) upper_words = ((size_t)1 << 32) - 1;
    pthread_mutex_init(&h->grow_mu, NULL);
    pthread_mutex_init(&h->ep_mu, NULL);
    pthread_rwlock_init(&h->rw, NULL);
    atomic_init(&h->entry, EP_PACK(0, NONE32));
    if ((rc = vreg_init(&h->r_vec, nmax * h->row_bytes)) || (rc = vreg_init(&h->r_link0, nmax * h->stride0 * 4u)) ||
        (rc = vreg_init(&h->r_level, nmax)) || (rc = vreg_init(&h->r_flags, nmax)) ||
        (rc = vreg_init(&h->r_uoff, nmax * 4u)) || (rc = vreg_init(&h->r_upper, upper_words * 4u)) ||
        (rc = vreg_init(&h->r_i2e, nmax * 4u)) || (rc = vreg_init(&h->r_e2i, ((size_t)1 << 32) * 4u))) {
        ny_hnsw_free(h);
        return rc;
    }
    h->vecs = (float *)h->r_vec.base;
    h->link0 = (_Atomic uint32_t *)h->r_link0.base;
    h->level = (uint8_t *)h->r_level.base;
    h->flags = (_Atomic uint8_t *)h->r_flags.base;
    h->uoff = (uint32_t *)h->r_uoff.base;
    h->upper = (_Atomic uint32_t *)h->r_upper.base;
    h->i2e = (uint32_t *)h->r_i2e.base;
    h->e2i = (_Atomic uint32_t *)h->r_e2i.base;
    *out = h;
    return NY_OK;
}

void ny_hnsw_free(ny_hnsw *h)
{
    if (!h) return;
    ny_hnsw_q_free(atomic_load(&h->qstate));
    vreg_free(&h->r_vec);
    vreg_free(&h->r_link0);
    vreg_free(&h->r_level);
    vreg_free(&h->r_flags);
    vreg_free(&h->r_uoff);
    vreg_free(&h->r_upper);
    vreg_free(&h->r_i2e);
    vreg_free(&h->r_e2i);
    ny_hnsw_disk_free(h->disk);
    free(h->freel);
    pthread_mutex_destroy(&h->grow_mu);
    pthread_mutex_destroy(&h->ep_mu);
    pthread_rwlock_destroy(&h->rw);
    free(h);
}

size_t ny_hnsw_node_count(const ny_hnsw *h)
{
    return atomic_load(&h->n_nodes);
}

/* ===== Node allocation ================================================= */

static int draw_level(ny_hnsw *h)
{
    /* splitmix64 on a counter: deterministic for a given insertion order. */
    uint64_t z = (h->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = ((double)(z >> 11) + 0.5) / 9007199254740992.0;
    double lv = -log(u) * h->mult;
    return lv > MAX_LEVEL ? MAX_LEVEL : (int)lv;
}

/* Commits the per-node arrays for n nodes.  grow_mu held. */
static int commit_nodes(ny_hnsw *h, size_t n)
{
    int rc;
    if (n > h->nmax)
        return ny_error(NY_EFULL, "hnsw: index capacity exhausted (%zu vectors; pass a larger capacity hint)", h->nmax);
    if ((rc = vreg_commit(&h->r_vec, n * h->row_bytes)) || (rc = vreg_commit(&h->r_link0, n * h->stride0 * 4u)) ||
        (rc = vreg_commit(&h->r_level, n)) || (rc = vreg_commit(&h->r_flags, n)) ||
        (rc = vreg_commit(&h->r_uoff, n * 4u)) || (rc = vreg_commit(&h->r_i2e, n * 4u)))
        return rc;
    return NY_OK;
}

static int commit_upper(ny_hnsw *h, size_t words)
{
    return vreg_commit(&h->r_upper, words * 4u);
}

static int commit_e2i(ny_hnsw *h, uint32_t ext)
{
    size_t need = (size_t)ext + 1;
    if (need <= atomic_load_explicit(&h->e2i_n, memory_order_acquire)) return NY_OK;
    int rc = vreg_commit(&h->r_e2i, need * 4u);
    if (rc) return rc;
    atomic_store_explicit(&h->e2i_n, h->r_e2i.committed / 4u, memory_order_release);
    return NY_OK;
}

/* Allocates an internal node (recycled or new) with its level and empty
 * lists, flagged USED.  Commits e2i for ext. */
static int alloc_node(ny_hnsw *h, uint32_t ext, uint32_t *out)
{
    pthread_mutex_lock(&h->grow_mu);
    int rc = commit_e2i(h, ext);
    if (rc) goto done;
    uint32_t i;
    if (h->free_n) {
        i = h->freel[--h->free_n];
    } else {
        size_t n = atomic_load_explicit(&h->n_nodes, memory_order_relaxed);
        if ((rc = commit_nodes(h, n + 1))) goto done;
        i = (uint32_t)n;
        int lv = draw_level(h);
        if (lv > 0) {
            size_t words = (size_t)lv * h->strideu;
            if ((rc = commit_upper(h, h->upper_used + words))) goto done;
            h->uoff[i] = (uint32_t)h->upper_used;
            h->upper_used += words;
        }
        h->level[i] = (uint8_t)lv;
        atomic_store_explicit(&h->n_nodes, n + 1, memory_order_release);
    }
    for (int l = 0; l <= h->level[i]; l++) st_rel(links_of(h, i, l), 0);
    h->i2e[i] = ext;
    atomic_store_explicit(&h->flags[i], NF_USED, memory_order_release);
    *out = i;
done:
    pthread_mutex_unlock(&h->grow_mu);
    return rc;
}

static void release_node(ny_hnsw *h, uint32_t i)
{
    pthread_mutex_lock(&h->grow_mu);
    atomic_store_explicit(&h->flags[i], 0, memory_order_release);
    h->i2e[i] = NONE32;
    if (h->free_n < h->free_cap || grow_buf((void **)&h->freel, &h->free_cap, h->free_n + 1, sizeof *h->freel) == NY_OK)
        h->freel[h->free_n++] = i;
    pthread_mutex_unlock(&h->grow_mu);
}

/* ===== Insert ========================================================== */

static int insert_node(ny_hnsw *h, scratch *s, uint32_t i)
{
    const float *v = vec_of(h, i);
    int lv = h->level[i];
    ny_dist_fn df = h->df;
    uint64_t e = atomic_load(&h->entry);
    /* A node that will raise the top level holds ep_mu for its whole
     * insertion (as hnswlib does): the top level cannot move meanwhile, so
     * the node is linked on every level that exists when it becomes the
     * entry point. */
    int raising = 0;
    if (EP_NODE(e) == NONE32 || lv > EP_LEVEL(e)) {
        pthread_mutex_lock(&h->ep_mu);
        e = atomic_load(&h->entry);
        if (EP_NODE(e) == NONE32) {
            atomic_store(&h->entry, EP_PACK(lv, i));
            pthread_mutex_unlock(&h->ep_mu);
            return NY_OK;
        }
        if (lv > EP_LEVEL(e)) raising = 1;
        else pthread_mutex_unlock(&h->ep_mu);
    }
    int rc = scratch_prepare(h, s, h->efc);
    if (rc) {
        if (raising) pthread_mutex_unlock(&h->ep_mu);
        return rc;
    }
    uint32_t ep = EP_NODE(e);
    int maxl = EP_LEVEL(e);
    float epd = df(v, vec_of(h, ep), h->dimp);
    for (int l = maxl; l > lv; l--) h->ops->greedy(h, v, &ep, &epd, l);
    cand out[h->m];
    for (int l = NY_MIN(lv, maxl); l >= 0; l--) {
        size_t n = h->ops->layer(h, s, v, ep, epd, h->efc, l);
        cand *pool = s->pool;
        size_t k = 0;
        /* pool is sorted; drop the EXP mark and the node itself. */
        for (size_t j = 0; j < n; j++) {
            pool[j].id &= ~EXP_BIT;
            if (pool[j].id != i) pool[k++] = pool[j];
        }
        n = k;
        if (n) {
            ep = pool[0].id;
            epd = pool[0].d;
        }
        k = select_heuristic(h, pool, n, h->m, out);
        set_own_list(h, i, l, out, k);
        for (size_t j = 0; j < k; j++) add_link(h, out[j].id, i, out[j].d, l);
    }
    if (raising) {
        atomic_store(&h->entry, EP_PACK(lv, i));
        pthread_mutex_unlock(&h->ep_mu);
    }
    return NY_OK;
}

static inline uint32_t e2i_get(const ny_hnsw *h, uint32_t ext)
{
    if ((size_t)ext >= atomic_load_explicit(&h->e2i_n, memory_order_acquire)) return 0;
    return atomic_load_explicit(&h->e2i[ext], memory_order_acquire);
}

/* 1 if internal+1 value v names a node that blocks inserting its id again
 * (live, or being inserted). */
static int blocks_reinsert(const ny_hnsw *h, uint32_t v)
{
    if (!v) return 0;
    uint8_t f = flags_of(h, v - 1);
    return (f & NF_USED) && !(f & NF_DEL);
}

static int add_locked(ny_hnsw *h, scratch *s, uint32_t id, const float *vec)
{
    if (blocks_reinsert(h, e2i_get(h, id))) return ny_error(NY_EEXIST, "hnsw: id %u already exists", id);
    uint32_t i;
    int rc = alloc_node(h, id, &i);
    if (rc) return rc;
    float *row = h->vecs + (size_t)i * h->dimp;
    memcpy(row, vec, h->dim * sizeof(float));
    memset(row + h->dim, 0, (h->dimp - h->dim) * sizeof(float));
    if (h->metric == NY_COSINE) ny_normalize(row, h->dim);
    struct ny_hnsw_qstate *qs = atomic_load_explicit(&h->qstate, memory_order_acquire);
    if (qs) ny_hnsw_q_on_add(qs, i, row);
    /* Claim the external id. */
    uint32_t cur = atomic_load(&h->e2i[id]);
    for (;;) {
        if (blocks_reinsert(h, cur)) {
            release_node(h, i);
            return ny_error(NY_EEXIST, "hnsw: id %u already exists", id);
        }
        if (atomic_compare_exchange_weak(&h->e2i[id], &cur, i + 1)) break;
    }
    rc = insert_node(h, s, i);
    if (rc) {
        /* The node may already be linked: keep it as a tombstone. */
        atomic_fetch_or(&h->flags[i], NF_DEL);
        atomic_fetch_add(&h->n_deleted, 1);
        return rc;
    }
    atomic_fetch_or_explicit(&h->flags[i], NF_LIVE, memory_order_release);
    atomic_fetch_add(&h->n_live, 1);
    size_t want = (size_t)id + 1, mx = atomic_load(&h->max_id);
    while (mx < want && !atomic_compare_exchange_weak(&h->max_id, &mx, want)) {}
    return NY_OK;
}

int ny_hnsw_add(ny_hnsw *h, uint32_t id, const float *vec)
{
    if (!h || !vec) return ny_error(NY_EINVAL, "hnsw_add: NULL argument");
    if (id == NONE32) return ny_error(NY_EINVAL, "hnsw_add: id %u is reserved", id);
    if (!ny_all_finite(vec, h->dim)) return ny_error(NY_EINVAL, "hnsw_add: vector %u has a NaN or infinite component", id);
    scratch *s = scratch_get();
    if (!s) return ny_error(NY_ENOMEM, "hnsw_add: out of memory");
    pthread_rwlock_rdlock(&h->rw);
    int rc = add_locked(h, s, id, vec);
    pthread_rwlock_unlock(&h->rw);
    scratch_put(s);
    return rc;
}

typedef struct batch_ctx {
    ny_hnsw *h;
    const uint32_t *ids;
    uint32_t first;
    const float *vecs;
    _Atomic int rc;
    _Atomic int failed_at_set;
    size_t failed_at;
    char msg[256];
} batch_ctx;

static void add_task(void *ctx, size_t i, int worker)
{
    (void)worker;
    batch_ctx *b = ctx;
    uint32_t id = b->ids ? b->ids[i] : b->first + (uint32_t)i;
    int rc = ny_hnsw_add(b->h, id, b->vecs + i * b->h->dim);
    if (rc) {
        int zero = 0;
        if (atomic_compare_exchange_strong(&b->failed_at_set, &zero, 1)) {
            b->failed_at = i;
            snprintf(b->msg, sizeof b->msg, "%s", ny_errmsg());
            atomic_store(&b->rc, rc);
        }
    }
}

int ny_hnsw_add_batch(ny_hnsw *h, const uint32_t *ids, uint32_t first_id, const float *vecs, size_t n, int threads)
{
    if (!h || (!vecs && n)) return ny_error(NY_EINVAL, "hnsw_add_batch: NULL argument");
    if (!ids && n && (uint64_t)first_id + n - 1 >= NONE32)
        return ny_error(NY_EINVAL, "hnsw_add_batch: ids %u + %zu overflow", first_id, n);
    batch_ctx b = {.h = h, .ids = ids, .first = first_id, .vecs = vecs};
    atomic_init(&b.rc, 0);
    atomic_init(&b.failed_at_set, 0);
    ny_parallel_for(n, 16, threads, add_task, &b);
    int rc = atomic_load(&b.rc);
    if (rc) return ny_error(rc, "hnsw_add_batch: vector %zu: %s", b.failed_at, b.msg);
    return NY_OK;
}

/* ===== Delete, lookups ================================================= */

int ny_hnsw_delete(ny_hnsw *h, uint32_t id)
{
    if (!h) return ny_error(NY_EINVAL, "hnsw_delete: NULL index");
    pthread_rwlock_rdlock(&h->rw);
    uint32_t v = e2i_get(h, id);
    int rc = NY_OK;
    if (!v) {
        rc = ny_error(NY_ENOTFOUND, "hnsw_delete: id %u not found", id);
    } else {
        uint32_t i = v - 1;
        uint8_t f = flags_of(h, i);
        for (;;) {
            if ((f & (NF_LIVE | NF_DEL)) != NF_LIVE) {
                rc = ny_error(NY_ENOTFOUND, "hnsw_delete: id %u not found", id);
                break;
            }
            if (atomic_compare_exchange_weak(&h->flags[i], &f, (uint8_t)(f | NF_DEL))) {
                atomic_fetch_sub(&h->n_live, 1);
                atomic_fetch_add(&h->n_deleted, 1);
                break;
            }
        }
    }
    pthread_rwlock_unlock(&h->rw);
    if (rc == NY_OK) {
        size_t del = atomic_load(&h->n_deleted), live = atomic_load(&h->n_live);
        /* Reclaiming is an optimisation: the delete itself is done even if
         * vacuum runs out of memory (tombstones then stay a while longer). */
        if (del >= 64 && del * 4 >= live) (void)ny_hnsw_vacuum(h);
    }
    return rc;
}

int ny_hnsw_contains(const ny_hnsw *h, uint32_t id)
{
    if (!h) return 0;
    uint32_t v = e2i_get(h, id);
    return v && is_live(h, v - 1);
}

int ny_hnsw_get_vector(const ny_hnsw *h, uint32_t id, float *out)
{
    if (!h || !out) return ny_error(NY_EINVAL, "hnsw_get_vector: NULL argument");
    int slot = rd_enter(h);
    uint32_t v = e2i_get(h, id);
    int rc = NY_OK;
    if (v && is_live(h, v - 1)) memcpy(out, vec_of(h, v - 1), h->dim * sizeof(float));
    else rc = ny_error(NY_ENOTFOUND, "hnsw_get_vector: id %u not found", id);
    rd_exit(h, slot);
    return rc;
}

/* ===== Search ========================================================== */

static void prepare_query(const ny_hnsw *h, scratch *s, const float *query)
{
    memcpy(s->q, query, h->dim * sizeof(float));
    memset(s->q + h->dim, 0, (h->dimp - h->dim) * sizeof(float));
    if (h->metric == NY_COSINE) ny_normalize(s->q, h->dim);
}

/* Allowed ids at or below which a bitmap-only filter is answered by a scan
 * of the allowed ids: 1/20 of the live vectors.  Measured on glove-100
 * (100k, M=16): the filtered graph search costs ~6x an unfiltered one at
 * 10% allowed and ~40x at 1%, while scanning 5k allowed ids costs about
 * as much as the 10% graph search and returns exact results. */
static int selective_bitmap(const ny_hnsw *h, const ny_filter *f)
{
    size_t live = atomic_load(&h->n_live);
    size_t limit = live / 20;
    size_t nbits = f->nbits, mx = atomic_load(&h->max_id);
    if (nbits > mx) nbits = mx;
    size_t words = nbits / 64, cnt = 0;
    for (size_t w = 0; w < words; w++) {
        cnt += (size_t)__builtin_popcountll(f->bitmap[w]);
        if (cnt > limit) return 0;
    }
    if (nbits % 64) cnt += (size_t)__builtin_popcountll(f->bitmap[words] & ((1ull << (nbits % 64)) - 1));
    return cnt <= limit;
}

/* Exact top-k over the ids set in a bitmap filter. */
static int scan_bitmap(const ny_hnsw *h, scratch *s, const float *q, size_t k, const ny_filter *f, uint32_t *ids,
                       float *dists, int *nout)
{
    int rc = GROW(s, res, k + 1);
    if (rc) return rc;
    size_t nbits = f->nbits, mx = atomic_load(&h->max_id), n = 0;
    if (nbits > mx) nbits = mx;
    for (size_t w = 0; w * 64 < nbits; w++) {
        uint64_t bits = f->bitmap[w];
        while (bits) {
            size_t ext = w * 64 + (size_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (ext >= nbits) break;
            uint32_t v = e2i_get(h, (uint32_t)ext);
            if (!v || !is_live(h, v - 1)) continue;
            float d = h->df(q, vec_of(h, v - 1), h->dimp);
            if (n < k || d < s->res[n - 1].d) pool_insert(s->res, &n, k, d, v - 1);
        }
    }
    for (size_t j = 0; j < n; j++) {
        ids[j] = h->i2e[s->res[j].id];
        if (dists) dists[j] = s->res[j].d;
    }
    *nout = (int)n;
    return NY_OK;
}

int ny_hnsw_search(const ny_hnsw *h, const float *query, size_t k, size_t ef, const ny_filter *filter, uint32_t *ids,
                   float *dists)
{
    if (!h || !query || (k && !ids)) return ny_error(NY_EINVAL, "hnsw_search: NULL argument");
    if (!ny_all_finite(query, h->dim)) return ny_error(NY_EINVAL, "hnsw_search: query has a NaN or infinite component");
    if (k == 0) return 0;
    size_t nn = atomic_load(&h->n_nodes);
    if (nn == 0) return 0;
    if (ef == 0) ef = DEFAULT_EF;
    if (ef < k) ef = k;
    if (k > nn) k = nn;
    if (ef > nn) ef = nn;
    scratch *s = scratch_get();
    if (!s) return ny_error(NY_ENOMEM, "hnsw_search: out of memory");
    int rc = scratch_prepare(h, s, ef);
    if (rc) {
        scratch_put(s);
        return rc;
    }
    int slot = rd_enter(h);
    int nout = 0;
    uint64_t e = atomic_load(&h->entry);
    if (EP_NODE(e) != NONE32 && filter && filter->bitmap && !filter->allow && selective_bitmap(h, filter)) {
        /* A very selective bitmap: a graph search would walk most of the
         * graph to find ef allowed nodes; scanning the allowed ids is
         * cheaper and exact. */
        prepare_query(h, s, query);
        rc = scan_bitmap(h, s, s->q, k, filter, ids, dists, &nout);
    } else if (EP_NODE(e) != NONE32) {
        ny_dist_fn df = h->df;
        prepare_query(h, s, query);
        const float *q = s->q;
        uint32_t ep = EP_NODE(e);
        float epd = df(q, vec_of(h, ep), h->dimp);
        for (int l = EP_LEVEL(e); l > 0; l--) h->ops->greedy(h, q, &ep, &epd, l);
        if (!filter && atomic_load(&h->n_deleted) == 0) {
            size_t n = h->ops->layer(h, s, q, ep, epd, ef, 0);
            for (size_t j = 0; j < n && (size_t)nout < k; j++) {
                uint32_t x = s->pool[j].id & ~EXP_BIT;
                if (!is_live(h, x)) continue;
                ids[nout] = h->i2e[x];
                if (dists) dists[nout] = s->pool[j].d;
                nout++;
            }
        } else {
            size_t nres = 0;
            rc = h->ops->filtered(h, s, q, ep, epd, ef, filter, &nres);
            for (size_t j = 0; rc == NY_OK && j < nres && (size_t)nout < k; j++) {
                ids[nout] = h->i2e[s->res[j].id];
                if (dists) dists[nout] = s->res[j].d;
                nout++;
            }
        }
    }
    rd_exit(h, slot);
    scratch_put(s);
    return rc ? rc : nout;
}

/* Shared start and end of the exact scans: this thread's scratch with the
 * prepared query and a k + 1 result pool, inside a reader section; then
 * the pool's n results copied out as external ids. */
static int exact_begin(const ny_hnsw *h, const float *query, size_t k, const char *what, scratch **sp, int *slot)
{
    scratch *s = scratch_get();
    if (!s) return ny_error(NY_ENOMEM, "%s: out of memory", what);
    int rc;
    if ((rc = GROW(s, q, h->dimp + 16)) || (rc = GROW(s, res, k + 1))) {
        scratch_put(s);
        return rc;
    }
    *slot = rd_enter(h);
    prepare_query(h, s, query);
    *sp = s;
    return NY_OK;
}

static int exact_end(const ny_hnsw *h, scratch *s, int slot, size_t n, uint32_t *ids, float *dists)
{
    for (size_t j = 0; j < n; j++) {
        ids[j] = h->i2e[s->res[j].id];
        if (dists) dists[j] = s->res[j].d;
    }
    rd_exit(h, slot);
    scratch_put(s);
    return (int)n;
}

int ny_hnsw_search_exact(const ny_hnsw *h, const float *query, size_t k, const ny_filter *filter, uint32_t *ids,
                         float *dists)
{
    if (!h || !query || (k && !ids)) return ny_error(NY_EINVAL, "hnsw_search_exact: NULL argument");
    if (!ny_all_finite(query, h->dim))
        return ny_error(NY_EINVAL, "hnsw_search_exact: query has a NaN or infinite component");
    size_t nn = atomic_load(&h->n_nodes);
    if (k == 0 || nn == 0) return 0;
    if (k > nn) k = nn;
    scratch *s;
    int slot, rc = exact_begin(h, query, k, "hnsw_search_exact", &s, &slot);
    if (rc != NY_OK) return rc;
    ny_dist_fn df = h->df;
    size_t n = 0;
    for (size_t i = 0; i < nn; i++) {
        if (!allowed(h, (uint32_t)i, filter)) continue;
        if (i + 4 < nn) prefetch_row(h, (uint32_t)(i + 4));
        float d = df(s->q, vec_of(h, (uint32_t)i), h->dimp);
        if (n < k || d < s->res[n - 1].d) pool_insert(s->res, &n, k, d, (uint32_t)i);
    }
    return exact_end(h, s, slot, n, ids, dists);
}

typedef struct sbatch_ctx {
    const ny_hnsw *h;
    const float *q;
    size_t k, ef;
    const ny_filter *f;
    uint32_t *ids;
    float *dists;
    _Atomic int rc;
    _Atomic int err_set;
    char msg[256];
} sbatch_ctx;

static void search_task(void *ctx, size_t i, int worker)
{
    (void)worker;
    sbatch_ctx *b = ctx;
    uint32_t *ids = b->ids + i * b->k;
    float *d = b->dists ? b->dists + i * b->k : NULL;
    int n = ny_hnsw_search(b->h, b->q + i * b->h->dim, b->k, b->ef, b->f, ids, d);
    if (n < 0) {
        int zero = 0;
        if (atomic_compare_exchange_strong(&b->err_set, &zero, 1)) {
            snprintf(b->msg, sizeof b->msg, "query %zu: %s", i, ny_errmsg());
            atomic_store(&b->rc, n);
        }
        n = 0;
    }
    for (size_t j = (size_t)n; j < b->k; j++) {
        ids[j] = NONE32;
        if (d) d[j] = INFINITY;
    }
}

int ny_hnsw_search_batch(const ny_hnsw *h, const float *queries, size_t nq, size_t k, size_t ef,
                         const ny_filter *filter, int threads, uint32_t *ids, float *dists)
{
    if (!h || (nq && k && (!queries || !ids))) return ny_error(NY_EINVAL, "hnsw_search_batch: NULL argument");
    if (!nq || !k) return NY_OK;
    sbatch_ctx b = {.h = h, .q = queries, .k = k, .ef = ef, .f = filter, .ids = ids, .dists = dists};
    atomic_init(&b.rc, 0);
    atomic_init(&b.err_set, 0);
    ny_parallel_for(nq, 4, threads, search_task, &b);
    int rc = atomic_load(&b.rc);
    if (rc) return ny_error(rc, "hnsw_search_batch: %s", b.msg);
    return NY_OK;
}

/* ===== Vacuum ========================================================== */

typedef struct vac_ctx {
    ny_hnsw *h;
    _Atomic int rc;
} vac_ctx;

static inline int is_tomb(const ny_hnsw *h, uint32_t x)
{
    return (flags_of(h, x) & (NF_USED | NF_DEL)) == (NF_USED | NF_DEL);
}

/* Rewrites node n's list at level l without tombstones: the live links and
 * the live neighbours of its tombstone neighbours compete under the
 * selection heuristic. */
static int repair_list(ny_hnsw *h, scratch *s, uint32_t n, int l)
{
    size_t maxl = l ? h->m : h->m0;
    _Atomic uint32_t *ll = links_of(h, n, l);
    uint32_t cnt = ld_acq(ll);
    if (cnt > maxl) cnt = (uint32_t)maxl;
    int any = 0;
    for (uint32_t j = 0; j < cnt && !any; j++) any = is_tomb(h, ld_acq(ll + 1 + j));
    if (!any) return NY_OK;
    size_t capc = 3 * maxl + 1;
    int rc;
    if ((rc = GROW(s, sel, capc + maxl))) return rc;
    cand *c = s->sel, *out = s->sel + capc;
    const float *vn = vec_of(h, n);
    size_t nc = 0;
    vis_new(s);
    vis_test_set(s, n);
    uint32_t tombs[maxl];
    size_t nt = 0;
    for (uint32_t j = 0; j < cnt; j++) {
        uint32_t x = ld_acq(ll + 1 + j);
        if (vis_test_set(s, x)) continue;
        if (is_tomb(h, x)) {
            tombs[nt++] = x;
            continue;
        }
        c[nc].id = x;
        c[nc++].d = h->df(vn, vec_of(h, x), h->dimp);
    }
    /* Round-robin over the tombstones' lists so each contributes. */
    size_t budget = 2 * maxl;
    for (uint32_t j = 0; budget && nt; j++) {
        int took = 0;
        for (size_t t = 0; t < nt && budget; t++) {
            const _Atomic uint32_t *tl = links_of(h, tombs[t], l);
            uint32_t tc = ld_acq(tl);
            if (tc > maxl) tc = (uint32_t)maxl;
            if (j >= tc) continue;
            took = 1;
            uint32_t y = ld_acq(tl + 1 + j);
            if (vis_test_set(s, y) || is_tomb(h, y) || h->level[y] < l || !(flags_of(h, y) & NF_USED)) continue;
            c[nc].id = y;
            c[nc++].d = h->df(vn, vec_of(h, y), h->dimp);
            budget--;
        }
        if (!took) break;
    }
    sort_cands(c, nc);
    size_t k = select_heuristic(h, c, nc, maxl, out);
    /* Keep the node's degree: a pruned list would have fewer links than
     * the one the build produced, and recall at small ef would drop.  Top
     * up with the nearest candidates the heuristic left out. */
    for (size_t j = 0; j < nc && k < cnt; j++) {
        int taken = 0;
        for (size_t t = 0; t < k && !taken; t++) taken = out[t].id == c[j].id;
        if (!taken) out[k++] = c[j];
    }
    write_list(ll, out, k);
    return NY_OK;
}

static void vac_task(void *ctx, size_t i, int worker)
{
    (void)worker;
    vac_ctx *v = ctx;
    ny_hnsw *h = v->h;
    uint8_t f = flags_of(h, (uint32_t)i);
    if ((f & (NF_USED | NF_DEL)) != NF_USED) return;
    scratch *s = scratch_get();
    if (!s) {
        atomic_store(&v->rc, NY_ENOMEM);
        return;
    }
    int rc = vis_reserve(s, atomic_load(&h->n_nodes) + 64);
    for (int l = 0; rc == NY_OK && l <= h->level[i]; l++) rc = repair_list(h, s, (uint32_t)i, l);
    if (rc) atomic_store(&v->rc, rc);
    scratch_put(s);
}

int ny_hnsw_vacuum(ny_hnsw *h)
{
    if (!h) return ny_error(NY_EINVAL, "hnsw_vacuum: NULL index");
    pthread_rwlock_wrlock(&h->rw);
    size_t nn = atomic_load(&h->n_nodes);
    if (atomic_load(&h->n_deleted) == 0) {
        pthread_rwlock_unlock(&h->rw);
        return NY_OK;
    }
    vac_ctx v = {.h = h};
    atomic_init(&v.rc, 0);
    ny_parallel_for(nn, 256, 0, vac_task, &v);
    int rc = atomic_load(&v.rc);
    if (rc) {
        pthread_rwlock_unlock(&h->rw);
        return ny_error(rc, "hnsw_vacuum: out of memory while repairing links");
    }
    /* A new entry point if the old one is a tombstone. */
    uint64_t e = atomic_load(&h->entry);
    if (EP_NODE(e) != NONE32 && is_tomb(h, EP_NODE(e))) {
        uint32_t best = NONE32;
        int bl = -1;
        for (size_t i = 0; i < nn; i++) {
            uint8_t f = flags_of(h, (uint32_t)i);
            if ((f & (NF_USED | NF_DEL)) == NF_USED && h->level[i] > bl) {
                bl = h->level[i];
                best = (uint32_t)i;
            }
        }
        atomic_store(&h->entry, best == NONE32 ? EP_PACK(0, NONE32) : EP_PACK(bl, best));
    }
    grace_period(h);
    size_t freed = 0;
    pthread_mutex_lock(&h->grow_mu);
    for (size_t i = 0; i < nn; i++) {
        if (!is_tomb(h, (uint32_t)i)) continue;
        uint32_t ext = h->i2e[i];
        uint32_t want = (uint32_t)i + 1;
        if (ext != NONE32 && (size_t)ext < atomic_load(&h->e2i_n))
            atomic_compare_exchange_strong(&h->e2i[ext], &want, 0);
        h->i2e[i] = NONE32;
        atomic_store_explicit(&h->flags[i], 0, memory_order_release);
        if (h->free_n < h->free_cap ||
            grow_buf((void **)&h->freel, &h->free_cap, h->free_n + 1, sizeof *h->freel) == NY_OK)
            h->freel[h->free_n++] = (uint32_t)i;
        freed++;
    }
    pthread_mutex_unlock(&h->grow_mu);
    atomic_fetch_sub(&h->n_deleted, freed);
    pthread_rwlock_unlock(&h->rw);
    return NY_OK;
}

/* ===== Stats and validation ============================================ */

void ny_hnsw_get_stats(const ny_hnsw *h, ny_hnsw_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!h) return;
    ny_hnsw *hm = (ny_hnsw *)h;
    pthread_mutex_lock(&hm->grow_mu);
    st->count = atomic_load(&h->n_live);
    st->deleted = atomic_load(&h->n_deleted);
    st->capacity = h->r_vec.committed / h->row_bytes;
    st->max_id = atomic_load(&h->max_id);
    st->dim = h->dim;
    st->metric = h->metric;
    st->m = h->m;
    st->ef_construction = h->efc;
    uint64_t e = atomic_load(&h->entry);
    st->max_level = EP_NODE(e) == NONE32 ? -1 : EP_LEVEL(e);
    st->bytes_vectors = h->r_vec.committed;
    st->bytes_graph = h->r_link0.committed + h->r_upper.committed + h->r_uoff.committed;
    st->bytes_other = h->r_level.committed + h->r_flags.committed + h->r_i2e.committed + h->r_e2i.committed +
                      h->free_cap * sizeof(uint32_t) + sizeof *h;
    pthread_mutex_unlock(&hm->grow_mu);
}

int ny_hnsw_validate(const ny_hnsw *h)
{
    if (!h) return ny_error(NY_EINVAL, "hnsw_validate: NULL index");
    size_t nn = atomic_load(&h->n_nodes);
    uint64_t e = atomic_load(&h->entry);
    size_t live = 0, dead = 0, used = 0;
    int maxlv = EP_LEVEL(e);
    uint8_t *seen = calloc(nn ? nn : 1, 1);
    if (!seen) return ny_error(NY_ENOMEM, "hnsw_validate: out of memory");
    int rc = NY_OK;
#define BAD(...) do { rc = ny_error(NY_ECORRUPT, __VA_ARGS__); goto out; } while (0)
    for (size_t i = 0; i < nn; i++) {
        if (h->level[i] > MAX_LEVEL) BAD("hnsw: node %zu has level %d", i, h->level[i]);
        if (h->level[i] > 0 && (size_t)h->uoff[i] + (size_t)h->level[i] * h->strideu > h->upper_used)
            BAD("hnsw: node %zu's upper lists lie outside the arena", i);
    }
    for (size_t i = 0; i < nn; i++) {
        uint8_t f = flags_of(h, (uint32_t)i);
        if (f & NF_LOCK) BAD("hnsw: node %zu is locked", i);
        if (!(f & NF_USED)) {
            if (f) BAD("hnsw: free node %zu has flags 0x%x", i, f);
            continue;
        }
        used++;
        if ((f & (NF_LIVE | NF_DEL)) == NF_LIVE) live++;
        else if (f & NF_DEL) dead++;
        else BAD("hnsw: node %zu is half-inserted", i);
        if (h->level[i] > maxlv) BAD("hnsw: node %zu has level %d above the top level %d", i, h->level[i], maxlv);
        uint32_t ext = h->i2e[i];
        if (ext == NONE32) BAD("hnsw: node %zu has no external id", i);
        if ((f & NF_DEL) == 0) {
            if ((size_t)ext >= atomic_load(&h->e2i_n) || atomic_load(&h->e2i[ext]) != i + 1)
                BAD("hnsw: id map disagrees for node %zu (id %u)", i, ext);
        }
        for (int l = 0; l <= h->level[i]; l++) {
            const _Atomic uint32_t *ll = links_of(h, (uint32_t)i, l);
            uint32_t cnt = ld_acq(ll), maxl = l ? (uint32_t)h->m : (uint32_t)h->m0;
            if (cnt > maxl) BAD("hnsw: node %zu level %d has %u links (max %u)", i, l, cnt, maxl);
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t x = ld_acq(ll + 1 + j);
                if (x >= nn) BAD("hnsw: node %zu level %d links to %u, beyond %zu nodes", i, l, x, nn);
                if (x == i) BAD("hnsw: node %zu links to itself at level %d", i, l);
                if (!(flags_of(h, x) & NF_USED)) BAD("hnsw: node %zu level %d links to free node %u", i, l, x);
                if (h->level[x] < l) BAD("hnsw: node %zu level %d links to %u of level %d", i, l, x, h->level[x]);
                if (seen[x]) BAD("hnsw: node %zu level %d links twice to %u", i, l, x);
                seen[x] = 1;
            }
            for (uint32_t j = 0; j < cnt; j++) seen[ld_acq(ll + 1 + j)] = 0;
        }
    }
    if (live != atomic_load(&h->n_live)) BAD("hnsw: %zu live nodes, counter says %zu", live, atomic_load(&h->n_live));
    if (dead != atomic_load(&h->n_deleted))
        BAD("hnsw: %zu deleted nodes, counter says %zu", dead, atomic_load(&h->n_deleted));
    if (used) {
        uint32_t ep = EP_NODE(e);
        if (ep == NONE32 || ep >= nn || !(flags_of(h, ep) & NF_USED)) BAD("hnsw: bad entry point %u", ep);
        if (h->level[ep] != maxlv) BAD("hnsw: entry point %u has level %d, top level is %d", ep, h->level[ep], maxlv);
    } else if (EP_NODE(e) != NONE32 && !(flags_of(h, EP_NODE(e)) & NF_USED) && nn) {
        BAD("hnsw: entry point %u is a free node", EP_NODE(e));
    }
#undef BAD
out:
    free(seen);
    return rc;
}

size_t ny_hnsw_reachable(const ny_hnsw *h)
{
    size_t nn = atomic_load(&h->n_nodes);
    uint64_t e = atomic_load(&h->entry);
    if (!nn || EP_NODE(e) == NONE32) return 0;
    uint8_t *seen = calloc(nn, 1);
    uint32_t *queue = malloc(nn * sizeof *queue);
    if (!seen || !queue) {
        free(seen);
        free(queue);
        return 0;
    }
    size_t head = 0, tail = 0, live = 0;
    queue[tail++] = EP_NODE(e);
    seen[EP_NODE(e)] = 1;
    while (head < tail) {
        uint32_t c = queue[head++];
        if (is_live(h, c)) live++;
        const _Atomic uint32_t *ll = links_of(h, c, 0);
        uint32_t cnt = ld_acq(ll);
        if (cnt > h->m0) cnt = (uint32_t)h->m0;
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t x = ld_acq(ll + 1 + j);
            if (x < nn && !seen[x]) {
                seen[x] = 1;
                queue[tail++] = x;
            }
        }
    }
    free(seen);
    free(queue);
    return live;
}

/* ===== Save / load ===================================================== */

#define FILE_MAGIC "NYHNSW\x00\x01"
#define FILE_VERSION 1u

enum { SEC_VECS = 1, SEC_LINK0, SEC_LEVEL, SEC_FLAGS, SEC_UOFF, SEC_UPPER, SEC_I2E, SEC_COUNT = SEC_I2E };

typedef struct file_header {
    char magic[8];
    uint32_t version, header_size;
    uint64_t dim, metric, m, efc, seed;
    uint64_t n_nodes, max_id, upper_used, entry, rng;
    uint64_t n_sections, file_size;
    uint64_t reserved[4];
    uint64_t checksum; /* of all preceding header bytes */
} file_header;

typedef struct sec_header {
    uint32_t tag, pad;
    uint64_t len;
    uint64_t checksum; /* of the data */
    uint64_t hdr_checksum; /* of tag, pad, len, checksum */
} sec_header;

static void sections(const ny_hnsw *h, size_t nn, size_t uw, const void *ptr[SEC_COUNT + 1], size_t len[SEC_COUNT + 1])
{
    ptr[SEC_VECS] = h->vecs, len[SEC_VECS] = nn * h->row_bytes;
    ptr[SEC_LINK0] = (const void *)h->link0, len[SEC_LINK0] = nn * h->stride0 * 4u;
    ptr[SEC_LEVEL] = h->level, len[SEC_LEVEL] = nn;
    ptr[SEC_FLAGS] = (const void *)h->flags, len[SEC_FLAGS] = nn;
    ptr[SEC_UOFF] = h->uoff, len[SEC_UOFF] = nn * 4u;
    ptr[SEC_UPPER] = (const void *)h->upper, len[SEC_UPPER] = uw * 4u;
    ptr[SEC_I2E] = h->i2e, len[SEC_I2E] = nn * 4u;
}

static int write_all(int fd, const void *p, size_t n, const char *path)
{
    const char *c = p;
    while (n) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t w = write(fd, c, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return ny_error_errno(ny_rc_from_errno(errno) == NY_EFULL ? NY_EFULL : NY_EIO, "hnsw_save: write %s", path);
        }
        c += w;
        n -= (size_t)w;
    }
    return NY_OK;
}

int ny_hnsw_save(ny_hnsw *h, const char *path)
{
    if (!h || !path) return ny_error(NY_EINVAL, "hnsw_save: NULL argument");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) return ny_error(NY_ENOMEM, "hnsw_save: out of memory");
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    pthread_rwlock_wrlock(&h->rw);
    size_t nn = atomic_load(&h->n_nodes);
    const void *ptr[SEC_COUNT + 1];
    size_t len[SEC_COUNT + 1];
    sections(h, nn, h->upper_used, ptr, len);
    file_header fh;
    memset(&fh, 0, sizeof fh);
    memcpy(fh.magic, FILE_MAGIC, 8);
    fh.version = FILE_VERSION;
    fh.header_size = sizeof fh;
    fh.dim = h->dim;
    fh.metric = (uint64_t)h->metric;
    fh.m = h->m;
    fh.efc = h->efc;
    fh.seed = h->seed;
    fh.n_nodes = nn;
    fh.max_id = atomic_load(&h->max_id);
    fh.upper_used = h->upper_used;
    fh.entry = atomic_load(&h->entry);
    fh.rng = h->rng;
    fh.n_sections = SEC_COUNT;
    fh.file_size = sizeof fh;
    for (int s = 1; s <= SEC_COUNT; s++) fh.file_size += sizeof(sec_header) + len[s];
    fh.checksum = ny_hash64(&fh, offsetof(file_header, checksum));
    int rc = NY_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = ny_error_errno(ny_rc_from_errno(errno), "hnsw_save: cannot create %s", tmp);
        goto out;
    }
    rc = write_all(fd, &fh, sizeof fh, tmp);
    for (int s = 1; rc == NY_OK && s <= SEC_COUNT; s++) {
        sec_header sh = {.tag = (uint32_t)s, .len = len[s], .checksum = ny_hash64(ptr[s], len[s])};
        sh.hdr_checksum = ny_hash64(&sh, offsetof(sec_header, hdr_checksum));
        rc = write_all(fd, &sh, sizeof sh, tmp);
        if (rc == NY_OK) rc = write_all(fd, ptr[s], len[s], tmp);
    }
    if (rc == NY_OK && fsync(fd) != 0) rc = ny_error_errno(NY_EIO, "hnsw_save: fsync %s", tmp);
    if (close(fd) != 0 && rc == NY_OK) rc = ny_error_errno(NY_EIO, "hnsw_save: close %s", tmp);
    if (rc == NY_OK && rename(tmp, path) != 0) rc = ny_error_errno(ny_rc_from_errno(errno), "hnsw_save: rename to %s", path);
    if (rc != NY_OK) {
        unlink(tmp);
    } else {
        rc = ny_hnsw_q_save(h, path);
        /* Make the rename durable. */
        char *dir = strdup(path);
        if (dir) {
            char *slash = strrchr(dir, '/');
            const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
            int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
out:
    pthread_rwlock_unlock(&h->rw);
    free(tmp);
    return rc;
}

static int read_all(int fd, void *p, size_t n, const char *path, const char *what)
{
    char *c = p;
    while (n) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        ssize_t r = read(fd, c, chunk);
        if (r < 0) {
            if (errno == EINTR) continue;
            return ny_error_errno(NY_EIO, "hnsw_load: read %s", path);
        }
        if (r == 0) return ny_error(NY_ECORRUPT, "hnsw_load: %s: truncated file (in %s)", path, what);
        c += r;
        n -= (size_t)r;
    }
    return NY_OK;
}

static const char *sec_name(int s)
{
    static const char *names[] = {"?", "vectors", "level-0 links", "levels", "flags", "upper offsets", "upper links", "ids"};
    return s >= 1 && s <= SEC_COUNT ? names[s] : "?";
}

/* Reads section s of n bytes into dst in chunks, hashing as it goes, and
 * moves each chunk to disk region `region` (see ny_hnsw_load_ex).  The
 * pages read from the index file are dropped from the page cache as well. */
static int read_section_to_disk(ny_hnsw *h, int fd, void *dst, size_t n, size_t chunk, const char *dir, int region,
                                const char *path, const char *what, uint64_t *hash)
{
    ny_hasher hs;
    int rc = ny_hasher_init(&hs);
    if (rc) return rc;
    off_t start = lseek(fd, 0, SEEK_CUR);
    size_t done = 0;
    while (rc == NY_OK && done < n) {
        size_t c = n - done < chunk ? n - done : chunk;
        rc = read_all(fd, (char *)dst + done, c, path, what);
        if (rc) break;
        ny_hasher_update(&hs, (char *)dst + done, c);
        done += c;
        rc = ny_hnsw_disk_move(h, dir, region, done);
        if (start >= 0) posix_fadvise(fd, start, (off_t)done, POSIX_FADV_DONTNEED);
    }
    *hash = ny_hasher_final(&hs);
    return rc;
}

int ny_hnsw_load(const char *path, ny_hnsw **out) { return ny_hnsw_load_ex(path, NULL, out); }

int ny_hnsw_load_ex(const char *path, const ny_hnsw_load_opts *opts, ny_hnsw **out)
{
    if (!path || !out) return ny_error(NY_EINVAL, "hnsw_load: NULL argument");
    *out = NULL;
    int to_vec = opts && opts->vectors_on_disk, to_graph = opts && opts->graph_on_disk;
    const char *ddir = opts ? opts->disk_dir : NULL;
    size_t chunk = opts && opts->chunk_bytes ? opts->chunk_bytes : (32u << 20);
    if ((to_vec || to_graph) && !ddir)
        return ny_error(NY_EINVAL, "hnsw_load: vectors or graph on disk need a directory (disk_dir)");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "hnsw_load: cannot open %s", path);
    ny_hnsw *h = NULL;
    file_header fh;
    struct stat stt;
    int rc = fstat(fd, &stt) ? ny_error_errno(NY_EIO, "hnsw_load: stat %s", path) : NY_OK;
    if (rc == NY_OK && (size_t)stt.st_size < sizeof fh)
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: truncated file (%lld bytes, header needs %zu)", path,
                      (long long)stt.st_size, sizeof fh);
    if (rc == NY_OK) rc = read_all(fd, &fh, sizeof fh, path, "header");
    if (rc) goto fail;
    if (memcmp(fh.magic, FILE_MAGIC, 8) != 0) {
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s is not an HNSW index file (bad magic)", path);
        goto fail;
    }
    if (fh.checksum != ny_hash64(&fh, offsetof(file_header, checksum))) {
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: header checksum mismatch", path);
        goto fail;
    }
    if (fh.version != FILE_VERSION || fh.header_size != sizeof fh) {
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: unsupported version %u", path, fh.version);
        goto fail;
    }
    if (fh.file_size != (uint64_t)stt.st_size) {
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: file is %lld bytes, header says %llu (truncated or extended)", path,
                      (long long)stt.st_size, (unsigned long long)fh.file_size);
        goto fail;
    }
    ny_hnsw_params p;
    ny_hnsw_params_init(&p, fh.dim, (ny_metric)fh.metric);
    p.m = fh.m;
    p.ef_construction = fh.efc;
    p.seed = fh.seed;
    p.capacity = fh.n_nodes;
    if (fh.dim > 65536 || fh.metric > 2 || fh.m > 512 || fh.efc > 100000 || fh.n_nodes > MAX_NODES ||
        fh.n_sections != SEC_COUNT) {
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: header has impossible parameters", path);
        goto fail;
    }
    if ((rc = ny_hnsw_new(&p, &h))) {
        if (rc == NY_EINVAL) rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: bad parameters: %s", path, ny_errmsg());
        goto fail;
    }
    h->efc = fh.efc;
    size_t nn = fh.n_nodes;
    if (fh.upper_used > h->r_upper.reserved / 4) {
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: upper arena size out of range", path);
        goto fail;
    }
    if ((rc = commit_nodes(h, nn)) || (rc = commit_upper(h, fh.upper_used))) goto fail;
    const void *ptr[SEC_COUNT + 1];
    size_t len[SEC_COUNT + 1];
    sections(h, nn, fh.upper_used, ptr, len);
    for (int s = 1; s <= SEC_COUNT; s++) {
        sec_header sh;
        if ((rc = read_all(fd, &sh, sizeof sh, path, sec_name(s)))) goto fail;
        if (sh.hdr_checksum != ny_hash64(&sh, offsetof(sec_header, hdr_checksum)) || sh.tag != (uint32_t)s ||
            sh.len != len[s]) {
            rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: bad section header for %s", path, sec_name(s));
            goto fail;
        }
        int region = s == SEC_VECS && to_vec      ? NY_HNSW_DISK_VECS
                     : s == SEC_LINK0 && to_graph ? NY_HNSW_DISK_LINK0
                     : s == SEC_UPPER && to_graph ? NY_HNSW_DISK_UPPER
                                                  : -1;
        uint64_t hash;
        if (region >= 0) {
            rc = read_section_to_disk(h, fd, (void *)ptr[s], len[s], chunk, ddir, region, path, sec_name(s), &hash);
            if (rc) goto fail;
        } else {
            if ((rc = read_all(fd, (void *)ptr[s], len[s], path, sec_name(s)))) goto fail;
            hash = ny_hash64(ptr[s], len[s]);
        }
        if (hash != sh.checksum) {
            rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: checksum mismatch in %s", path, sec_name(s));
            goto fail;
        }
    }
    close(fd);
    fd = -1;
    /* Rebuild the counters, id map and free list; check every field. */
    h->upper_used = fh.upper_used;
    h->rng = fh.rng;
    atomic_store(&h->entry, fh.entry);
    atomic_store(&h->n_nodes, nn);
    atomic_store(&h->max_id, fh.max_id);
    size_t live = 0, dead = 0;
    for (size_t i = 0; i < nn; i++) {
        uint8_t f = atomic_load(&h->flags[i]);
        if (h->level[i] > MAX_LEVEL) {
            rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: node %zu has level %d", path, i, h->level[i]);
            goto fail;
        }
        if (!(f & NF_USED)) {
            if (f) goto badflags;
            if ((rc = grow_buf((void **)&h->freel, &h->free_cap, h->free_n + 1, sizeof *h->freel))) goto fail;
            h->freel[h->free_n++] = (uint32_t)i;
            continue;
        }
        if (f & ~(NF_USED | NF_LIVE | NF_DEL)) goto badflags;
        if (f & NF_DEL) {
            dead++;
        } else if (f & NF_LIVE) {
            live++;
            uint32_t ext = h->i2e[i];
            if (ext == NONE32 || ext >= fh.max_id) {
                rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: node %zu has id %u out of range", path, i, ext);
                goto fail;
            }
            if ((rc = commit_e2i(h, ext))) goto fail;
            if (atomic_load(&h->e2i[ext]) != 0) {
                rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: id %u appears twice", path, ext);
                goto fail;
            }
            atomic_store(&h->e2i[ext], (uint32_t)i + 1);
        } else {
            goto badflags;
        }
        continue;
    badflags:
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: node %zu has invalid flags 0x%x", path, i, f);
        goto fail;
    }
    /* Tombstones keep their id mapped unless a live node took it. */
    for (size_t i = 0; i < nn; i++) {
        if (!(atomic_load(&h->flags[i]) & NF_DEL)) continue;
        uint32_t ext = h->i2e[i];
        if (ext == NONE32 || ext >= fh.max_id) {
            rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: deleted node %zu has id %u out of range", path, i, ext);
            goto fail;
        }
        if ((rc = commit_e2i(h, ext))) goto fail;
        uint32_t zero = 0;
        atomic_compare_exchange_strong(&h->e2i[ext], &zero, (uint32_t)i + 1);
    }
    atomic_store(&h->n_live, live);
    atomic_store(&h->n_deleted, dead);
    uint64_t e = fh.entry;
    if (EP_NODE(e) != NONE32 && (EP_NODE(e) >= nn || EP_LEVEL(e) > MAX_LEVEL)) {
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: entry point out of range", path);
        goto fail;
    }
    if ((live || dead) && EP_NODE(e) == NONE32) {
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: missing entry point", path);
        goto fail;
    }
    if ((rc = ny_hnsw_validate(h))) {
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: %s", path, ny_errmsg());
        goto fail;
    }
    if ((rc = ny_hnsw_q_load(h, path))) goto fail;
    *out = h;
    return NY_OK;
fail:
    if (fd >= 0) close(fd);
    ny_hnsw_free(h);
    return rc;
}

int ny_hnsw_search_exact_ids(const ny_hnsw *h, const float *query, size_t k, const uint32_t *cand, size_t ncand,
                             const ny_filter *filter, uint32_t *ids, float *dists)
{
    if (!h || !query || (k && !ids) || (ncand && !cand))
        return ny_error(NY_EINVAL, "hnsw_search_exact_ids: NULL argument");
    if (!ny_all_finite(query, h->dim))
        return ny_error(NY_EINVAL, "hnsw_search_exact_ids: query has a NaN or infinite component");
    if (k == 0 || ncand == 0) return 0;
    if (k > ncand) k = ncand;
    scratch *s;
    int slot, rc = exact_begin(h, query, k, "hnsw_search_exact_ids", &s, &slot);
    if (rc != NY_OK) return rc;
    ny_dist_fn df = h->df;
    size_t n = 0;
    /* The filter (typically a payload re-check, dearer than a distance)
     * runs only for candidates that would enter the top k: about
     * k * ln(ncand / k) of them in random order instead of all.  Rows are
     * prefetched a few candidates ahead (they are scattered). */
    for (size_t j = 0; j < ncand; j++) {
        if (j + 4 < ncand) {
            uint32_t pv = e2i_get(h, cand[j + 4]);
            if (pv) prefetch_row(h, pv - 1);
        }
        uint32_t v = e2i_get(h, cand[j]);
        if (!v || !is_live(h, v - 1)) continue;
        float d = df(s->q, vec_of(h, v - 1), h->dimp);
        if ((n < k || d < s->res[n - 1].d) && filter_allows(filter, cand[j])) pool_insert(s->res, &n, k, d, v - 1);
    }
    return exact_end(h, s, slot, n, ids, dists);
}

/* ===== Internal view for src/index/hnsw_quant.c ======================== */

_Static_assert(NF_USED == NY_HNSW_F_USED && NF_LIVE == NY_HNSW_F_LIVE && NF_DEL == NY_HNSW_F_DEL, "flag bits");

void ny_hnsw_get_view(const ny_hnsw *h, ny_hnsw_view *v)
{
    v->dim = h->dim;
    v->dimp = h->dimp;
    v->metric = h->metric;
    v->nmax = h->nmax;
    v->vecs = h->vecs;
    v->link0 = h->link0;
    v->stride0 = h->stride0;
    v->upper = h->upper;
    v->uoff = h->uoff;
    v->strideu = h->strideu;
    v->level = h->level;
    v->flags = h->flags;
    v->i2e = h->i2e;
}

uint64_t ny_hnsw_entry(const ny_hnsw *h) { return atomic_load(&h->entry); }
int ny_hnsw_read_enter(const ny_hnsw *h) { return rd_enter(h); }
void ny_hnsw_read_exit(const ny_hnsw *h, int slot) { rd_exit(h, slot); }
void ny_hnsw_excl_lock(ny_hnsw *h) { pthread_rwlock_wrlock(&h->rw); }
void ny_hnsw_excl_unlock(ny_hnsw *h) { pthread_rwlock_unlock(&h->rw); }
void ny_hnsw_grace(ny_hnsw *h) { grace_period(h); }
struct ny_hnsw_qstate *ny_hnsw_qstate_get(const ny_hnsw *h)
{
    return atomic_load_explicit(&((ny_hnsw *)h)->qstate, memory_order_acquire);
}
void ny_hnsw_qstate_set(ny_hnsw *h, struct ny_hnsw_qstate *q) { atomic_store_explicit(&h->qstate, q, memory_order_release); }
struct ny_hnsw_disk *ny_hnsw_disk_get(const ny_hnsw *h) { return h->disk; }
void ny_hnsw_disk_set(ny_hnsw *h, struct ny_hnsw_disk *d) { h->disk = d; }
size_t ny_hnsw_upper_words(const ny_hnsw *h) { return h->upper_used; }
