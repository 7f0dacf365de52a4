/*
 * hnsw_quant.c -- quantized codes attached to an HNSW index, and the search
 * that walks the graph on them (see docs/quantization.md, "Search").
 *
 * The codes live in one anonymous mapping indexed by internal node number
 * (reserved for the index's whole node capacity, MAP_NORESERVE, so only
 * touched pages cost memory).  A node's code is written by the insert path
 * (ny_hnsw_q_on_add, called by hnsw.c after the float row and before the
 * node is linked), so a reader that reaches a node through a link sees its
 * code, as it sees its row.
 *
 * State.  struct ny_hnsw_qstate holds the configuration (Qdrant's
 * quantization_config) and, once trained, a `qtrained` (quantizer + codes).
 * Both are replaced only under the index's exclusive lock (no inserts
 * running), and the old ones are freed after a reader grace period, so a
 * search that loaded them inside a reader section can keep using them.
 *
 * Search.  Greedy descent on the upper levels and a beam search on level 0
 * (candidate min-heap, result max-heap bounded by ef, hnswlib's stopping
 * rule; only live, filter-allowed nodes enter the results), every distance
 * estimated on codes with ny_quant_dist_batch over the unvisited neighbours
 * of the expanded node.  Rescoring re-ranks the best max(k, oversampling*k)
 * results by exact float distance (ny_quant_rescore).
 *
 * Persistence: path + ".quant" next to the index file:
 *   "NYHQUAN1", u32 version, u32 trained, u32 always_ram, u32 json_len,
 *   json (config), u64 qlen, serialized quantizer (qlen bytes, when
 *   trained), u64 ny_hash64 of every preceding byte.
 * The codes are not stored: they are re-encoded from the vectors on load
 * (deterministic given the quantizer).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "index/hnsw.h"
#include "quant/quant.h"

#define QFILE_MAGIC "NYHQUAN1"
#define QFILE_VERSION 1u
#define TRAIN_SAMPLE 100000
/* The training sample is copied out of the index: at most this many bytes
 * of it (but at least TRAIN_SAMPLE_MIN vectors), so that training does not
 * need as much memory as the vectors when they are on disk. */
#define TRAIN_SAMPLE_BYTES ((size_t)32 << 20)
#define TRAIN_SAMPLE_MIN 2000
#define NONE32 UINT32_MAX
#define DEFAULT_EF 64

typedef struct qtrained {
    ny_quant *q;
    uint8_t *codes;
    size_t cs, map_len;
    uint64_t serial;
} qtrained;

struct ny_hnsw_qstate {
    ny_quant_config cfg;
    int always_ram;
    qtrained *_Atomic t;
};

static _Atomic uint64_t g_serial = 1;

static void qtrained_free(qtrained *t)
{
    if (!t) return;
    if (t->codes) munmap(t->codes, t->map_len);
    ny_quant_free(t->q);
    free(t);
}

void ny_hnsw_q_free(struct ny_hnsw_qstate *qs)
{
    if (!qs) return;
    qtrained_free(atomic_load(&qs->t));
    free(qs);
}

void ny_hnsw_q_on_add(struct ny_hnsw_qstate *qs, uint32_t node, const float *row)
{
    qtrained *t = atomic_load_explicit(&qs->t, memory_order_acquire);
    /* Rows are finite (checked by the insert path): encode cannot fail. */
    if (t) ny_quant_encode(t->q, row, t->codes + (size_t)node * t->cs);
}

/* ===== Training and encoding =========================================== */

typedef struct enc_ctx {
    const ny_hnsw_view *v;
    const qtrained *t;
} enc_ctx;

static void enc_task(void *ctx, size_t i, int worker)
{
    (void)worker;
    enc_ctx *e = ctx;
    if (!(atomic_load_explicit(&e->v->flags[i], memory_order_acquire) & NY_HNSW_F_USED)) return;
    ny_quant_encode(e->t->q, e->v->vecs + i * e->v->dimp, e->t->codes + i * e->t->cs);
}

/* Builds a qtrained around quantizer q (taken over) and encodes every
 * allocated node.  Caller holds the exclusive lock. */
