/*
 * coll_index.c -- payload indexes of a collection and the filter-aware
 * search planner (see docs/filters.md, "Payload indexes and the planner").
 *
 * Plans for a filtered search, chosen from the candidate bitmap that the
 * indexes give for the filter (a superset of the matches):
 *   - no index narrows the filter: the caller's own plan (sampling estimate,
 *     then exact scan or HNSW with the filter callback);
 *   - params.exact, or few candidates (<= full_scan_threshold vectors):
 *     exact distances over the candidates only, each re-checked with the
 *     filter;
 *   - otherwise HNSW restricted to the candidates: the walk goes through
 *     every node (so the graph stays connected) but only candidates that
 *     pass the filter become results; ef grows as the candidate share
 *     shrinks.  If the walk finds fewer than k results while more exist,
 *     the candidates are scanned exactly.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "collection/coll.h"
#include "collection/coll_index.h"
#include "filter/payload_index.h"

static _Atomic uint64_t st_exact, st_hnsw, st_fallback, st_unplanned, st_recheck;

void ny_coll_plan_stats(ny_plan_stats *out)
{
    out->exact_plans = atomic_load(&st_exact);
    out->hnsw_plans = atomic_load(&st_hnsw);
    out->fallbacks = atomic_load(&st_fallback);
    out->unplanned = atomic_load(&st_unplanned);
    out->rechecks = atomic_load(&st_recheck);
}

int ny_coll_index_init(ny_collection *c)
{
    int rc = ny_pindex_new(&c->pidx);
    if (rc != NY_OK) return rc;
    pthread_mutex_lock(&c->cfg_mu);
    json_t *schema = json_object_get(c->cfg.root, "payload_schema");
    const char *field;
    json_t *e;
    json_object_foreach(schema, field, e) {
        if ((rc = ny_pindex_add_field(c->pidx, field, e)) != NY_OK) break;
    }
    pthread_mutex_unlock(&c->cfg_mu);
    return rc;
}

void ny_coll_index_loaded(ny_collection *c)
{
    if (c->pidx) (void)ny_pindex_compact(c->pidx); /* failure only costs speed */
}

void ny_coll_index_free(ny_collection *c)
{
    ny_pindex_free(c->pidx);
    c->pidx = NULL;
}

void ny_coll_index_set(ny_collection *c, uint32_t vid, const json_t *payload)
{
    /* On allocation failure the index disables itself: results stay
     * correct (the planner stops using it), searches get slower. */
    if (c->pidx) (void)ny_pindex_update(c->pidx, vid, payload);
}

int ny_coll_index_build(ny_collection *c, const char *field, const json_t *entry)
{
    if (!c->pidx) return NY_OK;
    pthread_mutex_lock(&c->wmu);
    pthread_rwlock_wrlock(&c->rw);
    int rc = ny_pindex_add_field(c->pidx, field, entry);
    for (uint32_t v = 0; rc == NY_OK && v < c->nvid; v++)
        if (c->live[v] && c->payloads[v]) rc = ny_pindex_update_field(c->pidx, field, v, c->payloads[v]);
    /* Bulk fill: merge the numeric tails now rather than have every lookup
     * scan them (failure only costs speed). */
    if (rc == NY_OK) (void)ny_pindex_compact(c->pidx);
    pthread_rwlock_unlock(&c->rw);
    pthread_mutex_unlock(&c->wmu);
    return rc;
}

void ny_coll_index_drop(ny_collection *c, const char *field)
{
    if (!c->pidx) return;
    pthread_mutex_lock(&c->wmu);
    pthread_rwlock_wrlock(&c->rw);
    ny_pindex_drop_field(c->pidx, field);
    pthread_rwlock_unlock(&c->rw);
    pthread_mutex_unlock(&c->wmu);
}

static uint64_t *ids_cb(void *ctx, const ny_point_id *ids, size_t n)
{
    ny_collection *c = ctx;
    size_t nw = ((size_t)c->nvid + 63) / 64;
    uint64_t *w = calloc(nw ? nw : 1, sizeof *w);
    if (!w) return NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = ny_coll_lookup(c, &ids[i]);
        if (v != NY_VID_NONE && v < c->nvid) w[v >> 6] |= 1ull << (v & 63);
    }
    return w;
}

typedef struct pctx {
    ny_collection *c;
    const ny_fexpr *f;
    const uint64_t *cand;
} pctx;

static inline int in_set(const uint64_t *w, uint32_t nvid, uint32_t v)
{
    return v < nvid && ((w[v >> 6] >> (v & 63)) & 1);
}

static int check_cb(uint32_t vid, void *ctx)
{
    pctx *p = ctx;
    ny_collection *c = p->c;
    if (vid >= c->nvid || !c->live[vid]) return 0;
    return ny_filter_match(p->f, &c->ids[vid], c->payloads[vid]);
}

static int cand_cb(uint32_t vid, void *ctx)
{
    pctx *p = ctx;
    return in_set(p->cand, p->c->nvid, vid) && check_cb(vid, ctx);
}

