/*
 * storage_bench.c -- figures for the storage layer:
 *   1. durable upsert throughput, 768-d, batches of 256 (wait=1), and the
 *      p50/p99 batch latency;
 *   2. ingest rate of 128-d vectors into a persisted, indexed collection
 *      (durable batches of 256, index built inline), in a child process
 *      that is then SIGKILLed (a crash right after the last acknowledged
 *      write);
 *   3. recovery time of that collection (checkpoint + log tail), and the
 *      reopen time after a clean close (checkpoint only);
 *   4. disk bytes per point against raw vector bytes.
 *
 *   storage_bench [--n768 N] [--n128 N] [--dir D] [--ef N] [--m N]
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nearly.h"
#include "storage/fileio.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rs = 42;
static float frand(void)
{
    uint64_t z = (rs += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct ingest_res {
    double secs, cpu, p50, p99;
    size_t n;
} ingest_res;

/* Upserts n random dim-d points in durable batches of 256. */
static int ingest(ny_collection *c, size_t dim, size_t n, int with_payload, ingest_res *res)
{
    enum { B = 256 };
    float *vecs = malloc((size_t)B * dim * sizeof(float));
    ny_point pts[B];
    char pl[B][48];
    size_t nb = (n + B - 1) / B;
    double *lat = malloc(nb * sizeof *lat);
    double t0 = now(), c0 = cpu();
    for (size_t b = 0; b < nb; b++) {
        size_t m = n - b * B < B ? n - b * B : B;
        for (size_t i = 0; i < m * dim; i++) vecs[i] = frand();
        for (size_t i = 0; i < m; i++) {
            memset(&pts[i].id, 0, sizeof pts[i].id);
            pts[i].id.num = b * B + i;
            pts[i].vector = vecs + i * dim;
            snprintf(pl[i], sizeof pl[i], "{\"i\": %zu, \"g\": %zu}", b * B + i, (b * B + i) % 10);
            pts[i].payload_json = with_payload ? pl[i] : NULL;
        }
        double t = now();
        if (ny_collection_upsert(c, pts, m, 1) != NY_OK) {
            fprintf(stderr, "upsert: %s\n", ny_errmsg());
            return -1;
        }
        lat[b] = now() - t;
    }
    res->secs = now() - t0;
    res->cpu = cpu() - c0;
    res->n = n;
    qsort(lat, nb, sizeof *lat, cmp_d);
    res->p50 = lat[nb / 2];
    res->p99 = lat[(size_t)((double)(nb - 1) * 0.99)];
    free(lat);
    free(vecs);
    return 0;
}

/* Waits until the collection reports status green (the background indexer
 * has emptied the pending set). */
static void wait_green(ny_collection *c)
{
    for (;;) {
        char *js = NULL;
        if (ny_collection_info_json(c, &js) != NY_OK) return;
        int green = strstr(js, "\"status\":\"green\"") != NULL;
        ny_free(js);
        if (green) return;
        usleep(20000);
    }
}

static char cfgbuf[512];
static const char *cfg(size_t dim, const char *dist, int m, int ef)
{
    snprintf(cfgbuf, sizeof cfgbuf, "{\"vectors\": {\"size\": %zu, \"distance\": \"%s\"}, \"hnsw_config\": {\"m\": %d, \"ef_construct\": %d}}",
             dim, dist, m, ef);
    return cfgbuf;
}

