/*
 * crash_test.c -- kills a writing process with SIGKILL at random moments
 * and checks what survives.
 *
 * Each cycle forks a child that opens the data directory (recovering from
 * the previous kill) and runs writer threads (upsert / delete batches with
 * wait=1), a checkpoint thread and a search thread.  Before each write a
 * writer sends "intent" over a pipe, after it returns OK "ack".  The parent
 * SIGKILLs the child at a random moment, drains the pipe, reopens the
 * directory itself and checks:
 *   - every acknowledged write is present with its exact vector and payload,
 *   - nothing acknowledged as deleted is back,
 *   - a write in flight at the kill is all-or-nothing (whole batch),
 *   - count matches, and search finds points by their own vectors.
 *
 *   crash_test [--cycles N] [--ids N] [--min-ms N] [--max-ms N] [--seed N] [--dir D] [--keep]
 *
 * Prints one line per cycle and "RESULT <passed> passed, <failed> failed".
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nearly.h"

#define DIM 32
#define WRITERS 2
#define MAXB 16

enum { M_READY = 1, M_INTENT = 2, M_ACK = 3 };
enum { OP_UPSERT = 1, OP_DELETE = 2 };

typedef struct msg {
    uint8_t kind, thread, op, n;
    uint32_t pad;
    uint64_t salt;
    uint64_t ids[MAXB];
} msg;

static int g_cycles = 20, g_min_ms = 50, g_max_ms = 600, g_keep = 0;
static uint64_t g_ids = 4000, g_seed = 1;
static char g_dir[512];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void vec_of(uint64_t id, uint64_t salt, float *v)
{
    uint64_t s = id * 2654435761u + salt * 40503u + 17;
    for (int d = 0; d < DIM; d++) v[d] = (float)((double)(rnd(&s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static ny_point_id pid(uint64_t n)
{
    ny_point_id p;
    memset(&p, 0, sizeof p);
    p.num = n;
    return p;
}

static const char *CFG = "{\"vectors\": {\"size\": 32, \"distance\": \"Euclid\"}, "
                         "\"hnsw_config\": {\"m\": 12, \"ef_construct\": 64}}";

/* ===== child =========================================================== */

static int g_pipe = -1;
static pthread_mutex_t g_pipe_mu = PTHREAD_MUTEX_INITIALIZER;

static void send_msg(const msg *m)
{
    pthread_mutex_lock(&g_pipe_mu);
    ssize_t w = write(g_pipe, m, sizeof *m);
    pthread_mutex_unlock(&g_pipe_mu);
    if (w != (ssize_t)sizeof *m) _exit(20);
}

typedef struct child_arg {
    ny_collection *c;
    int t;
    uint64_t seed, cycle;
} child_arg;

static void *child_writer(void *p)
{
    child_arg *a = p;
    uint64_t s = a->seed;
    uint64_t per = g_ids / WRITERS;
    for (uint64_t seq = 1;; seq++) {
        msg m;
        memset(&m, 0, sizeof m);
        m.kind = M_INTENT;
        m.thread = (uint8_t)a->t;
        m.op = rnd(&s) % 10 < 7 ? OP_UPSERT : OP_DELETE;
        m.n = (uint8_t)(1 + rnd(&s) % MAXB);
        m.salt = (a->cycle << 32) | ((uint64_t)a->t << 28) | seq;
        for (int i = 0; i < m.n; i++) m.ids[i] = (rnd(&s) % per) * WRITERS + (uint64_t)a->t;
        send_msg(&m);
        int rc;
        if (m.op == OP_UPSERT) {
            ny_point pts[MAXB];
            float vecs[MAXB * DIM];
            char pl[MAXB][64];
            for (int i = 0; i < m.n; i++) {
                vec_of(m.ids[i], m.salt, vecs + i * DIM);
                snprintf(pl[i], sizeof pl[i], "{\"salt\": %llu}", (unsigned long long)m.salt);
                pts[i] = (ny_point){pid(m.ids[i]), vecs + i * DIM, pl[i]};
            }
            rc = ny_collection_upsert(a->c, pts, m.n, 1);
        } else {
            ny_point_id ids[MAXB];
            for (int i = 0; i < m.n; i++) ids[i] = pid(m.ids[i]);
            ny_selector sel = {.ids = ids, .n_ids = m.n};
            rc = ny_collection_delete(a->c, &sel, 1, NULL);
        }
        if (rc != NY_OK) {
            fprintf(stderr, "child: write failed: %s\n", ny_errmsg());
            _exit(21);
        }
        m.kind = M_ACK;
        send_msg(&m);
    }
    return NULL;
}

