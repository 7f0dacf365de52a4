/*
 * db.c -- a data directory of collections.
 *
 *   DIR/LOCK                  flock()ed exclusively by the process that has it open
 *   DIR/aliases.json          {"alias": "collection", ...}
 *   DIR/collections/<name>/   config.json, CHECKPOINT, index-L.hnsw,
 *                             points-L.dat, wal/<lsn>.log
 *
 * Directories whose name starts with '.' under collections/ are work in
 * progress (creation, restore, drop) and are removed at open.  A
 * background thread syncs logs with unsynced writes every 50 ms (the
 * wait=0 durability delay); another checks every second whether a log has
 * grown enough for a checkpoint, so a long checkpoint never delays syncs.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collection/coll.h"
#include "storage/fileio.h"

typedef struct entry {
    char *name;
    ny_collection *c;   /* NULL if it failed to open */
    int err;
    char *errmsg;
} entry;

typedef struct maint_arg {
    struct ny_db *db;
    int checkpoints; /* 0: flush logs every 50 ms; 1: checkpoints every second */
} maint_arg;

struct ny_db {
    char *dir;
    char *cdir;
    int lockfd;
    pthread_mutex_t mu;
    entry *ents;
    size_t nents, capents;
    json_t *aliases;
    pthread_t th, th_ckpt;
    pthread_mutex_t th_mu;
    pthread_cond_t th_cv;
    int stop;
    int th_started, th_ckpt_started;
    maint_arg ma[2];
};



static entry *find(ny_db *db, const char *name)
{
    for (size_t i = 0; i < db->nents; i++)
        if (!strcmp(db->ents[i].name, name)) return &db->ents[i];
    return NULL;
}

static int add_entry(ny_db *db, const char *name, ny_collection *c, int err, const char *msg)
{
    if (db->nents == db->capents) {
        size_t nc = db->capents ? db->capents * 2 : 16;
        entry *ne = realloc(db->ents, nc * sizeof *ne);
        if (!ne) return ny_error(NY_ENOMEM, "out of memory");
        db->ents = ne;
        db->capents = nc;
    }
    entry *e = &db->ents[db->nents];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    e->errmsg = msg ? strdup(msg) : NULL;
    if (!e->name) return ny_error(NY_ENOMEM, "out of memory");
    e->c = c;
    e->err = err;
    db->nents++;
    return NY_OK;
}

static void remove_entry(ny_db *db, entry *e)
{
    free(e->name);
    free(e->errmsg);
    size_t i = (size_t)(e - db->ents);
    memmove(e, e + 1, (db->nents - i - 1) * sizeof *e);
    db->nents--;
}

static void coll_dir(const ny_db *db, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", db->cdir, name);
}

static int save_aliases(ny_db *db)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/aliases.json", db->dir);
    char *s = json_dumps(db->aliases, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!s) return ny_error(NY_ENOMEM, "out of memory");
    int rc = ny_io_write_atomic(path, s, strlen(s));
    free(s);
    return rc;
}

/* ===== maintenance thread ============================================== */

static void *maint_main(void *arg)
{
    maint_arg *ma = arg;
    ny_db *db = ma->db;
    int ckpt = ma->checkpoints;
    pthread_mutex_lock(&db->th_mu);
    while (!db->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (ckpt ? 1000 : 50) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&db->th_cv, &db->th_mu, &ts);
        if (db->stop) break;
        pthread_mutex_unlock(&db->th_mu);
        /* Take references so that collections can be dropped meanwhile. */
        pthread_mutex_lock(&db->mu);
        size_t n = 0;
        ny_collection **cs = malloc((db->nents ? db->nents : 1) * sizeof *cs);
        for (size_t i = 0; cs && i < db->nents; i++)
            if (db->ents[i].c) {
                ny_coll_ref(db->ents[i].c);
                cs[n++] = db->ents[i].c;
            }
        pthread_mutex_unlock(&db->mu);
        for (size_t i = 0; i < n; i++) {
            ny_collection *c = cs[i];
            if (!ckpt && !atomic_load(&c->closed) && ny_wal_dirty(c->wal)) ny_wal_flush(c->wal);
            if (ckpt && ny_persist_maybe_checkpoint(c) != NY_OK) fprintf(stderr, "nearly: %s\n", ny_errmsg());
            ny_collection_release(c);
        }
        free(cs);
        pthread_mutex_lock(&db->th_mu);
    }
    pthread_mutex_unlock(&db->th_mu);
    return NULL;
}