static int make_trained(ny_hnsw *h, ny_quant *q, qtrained **out)
{
    ny_hnsw_view v;
    ny_hnsw_get_view(h, &v);
    qtrained *t = calloc(1, sizeof *t);
    if (!t) {
        ny_quant_free(q);
        return ny_error(NY_ENOMEM, "hnsw quantization: out of memory");
    }
    t->q = q;
    t->cs = ny_quant_code_size(q);
    t->map_len = v.nmax * t->cs;
    void *p = mmap(NULL, t->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        t->codes = NULL;
        qtrained_free(t);
        return ny_error_errno(NY_ENOMEM, "hnsw quantization: cannot map %zu bytes for codes", v.nmax * ny_quant_code_size(q));
    }
    t->codes = p;
    t->serial = atomic_fetch_add(&g_serial, 1);
    enc_ctx e = {.v = &v, .t = t};
    /* Rows on disk are read in order here: let the kernel read ahead. */
    ny_hnsw_disk_vec_advise(h, 1);
    ny_parallel_for(ny_hnsw_node_count(h), 1024, 0, enc_task, &e);
    ny_hnsw_disk_vec_advise(h, 0);
    *out = t;
    return NY_OK;
}

/* Trains qs on the index's vectors and publishes the codes.  force = 0
 * leaves qs untrained below NY_HNSW_QUANT_MIN_TRAIN vectors.  Caller holds
 * the exclusive lock. */
static int train_locked(ny_hnsw *h, struct ny_hnsw_qstate *qs, int force)
{
    ny_hnsw_view v;
    ny_hnsw_get_view(h, &v);
    size_t nn = ny_hnsw_node_count(h), cnt = 0;
    for (size_t i = 0; i < nn; i++)
        if ((atomic_load(&v.flags[i]) & (NY_HNSW_F_LIVE | NY_HNSW_F_DEL)) == NY_HNSW_F_LIVE) cnt++;
    if (cnt == 0) return force ? ny_error(NY_EINVAL, "hnsw quantization: no vectors to train on") : NY_OK;
    if (!force && cnt < NY_HNSW_QUANT_MIN_TRAIN) return NY_OK;
    size_t ns_cap = TRAIN_SAMPLE_BYTES / (v.dim * sizeof(float));
    if (ns_cap < TRAIN_SAMPLE_MIN) ns_cap = TRAIN_SAMPLE_MIN;
    if (ns_cap > TRAIN_SAMPLE) ns_cap = TRAIN_SAMPLE;
    size_t ns = cnt < ns_cap ? cnt : ns_cap;
    float *sample = malloc(ns * v.dim * sizeof(float));
    if (!sample) return ny_error(NY_ENOMEM, "hnsw quantization: out of memory for %zu training vectors", ns);
    /* Every (cnt/ns)-th live node, spread over the whole index. */
    size_t live = 0, got = 0;
    for (size_t i = 0; i < nn && got < ns; i++) {
        if ((atomic_load(&v.flags[i]) & (NY_HNSW_F_LIVE | NY_HNSW_F_DEL)) != NY_HNSW_F_LIVE) continue;
        if (live++ == got * cnt / ns) {
            memcpy(sample + got * v.dim, v.vecs + i * v.dimp, v.dim * sizeof(float));
            got++;
        }
    }
    ny_quant *q = NULL;
    int rc = ny_quant_train(&qs->cfg, v.metric, v.dim, sample, got, &q);
    free(sample);
    if (rc) return rc;
    qtrained *t = NULL;
    if ((rc = make_trained(h, q, &t))) return rc;
    qtrained *old = atomic_exchange_explicit(&qs->t, t, memory_order_acq_rel);
    if (old) {
        ny_hnsw_grace(h);
        qtrained_free(old);
    }
    return NY_OK;
}

static int enough_to_train(const ny_hnsw *h)
{
    ny_hnsw_stats st;
    ny_hnsw_get_stats(h, &st);
    return st.count >= NY_HNSW_QUANT_MIN_TRAIN;
}

/* ===== Public configuration API ======================================== */

int ny_hnsw_quant_train_if_due(ny_hnsw *h)
{
    if (!h) return ny_error(NY_EINVAL, "hnsw_quant_train_if_due: NULL index");
    int slot = ny_hnsw_read_enter(h);
    struct ny_hnsw_qstate *qs = ny_hnsw_qstate_get(h);
    int due = qs && !atomic_load(&qs->t);
    ny_hnsw_read_exit(h, slot);
    if (!due || !enough_to_train(h)) return 0;
    ny_hnsw_excl_lock(h);
    struct ny_hnsw_qstate *q2 = ny_hnsw_qstate_get(h);
    int rc = 0;
    if (q2 && !atomic_load(&q2->t)) {
        rc = train_locked(h, q2, 0);
        if (rc == NY_OK) rc = 1;
    }
    ny_hnsw_excl_unlock(h);
    return rc;
}

