/* test_wal.c -- write-ahead log: replay, torn and corrupt tails, rotation,
 * truncation, group commit, injected write failures. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "storage/fileio.h"
#include "storage/wal.h"
#include "t.h"

typedef struct rec {
    uint64_t lsn;
    uint32_t type;
    size_t len;
    unsigned char body[64];
} rec;

typedef struct sink {
    rec r[4096];
    size_t n;
} sink;

static int collect(void *ctx, uint64_t lsn, uint32_t type, const void *body, size_t len)
{
    sink *s = ctx;
    if (s->n < 4096) {
        s->r[s->n].lsn = lsn;
        s->r[s->n].type = type;
        s->r[s->n].len = len;
        memcpy(s->r[s->n].body, body, len < 64 ? len : 64);
        s->n++;
    }
    return NY_OK;
}

static void body_of(uint64_t i, unsigned char *b, size_t *len)
{
    *len = 8 + i % 40;
    for (size_t k = 0; k < *len; k++) b[k] = (unsigned char)(i * 31 + k);
}

static void write_n(ny_wal *w, uint64_t n)
{
    for (uint64_t i = 1; i <= n; i++) {
        unsigned char b[64];
        size_t len;
        body_of(i, b, &len);
        uint64_t lsn;
        CHECK_RC(ny_wal_append(w, (uint32_t)(i % 7), b, len, &lsn), NY_OK);
        CHECK(lsn == i);
    }
}

static int check_replay(const sink *s, uint64_t from, uint64_t to)
{
    if (s->n != to - from + 1) return 0;
    for (uint64_t i = from; i <= to; i++) {
        const rec *r = &s->r[i - from];
        unsigned char b[64];
        size_t len;
        body_of(i, b, &len);
        if (r->lsn != i || r->type != i % 7 || r->len != len || memcmp(r->body, b, len)) return 0;
    }
    return 1;
}

static char seg0[512];

static const char *first_segment(const char *dir)
{
    snprintf(seg0, sizeof seg0, "%s/%020d.log", dir, 1);
    return seg0;
}

TEST(wal_replay_all)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/wal", t_tmpdir());
    ny_wal *w;
    REQUIRE(ny_wal_open(dir, 0, NULL, NULL, &w, NULL) == NY_OK);
    write_n(w, 500);
    CHECK(ny_wal_last_lsn(w) == 500);
    CHECK_RC(ny_wal_sync(w, 500), NY_OK);
    CHECK_RC(ny_wal_close(w), NY_OK);
    static sink s;
    s.n = 0;
    ny_wal_open_info info;
    REQUIRE(ny_wal_open(dir, 0, collect, &s, &w, &info) == NY_OK);
    CHECK(check_replay(&s, 1, 500));
    CHECK(info.replayed == 500 && !info.cut);
    /* Appends continue after the last record. */
    uint64_t lsn;
    CHECK_RC(ny_wal_append(w, 1, "x", 1, &lsn), NY_OK);
    CHECK(lsn == 501);
    ny_wal_close(w);
    /* Replay after a checkpoint at 200 skips what it covers. */
    s.n = 0;
    REQUIRE(ny_wal_open(dir, 200, collect, &s, &w, &info) == NY_OK);
    CHECK(s.n == 301 && s.r[0].lsn == 201 && info.skipped == 200);
    ny_wal_close(w);
}

