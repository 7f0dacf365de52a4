#!/usr/bin/env bash
# Runs Nearly, native hnswlib and FAISS on the same data set in the same run
# and prints a side-by-side table with ratios.  See bench/compare.py --help.
#   bench/compare.sh --data /work/shared/data/glove-100-angular --ef 10,20,40,80,160 --threads 2
exec /usr/bin/python3 "$(dirname "$0")/compare.py" "$@"