static int is_null_json(const char *s)
{
    if (!s) return 1;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    if (strncmp(s, "null", 4)) return 0;
    s += 4;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return *s == 0;
}

static void replace_state(ny_hnsw *h, struct ny_hnsw_qstate *qs)
{
    struct ny_hnsw_qstate *old = ny_hnsw_qstate_get(h);
    ny_hnsw_qstate_set(h, qs);
    if (old) {
        ny_hnsw_grace(h);
        ny_hnsw_q_free(old);
    }
}

int ny_hnsw_set_quantization(ny_hnsw *h, const char *json)
{
    if (!h) return ny_error(NY_EINVAL, "hnsw_set_quantization: NULL index");
    if (is_null_json(json)) {
        ny_hnsw_excl_lock(h);
        replace_state(h, NULL);
        ny_hnsw_excl_unlock(h);
        return NY_OK;
    }
    struct ny_hnsw_qstate *qs = calloc(1, sizeof *qs);
    if (!qs) return ny_error(NY_ENOMEM, "hnsw_set_quantization: out of memory");
    int rc = ny_quant_config_from_json(json, &qs->cfg, &qs->always_ram);
    if (rc) {
        free(qs);
        return rc;
    }
    ny_hnsw_excl_lock(h);
    rc = train_locked(h, qs, 0);
    if (rc == NY_OK) replace_state(h, qs);
    ny_hnsw_excl_unlock(h);
    if (rc) ny_hnsw_q_free(qs);
    return rc;
}

int ny_hnsw_get_quantization(const ny_hnsw *h, char **out)
{
    if (!h || !out) return ny_error(NY_EINVAL, "hnsw_get_quantization: NULL argument");
    *out = NULL;
    int slot = ny_hnsw_read_enter(h);
    struct ny_hnsw_qstate *qs = ny_hnsw_qstate_get(h);
    int rc = qs ? ny_quant_config_to_json(&qs->cfg, qs->always_ram, out) : NY_OK;
    ny_hnsw_read_exit(h, slot);
    return rc;
}

int ny_hnsw_quant_train(ny_hnsw *h)
{
    if (!h) return ny_error(NY_EINVAL, "hnsw_quant_train: NULL index");
    ny_hnsw_excl_lock(h);
    struct ny_hnsw_qstate *qs = ny_hnsw_qstate_get(h);
    int rc = qs ? train_locked(h, qs, 1) : ny_error(NY_EINVAL, "hnsw_quant_train: no quantization configured");
    ny_hnsw_excl_unlock(h);
    return rc;
}

int ny_hnsw_quant_ready(const ny_hnsw *h)
{
    if (!h) return 0;
    int slot = ny_hnsw_read_enter(h);
    struct ny_hnsw_qstate *qs = ny_hnsw_qstate_get(h);
    int r = qs && atomic_load(&qs->t) != NULL;
    ny_hnsw_read_exit(h, slot);
    return r;
}

size_t ny_hnsw_quant_bytes(const ny_hnsw *h)
{
    if (!h) return 0;
    int slot = ny_hnsw_read_enter(h);
    struct ny_hnsw_qstate *qs = ny_hnsw_qstate_get(h);
    qtrained *t = qs ? atomic_load(&qs->t) : NULL;
    size_t b = t ? ny_hnsw_node_count(h) * t->cs + ny_quant_serialized_size(t->q) : 0;
    ny_hnsw_read_exit(h, slot);
    return b;
}

/* ===== Search ========================================================== */

typedef struct qcand {
    float d;
    uint32_t id;
} qcand;

typedef struct qscratch {
    uint64_t serial;
    ny_quant_query *qq;
    uint16_t *vis;
    size_t vis_cap;
    uint16_t tag;
    qcand *cand, *res;
    size_t heap_cap;
    uint32_t *nb, *rid, *oid;
    float *nd, *od;
    size_t nb_cap, r_cap;
    int busy;
} qscratch;

static pthread_key_t g_qkey;
static pthread_once_t g_qkey_once = PTHREAD_ONCE_INIT;
static _Thread_local qscratch *tl_q;

static void qscratch_free(qscratch *s)
{
    if (!s) return;
    ny_quant_query_free(s->qq);
    free(s->vis);
    free(s->cand);
    free(s->res);
    free(s->nb);
    free(s->nd);
    free(s->rid);
    free(s->oid);
    free(s->od);
    free(s);
}

static void qkey_dtor(void *p) { qscratch_free(p); }
static void qkey_init(void) { pthread_key_create(&g_qkey, qkey_dtor); }

