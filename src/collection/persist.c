/*
 * persist.c -- checkpoints and snapshots of a collection.
 *
 * A checkpoint at LSN L is three files in the collection directory:
 *   index-L.hnsw   the HNSW index (ny_hnsw_save: vectors + graph, checksummed)
 *   points-L.dat   the point map and payloads (format below, checksummed)
 *   CHECKPOINT     {"lsn": L, ...}, replaced atomically last: it is the
 *                  commit point; files of older checkpoints are removed
 *                  after it is durable, and log segments up to L too.
 *
 * points-L.dat:
 *   "NYPTS001" | u32 version=1 | u32 dim | u64 lsn | u64 count | u32 nvid | u32 0
 *   count x ( u32 vid | u8 kind | 16 id bytes | u32 len | payload JSON )
 *   u64 XXH3 of all bytes above | "NYPTSEND"
 *
 * A snapshot is one file:
 *   "NYSNAP01" | u64 lsn | u32 nsections |
 *   nsections x ( u32 name length | name | u64 size | bytes )
 *   u64 XXH3 of all bytes above | "NYSNAPOK"
 * with sections "config.json", "points", "index" copied from a fresh
 * checkpoint (taken under the writer lock; the copy runs while writes
 * continue, since checkpoint files are immutable).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collection/coll.h"
#include "collection/coll_quant.h"
#include "storage/fileio.h"

#define PTS_MAGIC "NYPTS001"
#define PTS_END "NYPTSEND"
#define SNAP_MAGIC "NYSNAP01"
#define SNAP_END "NYSNAPOK"

static void cpath(const ny_collection *c, char *buf, size_t n, const char *kind, uint64_t lsn)
{
    if (!strcmp(kind, "index")) snprintf(buf, n, "%s/index-%" PRIu64 ".hnsw", c->dir, lsn);
    else snprintf(buf, n, "%s/points-%" PRIu64 ".dat", c->dir, lsn);
}

/* ===== points file ===================================================== */

static int write_points(ny_collection *c, const char *path, uint64_t lsn)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "creating %s", tmp);
    ny_bufw w;
    int rc = ny_bufw_init(&w, fd, tmp);
    if (rc != NY_OK) {
        close(fd);
        unlink(tmp);
        return rc;
    }
    ny_bufw_put(&w, PTS_MAGIC, 8);
    ny_bufw_u32(&w, 1);
    ny_bufw_u32(&w, (uint32_t)c->dim);
    ny_bufw_u64(&w, lsn);
    ny_bufw_u64(&w, c->count);
    ny_bufw_u32(&w, c->nvid);
    ny_bufw_u32(&w, 0);
    for (uint32_t v = 0; v < c->nvid && w.rc == NY_OK; v++) {
        if (!c->live[v]) continue;
        unsigned char idb[17] = {0};
        const ny_point_id *id = &c->ids[v];
        idb[0] = id->is_uuid ? 1 : 0;
        if (id->is_uuid) memcpy(idb + 1, id->uuid, 16);
        else memcpy(idb + 1, &id->num, 8);
        ny_bufw_u32(&w, v);
        ny_bufw_put(&w, idb, 17);
        if (!c->payloads[v]) {
            ny_bufw_u32(&w, 0);
            continue;
        }
        char *s = json_dumps(c->payloads[v], JSON_COMPACT);
        if (!s) {
            w.rc = ny_error(NY_ENOMEM, "out of memory (checkpoint)");
            break;
        }
        uint32_t l = (uint32_t)strlen(s);
        ny_bufw_u32(&w, l);
        ny_bufw_put(&w, s, l);
        free(s);
    }
    uint64_t d = ny_bufw_finish(&w, &rc);
    unsigned char tail[16];
    memcpy(tail, &d, 8);
    memcpy(tail + 8, PTS_END, 8);
    int rc2 = ny_bufw_raw_tail(&w, tail, 16);
    if (rc == NY_OK) rc = rc2;
    if (rc == NY_OK) rc = ny_io_sync(fd, 0, tmp);
    close(fd);
    if (rc == NY_OK && rename(tmp, path) != 0) rc = ny_error_errno(NY_EIO, "renaming %s", tmp);
    if (rc != NY_OK) unlink(tmp);
    return rc;
}

