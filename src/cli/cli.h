/* cli.h -- sub-commands of the `nearly` program.  Each takes argv with
 * argv[0] = the command name and returns the process exit code. */
#ifndef NY_CLI_H
#define NY_CLI_H

/* `nearly serve`: the Qdrant-compatible REST server (src/cli/serve.c). */
int cmd_serve(int argc, char **argv);
/* nearly gen: synthetic data set + exact ground truth (gen.c). */
int cmd_gen(int argc, char **argv);
/* nearly bench: HNSW build/recall/QPS/latency/memory on fvecs files (bench.c). */
int cmd_bench(int argc, char **argv);
/* nearly bench-scan: exact-scan throughput vs memory bandwidth (scan.c). */
int cmd_bench_scan(int argc, char **argv);

/* nearly import: stream files into a collection (import.c). */
int cmd_import(int argc, char **argv);
/* nearly export: write a collection out as .jsonl or .npy + payloads (export.c). */
int cmd_export(int argc, char **argv);

#endif
