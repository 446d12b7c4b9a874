/*
 * uchroot-jobd --root ROOTFS --socket PATH [--testbed DIR]
 *              [--overlay LOWER UPPER WORK OPTIONS] [--scratch OUTSIDE INSIDE]
 *              [--bind OUTSIDE INSIDE]... [--ids UID GID COUNT]
 * uchroot-jobd --ids UID GID COUNT --exec COMMAND [ARG]...
 * uchroot-jobd --dev-skeleton DIR
 * uchroot-jobd --helper ENGINE_PID COMMAND [ARG]...
 *
 * The second form runs COMMAND as root of a new user namespace whose root is
 * UID and GID on the host (ids 0..COUNT-1 map to UID.. and GID..), and exits
 * with its status: the engine's unpacker, when root starts testbeds.  The
 * third only makes DIR as the job server completes /dev (see
 * sandbox_dev_skeleton), for the engine's unpacker, and exits.  The fourth
 * runs COMMAND as a helper of the engine ENGINE_PID (helper.c).
 *
 * With --ids, the first form is started by the host's root, outside any
 * namespace, and makes the session's namespaces itself, with that mapping
 * (userns.c): the testbed's root is never the host's.
 *
 * The job server of one uchroot session.  Started once per session, inside
 * the session's namespaces as pid 1 of its pid namespace:
 * first it mounts the testbed (sandbox.c: the overlay, /proc, /dev, /sys,
 * the bind mounts, the scratch directory); then each job sets itself up from
 * outside ROOTFS before it chroots.  Every
 * command of the session is a connection to the Unix stream socket PATH,
 * so a command costs a connection, a clone, a vfork and an exec: all else
 * (joining namespaces, mounting the rootfs) was done once, for the session.
 *
 * Prints "uchroot-sandbox-ready" on stdout once it listens.  Exits, removing
 * the socket (in a directory that is the engine's user's alone), when its
 * stdin reaches end of file: the engine holds the other end, so the session
 * ends with the engine however the engine ends, and leaves nothing behind.
 * If the engine wrote 'r' on stdin before, jobd first kills what is left of
 * the jobs, takes the testbed's mounts down and deletes DIR (which holds
 * ROOTFS and the scratch directory's host side): from inside the session, where the engine's user owns
 * every file of the testbed, and at the cost of system calls alone; with
 * --ids, the process outside does it once the session is gone.  Once DIR
 * is gone it prints "uchroot-testbed-removed" on stdout, so that the engine
 * can answer without waiting for the namespaces to go.
 *
 * Frames, both ways: 1 type byte, a 4-byte big-endian payload length, the
 * payload (as between uchroot-exec and the engine).
 *   from the client: '<' a host file to be the command's stdin and '>' one
 *                    its stdout is written to (created or truncated): both
 *                    optional, before 'a'; the command reads or writes the
 *                    file itself, and no 'i' or 'o' frames pass for it
 *                    't' rows and columns (16 bits each), before 'a': the
 *                    command runs on a pseudo-terminal of that size, its
 *                    controlling terminal, which 'i' feeds and 'o' shows
 *                    (stdout and stderr alike)
 *                    'a' argv, each argument NUL-terminated (once)
 *                    'i' stdin data, 'c' end of stdin (empty)
 *                    's' a signal (1 byte) for every process of the command
 *                    'w' the terminal's new rows and columns, as 't'
 *                    'k' kill the whole job now (empty); so does the end of
 *                        the client's stream, by shutdown or close
 *   to the client:   'o' stdout data, 'e' stderr data
 *                    'f' failure of the job server itself (one line); the
 *                        exit status that follows is 125
 *                    'x' exit status (1 byte), then the connection closes
 * The status is the command's, 128+N if it died of signal N, 126 or 127 if
 * it cannot be executed (the reason on its stderr), 137 if the job was
 * killed.  'x' is written only once no process of the job is left.
 *
 * Processes:
 *   jobd  the session's init: accepts, clones P, reaps it, writes 'x'.  Its
 *         only children are the P's (a job's orphans stay in the job's pid
 *         namespace), and its exit ends the session's pid namespace.  It
 *         never reads from a connection, so no client can hold it up; it only
 *         watches each one for a hang-up, to kill P even while P is blocked
 *         writing to a client that stopped reading.
 *   P     pid 1 of a fresh pid namespace with a mount namespace and /proc of
 *         its own: $$, kill and pidof agree with /proc, and a job's mounts do
 *         not leak into later jobs.  Reads the argv, shows it in ps, forks
 *         C, relays frames, reaps orphans.  Its exit makes the kernel kill
 *         and reap whatever is left of the job before jobd can reap P.
 *   C     own session, chroot(ROOTFS), exec CMD with PATH as its only variable.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"
#include "helper.h"
#include "sandbox.h"
#include "userns.h"

#ifndef __linux__
#error "uchroot-jobd needs Linux namespaces"
#endif

#define PATH_VALUE "/usr/sbin:/usr/bin:/sbin:/bin"
#define CHUNK 32768
#define CONN_FD 3 /* where P keeps its connection */