static int load_points(ny_collection *c, const char *path, uint64_t lsn)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ny_error_errno(ny_rc_from_errno(errno) == NY_ENOTFOUND ? NY_ECORRUPT : ny_rc_from_errno(errno),
                                      "opening %s", path);
    ny_bufr r;
    int rc = ny_bufr_init(&r, fd, path);
    if (rc != NY_OK) {
        close(fd);
        return rc;
    }
    char magic[8];
    uint32_t ver = 0, dim = 0, nvid = 0, pad = 0;
    uint64_t flsn = 0, count = 0;
    rc = ny_bufr_get(&r, magic, 8);
    if (rc == NY_OK && memcmp(magic, PTS_MAGIC, 8) != 0) rc = ny_error(NY_ECORRUPT, "%s: not a points file", path);
    if (rc == NY_OK) rc = ny_bufr_u32(&r, &ver);
    if (rc == NY_OK) rc = ny_bufr_u32(&r, &dim);
    if (rc == NY_OK) rc = ny_bufr_u64(&r, &flsn);
    if (rc == NY_OK) rc = ny_bufr_u64(&r, &count);
    if (rc == NY_OK) rc = ny_bufr_u32(&r, &nvid);
    if (rc == NY_OK) rc = ny_bufr_u32(&r, &pad);
    if (rc == NY_OK && (ver != 1 || dim != c->dim || flsn != lsn || count > nvid))
        rc = ny_error(NY_ECORRUPT, "%s: header does not match (version %u, dim %u, lsn %" PRIu64 ")", path, ver, dim, flsn);
    char *buf = NULL;
    size_t bcap = 0;
    for (uint64_t i = 0; rc == NY_OK && i < count; i++) {
        uint32_t vid, plen;
        unsigned char idb[17];
        rc = ny_bufr_u32(&r, &vid);
        if (rc == NY_OK) rc = ny_bufr_get(&r, idb, 17);
        if (rc == NY_OK) rc = ny_bufr_u32(&r, &plen);
        if (rc != NY_OK) break;
        if (vid >= nvid || idb[0] > 1 || plen > (1u << 30)) {
            rc = ny_error(NY_ECORRUPT, "%s: bad record %" PRIu64, path, i);
            break;
        }
        ny_point_id id = {0};
        id.is_uuid = idb[0];
        if (id.is_uuid) memcpy(id.uuid, idb + 1, 16);
        else memcpy(&id.num, idb + 1, 8);
        json_t *pl = NULL;
        if (plen) {
            if (plen + 1 > bcap) {
                bcap = plen + 1 > 2 * bcap ? plen + 1 : 2 * bcap;
                char *nb = realloc(buf, bcap);
                if (!nb) {
                    rc = ny_error(NY_ENOMEM, "out of memory (loading points)");
                    break;
                }
                buf = nb;
            }
            rc = ny_bufr_get(&r, buf, plen);
            if (rc != NY_OK) break;
            json_error_t err;
            pl = json_loadb(buf, plen, 0, &err);
            if (!json_is_object(pl)) {
                json_decref(pl);
                rc = ny_error(NY_ECORRUPT, "%s: payload of record %" PRIu64 " is not a JSON object", path, i);
                break;
            }
        }
        if (vid < c->vcap && c->live[vid]) {
            json_decref(pl);
            rc = ny_error(NY_ECORRUPT, "%s: vector id %u appears twice", path, vid);
            break;
        }
        rc = ny_coll_map_put(c, &id, vid, pl);
        if (rc != NY_OK) json_decref(pl);
    }
    free(buf);
    if (rc == NY_OK) {
        uint64_t want = ny_bufr_digest(&r), got;
        char end[8];
        rc = ny_bufr_raw(&r, &got, 8);
        if (rc == NY_OK) rc = ny_bufr_raw(&r, end, 8);
        if (rc == NY_OK && (got != want || memcmp(end, PTS_END, 8) != 0))
            rc = ny_error(NY_ECORRUPT, "%s: checksum mismatch (the file is damaged)", path);
    }
    ny_bufr_free(&r);
    close(fd);
    if (rc == NY_OK) {
        if (nvid > c->nvid) {
            rc = ny_coll_map_grow(c, nvid);
            if (rc == NY_OK) c->nvid = nvid;
        }
        if (rc == NY_OK) rc = ny_coll_rebuild_freelist(c);
    }
    return rc;
}

/* ===== manifest ======================================================== */