/* ===== open / close ==================================================== */

int ny_db_open(const char *dir, ny_db **out)
{
    if (!out) return ny_error(NY_EINVAL, "out is NULL");
    *out = NULL;
    if (!dir || !*dir) return ny_error(NY_EINVAL, "data directory is empty");
    int rc = ny_io_mkdir(dir);
    if (rc != NY_OK) return rc;
    ny_db *db = calloc(1, sizeof *db);
    if (!db) return ny_error(NY_ENOMEM, "out of memory");
    db->lockfd = -1;
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->th_mu, NULL);
    pthread_cond_init(&db->th_cv, NULL);
    db->dir = strdup(dir);
    db->cdir = malloc(strlen(dir) + 16);
    if (!db->dir || !db->cdir) {
        rc = ny_error(NY_ENOMEM, "out of memory");
        goto fail;
    }
    sprintf(db->cdir, "%s/collections", dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    db->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (db->lockfd < 0) {
        rc = ny_error_errno(ny_rc_from_errno(errno), "opening %s", path);
        goto fail;
    }
    if (flock(db->lockfd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? ny_error(NY_EBUSY, "data directory %s is already open (locked by another handle or process)", dir)
                                  : ny_error_errno(NY_EIO, "locking %s", path);
        goto fail;
    }
    if ((rc = ny_io_mkdir(db->cdir)) != NY_OK) goto fail;
    snprintf(path, sizeof path, "%s/aliases.json", dir);
    char *s;
    rc = ny_io_read_file(path, &s, NULL);
    if (rc == NY_ENOTFOUND) {
        db->aliases = json_object();
        rc = NY_OK;
    } else if (rc == NY_OK) {
        json_error_t err;
        db->aliases = json_loads(s, 0, &err);
        free(s);
        if (!json_is_object(db->aliases)) {
            rc = ny_error(NY_ECORRUPT, "%s: not a JSON object (line %d: %s)", path, err.line, err.text);
            goto fail;
        }
    } else {
        goto fail;
    }
    DIR *d = opendir(db->cdir);
    if (!d) {
        rc = ny_error_errno(NY_EIO, "opening %s", db->cdir);
        goto fail;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char cd[4096];
        coll_dir(db, e->d_name, cd, sizeof cd);
        if (e->d_name[0] == '.') {
            ny_io_rmtree(cd); /* unfinished create / restore / drop */
            continue;
        }
        if (ny_check_name(e->d_name, "collection") != NY_OK) continue;
        ny_collection *c = NULL;
        int orc = ny_coll_open(db, e->d_name, cd, &c);
        if (orc != NY_OK) {
            fprintf(stderr, "nearly: %s (the collection's files are left as they are)\n", ny_errmsg());
            rc = add_entry(db, e->d_name, NULL, orc, ny_errmsg());
        } else {
            rc = add_entry(db, e->d_name, c, NY_OK, NULL);
            if (rc != NY_OK) ny_collection_release(c);
        }
        if (rc != NY_OK) break;
    }
    closedir(d);
    if (rc != NY_OK) goto fail;
    db->ma[0] = (maint_arg){db, 0};
    db->ma[1] = (maint_arg){db, 1};
    if (pthread_create(&db->th, NULL, maint_main, &db->ma[0]) != 0) {
        rc = ny_error(NY_ENOMEM, "cannot start the maintenance thread");
        goto fail;
    }
    db->th_started = 1;
    if (pthread_create(&db->th_ckpt, NULL, maint_main, &db->ma[1]) != 0) {
        rc = ny_error(NY_ENOMEM, "cannot start the checkpoint thread");
        goto fail;
    }
    db->th_ckpt_started = 1;
    *out = db;
    return NY_OK;
fail:
    ny_db_close(db);
    return rc;
}

void ny_db_close(ny_db *db)
{
    if (!db) return;
    pthread_mutex_lock(&db->th_mu);
    db->stop = 1;
    pthread_cond_broadcast(&db->th_cv);
    pthread_mutex_unlock(&db->th_mu);
    if (db->th_started) pthread_join(db->th, NULL);
    if (db->th_ckpt_started) pthread_join(db->th_ckpt, NULL);
    for (size_t i = 0; i < db->nents; i++) {
        if (db->ents[i].c) {
            ny_coll_shutdown(db->ents[i].c, 1);
            ny_collection_release(db->ents[i].c);
        }
        free(db->ents[i].name);
        free(db->ents[i].errmsg);
    }
    free(db->ents);
    json_decref(db->aliases);
    if (db->lockfd >= 0) close(db->lockfd); /* releases the flock */
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->th_mu);
    pthread_cond_destroy(&db->th_cv);
    free(db->dir);
    free(db->cdir);
    free(db);
}