/* Candidate set of f restricted to live points, and its size. */
static uint64_t *candidates(ny_collection *c, const ny_fexpr *f, uint64_t *count)
{
    if (!f || (!ny_pindex_nfields(c->pidx) && !ny_filter_ids(f, &(const ny_point_id *){0}, &(size_t){0})))
        return NULL;
    uint64_t *w = ny_pindex_candidates(c->pidx, f, c->nvid, ids_cb, c);
    if (!w) return NULL;
    size_t nw = ((size_t)c->nvid + 63) / 64;
    uint64_t n = 0;
    if (nw && c->nvid % 64) w[nw - 1] &= (1ull << (c->nvid % 64)) - 1;
    if (c->count == c->nvid) { /* no free slots: every vid is live */
        for (size_t i = 0; i < nw; i++) n += (uint64_t)__builtin_popcountll(w[i]);
        *count = n;
        return w;
    }
    for (size_t i = 0; i < nw; i++) {
        if (!w[i]) continue;
        uint64_t live = 0;
        const uint8_t *l = c->live + i * 64;
        size_t lim = (size_t)c->nvid - i * 64 < 64 ? (size_t)c->nvid - i * 64 : 64;
        for (uint64_t x = w[i]; x; x &= x - 1) {
            unsigned b = (unsigned)__builtin_ctzll(x);
            if (b < lim && l[b]) live |= 1ull << b;
        }
        w[i] = live;
        n += (uint64_t)__builtin_popcountll(live);
    }
    *count = n;
    return w;
}

uint64_t *ny_coll_index_candidates(ny_collection *c, const ny_fexpr *f, uint64_t *n)
{
    *n = 0;
    return c->pidx ? candidates(c, f, n) : NULL;
}

static int exact_over(ny_collection *c, const uint64_t *cand, uint64_t n, pctx *p, const float *q, size_t k,
                      uint32_t *ids, float *dists)
{
    uint32_t *arr = malloc((n ? n : 1) * sizeof *arr);
    if (!arr) return ny_error(NY_ENOMEM, "out of memory (search candidates)");
    size_t nw = ((size_t)c->nvid + 63) / 64, j = 0;
    for (size_t i = 0; i < nw && j < n; i++)
        for (uint64_t x = cand[i]; x; x &= x - 1) arr[j++] = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(x));
    ny_filter flt = {.allow = check_cb, .ctx = p};
    int got = ny_hnsw_search_exact_ids(c->index, q, k, arr, j, &flt, ids, dists);
    free(arr);
    return got;
}

/* Largest candidate count for which the exact plan is chosen.  Exact costs
 * about n distance computations (the filter re-check runs only for would-be
 * top-k entries); a filtered graph walk costs about ef * M / share node
 * visits (share = n / count) to find ef allowed ones.  They meet near
 * n = sqrt(ef * M * count) times a constant: 0.5, measured on filter_bench's
 * 1M x 128 at 1% (10,000 candidates): exact 934 QPS per CPU second against
 * 523 / 448 for the walk at ef 32 / 64 (docs/BENCHMARKS.md, "Filtered
 * search"; it was 0.25 while the exact plan re-checked every candidate).
 * Never above Qdrant's full_scan_threshold. */
static size_t exact_limit(const ny_collection *c, size_t m, size_t ef, size_t fst)
{
    if (!m) m = 16;
    double lim = 0.5 * sqrt((double)(ef ? ef : 64) * (double)m * (double)(c->count ? c->count : 1));
    if (lim < 256) lim = 256;
    return (double)fst < lim ? fst : (size_t)lim;
}

/* Graph plan for a filter matching a share of the points, at the
 * requested ef (0: default).  Two walks can answer it:
 *   - filtered: walk through every node, keep only allowed ones, until
 *     e_filt allowed results are held.  Counting ef in allowed results,
 *     it expands about e_filt / share nodes; an allowed pool as large as
 *     an unfiltered one would push the walk far beyond the query's
 *     neighbourhood (on clustered data, into other clusters), so e_filt is
 *     ef scaled by sqrt(share), at least k;
 *   - post-filter: a plain walk for e_post = max(ef, 2k / share) results,
 *     filtered afterwards (no per-node test, no candidate set).
 * The cheaper one by expanded nodes is chosen: *post = 1 when
 * e_post <= e_filt / share + build, where build is the cost of making the
 * candidate set if it does not exist yet, in expanded nodes: n / 1024 for
 * n candidates (measured on filter_bench's 100k x 128: ~1.3 ns per
 * candidate bit against ~1.5 us per expanded node).  At 10% and ef 16..32
 * the filtered walk was 1.4-1.7x faster at the same recall; at 50%, or at
 * 10% with ef >= 128, the plain walk is (docs/BENCHMARKS.md, "Filtered
 * search"). */