static int read_manifest(const ny_collection *c, uint64_t *lsn, int *exists)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/CHECKPOINT", c->dir);
    *exists = 0;
    *lsn = 0;
    char *s;
    int rc = ny_io_read_file(path, &s, NULL);
    if (rc == NY_ENOTFOUND) return NY_OK;
    if (rc != NY_OK) return rc;
    json_error_t err;
    json_t *j = json_loads(s, 0, &err);
    free(s);
    json_t *l = json_object_get(j, "lsn");
    if (!json_is_integer(l) || json_integer_value(l) < 0) {
        json_decref(j);
        return ny_error(NY_ECORRUPT, "%s: malformed checkpoint manifest", path);
    }
    *lsn = (uint64_t)json_integer_value(l);
    *exists = 1;
    json_decref(j);
    return NY_OK;
}

static int write_manifest(const char *dir, uint64_t lsn)
{
    char path[4096], body[256];
    snprintf(path, sizeof path, "%s/CHECKPOINT", dir);
    int n = snprintf(body, sizeof body,
                     "{\"lsn\": %" PRIu64 ", \"index\": \"index-%" PRIu64 ".hnsw\", \"points\": \"points-%" PRIu64 ".dat\"}\n",
                     lsn, lsn, lsn);
    return ny_io_write_atomic(path, body, (size_t)n);
}

/* Removes checkpoint files other than those of `keep` and stray temps. */
static void remove_stale(const ny_collection *c, uint64_t keep)
{
    char keep_i[64], keep_p[64], keep_q[80];
    snprintf(keep_i, sizeof keep_i, "index-%" PRIu64 ".hnsw", keep);
    snprintf(keep_p, sizeof keep_p, "points-%" PRIu64 ".dat", keep);
    snprintf(keep_q, sizeof keep_q, "%s.quant", keep_i); /* ny_hnsw_save's quantization file */
    DIR *d = opendir(c->dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        int ours = (!strncmp(n, "index-", 6) || !strncmp(n, "points-", 7) || strstr(n, ".tmp"));
        if (!ours || !strcmp(n, keep_i) || !strcmp(n, keep_p) || !strcmp(n, keep_q)) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", c->dir, n);
        unlink(path);
    }
    closedir(d);
}

static int new_index(ny_collection *c)
{
    ny_hnsw_params hp;
    ny_hnsw_params_init(&hp, c->dim, c->metric);
    if (c->cfg.m >= 2) hp.m = c->cfg.m;
    hp.ef_construction = c->cfg.ef_construct;
    hp.capacity = 1024;
    int rc = ny_hnsw_new(&hp, &c->index);
    return rc ? rc : ny_coll_quant_sync(c);
}

int ny_persist_load(ny_collection *c)
{
    uint64_t lsn;
    int exists;
    int rc = read_manifest(c, &lsn, &exists);
    if (rc != NY_OK) return rc;
    if (!exists) {
        remove_stale(c, UINT64_MAX);
        c->ckpt_lsn = 0;
        return new_index(c);
    }
    remove_stale(c, lsn);
    char ip[4096], pp[4096];
    cpath(c, ip, sizeof ip, "index", lsn);
    cpath(c, pp, sizeof pp, "points", lsn);
    /* On-disk vectors / graph are moved to their files while the index
     * file is read, so that loading never holds them all in RAM. */
    ny_hnsw_load_opts lo = {.disk_dir = c->dir};
    ny_coll_disk_flags(c, &lo.vectors_on_disk, &lo.graph_on_disk);
    rc = ny_hnsw_load_ex(ip, &lo, &c->index);
    if (rc != NY_OK) return rc;
    ny_hnsw_stats st;
    ny_hnsw_get_stats(c->index, &st);
    if (st.dim != c->dim || st.metric != c->metric)
        return ny_error(NY_ECORRUPT, "%s: index dimension/metric do not match the collection config", ip);
    if ((rc = ny_coll_quant_sync(c)) != NY_OK) return rc;
    if ((rc = ny_coll_vectors_sync(c)) != NY_OK) return rc;
    rc = load_points(c, pp, lsn);
    if (rc != NY_OK) return rc;
    struct stat s1, s2;
    c->ckpt_bytes = (stat(ip, &s1) == 0 ? (uint64_t)s1.st_size : 0) + (stat(pp, &s2) == 0 ? (uint64_t)s2.st_size : 0);
    c->ckpt_lsn = lsn;
    return NY_OK;
}

/* ===== checkpoint ====================================================== */

/* ckpt_mu held.  Writes a checkpoint at the current LSN (unless one exists
 * already at that LSN). */