static const char *root;
static const char *testbed; /* removed at the end if the engine asks */
static struct id_map ids;   /* count 0: the namespaces are made by the caller (unshare) */
static uid_t engine_uid;    /* the engine's uid as this namespace sees it */
static char *title;      /* jobd's own argv strings: what ps shows */
static size_t title_len; /* 0 if they are not contiguous */

/* ------------------------------------------------------------------ C -- */

/* At most this much of a name goes into a message: see say(). */
#define SAY_MAX 1024

/*
 * "uchroot-jobd: WHAT: strerror(err)" on fd 2, without stdio.  WHAT is cut
 * short: in the vfork() child, P is suspended until the exec, so a message
 * larger than the pipe's buffer (a program name of 64 KiB) would never be
 * read and the job would hang.
 */
static void say(const char *what, int err)
{
    const char *e = strerror(err);
    size_t len = strlen(what);
    bool cut = len > SAY_MAX;
    struct iovec v[] = { { "uchroot-jobd: ", 14 }, { (void *)what, cut ? SAY_MAX : len },
                         { "...", cut ? 3 : 0 }, { ": ", 2 }, { (void *)e, strlen(e) },
                         { "\n", 1 } };
    (void)!writev(2, v, 6);
}

/*
 * Runs in a vfork() child: it shares P's memory until exec, so it changes no
 * variable, only its own process state, and ends in exec or _exit.
 */
static void run_c(char **argv, int in, int out, int err, bool terminal)
{
    setsid();
    /* A shell on it gets job control, and the terminal's Ctrl+C is the command's. */
    if (terminal && ioctl(in, TIOCSCTTY, 0) < 0)
        _exit(125);
    /* Everything else is default already: jobd reset its inheritance. */
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(125);
    /* jobd's working directory is the testbed's root (sandbox_setup). */
    if (chroot(".") < 0 || chdir("/") < 0) {
        say(root, errno);
        _exit(125);
    }
    execvp(argv[0], argv); /* jobd's environment is PATH alone */
    int e = errno;
    say(argv[0], e);
    _exit(e == ENOENT ? 127 : 126);
}

/* ------------------------------------------------------------------ P -- */

/* Writes a whole frame; a client that is gone takes its job with it. */
static void send_frame(unsigned char *frame, size_t len)
{
    while (len > 0) {
        ssize_t n = send(CONN_FD, frame, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            _exit(137);
        }
        frame += n;
        len -= (size_t)n;
    }
}

/* Tells the client that the job server failed, and ends the job. */
static void p_fail(const char *what, int err)
{
    unsigned char frame[5 + 512];
    int n = snprintf((char *)frame + 5, sizeof frame - 5, "%s%s%s", what, err ? ": " : "",
                     err ? strerror(err) : "");
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof frame - 6)
        n = (int)(sizeof frame - 6);
    frame_header(frame, 'f', (uint32_t)n);
    send_frame(frame, 5 + (size_t)n);
    _exit(125);
}