int main(int argc, char **argv)
{
    size_t n768 = 20000, n128 = 1000000;
    int m = 16, ef = 100;
    char dir[512] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n768") && i + 1 < argc) n768 = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--n128") && i + 1 < argc) n128 = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) snprintf(dir, sizeof dir, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--m") && i + 1 < argc) m = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ef") && i + 1 < argc) ef = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--n768 N] [--n128 N] [--dir D] [--m N] [--ef N]\n", argv[0]);
            return 2;
        }
    }
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/nearly-storage-bench-XXXXXX");
        if (!mkdtemp(dir)) return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("storage bench: dir %s, %d CPUs, hnsw m=%d ef_construct=%d\n", dir, ny_cpu_count(), m, ef);

    /* ---- 1. 768-d durable upserts */
    if (n768) {
        ny_db *db;
        if (ny_db_open(dir, &db) != NY_OK || ny_db_create_collection(db, "b768", cfg(768, "Cosine", m, ef)) != NY_OK) {
            fprintf(stderr, "%s\n", ny_errmsg());
            return 1;
        }
        ny_collection *c;
        ny_db_get_collection(db, "b768", &c);
        ingest_res r;
        double t_ing = now();
        if (ingest(c, 768, n768, 1, &r) != 0) return 1;
        wait_green(c);
        double t_idx = now() - t_ing;
        printf("768-d upsert (durable, batches of 256, payload): %zu points in %.2f s = %.0f points/s; "
               "batch latency p50 %.1f ms, p99 %.1f ms; CPU %.2f s (%.0f points per CPU-second)\n",
               r.n, r.secs, (double)r.n / r.secs, r.p50 * 1e3, r.p99 * 1e3, r.cpu, (double)r.n / r.cpu);
        printf("768-d fully indexed (status green) %.2f s after the first upsert (%.0f points/s end to end)\n", t_idx,
               (double)r.n / t_idx);
        ny_collection_checkpoint(c);
        char cd[700];
        snprintf(cd, sizeof cd, "%s/collections/b768", dir);
        uint64_t bytes = ny_io_du(cd);
        printf("768-d disk: %.0f bytes/point after checkpoint (raw vector %d bytes, ratio %.2f)\n",
               (double)bytes / (double)n768, 768 * 4, (double)bytes / (double)n768 / (768 * 4));
        ny_collection_release(c);
        ny_db_drop_collection(db, "b768");
        ny_db_close(db);
    }

    /* ---- 2. 128-d ingest in a child that is killed afterwards */
    if (n128) {
        int fds[2];
        if (pipe(fds) != 0) return 1;
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            close(fds[0]);
            ny_db *db;
            if (ny_db_open(dir, &db) != NY_OK || ny_db_create_collection(db, "b128", cfg(128, "Euclid", m, ef)) != NY_OK) {
                fprintf(stderr, "%s\n", ny_errmsg());
                _exit(1);
            }
            ny_collection *c;
            ny_db_get_collection(db, "b128", &c);
            ingest_res r;
            double t_ing = now();
            if (ingest(c, 128, n128, 0, &r) != 0) _exit(1);
            printf("128-d ingest (durable, batches of 256, indexed in the background, checkpoints included): "
                   "%zu points in %.1f s = %.0f points/s; batch latency p50 %.1f ms, p99 %.1f ms; "
                   "CPU %.1f s (%.0f points per CPU-second)\n",
                   r.n, r.secs, (double)r.n / r.secs, r.p50 * 1e3, r.p99 * 1e3, r.cpu, (double)r.n / r.cpu);
            wait_green(c);
            double t_idx = now() - t_ing;
            printf("128-d fully indexed (status green) %.2f s after the first upsert (%.0f points/s end to end)\n", t_idx,
                   (double)r.n / t_idx);
            fflush(stdout);
            if (write(fds[1], "x", 1) != 1) _exit(1);
            pause();
            _exit(0);
        }
        close(fds[1]);
        char x;
        if (read(fds[0], &x, 1) != 1) {
            fprintf(stderr, "ingest child failed\n");
            return 1;
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        char cd[700], wd[800];
        snprintf(cd, sizeof cd, "%s/collections/b128", dir);
        snprintf(wd, sizeof wd, "%s/wal", cd);
        printf("after SIGKILL: collection %.1f MB on disk, of which log %.1f MB\n", ny_io_du(cd) / 1e6, ny_io_du(wd) / 1e6);
        double t0 = now(), c0 = cpu();
        ny_db *db;
        if (ny_db_open(dir, &db) != NY_OK) {
            fprintf(stderr, "reopen: %s\n", ny_errmsg());
            return 1;
        }
        ny_collection *c;
        if (ny_db_get_collection(db, "b128", &c) != NY_OK) {
            fprintf(stderr, "reopen: %s\n", ny_errmsg());
            return 1;
        }
        double t_rec = now() - t0, c_rec = cpu() - c0;
        size_t cnt = 0;
        ny_collection_count(c, NULL, &cnt);
        printf("recovery after crash (last checkpoint + log tail replay): %.2f s (CPU %.2f s), %zu points\n", t_rec, c_rec, cnt);
        /* search sanity */
        float q[128];
        for (int d = 0; d < 128; d++) q[d] = frand();
        ny_search_params sp = {.vector = q, .limit = 10};
        ny_records rr;
        double ts = now();
        int src = ny_collection_search(c, &sp, &rr);
        printf("search after recovery: rc %d, %zu results in %.2f ms\n", src, rr.n, (now() - ts) * 1e3);
        if (src == NY_OK) ny_records_free(&rr);
        /* The replayed tail is indexed in the background: time until green. */
        for (;;) {
            char *js = NULL;
            if (ny_collection_info_json(c, &js) != NY_OK) break;
            int green = strstr(js, "\"status\":\"green\"") != NULL;
            ny_free(js);
            if (green) break;
            usleep(50000);
        }
        printf("background indexing of the replayed tail done %.2f s after reopen started\n", now() - t0);
        ny_collection_release(c);
        t0 = now();
        ny_db_close(db); /* final checkpoint */
        printf("clean close (checkpoint): %.2f s\n", now() - t0);
        uint64_t bytes = ny_io_du(cd);
        printf("128-d disk: %.0f bytes/point after checkpoint (raw vector 512 bytes, ratio %.2f)\n",
               (double)bytes / (double)n128, (double)bytes / (double)n128 / 512.0);
        t0 = now();
        c0 = cpu();
        if (ny_db_open(dir, &db) != NY_OK) return 1;
        if (ny_db_get_collection(db, "b128", &c) != NY_OK) return 1;
        printf("reopen after clean close (checkpoint only): %.2f s (CPU %.2f s)\n", now() - t0, cpu() - c0);
        ny_collection_release(c);
        ny_db_drop_collection(db, "b128");
        ny_db_close(db);
    }
    /* Baseline: the index alone, same data size, same threads. */
    if (n128) {
        size_t nb = n128 < 100000 ? n128 : 100000;
        ny_hnsw_params hp;
        ny_hnsw_params_init(&hp, 128, NY_L2);
        hp.m = (size_t)m;
        hp.ef_construction = (size_t)ef;
        ny_hnsw *h;
        if (ny_hnsw_new(&hp, &h) == NY_OK) {
            float *v = malloc(256 * 128 * sizeof(float));
            double t0 = now(), c0 = cpu();
            for (size_t b = 0; b < nb; b += 256) {
                size_t k = nb - b < 256 ? nb - b : 256;
                for (size_t i = 0; i < k * 128; i++) v[i] = frand();
                ny_hnsw_add_batch(h, NULL, (uint32_t)b, v, k, 0);
            }
            printf("baseline: ny_hnsw_add_batch alone, %zu x 128-d in batches of 256: %.0f points/s (%.0f per CPU-second)\n",
                   nb, (double)nb / (now() - t0), (double)nb / (cpu() - c0));
            free(v);
            ny_hnsw_free(h);
        }
    }
    printf("peak RSS %.0f MB\n", ny_peak_rss() / 1e6);
    return 0;
}