static qscratch *qscratch_get(void)
{
    if (tl_q && !tl_q->busy) {
        tl_q->busy = 1;
        return tl_q;
    }
    qscratch *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->busy = 1;
    if (!tl_q) {
        pthread_once(&g_qkey_once, qkey_init);
        pthread_setspecific(g_qkey, s);
        tl_q = s;
    }
    return s;
}

static void qscratch_put(qscratch *s)
{
    if (s == tl_q) s->busy = 0;
    else qscratch_free(s);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return NY_OK;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return NY_ENOMEM;
    *p = q;
    *cap = n;
    return NY_OK;
}

static int qscratch_prepare(qscratch *s, const qtrained *t, size_t nn, size_t ef, size_t nr, size_t maxdeg)
{
    if (s->serial != t->serial) {
        ny_quant_query_free(s->qq);
        s->qq = NULL;
        s->serial = 0;
        if (ny_quant_query_new(t->q, &s->qq)) return NY_ENOMEM;
        s->serial = t->serial;
    }
    size_t want = nn + 4096;
    if (want > s->vis_cap) {
        free(s->vis);
        s->vis = calloc(want, sizeof *s->vis);
        if (!s->vis) {
            s->vis_cap = 0;
            return NY_ENOMEM;
        }
        s->vis_cap = want;
        s->tag = 0;
    }
    if (++s->tag == 0) {
        memset(s->vis, 0, s->vis_cap * sizeof *s->vis);
        s->tag = 1;
    }
    size_t hc = s->heap_cap, hc2 = s->heap_cap;
    /* The candidate heap can hold every visited node. */
    if (grow((void **)&s->cand, &hc, ef + maxdeg + 1, sizeof(qcand)) ||
        grow((void **)&s->res, &hc2, ef + maxdeg + 1, sizeof(qcand)))
        return NY_ENOMEM;
    s->heap_cap = hc < hc2 ? hc : hc2;
    size_t c1 = s->nb_cap, c2 = s->nb_cap;
    if (grow((void **)&s->nb, &c1, maxdeg, sizeof(uint32_t)) || grow((void **)&s->nd, &c2, maxdeg, sizeof(float)))
        return NY_ENOMEM;
    s->nb_cap = c1 < c2 ? c1 : c2;
    size_t r1 = s->r_cap, r2 = s->r_cap, r3 = s->r_cap;
    if (grow((void **)&s->rid, &r1, nr, sizeof(uint32_t)) || grow((void **)&s->oid, &r2, nr, sizeof(uint32_t)) ||
        grow((void **)&s->od, &r3, nr, sizeof(float)))
        return NY_ENOMEM;
    s->r_cap = r1 < r2 ? (r1 < r3 ? r1 : r3) : (r2 < r3 ? r2 : r3);
    return NY_OK;
}

/* Binary heaps on d: `cand` is a min-heap, `res` a max-heap. */
static inline void min_push(qcand *hp, size_t *n, float d, uint32_t id)
{
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (hp[p].d <= d) break;
        hp[i] = hp[p];
        i = p;
    }
    hp[i] = (qcand){d, id};
}

static inline qcand min_pop(qcand *hp, size_t *n)
{
    qcand top = hp[0], last = hp[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && hp[c + 1].d < hp[c].d) c++;
        if (hp[c].d >= last.d) break;
        hp[i] = hp[c];
        i = c;
    }
    if (m) hp[i] = last;
    return top;
}

static inline void max_push(qcand *hp, size_t *n, float d, uint32_t id)
{
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (hp[p].d >= d) break;
        hp[i] = hp[p];
        i = p;
    }
    hp[i] = (qcand){d, id};
}

static inline qcand max_pop(qcand *hp, size_t *n)
{
    qcand top = hp[0], last = hp[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && hp[c + 1].d > hp[c].d) c++;
        if (hp[c].d <= last.d) break;
        hp[i] = hp[c];
        i = c;
    }
    if (m) hp[i] = last;
    return top;
}

static inline int q_allowed(const ny_hnsw_view *v, uint32_t i, const ny_filter *f)
{
    uint8_t fl = atomic_load_explicit(&v->flags[i], memory_order_acquire);
    if ((fl & (NY_HNSW_F_LIVE | NY_HNSW_F_DEL)) != NY_HNSW_F_LIVE) return 0;
    if (!f) return 1;
    uint32_t ext = v->i2e[i];
    if (f->bitmap && (ext >= f->nbits || !((f->bitmap[ext >> 6] >> (ext & 63)) & 1))) return 0;
    if (f->allow && !f->allow(ext, f->ctx)) return 0;
    return 1;
}