/* ===== collections ===================================================== */

int ny_db_create_collection(ny_db *db, const char *name, const char *config_json)
{
    if (!db) return ny_error(NY_EINVAL, "db is NULL");
    int rc = ny_check_name(name, "collection");
    if (rc != NY_OK) return rc;
    ny_cfg cfg;
    if ((rc = ny_cfg_from_create(config_json, &cfg)) != NY_OK) return rc;
    pthread_mutex_lock(&db->mu);
    char tmp[4096], final[4096], w[4200];
    if (find(db, name)) {
        rc = ny_error(NY_EEXIST, "collection %s already exists", name);
        goto out;
    }
    if (json_object_get(db->aliases, name)) {
        rc = ny_error(NY_EEXIST, "%s is already an alias", name);
        goto out;
    }
    snprintf(tmp, sizeof tmp, "%s/.new-%s", db->cdir, name);
    coll_dir(db, name, final, sizeof final);
    ny_io_rmtree(tmp);
    ny_io_rmtree(final); /* a stale directory not known as a collection */
    rc = ny_io_mkdir(tmp);
    if (rc == NY_OK) rc = ny_cfg_save(&cfg, tmp);
    snprintf(w, sizeof w, "%s/wal", tmp);
    if (rc == NY_OK) rc = ny_io_mkdir(w);
    if (rc == NY_OK) rc = ny_io_sync_dir(tmp);
    if (rc == NY_OK && rename(tmp, final) != 0) rc = ny_error_errno(NY_EIO, "renaming %s", tmp);
    if (rc == NY_OK) rc = ny_io_sync_dir(db->cdir);
    if (rc != NY_OK) {
        ny_io_rmtree(tmp);
        goto out;
    }
    ny_collection *c;
    rc = ny_coll_open(db, name, final, &c);
    if (rc == NY_OK) {
        rc = add_entry(db, name, c, NY_OK, NULL);
        if (rc != NY_OK) ny_collection_release(c);
    }
    if (rc != NY_OK) ny_io_rmtree(final);
out:
    pthread_mutex_unlock(&db->mu);
    ny_cfg_free(&cfg);
    return rc;
}

/* db->mu held.  Removes the collection's directory and entry. */
static int drop_locked(ny_db *db, entry *e, int drop_aliases)
{
    ny_collection *c = e->c;
    char cd[4096], trash[4096];
    coll_dir(db, e->name, cd, sizeof cd);
    snprintf(trash, sizeof trash, "%s/.drop-%s", db->cdir, e->name);
    if (c) {
        pthread_mutex_lock(&c->ckpt_mu);
        atomic_store(&c->dropped, 1);
        pthread_mutex_unlock(&c->ckpt_mu);
        ny_coll_shutdown(c, 0);
    }
    ny_io_rmtree(trash);
    int rc = NY_OK;
    if (rename(cd, trash) != 0) rc = ny_error_errno(NY_EIO, "removing collection directory %s", cd);
    if (rc == NY_OK) ny_io_sync_dir(db->cdir);
    if (rc == NY_OK) ny_io_rmtree(trash);
    if (drop_aliases) {
        const char *k;
        json_t *v;
        void *tmp;
        int changed = 0;
        json_object_foreach_safe(db->aliases, tmp, k, v) {
            if (!strcmp(json_string_value(v), e->name)) {
                json_object_del(db->aliases, k);
                changed = 1;
            }
        }
        if (changed) {
            int r2 = save_aliases(db);
            if (rc == NY_OK) rc = r2;
        }
    }
    if (c) ny_collection_release(c);
    remove_entry(db, e);
    return rc;
}