static int do_checkpoint(ny_collection *c)
{
    if (atomic_load(&c->dropped)) return ny_error(NY_ECLOSED, "collection %s was dropped", c->name);
    pthread_mutex_lock(&c->wmu);
    uint64_t L;
    int rc = NY_OK;
    /* The index file must hold every vector: index what is
     * pending first (live upserts and recovery both leave vectors there). */
    while (rc == NY_OK && atomic_load(&c->npend_a)) {
        int r = ny_coll_pending_drain(c, 4096);
        if (r < 0) rc = r;
    }
    if (rc != NY_OK) {
        pthread_mutex_unlock(&c->wmu);
        return rc;
    }
    rc = ny_wal_rotate(c->wal, &L);
    int have;
    uint64_t cur;
    if (rc == NY_OK) rc = read_manifest(c, &cur, &have);
    if (rc != NY_OK || (have && cur == L)) {
        pthread_mutex_unlock(&c->wmu);
        if (rc == NY_OK) rc = ny_wal_truncate_upto(c->wal, L);
        return rc;
    }
    char ip[4096], pp[4096];
    cpath(c, ip, sizeof ip, "index", L);
    cpath(c, pp, sizeof pp, "points", L);
    rc = ny_hnsw_save(c->index, ip);
    if (rc == NY_OK) rc = write_points(c, pp, L);
    if (rc == NY_OK) rc = ny_io_sync_dir(c->dir);
    if (rc == NY_OK) rc = write_manifest(c->dir, L);
    uint64_t old = c->ckpt_lsn;
    if (rc == NY_OK) {
        struct stat s1, s2;
        c->ckpt_bytes = (stat(ip, &s1) == 0 ? (uint64_t)s1.st_size : 0) + (stat(pp, &s2) == 0 ? (uint64_t)s2.st_size : 0);
        c->ckpt_lsn = L;
        c->ckpt_time = ny_now();
        atomic_store(&c->vecs_since_ckpt, 0);
        /* vectors.on_disk / hnsw_config.on_disk: rows and links indexed since
         * the last time go to the mapped files. */
        if (ny_coll_vectors_sync(c) != NY_OK)
            fprintf(stderr, "nearly: collection %s: vectors/graph stay in RAM: %s\n", c->name, ny_errmsg());
    } else {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ny_errmsg());
        if (!have || cur != L) {
            unlink(ip);
            unlink(pp);
        }
        rc = ny_error(rc, "checkpoint of %s failed: %s (no data lost: the log still holds every write)", c->name, msg);
    }
    pthread_mutex_unlock(&c->wmu);
    if (rc != NY_OK) return rc;
    (void)old;
    remove_stale(c, L);
    return ny_wal_truncate_upto(c->wal, L);
}

int ny_persist_checkpoint(ny_collection *c)
{
    pthread_mutex_lock(&c->ckpt_mu);
    int rc = do_checkpoint(c);
    pthread_mutex_unlock(&c->ckpt_mu);
    return rc;
}

int ny_persist_maybe_checkpoint(ny_collection *c)
{
    if (atomic_load(&c->closed)) return NY_OK;
    pthread_mutex_lock(&c->ckpt_mu);
    uint64_t bytes = ny_wal_bytes(c->wal);
    /* Recovery replays the log tail, re-indexing every vector in it, and
     * index inserts are the slow part; so the budget counts vectors: at
     * most max(20000, points/16) since the last checkpoint (a few seconds
     * of re-indexing), and at most 256 MiB of log.  Each checkpoint costs
     * about one write of the index, amortised over that many inserts. */
    uint64_t vecs = atomic_load(&c->vecs_since_ckpt);
    pthread_rwlock_rdlock(&c->rw);
    uint64_t vbudget = c->count / 16;
    pthread_rwlock_unlock(&c->rw);
    if (vbudget < 20000) vbudget = 20000;
    int due = vecs > vbudget || bytes > (256u << 20) || (bytes > (1u << 20) && ny_now() - c->ckpt_time > 600.0);
    int rc = due && !atomic_load(&c->closed) ? do_checkpoint(c) : NY_OK;
    pthread_mutex_unlock(&c->ckpt_mu);
    return rc;
}

/* ===== snapshots ======================================================= */

