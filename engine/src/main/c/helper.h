/*
 * How the engine starts its helpers: see helper.c.
 */
#ifndef UCHROOT_HELPER_H
#define UCHROOT_HELPER_H

#include <sys/types.h>

/*
 * Runs argv as the engine's helper (see helper.c); its exit status, as a shell
 * gives it.  hold: NULL, or the directory of the tests' hold at a spawn.
 */
int helper_run(pid_t engine, const char *hold, char **argv);

#endif
