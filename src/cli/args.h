/* args.h -- small helpers shared by the `nearly` sub-commands: option
 * values, lists, directories.  Errors are printed to stderr prefixed with
 * the command name and reported as a non-zero return. */
#ifndef NY_CLI_ARGS_H
#define NY_CLI_ARGS_H

#include <stddef.h>

#include "nearly.h"

/* Matches "--name value" or "--name=value" at argv[*i]; on a match sets
 * *val (advancing *i past a separate value) and returns 1.  Returns -1 if
 * the option is present without a value, 0 if argv[*i] is another option. */
int arg_opt(int argc, char **argv, int *i, const char *name, const char **val);
/* Parses a non-negative decimal integer in [lo, hi] ("1000", "1_000_000",
 * "1e6" are accepted).  Prints "cmd: --opt: ..." and returns -1 on error. */
int arg_size(const char *cmd, const char *opt, const char *s, size_t lo, size_t hi, size_t *out);
/* Parses a comma-separated list of sizes, each in [lo, hi]; at most max. */
int arg_size_list(const char *cmd, const char *opt, const char *s, size_t lo, size_t hi, size_t *out,
                  size_t max, size_t *count);
/* Parses a metric name (ny_metric_parse).  Prints "cmd: ..." and returns
 * -1 on error. */
int arg_metric(const char *cmd, const char *s, ny_metric *out);
/* mkdir -p. Returns 0 or -1 with a message printed. */
int make_dirs(const char *cmd, const char *path);

#endif
