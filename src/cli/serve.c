/*
 * serve.c -- `nearly serve`: starts the Qdrant-compatible REST server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "nearly.h"
#include "server/server.h"

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: nearly serve [--config FILE] [--data-dir DIR] [--port N] [--host ADDR]\n"
            "                    [--snapshots-dir DIR] [--log-file FILE] [--log-format json|text]\n"
            "\n"
            "Serves the collections of DIR over HTTP with Qdrant's REST API (v%s).\n"
            "Defaults: --data-dir ./data, --port 6333, --host 127.0.0.1 (--port 0 picks a free port,\n"
            "reported in the \"listening\" log line).\n"
            "\n"
            "Settings come from, in increasing precedence: defaults, the config file (JSON or\n"
            "Qdrant's config.yaml layout), environment variables, command-line options.\n"
            "Environment:\n"
            "  NEARLY_API_KEY / QDRANT__SERVICE__API_KEY                    key for every request\n"
            "  NEARLY_READ_ONLY_API_KEY / QDRANT__SERVICE__READ_ONLY_API_KEY key that may only read\n"
            "  NEARLY_HOST, NEARLY_PORT / QDRANT__SERVICE__HOST, QDRANT__SERVICE__HTTP_PORT\n"
            "  NEARLY_DATA_DIR / QDRANT__STORAGE__STORAGE_PATH\n"
            "  NEARLY_SNAPSHOTS_DIR / QDRANT__STORAGE__SNAPSHOTS_PATH       default DATA_DIR/snapshots\n"
            "  NEARLY_MAX_REQUEST_SIZE_MB / QDRANT__SERVICE__MAX_REQUEST_SIZE_MB (default 32)\n"
            "  NEARLY_MAX_UPLOAD_SIZE_MB (snapshot uploads, default 16384)\n"
            "  NEARLY_TIMEOUT_SEC (idle connection timeout, default 60)\n"
            "  NEARLY_MAX_CONNECTIONS (default 256)\n"
            "  NEARLY_LOG_FILE, NEARLY_LOG_FORMAT (json|text), NEARLY_ACCESS_LOG (true|false)\n",
            NY_QDRANT_API_VERSION);
}

int cmd_serve(int argc, char **argv)
{
    ny_server_config cfg;
    ny_server_config_defaults(&cfg);
    static const struct {
        const char *opt, *key;
    } opts[] = {
        {"--data-dir", "storage.storage_path"}, {"--port", "service.http_port"},
        {"--host", "service.host"},             {"--snapshots-dir", "storage.snapshots_path"},
        {"--log-file", "logger.file"},          {"--log-format", "logger.format"},
    };
    /* the config file first, whatever its position, then env, then flags */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            serve_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "nearly serve: --config needs a value\n");
                return 2;
            }
            if (ny_server_config_load_file(&cfg, argv[i + 1])) {
                fprintf(stderr, "nearly serve: %s\n", ny_errmsg());
                return 2;
            }
        }
    }
    if (ny_server_config_load_env(&cfg)) {
        fprintf(stderr, "nearly serve: %s\n", ny_errmsg());
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            i++;
            continue;
        }
        size_t k = 0, n = sizeof opts / sizeof opts[0];
        const char *val = NULL;
        for (; k < n; k++) {
            size_t l = strlen(opts[k].opt);
            if (!strcmp(argv[i], opts[k].opt)) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "nearly serve: %s needs a value\n", argv[i]);
                    return 2;
                }
                val = argv[++i];
                break;
            }
            if (!strncmp(argv[i], opts[k].opt, l) && argv[i][l] == '=') {
                val = argv[i] + l + 1;
                break;
            }
        }
        if (k == n) {
            fprintf(stderr, "nearly serve: unknown option '%s'\n\n", argv[i]);
            serve_usage(stderr);
            return 2;
        }
        if (ny_server_config_set(&cfg, opts[k].key, val)) {
            fprintf(stderr, "nearly serve: %s: %s\n", opts[k].opt, ny_errmsg());
            return 2;
        }
    }
    return ny_server_run(&cfg);
}
