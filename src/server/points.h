/* points.h -- helpers shared by api_points.c and api_search.c (internal). */
#ifndef NY_SERVER_POINTS_H
#define NY_SERVER_POINTS_H

#include "server/server.h"

/* The "filter" member of obj as JSON text (NULL when absent or null);
 * records 400 and returns -1 when it is not an object. */
int get_filter(req *r, const json_t *obj, const char *field, char **out);
/* with_payload / with_vector of obj with defaults; *wp (malloc'ed text or
 * NULL for false).  Returns -1 after recording 400. */
int get_read_opts(req *r, const json_t *obj, int dflt_payload, int dflt_vector, char **wp, int *wv);
/* Parses a list of ExtendedPointIds (field name for messages). */
int get_ids(req *r, const json_t *arr, const char *field, ny_point_id **ids, size_t *n);
/* A record list: [ScoredPoint...] (scored) or [Record...]. */
void put_records(sb *o, const ny_records *recs, size_t dim, int scored);
void put_record(sb *o, const ny_record *rec, size_t dim, int scored);
/* "limit"/"offset"-like unsigned integer member (absent: dflt). */
int get_uint(req *r, const json_t *obj, const char *field, size_t dflt, size_t min, size_t *out);
/* Parses a query vector given as a list (or {"": list}) into out (dim). */
int get_vector(req *r, const json_t *v, size_t dim, float *out, const char *field);

#endif
