/*
 * values.c -- datetime parsing, geo predicates and SipHash-2-4 for filters.
 */
#include <math.h>
#include <string.h>

#include "filter/values.h"

/* ===== Datetimes ========================================================= */

static int digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    if (at + n > len) return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(s[at + i] - '0');
        if (d > 9) return -1;
        v = v * 10 + (int)d;
    }
    *out = v;
    return 0;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dm[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.  The
 * year is shifted to start in March so that the leap day ends a year; eras
 * are 400-year cycles of 146097 days. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;                              /* [0, 399] */
    int64_t mp = (m + 9) % 12;                                 /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + d - 1;                  /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;       /* [0, 146096] */
    return era * 146097 + doe - 719468;                        /* 719468: 0000-03-01 .. 1970-01-01 */
}

int ny_dt_parse(const char *s, size_t len, ny_dt *out)
{
    int y, mo, d, h = 0, mi = 0, se = 0;
    int32_t ns = 0;
    size_t i = 0;
    if (digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || digits(s, len, 5, 2, &mo) || s[7] != '-' ||
        digits(s, len, 8, 2, &d))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return -1;
    i = 10;
    int64_t offset = 0;
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return -1;
        i++;
        if (digits(s, len, i, 2, &h) || i + 2 >= len || s[i + 2] != ':' || digits(s, len, i + 3, 2, &mi)) return -1;
        i += 5;
        if (h > 23 || mi > 59) return -1;
        if (i < len && s[i] == ':') {
            if (digits(s, len, i + 1, 2, &se) || se > 60) return -1;
            i += 3;
            if (i < len && (s[i] == '.' || s[i] == ',')) {
                i++;
                size_t start = i;
                int32_t scale = 100000000;
                while (i < len && s[i] >= '0' && s[i] <= '9') {
                    ns += (int32_t)(s[i] - '0') * scale; /* digits past nanoseconds are truncated */
                    scale /= 10;
                    i++;
                }
                if (i == start) return -1;
            }
        }
        if (i < len) {
            if (s[i] == 'Z' || s[i] == 'z') {
                i++;
            } else if (s[i] == '+' || s[i] == '-') {
                int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
                i++;
                if (digits(s, len, i, 2, &oh) || oh > 23) return -1;
                i += 2;
                if (i < len) {
                    if (s[i] == ':') i++;
                    if (digits(s, len, i, 2, &om) || om > 59) return -1;
                    i += 2;
                }
                offset = sign * (int64_t)(oh * 3600 + om * 60);
            } else {
                return -1;
            }
        }
        if (i != len) return -1;
    }
    out->sec = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - offset;
    out->nsec = ns;
    return 0;
}

/* ===== Geo =============================================================== */

double ny_geo_distance(double lon1, double lat1, double lon2, double lat2)
{
    const double rad = M_PI / 180.0;
    double p1 = lat1 * rad, p2 = lat2 * rad;
    double dp = (lat2 - lat1) * rad, dl = (lon2 - lon1) * rad;
    double s1 = sin(dp / 2), s2 = sin(dl / 2);
    double a = s1 * s1 + cos(p1) * cos(p2) * s2 * s2;
    if (a > 1) a = 1;
    return 2.0 * NY_EARTH_RADIUS_M * asin(sqrt(a));
}

int ny_ring_locate(const ny_ring *r, double x, double y)
{
    int inside = 0;
    for (size_t i = 0; i + 1 < r->n; i++) {
        double x1 = r->lon[i], y1 = r->lat[i], x2 = r->lon[i + 1], y2 = r->lat[i + 1];
        if (x >= fmin(x1, x2) && x <= fmax(x1, x2) && y >= fmin(y1, y2) && y <= fmax(y1, y2)) {
            double cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1);
            if (cross == 0) return -1;
        }
        if ((y1 > y) != (y2 > y)) {
            double xi = x1 + (y - y1) * (x2 - x1) / (y2 - y1);
            if (x < xi) inside = !inside;
        }
    }
    return inside;
}

/* ===== SipHash-2-4 ======================================================= */

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

#define SIPROUND                                                  \
    do {                                                          \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                    \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                    \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
    } while (0)

uint64_t ny_siphash24(const uint8_t key[16], const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    size_t full = len / 8 * 8;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load_le64(p + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = full; i < len; i++) b |= (uint64_t)p[i] << (8 * (i - full));
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}