static int copy_section(ny_bufw *w, const char *name, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "opening %s", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return ny_error_errno(NY_EIO, "stat %s", path);
    }
    uint32_t nl = (uint32_t)strlen(name);
    ny_bufw_u32(w, nl);
    ny_bufw_put(w, name, nl);
    ny_bufw_u64(w, (uint64_t)st.st_size);
    char *buf = malloc(1 << 20);
    int rc = buf ? NY_OK : ny_error(NY_ENOMEM, "out of memory");
    uint64_t left = (uint64_t)st.st_size;
    off_t off = 0;
    while (rc == NY_OK && left) {
        size_t k = left < (1u << 20) ? (size_t)left : (1u << 20);
        rc = ny_io_pread(fd, buf, k, off, path);
        if (rc != NY_OK) break;
        ny_bufw_put(w, buf, k);
        if (w->rc != NY_OK) rc = w->rc;
        left -= k;
        off += (off_t)k;
    }
    free(buf);
    close(fd);
    return rc;
}

int ny_persist_snapshot(ny_collection *c, const char *path)
{
    if (!path || !*path) return ny_error(NY_EINVAL, "snapshot path is empty");
    pthread_mutex_lock(&c->ckpt_mu);
    int rc = do_checkpoint(c);
    uint64_t L = c->ckpt_lsn;
    int have = 0;
    uint64_t cur = 0;
    if (rc == NY_OK) rc = read_manifest(c, &cur, &have);
    if (rc == NY_OK && !have) {
        /* Empty collection that never logged anything: write the files. */
        pthread_mutex_lock(&c->wmu);
        char ip[4096], pp[4096];
        cpath(c, ip, sizeof ip, "index", 0);
        cpath(c, pp, sizeof pp, "points", 0);
        rc = ny_hnsw_save(c->index, ip);
        if (rc == NY_OK) rc = write_points(c, pp, 0);
        if (rc == NY_OK) rc = write_manifest(c->dir, 0);
        pthread_mutex_unlock(&c->wmu);
        L = 0;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = -1;
    if (rc == NY_OK) {
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) rc = ny_error_errno(ny_rc_from_errno(errno), "creating snapshot %s", tmp);
    }
    ny_bufw w;
    int winit = 0;
    if (rc == NY_OK) {
        rc = ny_bufw_init(&w, fd, tmp);
        winit = rc == NY_OK;
    }
    if (rc == NY_OK) {
        ny_bufw_put(&w, SNAP_MAGIC, 8);
        ny_bufw_u64(&w, L);
        ny_bufw_u32(&w, 3);
        char p[4096];
        snprintf(p, sizeof p, "%s/config.json", c->dir);
        pthread_mutex_lock(&c->cfg_mu);
        rc = copy_section(&w, "config.json", p);
        pthread_mutex_unlock(&c->cfg_mu);
        cpath(c, p, sizeof p, "points", L);
        if (rc == NY_OK) rc = copy_section(&w, "points", p);
        cpath(c, p, sizeof p, "index", L);
        if (rc == NY_OK) rc = copy_section(&w, "index", p);
        int rc2;
        uint64_t d = ny_bufw_finish(&w, &rc2);
        if (rc == NY_OK) rc = rc2;
        unsigned char tail[16];
        memcpy(tail, &d, 8);
        memcpy(tail + 8, SNAP_END, 8);
        rc2 = ny_bufw_raw_tail(&w, tail, 16);
        winit = 0;
        if (rc == NY_OK) rc = rc2;
    }
    if (winit) ny_bufw_raw_tail(&w, "", 0);
    pthread_mutex_unlock(&c->ckpt_mu);
    if (rc == NY_OK) rc = ny_io_sync(fd, 0, tmp);
    if (fd >= 0) close(fd);
    if (rc == NY_OK && rename(tmp, path) != 0) rc = ny_error_errno(ny_rc_from_errno(errno), "renaming %s", tmp);
    if (rc == NY_OK) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = 0;
            rc = ny_io_sync_dir(*dir ? dir : "/");
        } else {
            rc = ny_io_sync_dir(".");
        }
    } else if (fd >= 0) {
        unlink(tmp);
    }
    return rc;
}