static int recv_all(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = recv(CONN_FD, p, len, MSG_WAITALL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A frame's payload as a string; the caller frees it. */
static char *read_string(uint32_t len)
{
    char *text = malloc((size_t)len + 1);
    if (!text)
        p_fail("reading the command", ENOMEM);
    if (recv_all(text, len) < 0)
        _exit(137);
    text[len] = '\0';
    if (strlen(text) != len)
        p_fail("protocol error: a path with a NUL byte", 0);
    return text;
}

/*
 * The command, and the host files that its stdin and stdout are, if the
 * client asked for them in '<' and '>' frames before it.
 */
static char **read_request(char **stdin_file, char **stdout_file, struct winsize **size)
{
    unsigned char h[5];
    uint32_t len;
    for (;;) {
        if (recv_all(h, 5) < 0)
            _exit(137); /* the client left before asking for anything */
        len = frame_length(h);
        if (h[0] == 't') {
            static struct winsize ws;
            unsigned char rc[4];
            if (len != 4)
                p_fail("protocol error: a terminal's size has 4 bytes", 0);
            if (recv_all(rc, 4) < 0)
                _exit(137);
            ws = (struct winsize){ .ws_row = (unsigned short)(rc[0] << 8 | rc[1]),
                                   .ws_col = (unsigned short)(rc[2] << 8 | rc[3]) };
            *size = &ws;
            continue;
        }
        if (h[0] != '<' && h[0] != '>')
            break;
        if (len == 0 || len >= PATH_MAX)
            p_fail("protocol error: a host file's name must have 1 to 4095 bytes", 0);
        char **file = h[0] == '<' ? stdin_file : stdout_file;
        free(*file);
        *file = read_string(len);
    }
    const char *wrong = h[0] == 'a' ? frame_check_args(NULL, len)
                                    : "protocol error: the first frame must be a command";
    if (wrong)
        p_fail(wrong, 0);
    char *args = malloc(len);
    if (!args)
        p_fail("reading the command", ENOMEM);
    if (recv_all(args, len) < 0)
        _exit(137);
    if ((wrong = frame_check_args(args, len)))
        p_fail(wrong, 0);
    char **argv = malloc((frame_count_args(args, len) + 1) * sizeof *argv);
    if (!argv)
        p_fail("reading the command", ENOMEM);
    frame_split_args(args, len, argv);
    return argv;
}

/*
 * Shows the command in ps as "uchroot-jobd: CMD ARGS", truncated to jobd's
 * own command line: with one launcher process per command, the command was
 * visible there, and the host can still tell which job a pid 1 runs.
 */
static void show_job(char **argv)
{
    static const char prefix[] = "uchroot-jobd:";
    if (title_len < sizeof prefix)
        return;
    size_t n = sizeof prefix - 1;
    memcpy(title, prefix, n);
    for (char **a = argv; *a && n + 1 < title_len; a++) {
        title[n++] = ' ';
        size_t l = strnlen(*a, title_len - 1 - n);
        memcpy(title + n, *a, l);
        n += l;
    }
    memset(title + n, 0, title_len - n);
}

/* P's relay state. */
static pid_t c_pid;
static bool c_reaped;
static int c_status;
static int in_fd = -1;            /* write end of C's stdin, non-blocking; -1 once closed */
static int terminal_fd = -1;      /* the pseudo-terminal's master, if the client asked for one */
static unsigned char rb[5 + CHUNK]; /* bytes from the client not yet handled */
static size_t r_off, r_len;
static bool in_frame; /* a header was read; 'remain' payload bytes follow */
static char f_type;
static uint32_t remain;

static void close_stdin(void)
{
    if (in_fd >= 0)
        close(in_fd);
    in_fd = -1;
}

static void forward(int sig)
{
    if (sig < 1 || sig >= NSIG)
        return;
    /*
     * Every process of the command, also those that left its session (su -c
     * does so for each autopkgtest test): as pid 1 of the command's own pid
     * namespace, kill(-1) reaches exactly those and never this process.
     */
    kill(-1, sig);
}

/* The terminal's new size; the kernel sends SIGWINCH to its foreground. */
static void resize(const unsigned char *rc)
{
    struct winsize ws = { .ws_row = (unsigned short)(rc[0] << 8 | rc[1]),
                          .ws_col = (unsigned short)(rc[2] << 8 | rc[3]) };
    if (terminal_fd >= 0)
        ioctl(terminal_fd, TIOCSWINSZ, &ws);
}

/*
 * Handles the client's frames in rb.  Returns true when it stopped because
 * C does not take its stdin yet: the rest waits, and so does the client.
 */
static bool handle_input(void)
{
    for (;;) {
        size_t avail = r_len - r_off;
        if (!in_frame) {
            if (avail < 5)
                return false;
            if (rb[r_off] == 'w') {
                /* Taken whole: a size is of use only once all of it is here. */
                if (frame_length(rb + r_off) != 4)
                    p_fail("protocol error: a terminal's size has 4 bytes", 0);
                if (avail < 9)
                    return false;
                resize(rb + r_off + 5);
                r_off += 9;
                continue;
            }
            f_type = (char)rb[r_off];
            remain = frame_length(rb + r_off);
            r_off += 5;
            in_frame = true;
            if (f_type == 'k' && remain == 0)
                _exit(137);
            if (f_type == 'c' && remain == 0)
                close_stdin();
            else if (!(f_type == 'i' || (f_type == 's' && remain == 1)))
                p_fail("protocol error: unexpected frame from the client", 0);
            in_frame = remain > 0;
            continue;
        }
        if (avail == 0)
            return false;
        size_t take = remain < avail ? remain : avail;
        if (f_type == 's') {
            forward(rb[r_off]);
        } else if (in_fd >= 0) {
            ssize_t n = write(in_fd, rb + r_off, take);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return true;
            if (n < 0)
                close_stdin(); /* C closed its stdin: the rest is discarded */
            else
                take = (size_t)n;
        }
        r_off += take;
        remain -= (uint32_t)take;
        if (remain == 0)
            in_frame = false;
    }
}

static void reap(int sfd)
{
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
        ;
    int st;
    pid_t r;
    while ((r = waitpid(-1, &st, WNOHANG)) > 0) /* orphans of the job too */
        if (r == c_pid) {
            c_reaped = true;
            c_status = st;
        }
}

static int exit_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 125;
}

/*
 * A pseudo-terminal of SIZE from the testbed's own devpts instance, never the
 * host's: its master is kept in terminal_fd, its peer returned for C.
 */
static int open_terminal(const struct winsize *size)
{
    /* jobd's working directory is the testbed's root (sandbox_setup). */
    int master = open("dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW);
    if (master < 0)
        p_fail("/dev/pts/ptmx", errno);
    struct statfs fs;
    if (fstatfs(master, &fs) < 0 || fs.f_type != DEVPTS_SUPER_MAGIC)
        p_fail("/dev/pts/ptmx is not the testbed's devpts", 0);
    int unlock = 0;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCSWINSZ, size) < 0)
        p_fail("/dev/pts/ptmx", errno);
    int peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (peer < 0)
        p_fail("the pseudo-terminal's peer", errno);
    terminal_fd = master;
    return peer;
}

