/* sha256.h -- SHA-256 for snapshot checksums (internal to the server). */
#ifndef NY_SHA256_H
#define NY_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t nbuf;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t n);
/* Finishes and writes 64 lower-case hex digits + NUL. */
void sha256_hex(sha256_ctx *c, char out[65]);
/* Hex SHA-256 of a file's contents; -1 with errno on I/O error. */
int sha256_file(const char *path, char out[65]);

#endif