static inline const _Atomic uint32_t *list_of(const ny_hnsw_view *v, uint32_t i, int l)
{
    if (l == 0) return v->link0 + (size_t)i * v->stride0;
    return v->upper + v->uoff[i] + (size_t)(l - 1) * v->strideu;
}

/* Reads node i's level-l list into s->nb (unvisited ids when mark) and
 * scores them into s->nd.  Returns the count. */
static inline size_t score_list(const ny_hnsw_view *v, const qtrained *t, qscratch *s, uint32_t i, int l, int mark)
{
    const _Atomic uint32_t *ll = list_of(v, i, l);
    uint32_t cnt = atomic_load_explicit(ll, memory_order_acquire);
    uint32_t cap = (l == 0 ? v->stride0 : v->strideu) - 1;
    if (cnt > cap) cnt = cap;
    size_t n = 0;
    for (uint32_t j = 0; j < cnt; j++) {
        uint32_t x = atomic_load_explicit(ll + 1 + j, memory_order_acquire);
        if (x >= s->vis_cap) continue; /* inserted after this search began */
        if (mark) {
            if (s->vis[x] == s->tag) continue;
            s->vis[x] = s->tag;
        }
        s->nb[n++] = x;
    }
    if (n) ny_quant_dist_batch(s->qq, t->codes, t->cs, s->nb, n, s->nd);
    return n;
}

static const float *rescore_get(void *ctx, uint32_t id)
{
    const ny_hnsw_view *v = ctx;
    return v->vecs + (size_t)id * v->dimp;
}

static int search_quant(const ny_hnsw *h, const float *query, size_t k, size_t ef, const ny_filter *filter,
                        int rescore, float oversampling, uint32_t *ids, float *dists, int may_train);

int ny_hnsw_search_quant(const ny_hnsw *h, const float *query, size_t k, size_t ef, const ny_filter *filter,
                         int rescore, float oversampling, uint32_t *ids, float *dists)
{
    return search_quant(h, query, k, ef, filter, rescore, oversampling, ids, dists, 1);
}