int ny_persist_extract_snapshot(const char *path, const char *dir)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ny_error_errno(ny_rc_from_errno(errno), "opening snapshot %s", path);
    struct stat st;
    int rc = NY_OK;
    if (fstat(fd, &st) != 0) rc = ny_error_errno(NY_EIO, "stat %s", path);
    uint64_t size = rc == NY_OK ? (uint64_t)st.st_size : 0;
    if (rc == NY_OK && size < 8 + 8 + 4 + 16) rc = ny_error(NY_ECORRUPT, "%s: too small to be a snapshot", path);
    /* Pass 1: verify the checksum over the whole file. */
    ny_bufr r;
    if (rc == NY_OK) rc = ny_bufr_init(&r, fd, path);
    if (rc != NY_OK) {
        close(fd);
        return rc;
    }
    char *buf = malloc(1 << 20);
    if (!buf) rc = ny_error(NY_ENOMEM, "out of memory");
    uint64_t left = size - 16;
    while (rc == NY_OK && left) {
        size_t k = left < (1u << 20) ? (size_t)left : (1u << 20);
        rc = ny_bufr_get(&r, buf, k);
        left -= k;
    }
    if (rc == NY_OK) {
        uint64_t want = ny_bufr_digest(&r), got;
        char end[8];
        rc = ny_bufr_raw(&r, &got, 8);
        if (rc == NY_OK) rc = ny_bufr_raw(&r, end, 8);
        if (rc == NY_OK && memcmp(end, SNAP_END, 8) != 0) rc = ny_error(NY_ECORRUPT, "%s: not a Nearly snapshot (bad trailer)", path);
        if (rc == NY_OK && got != want) rc = ny_error(NY_ECORRUPT, "%s: snapshot checksum mismatch (the file is damaged)", path);
    }
    ny_bufr_free(&r);
    /* Pass 2: extract. */
    uint64_t lsn = 0;
    uint32_t nsec = 0;
    char magic[8];
    if (rc == NY_OK) rc = ny_io_pread(fd, magic, 8, 0, path);
    if (rc == NY_OK && memcmp(magic, SNAP_MAGIC, 8) != 0) rc = ny_error(NY_ECORRUPT, "%s: not a Nearly snapshot", path);
    if (rc == NY_OK) rc = ny_io_pread(fd, &lsn, 8, 8, path);
    if (rc == NY_OK) rc = ny_io_pread(fd, &nsec, 4, 16, path);
    if (rc == NY_OK) rc = ny_io_mkdir(dir);
    off_t off = 20;
    int seen = 0;
    for (uint32_t s = 0; rc == NY_OK && s < nsec; s++) {
        uint32_t nl;
        char name[64];
        uint64_t sz;
        rc = ny_io_pread(fd, &nl, 4, off, path);
        if (rc == NY_OK && (nl == 0 || nl >= sizeof name)) rc = ny_error(NY_ECORRUPT, "%s: bad section name", path);
        if (rc == NY_OK) rc = ny_io_pread(fd, name, nl, off + 4, path);
        if (rc != NY_OK) break;
        name[nl] = 0;
        rc = ny_io_pread(fd, &sz, 8, off + 4 + nl, path);
        off += 4 + nl + 8;
        if (rc == NY_OK && (uint64_t)off + sz > size - 16) rc = ny_error(NY_ECORRUPT, "%s: section %s overruns the file", path, name);
        if (rc != NY_OK) break;
        char out[4200];
        if (!strcmp(name, "config.json")) snprintf(out, sizeof out, "%s/config.json", dir), seen |= 1;
        else if (!strcmp(name, "points")) snprintf(out, sizeof out, "%s/points-%" PRIu64 ".dat", dir, lsn), seen |= 2;
        else if (!strcmp(name, "index")) snprintf(out, sizeof out, "%s/index-%" PRIu64 ".hnsw", dir, lsn), seen |= 4;
        else {
            rc = ny_error(NY_ECORRUPT, "%s: unknown section %s", path, name);
            break;
        }
        int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (ofd < 0) {
            rc = ny_error_errno(ny_rc_from_errno(errno), "creating %s", out);
            break;
        }
        uint64_t rem = sz;
        while (rc == NY_OK && rem) {
            size_t k = rem < (1u << 20) ? (size_t)rem : (1u << 20);
            rc = ny_io_pread(fd, buf, k, off, path);
            if (rc == NY_OK) rc = ny_io_write(ofd, buf, k, out);
            rem -= k;
            off += (off_t)k;
        }
        if (rc == NY_OK) rc = ny_io_sync(ofd, 0, out);
        close(ofd);
    }
    if (rc == NY_OK && seen != 7) rc = ny_error(NY_ECORRUPT, "%s: snapshot is missing a section", path);
    if (rc == NY_OK) rc = write_manifest(dir, lsn);
    if (rc == NY_OK) {
        char w[4200];
        snprintf(w, sizeof w, "%s/wal", dir);
        rc = ny_io_mkdir(w);
    }
    if (rc == NY_OK) rc = ny_io_sync_dir(dir);
    free(buf);
    close(fd);
    return rc;
}
