/* cli.h -- sub-commands of the `nearly` program.  Each takes argv with
 * argv[0] = the command name and returns the process exit code. */
#ifndef NY_CLI_H
#define NY_CLI_H

/* `nearly serve`: the Qdrant-compatible REST server (src/cli/serve.c). */
int cmd_serve(int argc, char **argv);

#endif
