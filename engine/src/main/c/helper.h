/*
 * How the engine starts its helpers: see helper.c.
 */
#ifndef UCHROOT_HELPER_H
#define UCHROOT_HELPER_H

#include <sys/types.h>

/*
 * Runs argv as the engine's helper (see helper.c); its exit status, as a shell
 * gives it.
 */
int helper_run(pid_t engine, char **argv);

/*
 * The tests' pauses at named points (FaultHook.java): with UCHROOT_TEST_HOLD
 * set to POINT:DIR, test_hold(POINT) creates DIR/POINT.reached and waits for a
 * line on the FIFO DIR/POINT.release; otherwise it returns at once.  Call
 * test_hold_init first, before the environment is cleared.
 */
void test_hold_init(void);
void test_hold(const char *point);

#endif