int ny_db_drop_collection(ny_db *db, const char *name)
{
    if (!db || !name) return ny_error(NY_EINVAL, "db or name is NULL");
    pthread_mutex_lock(&db->mu);
    entry *e = find(db, name);
    int rc = e ? drop_locked(db, e, 1) : ny_error(NY_ENOTFOUND, "collection %.255s does not exist", name);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int ny_db_get_collection(ny_db *db, const char *name, ny_collection **out)
{
    if (!out) return ny_error(NY_EINVAL, "out is NULL");
    *out = NULL;
    if (!db || !name) return ny_error(NY_EINVAL, "db or name is NULL");
    pthread_mutex_lock(&db->mu);
    json_t *a = json_object_get(db->aliases, name);
    const char *real = a ? json_string_value(a) : name;
    entry *e = find(db, real);
    int rc = NY_OK;
    if (!e) rc = ny_error(NY_ENOTFOUND, "collection %.255s does not exist", name);
    else if (!e->c) rc = ny_error(e->err, "%s", e->errmsg ? e->errmsg : "collection failed to open");
    else {
        ny_coll_ref(e->c);
        *out = e->c;
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int ny_db_list_collections(ny_db *db, char **json_out)
{
    if (!db || !json_out) return ny_error(NY_EINVAL, "db or json_out is NULL");
    json_t *arr = json_array();
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->nents; i++) json_array_append_new(arr, json_string(db->ents[i].name));
    pthread_mutex_unlock(&db->mu);
    *json_out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return *json_out ? NY_OK : ny_error(NY_ENOMEM, "out of memory");
}

/* ===== aliases ========================================================= */

int ny_db_alias_create(ny_db *db, const char *alias, const char *collection)
{
    if (!db) return ny_error(NY_EINVAL, "db is NULL");
    int rc = ny_check_name(alias, "alias");
    if (rc != NY_OK) return rc;
    if (!collection) return ny_error(NY_EINVAL, "collection name is NULL");
    pthread_mutex_lock(&db->mu);
    if (!find(db, collection)) rc = ny_error(NY_ENOTFOUND, "collection %.255s does not exist", collection);
    else if (json_object_get(db->aliases, alias)) rc = ny_error(NY_EEXIST, "alias %s already exists", alias);
    else if (find(db, alias)) rc = ny_error(NY_EEXIST, "%s is a collection name", alias);
    else {
        json_object_set_new(db->aliases, alias, json_string(collection));
        rc = save_aliases(db);
        if (rc != NY_OK) json_object_del(db->aliases, alias);
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int ny_db_alias_delete(ny_db *db, const char *alias)
{
    if (!db || !alias) return ny_error(NY_EINVAL, "db or alias is NULL");
    pthread_mutex_lock(&db->mu);
    int rc = NY_OK;
    json_t *old = json_incref(json_object_get(db->aliases, alias));
    if (!old) rc = ny_error(NY_ENOTFOUND, "alias %.255s does not exist", alias);
    else {
        json_object_del(db->aliases, alias);
        rc = save_aliases(db);
        if (rc != NY_OK) json_object_set(db->aliases, alias, old);
    }
    json_decref(old);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int ny_db_alias_rename(ny_db *db, const char *old_alias, const char *new_alias)
{
    if (!db || !old_alias) return ny_error(NY_EINVAL, "db or alias is NULL");
    int rc = ny_check_name(new_alias, "alias");
    if (rc != NY_OK) return rc;
    pthread_mutex_lock(&db->mu);
    json_t *target = json_incref(json_object_get(db->aliases, old_alias));
    if (!target) rc = ny_error(NY_ENOTFOUND, "alias %.255s does not exist", old_alias);
    else if (json_object_get(db->aliases, new_alias)) rc = ny_error(NY_EEXIST, "alias %s already exists", new_alias);
    else if (find(db, new_alias)) rc = ny_error(NY_EEXIST, "%s is a collection name", new_alias);
    else {
        json_object_del(db->aliases, old_alias);
        json_object_set(db->aliases, new_alias, target);
        rc = save_aliases(db);
        if (rc != NY_OK) {
            json_object_del(db->aliases, new_alias);
            json_object_set(db->aliases, old_alias, target);
        }
    }
    json_decref(target);
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int ny_db_alias_list(ny_db *db, const char *collection, char **json_out)
{
    if (!db || !json_out) return ny_error(NY_EINVAL, "db or json_out is NULL");
    json_t *arr = json_array();
    pthread_mutex_lock(&db->mu);
    const char *k;
    json_t *v;
    json_object_foreach(db->aliases, k, v) {
        if (collection && strcmp(collection, json_string_value(v)) != 0) continue;
        json_t *o = json_object();
        json_object_set_new(o, "alias_name", json_string(k));
        json_object_set(o, "collection_name", v);
        json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&db->mu);
    *json_out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return *json_out ? NY_OK : ny_error(NY_ENOMEM, "out of memory");
}

/* ===== snapshots ======================================================= */

int ny_collection_snapshot(ny_collection *c, const char *path)
{
    if (!c) return ny_error(NY_EINVAL, "collection is NULL");
    if (atomic_load(&c->closed)) return ny_error(NY_ECLOSED, "collection %s is closed", c->name);
    return ny_persist_snapshot(c, path);
}

int ny_db_restore_snapshot(ny_db *db, const char *name, const char *path, int overwrite)
{
    if (!db || !path) return ny_error(NY_EINVAL, "db or path is NULL");
    int rc = ny_check_name(name, "collection");
    if (rc != NY_OK) return rc;
    pthread_mutex_lock(&db->mu);
    int exists = find(db, name) != NULL;
    pthread_mutex_unlock(&db->mu);
    if (exists && !overwrite) return ny_error(NY_EEXIST, "collection %s already exists (restore with overwrite to replace it)", name);
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof tmp, "%s/.restore-%s", db->cdir, name);
    coll_dir(db, name, final, sizeof final);
    ny_io_rmtree(tmp);
    rc = ny_persist_extract_snapshot(path, tmp);
    if (rc == NY_OK) {
        /* Load it once before anything existing is touched. */
        ny_collection *probe;
        rc = ny_coll_open(db, name, tmp, &probe);
        if (rc == NY_OK) {
            ny_coll_shutdown(probe, 0);
            ny_collection_release(probe);
        }
    }
    if (rc != NY_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ny_errmsg());
        ny_io_rmtree(tmp);
        return ny_error(rc, "restore from %s failed: %s", path, msg);
    }
    pthread_mutex_lock(&db->mu);
    entry *e = find(db, name);
    if (e && !overwrite) rc = ny_error(NY_EEXIST, "collection %s already exists", name);
    else if (e) rc = drop_locked(db, e, 0);
    if (rc == NY_OK) {
        ny_io_rmtree(final);
        if (rename(tmp, final) != 0) rc = ny_error_errno(NY_EIO, "renaming %s", tmp);
        if (rc == NY_OK) rc = ny_io_sync_dir(db->cdir);
    }
    if (rc == NY_OK) {
        ny_collection *c;
        rc = ny_coll_open(db, name, final, &c);
        if (rc == NY_OK) {
            rc = add_entry(db, name, c, NY_OK, NULL);
            if (rc != NY_OK) ny_collection_release(c);
        }
    }
    pthread_mutex_unlock(&db->mu);
    if (rc != NY_OK) ny_io_rmtree(tmp);
    return rc;
}