static size_t graph_ef(double share, size_t ef, size_t k, double build, int *post, size_t *e_filt_out)
{
    size_t efu = ef ? ef : 64;
    if (share > 1) share = 1;
    if (share < 1e-9) share = 1e-9;
    size_t e_filt = (size_t)((double)efu * sqrt(share));
    if (e_filt < k) e_filt = k;
    double ep = ceil(2.0 * (double)k / share);
    size_t e_post = ep > (double)efu ? (ep > 1e9 ? (size_t)1e9 : (size_t)ep) : efu;
    *post = (double)e_post <= (double)e_filt / share + build;
    if (e_filt_out) *e_filt_out = e_filt;
    return *post ? e_post : e_filt;
}

int ny_coll_index_search(ny_collection *c, const ny_fexpr *f, const float *q, size_t k, size_t ef, int exact,
                         size_t fst, size_t m, uint32_t *ids, float *dists, int *planned)
{
    *planned = 0;
    /* Single-condition filters: the index tells how many points it selects
     * without building a set.  When the post-filter walk is the cheaper
     * graph plan, run it straight away and only fall through to the full
     * plan if too few results survive. */
    int64_t est = exact || !c->count ? -1 : ny_pindex_count(c->pidx, f);
    int tried_post = 0, post = 0;
    size_t e = 0;
    if (est >= 0 && (uint64_t)est > exact_limit(c, m, ef, fst))
        e = graph_ef((double)est / (double)c->count, ef, k, (double)est / 1024.0, &post, NULL);
    if (post) {
        uint32_t *rid = malloc(e * sizeof *rid);
        float *rd = malloc(e * sizeof *rd);
        int got = rid && rd ? ny_hnsw_search(c->index, q, e, e, NULL, rid, rd) : -1;
        size_t kept = 0;
        pctx p0 = {c, f, NULL};
        for (int i = 0; i < got && kept < k; i++)
            if (check_cb(rid[i], &p0)) {
                ids[kept] = rid[i];
                dists[kept++] = rd[i];
            }
        free(rid);
        free(rd);
        tried_post = got >= 0;
        if (got >= 0 && kept == k) {
            atomic_fetch_add(&st_hnsw, 1);
            *planned = 1;
            return (int)kept;
        }
    }
    uint64_t n = 0;
    uint64_t *cand = candidates(c, f, &n);
    if (!cand) {
        atomic_fetch_add(&st_unplanned, 1);
        return 0;
    }
    *planned = 1;
    pctx p = {c, f, cand};
    int got;
    if (n == 0) {
        got = 0;
    } else if (exact || n <= exact_limit(c, m, ef, fst)) {
        atomic_fetch_add(&st_exact, 1);
        got = exact_over(c, cand, n, &p, q, k, ids, dists);
    } else {
        atomic_fetch_add(&st_hnsw, 1);
        size_t e_filt;
        e = graph_ef(c->count ? (double)n / (double)c->count : 1.0, ef, k, 0, &post, &e_filt);
        if (post && tried_post) { /* the post-filtered walk just fell short: walk filtered instead */
            post = 0;
            e = e_filt;
        }
        /* Walk with the candidate set alone (a bit test; or with no filter
         * at all when most points match), then re-check the e results with
         * the filter; when the set is tight (the usual case: the filter is
         * answered by the indexes) enough survive.  Otherwise walk again
         * re-checking every candidate as it is met, and scan exactly as a
         * last resort. */
        uint32_t *rid = malloc(e * sizeof *rid);
        float *rd = malloc(e * sizeof *rd);
        if (!rid || !rd) {
            free(rid);
            free(rd);
            free(cand);
            return ny_error(NY_ENOMEM, "out of memory (search)");
        }
        ny_filter fb = {.bitmap = cand, .nbits = c->nvid};
        got = ny_hnsw_search(c->index, q, e, e, post ? NULL : &fb, rid, rd);
        size_t kept = 0;
        for (int i = 0; i < got && kept < k; i++)
            if (in_set(cand, c->nvid, rid[i]) && check_cb(rid[i], &p)) {
                ids[kept] = rid[i];
                dists[kept++] = rd[i];
            }
        free(rid);
        free(rd);
        if (got >= 0 && kept < k && (size_t)got == e) {
            atomic_fetch_add(&st_recheck, 1);
            ny_filter flt = {.allow = cand_cb, .ctx = &p};
            got = ny_hnsw_search(c->index, q, k, e, &flt, ids, dists);
        } else if (got >= 0) {
            got = (int)kept;
        }
        if (got >= 0 && (size_t)got < k && n > (uint64_t)got) {
            atomic_fetch_add(&st_fallback, 1);
            got = exact_over(c, cand, n, &p, q, k, ids, dists);
        }
    }
    free(cand);
    return got;
}

size_t ny_coll_index_count(ny_collection *c, const ny_fexpr *f, int *planned)
{
    *planned = 0;
    uint64_t n = 0;
    uint64_t *cand = candidates(c, f, &n);
    if (!cand) return 0;
    *planned = 1;
    size_t nw = ((size_t)c->nvid + 63) / 64, cnt = 0;
    for (size_t i = 0; i < nw; i++)
        for (uint64_t x = cand[i]; x; x &= x - 1) {
            uint32_t v = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(x));
            if (ny_filter_match(f, &c->ids[v], c->payloads[v])) cnt++;
        }
    free(cand);
    return cnt;
}
