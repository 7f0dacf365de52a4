/*
 * point_id.c -- point ids: unsigned 64-bit integers or UUIDs, as Qdrant
 * accepts them.  Parsing, canonical formatting and the total order used by
 * scroll (every integer id before every UUID).
 */
#include <string.h>
#include <strings.h>

#include "common/common.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parses exactly 32 hex digits, with hyphens at the 8-4-4-4-12 positions
 * when `hyphens` is set, from s[0..len). */
static int parse_uuid_body(const char *s, size_t len, int hyphens, unsigned char out[16])
{
    if (len != (hyphens ? 36u : 32u)) return -1;
    size_t nib = 0;
    for (size_t i = 0; i < len; i++) {
        if (hyphens && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-') return -1;
            continue;
        }
        int v = hexval((unsigned char)s[i]);
        if (v < 0) return -1;
        if (nib % 2 == 0) out[nib / 2] = (unsigned char)(v << 4);
        else out[nib / 2] |= (unsigned char)v;
        nib++;
    }
    return nib == 32 ? 0 : -1;
}

static int parse_uuid(const char *s, size_t len, unsigned char out[16])
{
    if (len == 36) return parse_uuid_body(s, len, 1, out);
    if (len == 32) return parse_uuid_body(s, len, 0, out);
    if (len == 38 && s[0] == '{' && s[37] == '}') return parse_uuid_body(s + 1, 36, 1, out);
    if (len == 45 && strncasecmp(s, "urn:uuid:", 9) == 0) return parse_uuid_body(s + 9, 36, 1, out);
    return -1;
}

int ny_point_id_parse(const char *s, ny_point_id *out)
{
    if (!s || !out) return ny_error(NY_EINVAL, "point id: NULL argument");
    size_t len = strlen(s);
    ny_point_id id;
    memset(&id, 0, sizeof id);
    if (len > 0 && len <= 20 && s[0] >= '0' && s[0] <= '9') {
        uint64_t v = 0;
        size_t i = 0;
        for (; i < len; i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (d > 9) break;
            if (v > (UINT64_MAX - d) / 10) {
                return ny_error(NY_EINVAL, "invalid point id '%s': integer ids must be at most %llu",
                                s, (unsigned long long)UINT64_MAX);
            }
            v = v * 10 + d;
        }
        if (i == len) {
            id.num = v;
            *out = id;
            return NY_OK;
        }
    }
    if (parse_uuid(s, len, id.uuid) == 0) {
        id.is_uuid = 1;
        *out = id;
        return NY_OK;
    }
    return ny_error(NY_EINVAL, "invalid point id '%.64s%s': expected an unsigned integer or a UUID",
                    s, len > 64 ? "..." : "");
}

void ny_point_id_format(const ny_point_id *id, char buf[37])
{
    static const char hex[] = "0123456789abcdef";
    if (!id->is_uuid) {
        char tmp[21];
        size_t n = 0;
        uint64_t v = id->num;
        do {
            tmp[n++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
        buf[n] = '\0';
        return;
    }
    size_t j = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) buf[j++] = '-';
        buf[j++] = hex[id->uuid[i] >> 4];
        buf[j++] = hex[id->uuid[i] & 15];
    }
    buf[j] = '\0';
}

int ny_point_id_cmp(const ny_point_id *a, const ny_point_id *b)
{
    if (a->is_uuid != b->is_uuid) return a->is_uuid ? 1 : -1;
    if (!a->is_uuid) return a->num < b->num ? -1 : a->num > b->num;
    int c = memcmp(a->uuid, b->uuid, 16);
    return c < 0 ? -1 : c > 0;
}
