/*
 * main.c -- the `nearly` command-line program: dispatches sub-commands.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "nearly.h"

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("nearly %s (simd: %s)\n", NEARLY_VERSION, ny_simd_name(ny_simd_active()));
    return 0;
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"version", cmd_version, "print the version and the SIMD level in use"},
    {"serve", cmd_serve, "serve the collections over HTTP with Qdrant's REST API"},
    {"gen", cmd_gen, "write a synthetic data set (fvecs) with exact ground truth"},
    {"bench", cmd_bench, "benchmark HNSW: build time, recall, QPS, latency, memory"},
    {"bench-scan", cmd_bench_scan, "benchmark the exact scan against memory bandwidth"},
    {"import", cmd_import, "stream .fvecs/.npy/.jsonl/.csv files into a collection"},
    {"export", cmd_export, "write a collection out as .jsonl or .npy + payloads"},
};

static void usage(FILE *f)
{
    fprintf(f, "nearly %s -- vector database\n\nusage: nearly <command> [options]\n\ncommands:\n", NEARLY_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`nearly <command> --help` describes a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) return cmd_version(argc - 1, argv + 1);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "nearly: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
