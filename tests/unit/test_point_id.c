/* test_point_id.c -- point ids: parsing (integers, UUIDs in hyphenated,
 * simple, braced and urn forms), canonical formatting, ordering. */
#include <stdio.h>
#include <string.h>

#include "nearly.h"
#include "t.h"

TEST(parse_integers)
{
    static const struct { const char *s; unsigned long long v; } ok[] = {
        {"0", 0}, {"1", 1}, {"42", 42}, {"007", 7},
        {"9223372036854775807", 9223372036854775807ULL},
        {"9223372036854775808", 9223372036854775808ULL},
        {"18446744073709551615", 18446744073709551615ULL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ny_point_id id;
        memset(&id, 0xab, sizeof id);
        CHECK_RC(ny_point_id_parse(ok[i].s, &id), NY_OK);
        CHECKF(!id.is_uuid && id.num == ok[i].v, "%s -> uuid=%d num=%llu", ok[i].s, id.is_uuid,
               (unsigned long long)id.num);
    }
}

TEST(parse_rejects)
{
    static const char *bad[] = {
        "", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "18446744073709551616", "99999999999999999999",
        "abc", "550e8400-e29b-41d4-a716-44665544000",   /* 11 digits in the last group */
        "550e8400-e29b-41d4-a716-4466554400000",        /* 13 */
        "550e8400e29b-41d4-a716-446655440000-",         /* hyphen in the wrong place */
        "550e8400-e29b-41d4-a716-44665544000g",         /* not hex */
        "{550e8400-e29b-41d4-a716-446655440000",        /* unclosed brace */
        "urn:uuid:550e8400e29b41d4a716446655440000",    /* urn needs hyphens */
        "550e8400-e29b-41d4-a716_446655440000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ny_point_id id;
        int rc = ny_point_id_parse(bad[i], &id);
        CHECKF(rc == NY_EINVAL, "'%s' accepted", bad[i]);
        CHECKF(strstr(ny_errmsg(), "point id") != NULL, "message: %s", ny_errmsg());
    }
    CHECK_RC(ny_point_id_parse(NULL, NULL), NY_EINVAL);
}

TEST(parse_uuid_forms)
{
    static const unsigned char want[16] = {0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4,
                                           0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00, 0x00};
    static const char *forms[] = {
        "550e8400-e29b-41d4-a716-446655440000",
        "550E8400-E29B-41D4-A716-446655440000",
        "550e8400e29b41d4a716446655440000",
        "{550e8400-e29b-41d4-a716-446655440000}",
        "urn:uuid:550e8400-e29b-41d4-a716-446655440000",
        "URN:UUID:550e8400-e29b-41d4-a716-446655440000",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        ny_point_id id;
        CHECK_RC(ny_point_id_parse(forms[i], &id), NY_OK);
        CHECKF(id.is_uuid && memcmp(id.uuid, want, 16) == 0, "form %s", forms[i]);
        char buf[37];
        ny_point_id_format(&id, buf);
        CHECKF(strcmp(buf, "550e8400-e29b-41d4-a716-446655440000") == 0, "formatted %s", buf);
    }
    /* A 32-digit all-decimal string is a UUID (too long for an integer). */
    ny_point_id id;
    CHECK_RC(ny_point_id_parse("00000000000000000000000000000001", &id), NY_OK);
    CHECK(id.is_uuid && id.uuid[15] == 1);
}

TEST(format_roundtrip_random)
{
    unsigned long long seed = 99;
    for (int i = 0; i < 20000; i++) {
        ny_point_id a, b;
        memset(&a, 0, sizeof a);
        unsigned long long r = t_rand(&seed);
        if (r & 1) {
            a.is_uuid = 1;
            for (int j = 0; j < 16; j++) a.uuid[j] = (unsigned char)(t_rand(&seed) >> 13);
        } else {
            int bits = (int)(t_rand(&seed) % 65);
            a.num = bits == 64 ? t_rand(&seed) : t_rand(&seed) & ((1ULL << bits) - 1);
        }
        char buf[37];
        ny_point_id_format(&a, buf);
        REQUIRE(ny_point_id_parse(buf, &b) == NY_OK);
        CHECKF(ny_point_id_cmp(&a, &b) == 0, "roundtrip of %s", buf);
        if (!a.is_uuid) {
            char ref[32];
            snprintf(ref, sizeof ref, "%llu", (unsigned long long)a.num);
            CHECKF(strcmp(ref, buf) == 0, "%s vs %s", ref, buf);
        } else {
            CHECK(strlen(buf) == 36 && buf[8] == '-' && buf[13] == '-' && buf[18] == '-' && buf[23] == '-');
        }
    }
}

TEST(ordering)
{
    const char *sorted[] = {"0", "1", "2", "10", "18446744073709551615",
                            "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000001",
                            "0000000f-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"};
    size_t n = sizeof sorted / sizeof sorted[0];
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            ny_point_id a, b;
            REQUIRE(ny_point_id_parse(sorted[i], &a) == NY_OK);
            REQUIRE(ny_point_id_parse(sorted[j], &b) == NY_OK);
            int want = i < j ? -1 : i > j ? 1 : 0;
            CHECKF(ny_point_id_cmp(&a, &b) == want, "cmp(%s, %s) = %d", sorted[i], sorted[j], ny_point_id_cmp(&a, &b));
        }
    }
}
