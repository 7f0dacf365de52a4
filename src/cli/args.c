/* args.c -- option parsing helpers for the sub-commands (see args.h). */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int arg_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t ln = strlen(name);
    if (strncmp(a, name, ln) != 0) return 0;
    if (a[ln] == '=') {
        *val = a + ln + 1;
        return 1;
    }
    if (a[ln] != 0) return 0;
    if (*i + 1 >= argc) return -1;
    *val = argv[++*i];
    return 1;
}

int arg_size(const char *cmd, const char *opt, const char *s, size_t lo, size_t hi, size_t *out)
{
    char buf[64];
    size_t j = 0;
    for (const char *p = s; *p && j + 1 < sizeof buf; p++)
        if (*p != '_' && *p != ',') buf[j++] = *p;
    buf[j] = 0;
    char *end = NULL;
    double v;
    errno = 0;
    if (j == 0 || strchr(buf, '-')) goto bad;
    if (strpbrk(buf, "eE.")) {
        v = strtod(buf, &end);
        if (*end || errno || v != floor(v)) goto bad;
    } else {
        unsigned long long u = strtoull(buf, &end, 10);
        if (*end || errno) goto bad;
        v = (double)u;
        if (u > hi || u < lo) goto range;
        *out = (size_t)u;
        return 0;
    }
    if (v < (double)lo || v > (double)hi) goto range;
    *out = (size_t)v;
    return 0;
bad:
    fprintf(stderr, "%s: %s: '%s' is not a non-negative integer\n", cmd, opt, s);
    return -1;
range:
    fprintf(stderr, "%s: %s: %s is out of range %zu..%zu\n", cmd, opt, s, lo, hi);
    return -1;
}

int arg_size_list(const char *cmd, const char *opt, const char *s, size_t lo, size_t hi, size_t *out,
                  size_t max, size_t *count)
{
    *count = 0;
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char item[64];
        if (len == 0 || len >= sizeof item) {
            fprintf(stderr, "%s: %s: bad list '%s' (expected e.g. 10,20,40)\n", cmd, opt, s);
            return -1;
        }
        if (*count >= max) {
            fprintf(stderr, "%s: %s: at most %zu values\n", cmd, opt, max);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = 0;
        if (arg_size(cmd, opt, item, lo, hi, &out[*count]) != 0) return -1;
        (*count)++;
        p += len;
        if (*p == ',') p++;
    }
    if (*count == 0) {
        fprintf(stderr, "%s: %s: empty list\n", cmd, opt);
        return -1;
    }
    return 0;
}

int make_dirs(const char *cmd, const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        fprintf(stderr, "%s: path too long: %s\n", cmd, path);
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "%s: cannot create directory %s: %s\n", cmd, buf, strerror(errno));
                return -1;
            }
            *p = c;
            if (c == 0) break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "%s: %s is not a directory\n", cmd, path);
        return -1;
    }
    return 0;
}

int arg_metric(const char *cmd, const char *s, ny_metric *out)
{
    if (ny_metric_parse(s, out) != NY_OK) {
        fprintf(stderr, "%s: %s\n", cmd, ny_errmsg());
        return -1;
    }
    return 0;
}
