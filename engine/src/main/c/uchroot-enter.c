/*
 * uchroot-enter --target HOSTPID --root ROOTFS -- CMD [ARGS...]
 *
 * Runs one job in an uchroot session whose init has the host pid HOSTPID.
 * Exit status: CMD's, or 128+N if it died of signal N; 126/127 if CMD cannot
 * be executed; 125 for our own failures and usage errors.
 *
 * Four processes, because each namespace step constrains the one before it:
 *   O  (host pid ns) joins the init's user (if not ours), ipc, uts, mnt and
 *      pid namespaces and forks M; setns(pid) only affects children.
 *   M  (session pid ns) unshares a pid namespace and forks P; a process that
 *      did setns(pid) cannot unshare one itself (EINVAL).
 *   P  (pid 1 of the job's pid ns) gets its own mount namespace and /proc,
 *      forks C, relays C's output, reaps orphans.  Its exit makes the kernel
 *      kill and reap the whole job before O can return.
 *   C  own session, chroot(ROOTFS), exec CMD.
 *
 * Kill-job signal: SIGRTMIN+6.  The Java side sends it by number, 40, which
 * is what SIGRTMIN+6 is with glibc; main() refuses to run if that differs.
 * It ends the job at once with status 137 and, unlike SIGKILL to O, only
 * returns once no process of the job is left.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __linux__
#error "uchroot-enter needs Linux namespaces"
#endif
#define KILL_JOB_SIGNAL 40 /* the number the Java side sends */
/* glibc keeps the first two real-time signals for itself. */
#if defined(__GLIBC__) && defined(__SIGRTMIN) && __SIGRTMIN + 2 + 6 != KILL_JOB_SIGNAL
#error "SIGRTMIN+6 is not 40 with this libc; the Java side must agree"
#endif

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
static int kill_sig;

static void die(const char *what)
{
    fprintf(stderr, "uchroot-enter: %s: %s\n", what, strerror(errno));
    _exit(125);
}

static void usage(void)
{
    fputs("uchroot-enter: usage: uchroot-enter --target HOSTPID --root ROOTFS -- CMD [ARGS...]\n",
          stderr);
    exit(125);
}

static int exit_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 125;
}

/* The signals O, M and P handle synchronously: forwarded ones, kill-job and SIGCHLD. */
static void handled_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset(set, forwarded[i]);
    sigaddset(set, kill_sig);
    sigaddset(set, SIGCHLD);
}

/* Only the job keeps the stdin pipe, so its writer sees EPIPE once the job closes it. */
static void drop_stdin(void)
{
    int fd = open("/dev/null", O_RDONLY);
    if (fd > 0) {
        dup2(fd, 0);
        close(fd);
    }
}

/*
 * Ties a freshly forked child to its parent's life.  getppid() cannot detect
 * a parent that died before the prctl: the parent lives in an ancestor pid
 * namespace, so getppid() is 0 before and after reparenting.  The pipe's
 * write end is held by the parent only, so a dead parent reads as hang-up.
 */
static void die_with_parent(int alive[2])
{
    close(alive[1]);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        die("prctl");
    struct pollfd p = { .fd = alive[0], .events = POLLIN };
    if (poll(&p, 1, 0) != 0)
        _exit(125);
    close(alive[0]);
}

/* O and M: forward signals to the child, then exit the way it did. */
static int supervise(pid_t child)
{
    sigset_t set;
    handled_set(&set);
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            die("sigwaitinfo");
        }
        if (sig != SIGCHLD) {
            kill(child, sig);
            continue;
        }
        int st;
        if (waitpid(child, &st, WNOHANG) == child)
            return exit_status(st);
    }
}