TEST(wal_torn_tail_is_cut)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/wal", t_tmpdir());
    ny_wal *w;
    REQUIRE(ny_wal_open(dir, 0, NULL, NULL, &w, NULL) == NY_OK);
    write_n(w, 100);
    ny_wal_close(w);
    const char *seg = first_segment(dir);
    struct stat st;
    REQUIRE(stat(seg, &st) == 0);
    /* Cut in the middle of the last record, as a crash during write would. */
    REQUIRE(truncate(seg, st.st_size - 5) == 0);
    static sink s;
    s.n = 0;
    ny_wal_open_info info;
    REQUIRE(ny_wal_open(dir, 0, collect, &s, &w, &info) == NY_OK);
    CHECK(check_replay(&s, 1, 99));
    CHECK(info.cut);
    /* The next append reuses LSN 100 and the file is clean again. */
    uint64_t lsn;
    unsigned char b[64];
    size_t len;
    body_of(100, b, &len);
    CHECK_RC(ny_wal_append(w, 100 % 7, b, len, &lsn), NY_OK);
    CHECK(lsn == 100);
    ny_wal_close(w);
    s.n = 0;
    REQUIRE(ny_wal_open(dir, 0, collect, &s, &w, &info) == NY_OK);
    CHECK(check_replay(&s, 1, 100));
    CHECK(!info.cut);
    ny_wal_close(w);
}

TEST(wal_garbage_and_bitflip)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/wal", t_tmpdir());
    ny_wal *w;
    REQUIRE(ny_wal_open(dir, 0, NULL, NULL, &w, NULL) == NY_OK);
    write_n(w, 50);
    ny_wal_close(w);
    const char *seg = first_segment(dir);
    /* Garbage appended (e.g. preallocated or half-written blocks). */
    int fd = open(seg, O_WRONLY | O_APPEND);
    REQUIRE(fd >= 0);
    unsigned char junk[300];
    for (int i = 0; i < 300; i++) junk[i] = (unsigned char)(i * 7 + 3);
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);
    static sink s;
    s.n = 0;
    ny_wal_open_info info;
    REQUIRE(ny_wal_open(dir, 0, collect, &s, &w, &info) == NY_OK);
    CHECK(check_replay(&s, 1, 50));
    CHECK(info.cut && info.cut_bytes == 300);
    ny_wal_close(w);
    /* A flipped bit in record 40's body: replay stops before it. */
    struct stat st;
    REQUIRE(stat(seg, &st) == 0);
    off_t off = 24;
    for (uint64_t i = 1; i < 40; i++) {
        unsigned char b[64];
        size_t len;
        body_of(i, b, &len);
        off += 24 + (off_t)len;
    }
    fd = open(seg, O_RDWR);
    unsigned char x;
    CHECK(pread(fd, &x, 1, off + 24 + 3) == 1);
    x ^= 0x10;
    CHECK(pwrite(fd, &x, 1, off + 24 + 3) == 1);
    close(fd);
    s.n = 0;
    REQUIRE(ny_wal_open(dir, 0, collect, &s, &w, &info) == NY_OK);
    CHECK(check_replay(&s, 1, 39));
    CHECK(info.cut);
    ny_wal_close(w);
    REQUIRE(stat(seg, &st) == 0);
    CHECK(st.st_size == off);
}

TEST(wal_rotate_truncate)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/wal", t_tmpdir());
    ny_wal *w;
    REQUIRE(ny_wal_open(dir, 0, NULL, NULL, &w, NULL) == NY_OK);
    write_n(w, 30);
    uint64_t last;
    CHECK_RC(ny_wal_rotate(w, &last), NY_OK);
    CHECK(last == 30);
    uint64_t before = ny_wal_bytes(w);
    for (uint64_t i = 31; i <= 60; i++) {
        unsigned char b[64];
        size_t len;
        body_of(i, b, &len);
        uint64_t lsn;
        CHECK_RC(ny_wal_append(w, (uint32_t)(i % 7), b, len, &lsn), NY_OK);
    }
    CHECK(ny_wal_bytes(w) > before);
    CHECK_RC(ny_wal_truncate_upto(w, 30), NY_OK);
    CHECK(access(first_segment(dir), F_OK) != 0);
    ny_wal_close(w);
    static sink s;
    s.n = 0;
    /* Checkpoint at 30: everything after it is still there. */
    REQUIRE(ny_wal_open(dir, 30, collect, &s, &w, NULL) == NY_OK);
    CHECK(check_replay(&s, 31, 60));
    ny_wal_close(w);
    /* A checkpoint older than the first remaining segment means records
     * are missing: refuse rather than silently lose them. */
    CHECK(ny_wal_open(dir, 10, collect, &s, &w, NULL) == NY_ECORRUPT);
}

