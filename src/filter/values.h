/*
 * values.h -- value helpers for filters (internal to src/filter): datetime
 * parsing, geo predicates and SipHash-2-4 (for the slice condition).
 */
#ifndef NY_FILTER_VALUES_H
#define NY_FILTER_VALUES_H

#include <stddef.h>
#include <stdint.h>

/* ===== Datetimes ========================================================= */

/* A UTC instant: seconds since 1970-01-01T00:00:00Z and nanoseconds. */
typedef struct ny_dt {
    int64_t sec;
    int32_t nsec;
} ny_dt;

/* Parses the datetime formats Qdrant accepts (RFC 3339 and relatives):
 *   YYYY-MM-DD
 *   YYYY-MM-DD(T|t| )HH:MM[:SS[.fraction]][Z|z|(+|-)HH[[:]MM]]
 * Without a zone the time is UTC.  Returns 0, or -1 if s[0..len) is not a
 * valid datetime (bad field ranges such as Feb 30 included). */
int ny_dt_parse(const char *s, size_t len, ny_dt *out);
static inline int ny_dt_cmp(ny_dt a, ny_dt b)
{
    if (a.sec != b.sec) return a.sec < b.sec ? -1 : 1;
    return (a.nsec > b.nsec) - (a.nsec < b.nsec);
}

/* ===== Geo =============================================================== */

#define NY_EARTH_RADIUS_M 6371008.8 /* mean Earth radius (IUGG), as Qdrant uses */

/* Great-circle distance in meters (haversine), coordinates in degrees. */
double ny_geo_distance(double lon1, double lat1, double lon2, double lat2);

typedef struct ny_ring {
    size_t n;       /* points, the last equal to the first */
    double *lon, *lat;
} ny_ring;

/* Position of (lon, lat) relative to a closed ring: 1 inside, 0 outside,
 * -1 on the boundary.  Planar (lon/lat treated as x/y), as Qdrant does. */
int ny_ring_locate(const ny_ring *r, double lon, double lat);

/* ===== SipHash-2-4 ======================================================= */

uint64_t ny_siphash24(const uint8_t key[16], const void *data, size_t len);

#endif