static int search_quant(const ny_hnsw *h, const float *query, size_t k, size_t ef, const ny_filter *filter,
                        int rescore, float oversampling, uint32_t *ids, float *dists, int may_train)
{
    if (!h || !query || (k && !ids)) return ny_error(NY_EINVAL, "hnsw_search_quant: NULL argument");
    if (!(oversampling <= 0 || (oversampling >= 1 && oversampling <= 1000)))
        return ny_error(NY_EINVAL, "hnsw_search_quant: oversampling %g out of range (1..1000, or <= 0 for the default)",
                        (double)oversampling);
    if (k == 0) return 0;
    ny_hnsw_view v;
    ny_hnsw_get_view(h, &v);
    if (!ny_all_finite(query, v.dim)) return ny_error(NY_EINVAL, "hnsw_search_quant: query has a NaN or infinite component");
    if (rescore < 0) rescore = 1;
    if (oversampling <= 0) oversampling = 1;

    int slot = ny_hnsw_read_enter(h);
    struct ny_hnsw_qstate *qs = ny_hnsw_qstate_get(h);
    qtrained *t = qs ? atomic_load_explicit(&qs->t, memory_order_acquire) : NULL;
    if (!t) {
        ny_hnsw_read_exit(h, slot);
        if (qs && may_train && enough_to_train(h)) {
            /* Enough vectors now: train (once; others wait on the lock). */
            ny_hnsw *hm = (ny_hnsw *)h;
            ny_hnsw_excl_lock(hm);
            struct ny_hnsw_qstate *q2 = ny_hnsw_qstate_get(h);
            int rc = (q2 && !atomic_load(&q2->t)) ? train_locked(hm, q2, 0) : NY_OK;
            ny_hnsw_excl_unlock(hm);
            if (rc) return rc;
            return search_quant(h, query, k, ef, filter, rescore, oversampling, ids, dists, 0);
        }
        return ny_hnsw_search(h, query, k, ef, filter, ids, dists);
    }

    size_t nn = ny_hnsw_node_count(h);
    uint64_t e = ny_hnsw_entry(h);
    if (nn == 0 || (uint32_t)e == NONE32) {
        ny_hnsw_read_exit(h, slot);
        return 0;
    }
    if (ef == 0) ef = DEFAULT_EF;
    size_t nr = k;
    if (rescore) {
        double want = ceil((double)oversampling * (double)k);
        nr = want > (double)nn ? nn : (size_t)want;
        if (nr < k) nr = k;
    }
    if (ef < nr) ef = nr;
    size_t maxdeg = v.stride0 > v.strideu ? v.stride0 : v.strideu;
    qscratch *s = qscratch_get();
    int rc = s ? qscratch_prepare(s, t, nn, ef, nr, maxdeg) : NY_ENOMEM;
    if (rc == NY_OK) rc = ny_quant_query_prepare(s->qq, query);
    if (rc) {
        if (s) qscratch_put(s);
        ny_hnsw_read_exit(h, slot);
        return rc == NY_ENOMEM ? ny_error(NY_ENOMEM, "hnsw_search_quant: out of memory") : rc;
    }

    /* Upper levels: greedy descent. */
    uint32_t ep = (uint32_t)e;
    float epd = ny_quant_dist(s->qq, t->codes + (size_t)ep * t->cs);
    for (int l = (int)(e >> 32); l > 0; l--) {
        for (int changed = 1; changed;) {
            changed = 0;
            size_t n = score_list(&v, t, s, ep, l, 0);
            for (size_t j = 0; j < n; j++)
                if (s->nd[j] < epd) {
                    epd = s->nd[j];
                    ep = s->nb[j];
                    changed = 1;
                }
        }
    }

    /* Level 0: beam search on codes. */
    size_t nc = 0, nres = 0;
    s->vis[ep] = s->tag;
    min_push(s->cand, &nc, epd, ep);
    if (q_allowed(&v, ep, filter)) max_push(s->res, &nres, epd, ep);
    while (nc) {
        float lb = nres >= ef ? s->res[0].d : INFINITY;
        qcand c = min_pop(s->cand, &nc);
        if (c.d > lb) break;
        size_t n = score_list(&v, t, s, c.id, 0, 1);
        for (size_t j = 0; j < n; j++) {
            float d = s->nd[j];
            if (nres >= ef && d >= s->res[0].d) continue;
            uint32_t x = s->nb[j];
            if (nc + 1 >= s->heap_cap) {
                size_t cap = s->heap_cap, cap2 = s->heap_cap;
                if (grow((void **)&s->cand, &cap, nc + maxdeg + 1, sizeof(qcand)) ||
                    grow((void **)&s->res, &cap2, nc + maxdeg + 1, sizeof(qcand))) {
                    rc = NY_ENOMEM;
                    break;
                }
                s->heap_cap = cap < cap2 ? cap : cap2;
            }
            min_push(s->cand, &nc, d, x);
            if (q_allowed(&v, x, filter)) {
                max_push(s->res, &nres, d, x);
                if (nres > ef) max_pop(s->res, &nres);
            }
        }
        if (rc) break;
    }
    int nout = 0;
    if (rc == NY_OK) {
        /* Results nearest first. */
        while (nres > nr) max_pop(s->res, &nres);
        size_t m = nres;
        for (size_t j = m; j-- > 0;) {
            qcand c = max_pop(s->res, &nres);
            s->rid[j] = c.id;
            s->od[j] = c.d;
        }
        if (rescore) {
            int got = ny_quant_rescore(v.metric, v.dim, query, s->rid, m, rescore_get, &v, k, s->oid, s->od);
            if (got < 0) rc = got;
            for (int j = 0; j < got; j++) {
                ids[j] = v.i2e[s->oid[j]];
                if (dists) dists[j] = s->od[j];
            }
            nout = got < 0 ? 0 : got;
        } else {
            for (size_t j = 0; j < m && j < k; j++) {
                ids[j] = v.i2e[s->rid[j]];
                if (dists) dists[j] = s->od[j];
                nout++;
            }
        }
    }
    qscratch_put(s);
    ny_hnsw_read_exit(h, slot);
    if (rc == NY_ENOMEM) return ny_error(NY_ENOMEM, "hnsw_search_quant: out of memory");
    return rc ? rc : nout;
}

/* ===== Persistence ===================================================== */

static char *side_path(const char *path)
{
    size_t n = strlen(path);
    char *p = malloc(n + 8);
    if (p) {
        memcpy(p, path, n);
        memcpy(p + n, ".quant", 7);
    }
    return p;
}

static int put(uint8_t **buf, size_t *len, size_t *cap, const void *src, size_t n)
{
    if (grow((void **)buf, cap, *len + n, 1)) return NY_ENOMEM;
    memcpy(*buf + *len, src, n);
    *len += n;
    return NY_OK;
}

