/* t.c -- the test harness's runner (see t.h). */
#include "t.h"

#include <stdarg.h>
#include <string.h>
#include <ftw.h>
#include <unistd.h>
#include <sys/stat.h>

#define T_MAX 512
static struct { const char *name; t_fn fn; } t_tests[T_MAX];
static int t_count;
int t_failed_now;

void t_register(const char *name, t_fn fn)
{
    if (t_count < T_MAX) {
        t_tests[t_count].name = name;
        t_tests[t_count].fn = fn;
        t_count++;
    }
}

void t_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    t_failed_now++;
}

double t_scale(void)
{
    const char *s = getenv("NY_TEST_SCALE");
    double v = s ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

size_t t_n(size_t n, size_t min)
{
    size_t v = (size_t)((double)n * t_scale());
    return v < min ? min : v;
}

static char t_dir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void t_cleanup(void)
{
    if (t_dir[0]) nftw(t_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

const char *t_tmpdir(void)
{
    static int n;
    static char sub[300];
    if (!t_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(t_dir, sizeof t_dir, "%s/nearly-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(t_dir)) { perror("mkdtemp"); exit(2); }
        atexit(t_cleanup);
    }
    snprintf(sub, sizeof sub, "%s/%d", t_dir, n++);
    if (mkdir(sub, 0700) != 0) { perror("mkdir"); exit(2); }
    return sub;
}

unsigned long long t_rand(unsigned long long *s)
{
    /* splitmix64 */
    unsigned long long z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float t_randf(unsigned long long *s)
{
    return (float)((double)(t_rand(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < t_count; i++) {
        if (argc > 1) {
            int want = 0;
            for (int a = 1; a < argc; a++) if (!strcmp(argv[a], t_tests[i].name)) want = 1;
            if (!want) continue;
        }
        t_failed_now = 0;
        t_tests[i].fn();
        if (t_failed_now) { failed++; printf("FAIL %s\n", t_tests[i].name); }
        else { passed++; printf("ok   %s\n", t_tests[i].name); }
    }
    printf("RESULT %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