static void run_p(int conn)
{
    /* jobd's other descriptors (listening socket, other jobs' connections)
     * must not stay open for as long as this job runs. */
    if (conn != CONN_FD && dup3(conn, CONN_FD, O_CLOEXEC) < 0)
        _exit(125);
    if (close_range(CONN_FD + 1, ~0U, 0) < 0)
        p_fail("close_range", errno);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0) /* not jobd's keep-alive pipe */
        p_fail("/dev/null", errno);
    close(null);

    char *stdin_file = NULL, *stdout_file = NULL;
    struct winsize *size = NULL;
    char **argv = read_request(&stdin_file, &stdout_file, &size);
    show_job(argv);
    /* No MS_PRIVATE remount needed: the session's mount namespace was made
     * private as a whole (unshare --propagation private), so this copy is. */
    if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        p_fail("/proc", errno);

    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        p_fail("pipe", errno);
    /* Host files are opened here, before C chroots: copies then run at the speed of the
     * command itself, with no relay.  A root client names them through its own
     * /proc/PID/root, so they resolve in its mount namespace; an unprivileged one by
     * their path, which resolves in the session's copy of the host's mounts. */
    int c_in = in[0], c_out = out[1], c_err = err[1];
    if (size) {
        close(in[0]);
        close(out[1]);
        close(err[1]);
        c_in = c_out = c_err = open_terminal(size);
    }
    if (stdin_file && (c_in = open(stdin_file, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
        p_fail(stdin_file, errno);
    if (stdout_file &&
        (c_out = open(stdout_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666)) < 0)
        p_fail(stdout_file, errno);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        p_fail("signalfd", errno);
    /* vfork: copying P's memory only to replace it at once costs as much as
     * the exec itself on some virtual machines. */
    c_pid = vfork();
    if (c_pid < 0)
        p_fail("vfork", errno);
    if (c_pid == 0)
        run_c(argv, c_in, c_out, c_err, size != NULL);
    close(c_in);
    if (!size) {
        close(c_out);
        close(c_err);
    }
    in_fd = in[1];
    int src[3] = { -1, out[0], err[0] };
    if (size) {
        /* The terminal's output is the command's stdout and stderr alike; its end is
         * EIO, once every process of the job has closed the terminal. */
        close(in[1]);
        close(out[0]);
        close(err[0]);
        in_fd = dup(terminal_fd);
        src[1] = dup(terminal_fd);
        src[2] = -1;
    }
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
    if (stdin_file) {
        close_stdin(); /* stdin frames, if any, are discarded */
    }
    if (stdout_file) {
        close(out[0]);
        src[1] = -1;
    }

    static unsigned char ob[5 + CHUNK];
    /* Background writers such as tee keep the job until they close their end
     * (Debian #1017974); detached daemons do not, and die with P. */
    while (!c_reaped || src[1] >= 0 || src[2] >= 0) {
        bool stalled = handle_input();
        struct pollfd pf[5] = {
            { .fd = sfd, .events = POLLIN },
            { .fd = src[1], .events = POLLIN },
            { .fd = src[2], .events = POLLIN },
            /* While stalled only a hang-up is of interest: it still kills. */
            { .fd = CONN_FD, .events = POLLRDHUP | (stalled ? 0 : POLLIN) },
            { .fd = stalled ? in_fd : -1, .events = POLLOUT },
        };
        if (poll(pf, 5, -1) < 0) {
            if (errno == EINTR)
                continue;
            p_fail("poll", errno);
        }
        if (pf[0].revents)
            reap(sfd);
        for (int i = 1; i < 3; i++) {
            if (!pf[i].revents)
                continue;
            ssize_t n = read(src[i], ob + 5, CHUNK);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (n <= 0) {
                close(src[i]);
                src[i] = -1; /* poll() skips negative fds */
                continue;
            }
            frame_header(ob, i == 1 ? 'o' : 'e', (uint32_t)n);
            send_frame(ob, 5 + (size_t)n);
        }
        if (pf[3].revents & (POLLRDHUP | POLLHUP | POLLERR))
            _exit(137); /* end of the client's stream: kill, or the client is gone */
        if (pf[3].revents & POLLIN) {
            if (r_off > 0) {
                memmove(rb, rb + r_off, r_len - r_off);
                r_len -= r_off;
                r_off = 0;
            }
            ssize_t n = recv(CONN_FD, rb + r_len, sizeof rb - r_len, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                _exit(137);
            if (n > 0)
                r_len += (size_t)n;
        }
        if (pf[4].revents & (POLLERR | POLLHUP))
            close_stdin(); /* C closed its stdin; handle_input() discards the rest */
    }
    _exit(exit_status(c_status));
}

/* --------------------------------------------------------------- jobd -- */

struct job {
    uint64_t id; /* its epoll tag: a pointer could be reused within one batch */
    pid_t pid;   /* P, until reaped; then 0 */
    int conn;
    bool watched; /* conn is in the epoll set */
    unsigned char x[6];
    size_t x_sent;
    struct job *next;
};

static struct job *jobs;
static int epfd;
static int lfd;
static bool accepting = true;
static const char *socket_path;
/* epoll tags of jobd's own descriptors; jobs count on from FIRST_JOB */
enum { TAG_LISTEN = 1, TAG_STDIN, TAG_SIGNAL, FIRST_JOB };
static uint64_t next_id = FIRST_JOB;

static void die(const char *what)
{
    fprintf(stderr, "uchroot-jobd: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void watch(int fd, uint32_t events, uint64_t tag, int op)
{
    struct epoll_event ev = { .events = events, .data.u64 = tag };
    if (epoll_ctl(epfd, op, fd, &ev) < 0)
        die("epoll_ctl");
}

static void forget(struct job *job)
{
    if (job->watched)
        epoll_ctl(epfd, EPOLL_CTL_DEL, job->conn, NULL);
    close(job->conn);
    for (struct job **p = &jobs; *p; p = &(*p)->next)
        if (*p == job) {
            *p = job->next;
            break;
        }
    free(job);
    if (!accepting) { /* a descriptor is free again */
        accepting = true;
        watch(lfd, EPOLLIN, TAG_LISTEN, EPOLL_CTL_ADD);
    }
}

/* Sends what is left of the exit frame without ever blocking jobd. */
static void finish(struct job *job)
{
    while (job->x_sent < sizeof job->x) {
        ssize_t n = send(job->conn, job->x + job->x_sent, sizeof job->x - job->x_sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            watch(job->conn, EPOLLOUT, job->id, job->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD);
            job->watched = true;
            return;
        }
        if (n < 0)
            break; /* the client is gone: nobody to tell */
        job->x_sent += (size_t)n;
    }
    forget(job);
}

static void reap_jobs(int sfd)
{
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
        ;
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (struct job *job = jobs; job; job = job->next) {
            if (job->pid != pid)
                continue;
            job->pid = 0;
            frame_header(job->x, 'x', 1);
            job->x[5] = (unsigned char)exit_status(st);
            finish(job);
            break;
        }
    }
}

/* Kills every job still running and reaps it: a job's pid 1 is reaped only once
 * nothing of the job is left, so no process of the session holds the testbed. */
static void end_jobs(void)
{
    for (struct job *job = jobs; job; job = job->next)
        if (job->pid > 0)
            kill(job->pid, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
}

/* Refuses with an 'f' frame a connection that got no job. */
static void refuse(int conn, const char *what, int err)
{
    unsigned char frame[5 + 256];
    int n = snprintf((char *)frame + 5, sizeof frame - 5, "%s: %s", what, strerror(err));
    if (n < 0 || (size_t)n > sizeof frame - 6)
        n = n < 0 ? 0 : (int)(sizeof frame - 6);
    frame_header(frame, 'f', (uint32_t)n);
    (void)!send(conn, frame, 5 + (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    close(conn);
}

static void accept_jobs(void)
{
    for (;;) {
        int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) {
            if ((errno == EMFILE || errno == ENFILE) && jobs) {
                /* Connections wait in the backlog until a job ends. */
                accepting = false;
                epoll_ctl(epfd, EPOLL_CTL_DEL, lfd, NULL);
            }
            return; /* EAGAIN: all taken; others concern that connection only */
        }
        /* The socket's directory is private already; this also holds if it
         * were not.  Credentials are as seen from the session's user namespace,
         * where an unprivileged engine's user is root.  Root's engine has no uid
         * there, as every host id outside the range: it must also be outside
         * the session's pid namespace (pid 0 here), which no testbed process is. */
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != engine_uid
            || (ids.count && cred.pid != 0)) {
            close(conn);
            continue;
        }
        struct job *job = calloc(1, sizeof *job);
        if (!job) {
            refuse(conn, "cannot start the job", ENOMEM);
            continue;
        }
        /* clone() rather than fork(): the new pid and mount namespaces are
         * for the child only, and jobd stays where it is.  A raw clone with no
         * new stack behaves as fork(), as in bubblewrap. */
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, NULL, NULL,
                                   NULL, NULL);
        if (pid == 0)
            run_p(conn);
        if (pid < 0) {
            int e = errno;
            free(job);
            refuse(conn, "cannot start the job", e);
            continue;
        }
        job->id = next_id++;
        job->pid = pid;
        job->conn = conn;
        job->next = jobs;
        jobs = job;
        job->watched = true;
        watch(conn, EPOLLRDHUP, job->id, EPOLL_CTL_ADD);
    }
}

/* The uid that ids without a mapping in this user namespace show as. */
static uid_t overflow_uid(void)
{
    FILE *f = fopen("/proc/sys/kernel/overflowuid", "re");
    unsigned long uid = 65534;
    if (f) {
        if (fscanf(f, "%lu", &uid) != 1)
            uid = 65534;
        fclose(f);
    }
    return (uid_t)uid;
}

static void usage(void)
{
    fputs("usage: uchroot-jobd --root ROOTFS --socket PATH [--testbed DIR]\n"
          "                    [--overlay LOWER UPPER WORK OPTIONS] [--scratch OUTSIDE INSIDE]\n"
          "                    [--bind OUTSIDE INSIDE]... [--ids UID GID COUNT]\n"
          "       uchroot-jobd --ids UID GID COUNT --exec COMMAND [ARG]...\n"
          "       uchroot-jobd --helper ENGINE_PID COMMAND [ARG]...\n"
          "       uchroot-jobd --dev-skeleton DIR\n",
          stderr);
    exit(125);
}

/* UID GID COUNT, into ids; false unless all three are numbers and COUNT is not 0. */
static bool parse_ids(char **arg)
{
    unsigned long v[3];
    for (int i = 0; i < 3; i++) {
        char *end;
        errno = 0;
        v[i] = strtoul(arg[i], &end, 10);
        if (errno || end == arg[i] || *end || arg[i][0] == '-')
            return false;
    }
    ids = (struct id_map){ v[0], v[1], v[2] };
    return ids.count > 0;
}

/* The command line, into root, socket_path and the sandbox to set up. */
static void parse_args(int argc, char **argv, struct sandbox *sb)
{
    sb->binds = calloc((size_t)argc, sizeof *sb->binds);
    if (!sb->binds)
        die("calloc");
    for (int i = 1; i < argc;) {
        const char *opt = argv[i];
        int left = argc - i - 1;
        if (strcmp(opt, "--root") == 0 && left >= 1) {
            root = argv[i + 1];
            i += 2;
        } else if (strcmp(opt, "--testbed") == 0 && left >= 1 && argv[i + 1][0] == '/') {
            testbed = argv[i + 1];
            i += 2;
        } else if (strcmp(opt, "--socket") == 0 && left >= 1) {
            socket_path = argv[i + 1];
            i += 2;
        } else if (strcmp(opt, "--scratch") == 0 && left >= 2 && argv[i + 1][0] == '/'
                   && argv[i + 2][0] == '/') {
            sb->scratch_outside = argv[i + 1];
            sb->scratch = argv[i + 2];
            i += 3;
        } else if (strcmp(opt, "--overlay") == 0 && left >= 4) {
            sb->overlay_lower = argv[i + 1];
            sb->overlay_upper = argv[i + 2];
            sb->overlay_work = argv[i + 3];
            sb->overlay_options = argv[i + 4];
            i += 5;
        } else if (strcmp(opt, "--bind") == 0 && left >= 2 && argv[i + 2][0] == '/') {
            sb->binds[sb->bind_count].outside = argv[i + 1];
            sb->binds[sb->bind_count].inside = argv[i + 2];
            sb->binds[sb->bind_count].fd = -1;
            sb->bind_count++;
            i += 3;
        } else if (strcmp(opt, "--ids") == 0 && left >= 3 && parse_ids(argv + i + 1)) {
            i += 4;
        } else {
            usage();
        }
    }
    if (!root || !socket_path || root[0] != '/')
        usage();
    sb->root = root;
}

int main(int argc, char **argv)
{
    test_hold_init();
    if (argc == 3 && strcmp(argv[1], "--dev-skeleton") == 0) {
        umask(022);
        return sandbox_dev_skeleton(argv[2]) == 0 ? 0 : 1;
    }
    if (argc >= 4 && strcmp(argv[1], "--helper") == 0) {
        char *end;
        long engine = strtol(argv[2], &end, 10);
        if (*end || engine <= 0)
            usage();
        return helper_run((pid_t)engine, argv + 3);
    }
    if (argc >= 7 && strcmp(argv[1], "--ids") == 0 && strcmp(argv[5], "--exec") == 0) {
        if (!parse_ids(argv + 2))
            usage();
        return userns_exec(&ids, argv + 6);
    }
    struct sandbox sb = { .overlay_fd = -1, .scratch_fd = -1 };
    parse_args(argc, argv, &sb);
    /* A closed 0, 1 or 2 would be reused below and mistaken for a stream. */
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
            die("/dev/null");
    /* Bound first, with the engine's privileges: the runtime directory is the engine's user's
     * alone.  Nothing connects before the ready line. */
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(socket_path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        die(socket_path);
    }
    strcpy(addr.sun_path, socket_path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (lfd < 0)
        die("socket");
    mode_t mask = umask(077); /* the socket is its owner's only; jobs keep the usual umask */
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0)
        die(socket_path);
    umask(mask);
    if (listen(lfd, SOMAXCONN) < 0)
        die("listen");
    engine_uid = getuid();
    if (ids.count) {
        userns_split(&sb, &ids, socket_path, testbed);
        /* The engine, the host's root, has no uid here. */
        engine_uid = overflow_uid();
    }
    /* Before anything listens: the first job must find the testbed complete. */
    sandbox_setup(&sb);
    root = strdup(root); /* P writes over its copy of argv: see show_job() */
    if (!root)
        die("strdup");
    title = argv[0];
    title_len = strlen(argv[0]) + 1;
    for (int i = 1; i < argc && title_len; i++)
        title_len = argv[i] == title + title_len ? title_len + strlen(argv[i]) + 1 : 0;

    /* Once, for every job: what C inherits is then clean already. */
    clearenv();
    setenv("PATH", PATH_VALUE, 1);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            signal(s, SIG_DFL); /* fails harmlessly for libc-reserved signals */
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_SETMASK, &set, NULL);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        die("signalfd");
    /* One descriptor per running job. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }


    bool remove_testbed = false;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    watch(lfd, EPOLLIN, TAG_LISTEN, EPOLL_CTL_ADD);
    watch(0, EPOLLIN, TAG_STDIN, EPOLL_CTL_ADD);
    watch(sfd, EPOLLIN, TAG_SIGNAL, EPOLL_CTL_ADD);

    /* Announced only now, so that the first job finds the socket listening. */
    static const char ready[] = "uchroot-sandbox-ready\n";
    if (write(1, ready, sizeof ready - 1) != (ssize_t)sizeof ready - 1)
        die("stdout");
    /* The engine reads its end again only for the removal's report. */
    int report = fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (report < 0)
        die("stdout");
    int null = open("/dev/null", O_WRONLY);
    if (null < 0 || dup2(null, 1) < 0)
        die("/dev/null");
    close(null);

    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(epfd, evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64;
            if (tag == TAG_LISTEN) {
                accept_jobs();
            } else if (tag == TAG_SIGNAL) {
                reap_jobs(sfd);
            } else if (tag == TAG_STDIN) {
                char buf[512];
                ssize_t r = read(0, buf, sizeof buf);
                if (r > 0 && memchr(buf, 'r', (size_t)r))
                    remove_testbed = testbed != NULL;
                if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
                    /* The engine closed the session, or died.  Running jobs
                     * end with the session's pid namespace. */
                    unlink(socket_path);
                    if (remove_testbed && ids.count) {
                        /* The process outside, the host's root, deletes it. */
                        end_jobs();
                        userns_ask_removal();
                    } else if (remove_testbed) {
                        end_jobs();
                        /* Out of the testbed, whose directory goes. */
                        (void)!chdir("/");
                        test_hold("remove");
                        if (sandbox_remove(root, testbed) < 0)
                            return 1;
                        static const char removed[] = "uchroot-testbed-removed\n";
                        (void)!write(report, removed, sizeof removed - 1);
                    }
                    return 0;
                }
            } else {
                struct job *job = jobs;
                while (job && job->id != tag)
                    job = job->next;
                if (!job) {
                    continue; /* finished earlier in this batch */
                } else if (job->pid > 0) {
                    /* The client ended its stream (kill) or went away: P may
                     * be blocked writing to it, so end the job from here. */
                    kill(job->pid, SIGKILL);
                    epoll_ctl(epfd, EPOLL_CTL_DEL, job->conn, NULL);
                    job->watched = false;
                } else if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
                    forget(job);
                } else {
                    finish(job);
                }
            }
        }
    }
}
