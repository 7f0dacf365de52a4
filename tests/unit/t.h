/*
 * t.h -- minimal test harness for Nearly's C tests.
 *
 *   TEST(name) { CHECK(x == 1); CHECKF(d < 1e-3, "d=%g", d); }
 *
 * Every TEST in a binary runs in order; a failed CHECK marks the test failed
 * and carries on (REQUIRE stops the test).  The binary prints one line per
 * test and a final "RESULT <passed> passed, <failed> failed" line, read by
 * scripts/run_tests.sh.  Run one test with `./test_x name`.
 */
#ifndef NY_T_H
#define NY_T_H

#include <stdio.h>
#include <stdlib.h>

typedef void (*t_fn)(void);
void t_register(const char *name, t_fn fn);
void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
extern int t_failed_now;
/* Scale factor for test sizes: 1.0 normally, smaller under sanitizers
 * (environment NY_TEST_SCALE). */
double t_scale(void);
/* Scaled size, at least `min`. */
size_t t_n(size_t n, size_t min);
/* A fresh empty temporary directory (removed at exit). */
const char *t_tmpdir(void);
/* Deterministic PRNG helpers. */
unsigned long long t_rand(unsigned long long *state);
float t_randf(unsigned long long *state); /* uniform in [-1, 1) */

#define TEST(name)                                                              \
    static void name(void);                                                     \
    __attribute__((constructor)) static void t_reg_##name(void) { t_register(#name, name); } \
    static void name(void)

#define CHECK(c) do { if (!(c)) t_fail(__FILE__, __LINE__, "CHECK(%s)", #c); } while (0)
#define CHECKF(c, ...) do { if (!(c)) t_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define REQUIRE(c) do { if (!(c)) { t_fail(__FILE__, __LINE__, "REQUIRE(%s)", #c); return; } } while (0)
#define CHECK_RC(expr, want) do { int rc_ = (expr); if (rc_ != (want)) \
    t_fail(__FILE__, __LINE__, "%s returned %d, want %d (%s)", #expr, rc_, (want), ny_errmsg()); } while (0)

#endif