static void join_session(const char *target)
{
    static const char *const names[] = { "user", "ipc", "uts", "mnt", "pid" };
    static const int types[] = { CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNS,
                                 CLONE_NEWPID };
    int fds[5];
    char path[64];
    /* All opened first: after setns(mnt) this /proc may no longer be the host's. */
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "/proc/%s/ns/%s", target, names[i]);
        if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            die(path);
    }
    /* As root the session has no user namespace of its own, and joining the
     * one we are already in fails with EINVAL. */
    struct stat mine, theirs;
    if (stat("/proc/self/ns/user", &mine) < 0 || fstat(fds[0], &theirs) < 0)
        die("stat user namespace");
    bool same_user = mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino;
    for (int i = 0; i < 5; i++) {
        if (!(i == 0 && same_user) && setns(fds[i], types[i]) < 0) {
            snprintf(path, sizeof path, "setns(%s)", names[i]);
            die(path);
        }
        close(fds[i]);
    }
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void run_c(const char *root, char **cmd, int out, int err)
{
    setsid();
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL); /* fails harmlessly for libc-reserved signals */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(out, 1) < 0 || dup2(err, 2) < 0)
        die("dup2");
    if (chroot(root) < 0 || chdir("/") < 0)
        die(root);
    execvp(cmd[0], cmd);
    int e = errno;
    fprintf(stderr, "uchroot-enter: %s: %s\n", cmd[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

static void on_kill_job(int sig)
{
    (void)sig;
    _exit(137);
}

static void run_p(const char *root, char **cmd)
{
    /* A /proc of the job's own pid namespace: with the session's, $$, pidof
     * and kill would disagree.  A private mount namespace also keeps a job's
     * mounts from leaking into later jobs, as with autopkgtest-virt-unshare. */
    char proc[PATH_MAX];
    if (snprintf(proc, sizeof proc, "%s/proc", root) >= (int)sizeof proc) {
        errno = ENAMETOOLONG;
        die(root);
    }
    if (unshare(CLONE_NEWNS) < 0)
        die("unshare(mnt)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        die("making mounts private");
    if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        die(proc);

    /* Kill-job goes through a handler rather than the signalfd so that it
     * also works while P is blocked writing to a full output pipe. */
    struct sigaction sa = { .sa_handler = on_kill_job };
    sigaction(kill_sig, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, kill_sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        die("pipe");
    pid_t c = fork();
    if (c < 0)
        die("fork");
    if (c == 0)
        run_c(root, cmd, out[1], err[1]);
    close(out[1]);
    close(err[1]);
    drop_stdin();

    handled_set(&set);
    sigdelset(&set, kill_sig);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        die("signalfd");

    struct pollfd pf[3] = { { .fd = sfd, .events = POLLIN },
                            { .fd = out[0], .events = POLLIN },
                            { .fd = err[0], .events = POLLIN } };
    bool broken[3] = { false, false, false }; /* reader gone: drain and discard */
    bool c_reaped = false;
    int c_status = 0;
    static char buf[65536];
    /* Background writers such as tee keep the job alive until they close
     * their end (Debian #1017974); detached daemons do not, and die with P. */
    while (!c_reaped || pf[1].fd >= 0 || pf[2].fd >= 0) {
        if (poll(pf, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            int sig = (int)si.ssi_signo;
            if (sig == SIGCHLD) {
                int st;
                pid_t r;
                while ((r = waitpid(-1, &st, WNOHANG)) > 0)
                    if (r == c) {
                        c_reaped = true;
                        c_status = st;
                    }
            } else if (kill(-c, sig) < 0 && errno == ESRCH && !c_reaped) {
                kill(c, sig); /* C has not called setsid() yet */
            }
        }
        for (int i = 1; i < 3; i++) {
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            ssize_t n = read(pf[i].fd, buf, sizeof buf);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                close(pf[i].fd);
                pf[i].fd = -1; /* poll() skips negative fds */
            } else if (!broken[i] && write_all(i, buf, (size_t)n) < 0) {
                broken[i] = true;
            }
        }
    }
    _exit(exit_status(c_status));
}

static void run_m(const char *root, char **cmd)
{
    if (unshare(CLONE_NEWPID) < 0)
        die("unshare(pid)");
    int alive[2];
    if (pipe2(alive, O_CLOEXEC) < 0)
        die("pipe");
    pid_t p = fork();
    if (p < 0)
        die("fork");
    if (p == 0) {
        die_with_parent(alive);
        run_p(root, cmd);
    }
    close(alive[0]);
    drop_stdin();
    _exit(supervise(p));
}

int main(int argc, char **argv)
{
    const char *target = NULL, *root = NULL;
    int i = 1;
    while (i < argc) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (strcmp(argv[i], "--target") == 0 && i + 1 < argc) {
            target = argv[i + 1];
        } else if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
            root = argv[i + 1];
        } else {
            usage();
        }
        i += 2;
    }
    if (!target || !root || i >= argc || root[0] != '/')
        usage();
    char *end;
    errno = 0;
    long pid = strtol(target, &end, 10);
    if (errno || *end || end == target || pid <= 0 || pid > INT_MAX)
        usage();

    kill_sig = SIGRTMIN + 6;
    if (kill_sig != KILL_JOB_SIGNAL) {
        fprintf(stderr, "uchroot-enter: SIGRTMIN+6 is %d here, not %d\n", kill_sig,
                KILL_JOB_SIGNAL);
        return 125;
    }
    /* Blocked before anything else, so that none is lost before the loops run;
     * children inherit the mask.  SIG_IGN for SIGCHLD would make waitpid fail. */
    sigset_t set;
    handled_set(&set);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGCHLD, SIG_DFL);

    join_session(target);
    int alive[2];
    if (pipe2(alive, O_CLOEXEC) < 0)
        die("pipe");
    pid_t m = fork();
    if (m < 0)
        die("fork");
    if (m == 0) {
        die_with_parent(alive);
        run_m(root, argv + i);
    }
    close(alive[0]);
    drop_stdin();
    return supervise(m);
}