int ny_hnsw_q_save(const ny_hnsw *h, const char *path)
{
    char *sp = side_path(path);
    if (!sp) return ny_error(NY_ENOMEM, "hnsw_save: out of memory");
    struct ny_hnsw_qstate *qs = ny_hnsw_qstate_get(h);
    if (!qs) {
        int rc = (unlink(sp) != 0 && errno != ENOENT) ? ny_error_errno(NY_EIO, "hnsw_save: cannot remove %s", sp) : NY_OK;
        free(sp);
        return rc;
    }
    qtrained *t = atomic_load(&qs->t);
    char *json = NULL;
    int rc = ny_quant_config_to_json(&qs->cfg, qs->always_ram, &json);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    if (rc == NY_OK) {
        uint32_t hdr[4] = {QFILE_VERSION, t != NULL, (uint32_t)qs->always_ram, (uint32_t)strlen(json)};
        uint64_t qlen = t ? ny_quant_serialized_size(t->q) : 0;
        rc = put(&buf, &len, &cap, QFILE_MAGIC, 8);
        if (!rc) rc = put(&buf, &len, &cap, hdr, sizeof hdr);
        if (!rc) rc = put(&buf, &len, &cap, json, hdr[3]);
        if (!rc) rc = put(&buf, &len, &cap, &qlen, 8);
        if (!rc && qlen) {
            if (grow((void **)&buf, &cap, len + qlen, 1)) rc = NY_ENOMEM;
            else if ((rc = ny_quant_serialize(t->q, buf + len, qlen)) == NY_OK) len += qlen;
        }
        uint64_t hs = rc ? 0 : ny_hash64(buf, len);
        if (!rc) rc = put(&buf, &len, &cap, &hs, 8);
        if (rc == NY_ENOMEM) rc = ny_error(NY_ENOMEM, "hnsw_save: out of memory");
    }
    free(json);
    size_t tlen = strlen(sp) + 32;
    char *tmp = malloc(tlen);
    if (!rc && !tmp) rc = ny_error(NY_ENOMEM, "hnsw_save: out of memory");
    if (!rc && tmp) {
        snprintf(tmp, tlen, "%s.tmp.%ld", sp, (long)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) rc = ny_error_errno(ny_rc_from_errno(errno), "hnsw_save: cannot create %s", tmp);
        else {
            size_t off = 0;
            while (!rc && off < len) {
                ssize_t w = write(fd, buf + off, len - off);
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) rc = ny_error_errno(ny_rc_from_errno(errno), "hnsw_save: write %s", tmp);
                else off += (size_t)w;
            }
            if (!rc && fsync(fd) != 0) rc = ny_error_errno(NY_EIO, "hnsw_save: fsync %s", tmp);
            if (close(fd) != 0 && !rc) rc = ny_error_errno(NY_EIO, "hnsw_save: close %s", tmp);
            if (!rc && rename(tmp, sp) != 0) rc = ny_error_errno(ny_rc_from_errno(errno), "hnsw_save: rename to %s", sp);
            if (rc) unlink(tmp);
        }
    }
    free(tmp);
    free(buf);
    free(sp);
    return rc;
}

