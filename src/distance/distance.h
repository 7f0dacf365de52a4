/*
 * distance.h -- internal view of the distance kernels.
 *
 * Hot loops (the HNSW search, exact scans) fetch the kernel pointer once per
 * query through ny_dist_get() rather than dispatching per call.
 */
#ifndef NY_DISTANCE_H
#define NY_DISTANCE_H

#include "nearly.h"

/* Kernel computing the index distance for metric m at the active level:
 * l2sq for NY_L2, -dot for NY_DOT / NY_COSINE. */
typedef float (*ny_dist_fn)(const float *a, const float *b, size_t dim);
ny_dist_fn ny_dist_get(ny_metric m);

/* Per-level kernels (defined in kernels_*.c). */
float ny_dot_scalar(const float *a, const float *b, size_t d);
float ny_l2sq_scalar(const float *a, const float *b, size_t d);
float ny_dot_avx2(const float *a, const float *b, size_t d);
float ny_l2sq_avx2(const float *a, const float *b, size_t d);
float ny_dot_avx512(const float *a, const float *b, size_t d);
float ny_l2sq_avx512(const float *a, const float *b, size_t d);

#endif