TEST(wal_write_failure_leaves_log_clean)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/wal", t_tmpdir());
    ny_wal *w;
    REQUIRE(ny_wal_open(dir, 0, NULL, NULL, &w, NULL) == NY_OK);
    write_n(w, 10);
    unsigned char big[4000];
    memset(big, 0xab, sizeof big);
    uint64_t lsn;
    ny_fault_set_write_limit(1000); /* the disk fills up mid-record */
    CHECK_RC(ny_wal_append(w, 3, big, sizeof big, &lsn), NY_EFULL);
    ny_fault_set_write_limit(-1);
    CHECK(strstr(ny_errmsg(), "write-ahead log") != NULL);
    unsigned char b[64];
    size_t len;
    body_of(11, b, &len);
    CHECK_RC(ny_wal_append(w, 11 % 7, b, len, &lsn), NY_OK);
    CHECK(lsn == 11);
    ny_wal_close(w);
    static sink s;
    s.n = 0;
    ny_wal_open_info info;
    REQUIRE(ny_wal_open(dir, 0, collect, &s, &w, &info) == NY_OK);
    CHECK(check_replay(&s, 1, 11));
    CHECK(!info.cut);
    ny_wal_close(w);
}

typedef struct gc_arg {
    ny_wal *w;
    int n;
    int fails;
} gc_arg;

static void *gc_thread(void *p)
{
    gc_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        uint64_t lsn;
        if (ny_wal_append(a->w, 1, &i, sizeof i, &lsn) != NY_OK || ny_wal_sync(a->w, lsn) != NY_OK) a->fails++;
    }
    return NULL;
}

TEST(wal_group_commit_concurrent)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/wal", t_tmpdir());
    ny_wal *w;
    REQUIRE(ny_wal_open(dir, 0, NULL, NULL, &w, NULL) == NY_OK);
    enum { T = 4 };
    int per = (int)t_n(200, 20);
    pthread_t th[T];
    gc_arg a[T];
    for (int t = 0; t < T; t++) {
        a[t] = (gc_arg){w, per, 0};
        pthread_create(&th[t], NULL, gc_thread, &a[t]);
    }
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < T; t++) CHECK(a[t].fails == 0);
    CHECK(ny_wal_last_lsn(w) == (uint64_t)(T * per));
    CHECK(!ny_wal_dirty(w));
    ny_wal_close(w);
    static sink s;
    s.n = 0;
    REQUIRE(ny_wal_open(dir, 0, collect, &s, &w, NULL) == NY_OK);
    CHECK(s.n == (size_t)(T * per));
    ny_wal_close(w);
}

TEST(wal_sync_failure_is_sticky)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/wal", t_tmpdir());
    ny_wal *w;
    REQUIRE(ny_wal_open(dir, 0, NULL, NULL, &w, NULL) == NY_OK);
    uint64_t lsn;
    CHECK_RC(ny_wal_append(w, 1, "a", 1, &lsn), NY_OK);
    ny_fault_set_sync_fail(1);
    CHECK_RC(ny_wal_sync(w, lsn), NY_EIO);
    ny_fault_set_sync_fail(0);
    /* After a failed fsync the page cache state is unknown: refuse writes. */
    CHECK(ny_wal_append(w, 1, "b", 1, &lsn) == NY_EIO);
    ny_wal_close(w);
    static sink s;
    s.n = 0;
    REQUIRE(ny_wal_open(dir, 0, collect, &s, &w, NULL) == NY_OK);
    CHECK(s.n == 1);
    ny_wal_close(w);
}