int ny_hnsw_q_load(ny_hnsw *h, const char *path)
{
    char *sp = side_path(path);
    if (!sp) return ny_error(NY_ENOMEM, "hnsw_load: out of memory");
    int fd = open(sp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = errno == ENOENT ? NY_OK : ny_error_errno(ny_rc_from_errno(errno), "hnsw_load: cannot open %s", sp);
        free(sp);
        return rc;
    }
    struct stat st;
    uint8_t *buf = NULL;
    int rc = NY_OK;
    size_t len = 0;
    if (fstat(fd, &st) != 0) rc = ny_error_errno(NY_EIO, "hnsw_load: stat %s", sp);
    else if (st.st_size < 8 + 16 + 8 + 8 || st.st_size > ((off_t)1 << 30))
        rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: bad size %lld", sp, (long long)st.st_size);
    else {
        len = (size_t)st.st_size;
        buf = malloc(len + 1);
        if (!buf) rc = ny_error(NY_ENOMEM, "hnsw_load: out of memory");
        size_t off = 0;
        while (!rc && off < len) {
            ssize_t r = read(fd, buf + off, len - off);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) rc = ny_error_errno(NY_EIO, "hnsw_load: read %s", sp);
            else off += (size_t)r;
        }
    }
    close(fd);
    struct ny_hnsw_qstate *qs = NULL;
    ny_quant *q = NULL;
    if (!rc) {
        uint64_t hs;
        memcpy(&hs, buf + len - 8, 8);
        uint32_t hdr[4];
        memcpy(hdr, buf + 8, sizeof hdr);
        if (memcmp(buf, QFILE_MAGIC, 8)) rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: not a quantization file", sp);
        else if (hs != ny_hash64(buf, len - 8)) rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: checksum mismatch", sp);
        else if (hdr[0] != QFILE_VERSION) rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: unsupported version %u", sp, hdr[0]);
        else if ((size_t)hdr[3] > len - 40 || hdr[1] > 1)
            rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: bad header", sp);
        else {
            size_t off = 24;
            char *json = strndup((char *)buf + off, hdr[3]);
            uint64_t qlen;
            off += hdr[3];
            memcpy(&qlen, buf + off, 8);
            off += 8;
            qs = calloc(1, sizeof *qs);
            if (!qs || !json) rc = ny_error(NY_ENOMEM, "hnsw_load: out of memory");
            else if (qlen != len - 8 - off || (hdr[1] && !qlen) || (!hdr[1] && qlen))
                rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: bad quantizer length", sp);
            else if ((rc = ny_quant_config_from_json(json, &qs->cfg, &qs->always_ram)))
                rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: bad configuration: %s", sp, ny_errmsg());
            else if (qlen) {
                ny_hnsw_view v;
                ny_hnsw_get_view(h, &v);
                size_t used = 0;
                if ((rc = ny_quant_deserialize(buf + off, qlen, &q, &used)))
                    rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: %s", sp, ny_errmsg());
                else if (ny_quant_dim(q) != v.dim || ny_quant_metric(q) != v.metric || used != qlen ||
                         ny_quant_get_kind(q) != qs->cfg.kind)
                    rc = ny_error(NY_ECORRUPT, "hnsw_load: %s: quantizer does not match the index", sp);
            }
            free(json);
        }
    }
    free(buf);
    free(sp);
    if (!rc && q) {
        qtrained *t = NULL;
        rc = make_trained(h, q, &t);
        q = NULL;
        if (!rc) atomic_store(&qs->t, t);
    }
    if (rc) {
        ny_quant_free(q);
        ny_hnsw_q_free(qs);
        return rc;
    }
    ny_hnsw_qstate_set(h, qs);
    return NY_OK;
}

/* ===== Batches ========================================================= */

typedef struct qbatch_ctx {
    const ny_hnsw *h;
    const float *q;
    size_t dim, k, ef;
    const ny_filter *f;
    int rescore;
    float os;
    uint32_t *ids;
    float *dists;
    _Atomic int rc;
    _Atomic int err_set;
    char msg[256];
} qbatch_ctx;

static void qbatch_task(void *ctx, size_t i, int worker)
{
    (void)worker;
    qbatch_ctx *b = ctx;
    uint32_t *ids = b->ids + i * b->k;
    float *d = b->dists ? b->dists + i * b->k : NULL;
    int n = ny_hnsw_search_quant(b->h, b->q + i * b->dim, b->k, b->ef, b->f, b->rescore, b->os, ids, d);
    if (n < 0) {
        int zero = 0;
        if (atomic_compare_exchange_strong(&b->err_set, &zero, 1)) {
            snprintf(b->msg, sizeof b->msg, "query %zu: %s", i, ny_errmsg());
            atomic_store(&b->rc, n);
        }
        n = 0;
    }
    for (size_t j = (size_t)n; j < b->k; j++) {
        ids[j] = UINT32_MAX;
        if (d) d[j] = INFINITY;
    }
}

int ny_hnsw_search_quant_batch(const ny_hnsw *h, const float *queries, size_t nq, size_t k, size_t ef,
                               const ny_filter *filter, int rescore, float oversampling, int threads, uint32_t *ids,
                               float *dists)
{
    if (!h || (nq && k && (!queries || !ids))) return ny_error(NY_EINVAL, "hnsw_search_quant_batch: NULL argument");
    if (!nq || !k) return NY_OK;
    ny_hnsw_view v;
    ny_hnsw_get_view(h, &v);
    qbatch_ctx b = {.h = h, .q = queries, .dim = v.dim, .k = k, .ef = ef, .f = filter, .rescore = rescore,
                    .os = oversampling, .ids = ids, .dists = dists};
    atomic_init(&b.rc, 0);
    atomic_init(&b.err_set, 0);
    ny_parallel_for(nq, 4, threads, qbatch_task, &b);
    int rc = atomic_load(&b.rc);
    if (rc) return ny_error(rc, "hnsw_search_quant_batch: %s", b.msg);
    return NY_OK;
}