static void *child_checkpointer(void *p)
{
    child_arg *a = p;
    uint64_t s = a->seed;
    for (;;) {
        usleep((useconds_t)(20000 + rnd(&s) % 200000));
        if (ny_collection_checkpoint(a->c) != NY_OK) {
            fprintf(stderr, "child: checkpoint failed: %s\n", ny_errmsg());
            _exit(22);
        }
    }
    return NULL;
}

static void *child_searcher(void *p)
{
    child_arg *a = p;
    uint64_t s = a->seed;
    for (;;) {
        float q[DIM];
        vec_of(rnd(&s) % g_ids, 0, q);
        ny_search_params sp = {.vector = q, .limit = 10};
        ny_records r;
        if (ny_collection_search(a->c, &sp, &r) != NY_OK) _exit(23);
        ny_records_free(&r);
    }
    return NULL;
}

static void child_main(uint64_t cycle)
{
    ny_db *db;
    if (ny_db_open(g_dir, &db) != NY_OK) {
        fprintf(stderr, "child: open: %s\n", ny_errmsg());
        _exit(10);
    }
    ny_collection *c;
    if (ny_db_get_collection(db, "crash", &c) != NY_OK) {
        if (ny_db_create_collection(db, "crash", CFG) != NY_OK || ny_db_get_collection(db, "crash", &c) != NY_OK) {
            fprintf(stderr, "child: create: %s\n", ny_errmsg());
            _exit(11);
        }
    }
    msg m;
    memset(&m, 0, sizeof m);
    m.kind = M_READY;
    send_msg(&m);
    pthread_t th[WRITERS + 2];
    child_arg args[WRITERS + 2];
    for (int i = 0; i < WRITERS + 2; i++) {
        args[i] = (child_arg){c, i, g_seed * 1000003 + cycle * 7919 + (uint64_t)i, cycle};
        void *(*fn)(void *) = i < WRITERS ? child_writer : i == WRITERS ? child_checkpointer : child_searcher;
        pthread_create(&th[i], NULL, fn, &args[i]);
    }
    for (;;) pause(); /* until SIGKILL */
}

/* ===== parent ========================================================== */

static uint64_t *g_state;          /* per id: 0 = absent, else salt */
static msg g_pending[WRITERS];     /* intent not yet acked */
static int g_has_pending[WRITERS];
static uint64_t g_acked_ops;

static void apply_msg_to(uint64_t *state, const msg *m)
{
    for (int i = 0; i < m->n; i++) state[m->ids[i]] = m->op == OP_UPSERT ? m->salt : 0;
}

static void handle(const msg *m, int *ready)
{
    if (m->kind == M_READY) *ready = 1;
    else if (m->kind == M_INTENT) {
        g_pending[m->thread] = *m;
        g_has_pending[m->thread] = 1;
    } else if (m->kind == M_ACK) {
        apply_msg_to(g_state, m);
        g_has_pending[m->thread] = 0;
        g_acked_ops++;
    }
}

/* Reads whole messages from fd until the deadline (or EOF when deadline <
 * 0), or, with until_ready, until the child has said it is ready. */
static int pump(int fd, double deadline, int *ready, int until_ready)
{
    static unsigned char buf[sizeof(msg) * 64];
    static size_t have = 0;
    for (;;) {
        int to = -1;
        if (deadline >= 0) {
            double left = deadline - now_ms();
            if (left <= 0) return 0;
            to = (int)left + 1;
        }
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, to);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) {
            if (deadline >= 0) return 0;
            continue;
        }
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1; /* EOF: the child is gone */
        have += (size_t)n;
        size_t off = 0;
        while (have - off >= sizeof(msg)) {
            msg m;
            memcpy(&m, buf + off, sizeof m);
            handle(&m, ready);
            off += sizeof m;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        if (until_ready && *ready) return 0;
    }
}

/* Observed state of one id: 0 absent, salt, or UINT64_MAX when the point
 * exists but its vector or payload is not one the writers ever wrote. */
