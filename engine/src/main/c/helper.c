/*
 * uchroot-jobd --helper ENGINE_PID COMMAND [ARG]...
 *
 * Every program the engine starts (tar, rm, the session's namespaces) runs
 * under this: in a session of its own, so that a terminal's Ctrl+C or Ctrl+Z
 * reaches the engine alone, and ending with the engine, its whole process
 * group with it (the shell of an unpack and its tar alike).
 */
#define _GNU_SOURCE
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* What a terminal sends its foreground process group. */
static const int TERMINAL_SIGNALS[] = { SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGHUP };

/* UCHROOT_TEST_HOLD as the program started: the job server clears its environment. */
static const char *hold_setting;

void test_hold_init(void)
{
    const char *setting = getenv("UCHROOT_TEST_HOLD");
    hold_setting = setting ? strdup(setting) : NULL;
}

void test_hold(const char *point)
{
    size_t n = strlen(point);
    if (!hold_setting || strncmp(hold_setting, point, n) != 0 || hold_setting[n] != ':')
        return;
    const char *dir = hold_setting + n + 1;
    char path[4096];
    /* Opened first, read and write so the open never waits: a release written once the hold
     * is reached finds it open. */
    snprintf(path, sizeof path, "%s/%s.release", dir, point);
    int release = open(path, O_RDWR | O_CLOEXEC);
    snprintf(path, sizeof path, "%s/%s.reached", dir, point);
    FILE *reached = fopen(path, "we");
    if (reached) {
        fprintf(reached, "%d\n", (int)getpid());
        fclose(reached);
    }
    char c = 0;
    while (release >= 0 && c != '\n' && read(release, &c, 1) == 1)
        ;
    if (release >= 0)
        close(release);
}

int helper_run(pid_t engine, char **argv)
{
    /* Where a helper is between the engine's spawn and its setsid, still in the engine's
     * process group. */
    test_hold("spawn");
    setsid();
    /* The engine spawns with these blocked, so that one sent while it spawns leaves its helper
     * alive; any that came are pending, and are the engine's, not ours: ignoring drops them. */
    for (size_t i = 0; i < sizeof TERMINAL_SIGNALS / sizeof *TERMINAL_SIGNALS; i++) {
        signal(TERMINAL_SIGNALS[i], SIG_IGN);
        signal(TERMINAL_SIGNALS[i], SIG_DFL);
    }
    signal(SIGCHLD, SIG_DFL); /* an ignored SIGCHLD, inherited, would reap the child for us */
    /* The engine's death, or its request to give up, arrives as SIGTERM. */
    sigset_t waited;
    sigemptyset(&waited);
    sigaddset(&waited, SIGCHLD);
    sigaddset(&waited, SIGTERM);
    sigprocmask(SIG_SETMASK, &waited, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != engine)
        return 1; /* the engine is gone already */

    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "uchroot-jobd: cannot start %s: %s\n", argv[0], strerror(errno));
        return 126;
    }
    if (child == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        fprintf(stderr, "uchroot-jobd: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    for (;;) {
        int sig;
        if (sigwait(&waited, &sig) != 0)
            continue;
        if (sig == SIGCHLD) {
            int st;
            if (waitpid(child, &st, WNOHANG) == child)
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            continue;
        }
        /* The process group is ours (setsid): it goes whole, this process with it. */
        kill(0, SIGKILL);
    }
}
