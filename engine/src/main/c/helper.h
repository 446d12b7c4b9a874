/*
 * How the engine starts its helpers: see helper.c.
 */
#ifndef UCHROOT_HELPER_H
#define UCHROOT_HELPER_H

#include <sys/types.h>

/* Runs argv as the engine's helper (see helper.c); its exit status, as a shell gives it. */
int helper_run(pid_t engine, char **argv);

#endif