static uint64_t observe(ny_collection *c, uint64_t id)
{
    ny_point_id p = pid(id);
    ny_read_opts o = {.with_payload_json = "true", .with_vector = 1};
    ny_records r;
    if (ny_collection_retrieve(c, &p, 1, &o, &r) != NY_OK) return UINT64_MAX;
    uint64_t res = 0;
    if (r.n == 1) {
        const char *s = r.items[0].payload_json ? strstr(r.items[0].payload_json, "\"salt\":") : NULL;
        res = UINT64_MAX;
        if (s && r.items[0].vector) {
            uint64_t salt = strtoull(s + 7, NULL, 10);
            float v[DIM];
            vec_of(id, salt, v);
            if (!memcmp(v, r.items[0].vector, sizeof v)) res = salt;
        }
    } else if (r.n > 1) {
        res = UINT64_MAX;
    }
    ny_records_free(&r);
    return res;
}

static int verify(int cycle, double *recover_ms, size_t *npoints)
{
    double t0 = now_ms();
    ny_db *db;
    if (ny_db_open(g_dir, &db) != NY_OK) {
        printf("cycle %d: reopen failed: %s\n", cycle, ny_errmsg());
        return 0;
    }
    ny_collection *c;
    if (ny_db_get_collection(db, "crash", &c) != NY_OK) {
        /* killed before the collection was created: nothing can be acked */
        ny_db_close(db);
        *recover_ms = now_ms() - t0;
        return g_acked_ops == 0;
    }
    *recover_ms = now_ms() - t0;
    int ok = 1;
    uint64_t *obs = malloc(g_ids * sizeof *obs);
    for (uint64_t id = 0; id < g_ids; id++) obs[id] = observe(c, id);
    /* In-flight batches: all-or-nothing. */
    uint64_t *alt = malloc(g_ids * sizeof *alt);
    memcpy(alt, g_state, g_ids * sizeof *alt);
    uint8_t *in_flight = calloc(g_ids, 1);
    for (int t = 0; t < WRITERS; t++) {
        if (!g_has_pending[t]) continue;
        const msg *m = &g_pending[t];
        int newer = 0, older = 0;
        uint64_t *after = malloc(g_ids * sizeof *after);
        memcpy(after, g_state, g_ids * sizeof *after);
        apply_msg_to(after, m);
        for (int i = 0; i < m->n; i++) {
            uint64_t id = m->ids[i];
            in_flight[id] = 1;
            alt[id] = after[id];
            if (after[id] == g_state[id]) continue;
            if (obs[id] == after[id]) newer++;
            else if (obs[id] == g_state[id]) older++;
        }
        if (newer && older) {
            printf("cycle %d: a write in flight was applied partly (%d of %d points)\n", cycle, newer, newer + older);
            ok = 0;
        }
        free(after);
    }
    size_t live = 0;
    int shown = 0;
    for (uint64_t id = 0; id < g_ids; id++) {
        uint64_t want = g_state[id];
        int good = obs[id] == want || (in_flight[id] && obs[id] == alt[id]);
        if (!good) {
            ok = 0;
            if (shown++ < 5) {
                if (obs[id] == UINT64_MAX) printf("cycle %d: id %llu has a vector/payload never written\n", cycle, (unsigned long long)id);
                else if (want && !obs[id]) printf("cycle %d: acknowledged point %llu is missing\n", cycle, (unsigned long long)id);
                else if (!want && obs[id]) printf("cycle %d: deleted point %llu is back\n", cycle, (unsigned long long)id);
                else printf("cycle %d: point %llu has salt %llx, acknowledged %llx\n", cycle, (unsigned long long)id,
                            (unsigned long long)obs[id], (unsigned long long)want);
            }
        }
        /* Resolve the model to what is on disk now. */
        if (good) g_state[id] = obs[id];
        live += g_state[id] != 0;
    }
    memset(g_has_pending, 0, sizeof g_has_pending);
    size_t n = 0;
    if (ny_collection_count(c, NULL, &n) != NY_OK || n != live) {
        printf("cycle %d: count %zu, expected %zu\n", cycle, n, live);
        ok = 0;
    }
    *npoints = live;
    /* Search finds points by their own vectors. */
    int tried = 0, found = 0, found_exact = 0;
    for (uint64_t id = (uint64_t)cycle % 7; id < g_ids && tried < 30; id += 37) {
        if (!g_state[id]) continue;
        float q[DIM];
        vec_of(id, g_state[id], q);
        ny_search_params sp = {.vector = q, .limit = 3};
        ny_records r;
        tried++;
        if (ny_collection_search(c, &sp, &r) == NY_OK) {
            found += r.n && r.items[0].id.num == id;
            ny_records_free(&r);
        }
        sp.exact = 1;
        if (ny_collection_search(c, &sp, &r) == NY_OK) {
            found_exact += r.n && r.items[0].id.num == id && r.items[0].score < 1e-4f;
            ny_records_free(&r);
        }
    }
    if (found_exact != tried || found < tried * 9 / 10) {
        printf("cycle %d: search found %d/%d (exact %d/%d)\n", cycle, found, tried, found_exact, tried);
        ok = 0;
    }
    free(obs);
    free(alt);
    free(in_flight);
    ny_collection_release(c);
    ny_db_close(db);
    return ok;
}

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb;
    (void)f;
    (void)ftw;
    return remove(p);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *scale = getenv("NY_TEST_SCALE");
    double sc = scale ? atof(scale) : 1.0;
    if (sc > 0 && sc < 1) {
        g_ids = (uint64_t)(g_ids * sc) < 500 ? 500 : (uint64_t)(g_ids * sc);
        g_max_ms = (int)(g_max_ms * (0.5 + sc));
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cycles") && i + 1 < argc) g_cycles = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ids") && i + 1 < argc) g_ids = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--min-ms") && i + 1 < argc) g_min_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-ms") && i + 1 < argc) g_max_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) g_seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) snprintf(g_dir, sizeof g_dir, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--keep")) g_keep = 1;
        else {
            fprintf(stderr, "usage: %s [--cycles N] [--ids N] [--min-ms N] [--max-ms N] [--seed N] [--dir D] [--keep]\n", argv[0]);
            return 2;
        }
    }
    if (g_ids < WRITERS * 8 || g_cycles < 1 || g_min_ms < 0 || g_max_ms < g_min_ms) {
        fprintf(stderr, "crash_test: bad options\n");
        return 2;
    }
    int own_dir = 0;
    if (!g_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/nearly-crash-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(g_dir)) {
            perror("mkdtemp");
            return 2;
        }
        own_dir = 1;
    }
    g_state = calloc(g_ids, sizeof *g_state);
    printf("crash test: %d cycles, %llu ids, kill after %d..%d ms, dir %s\n", g_cycles, (unsigned long long)g_ids,
           g_min_ms, g_max_ms, g_dir);
    uint64_t rs = g_seed * 31 + 7;
    int passed = 0, failed = 0;
    double t_start = now_ms();
    for (int cycle = 1; cycle <= g_cycles; cycle++) {
        int fds[2];
        if (pipe(fds) != 0) {
            perror("pipe");
            return 2;
        }
        uint64_t acked_before = g_acked_ops;
        pid_t child = fork();
        if (child == 0) {
            close(fds[0]);
            g_pipe = fds[1];
            child_main((uint64_t)cycle);
        }
        close(fds[1]);
        int ready = 0;
        /* Wait for the child to have recovered, then let it run. */
        if (pump(fds[0], now_ms() + 60000, &ready, 1) < 0 && !ready) {
            printf("cycle %d: child died before it was ready\n", cycle);
        }
        double run = g_min_ms + (double)(rnd(&rs) % (uint64_t)(g_max_ms - g_min_ms + 1));
        pump(fds[0], now_ms() + run, &ready, 0);
        kill(child, SIGKILL);
        int st;
        waitpid(child, &st, 0);
        pump(fds[0], -1, &ready, 0); /* drain what it wrote before dying */
        close(fds[0]);
        int killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
        double rec_ms = 0;
        size_t np = 0;
        int ok = killed && verify(cycle, &rec_ms, &np);
        if (!killed) printf("cycle %d: child exited on its own (status %d)\n", cycle, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        printf("%s cycle %d: killed after %.0f ms, %llu writes acknowledged, reopened in %.0f ms, %zu points\n",
               ok ? "ok  " : "FAIL", cycle, run, (unsigned long long)(g_acked_ops - acked_before), rec_ms, np);
        if (ok) passed++;
        else failed++;
    }
    printf("crash test: %llu acknowledged writes over %d cycles in %.1f s\n", (unsigned long long)g_acked_ops, g_cycles,
           (now_ms() - t_start) / 1000.0);
    if (own_dir && !g_keep) nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(g_state);
    printf("RESULT %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
