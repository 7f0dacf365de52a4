/* cli.h -- sub-commands of the `nearly` program.  Each takes argv with
 * argv[0] = the command name and returns the process exit code. */
#ifndef NY_CLI_H
#define NY_CLI_H

/* (commands are declared here as they are added) */

#endif
