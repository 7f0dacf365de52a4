/*
 * wal.h -- the write-ahead log of a collection.
 *
 * A log is a directory of segments named <first-lsn, 20 digits>.log.  A
 * segment starts with a 24-byte header (magic "NYWALSEG", first lsn, XXH3 of
 * those 16 bytes) followed by records:
 *
 *     u32 body length | u32 type | u64 lsn | u64 checksum | body
 *
 * The checksum is XXH3-64 of the body seeded with XXH3-64 of the first 16
 * header bytes, so a flipped bit anywhere in a record is caught.  LSNs are
 * consecutive.  Opening a log replays every record after the checkpoint LSN
 * and cuts the log at the first torn or corrupt record (truncating that
 * segment and deleting later ones).
 *
 * Durability: appends go to the page cache under a mutex; ny_wal_sync(lsn)
 * returns once an fdatasync covering lsn has completed.  Concurrent callers
 * share syncs (group commit): one caller becomes the leader, syncs
 * everything written so far, and wakes the others.
 */
#ifndef NY_WAL_H
#define NY_WAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct ny_wal ny_wal;

/* Called for each replayed record; a non-zero return aborts the open. */
typedef int (*ny_wal_replay_fn)(void *ctx, uint64_t lsn, uint32_t type,
                                const void *body, size_t len);

typedef struct ny_wal_open_info {
    uint64_t replayed;        /* records passed to fn */
    uint64_t skipped;         /* records at or before the checkpoint */
    uint64_t cut_bytes;       /* bytes discarded from a torn/corrupt tail */
    int cut;                  /* 1 if a tail was cut */
} ny_wal_open_info;

/* Opens (creating) the log in dir.  Records with lsn <= ckpt_lsn are
 * skipped; later ones are passed to fn in order.  info may be NULL. */
int ny_wal_open(const char *dir, uint64_t ckpt_lsn, ny_wal_replay_fn fn, void *ctx,
                ny_wal **out, ny_wal_open_info *info);
/* Appends a record; *lsn gets its LSN.  On a write error (disk full) the
 * partial record is removed and nothing is logged. */
int ny_wal_append(ny_wal *w, uint32_t type, const void *body, size_t len, uint64_t *lsn);
/* Returns once everything up to lsn is on disk (group commit). */
int ny_wal_sync(ny_wal *w, uint64_t lsn);
/* Syncs whatever was written and not yet synced (background flusher).
 * Returns NY_OK if there was nothing to do. */
int ny_wal_flush(ny_wal *w);
/* 1 if records were written but not yet synced. */
int ny_wal_dirty(ny_wal *w);
/* Starts a new segment (the old one is synced first).  *last_lsn gets the
 * LSN of the last record before the new segment. */
int ny_wal_rotate(ny_wal *w, uint64_t *last_lsn);
/* Deletes the segments all of whose records are <= lsn. */
int ny_wal_truncate_upto(ny_wal *w, uint64_t lsn);
/* Last LSN appended. */
uint64_t ny_wal_last_lsn(ny_wal *w);
/* Bytes in all segments. */
uint64_t ny_wal_bytes(ny_wal *w);
/* Syncs and closes. */
int ny_wal_close(ny_wal *w);

#endif
