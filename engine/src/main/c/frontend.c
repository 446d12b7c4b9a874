/*
 * autopkgtest-virt-uchroot [OPTIONS]
 *
 * The autopkgtest virtualisation server as its callers run it: relays the protocol between its
 * stdin/stdout and one session of the user's shared engine (`uchroot engine`), starting that
 * engine if none runs. Its argv, working directory and environment go to the engine, which parses
 * the options (one owner of their rules) and serves the session; the session's messages come back
 * on this program's stderr. Where the engine is not to serve it (--engine=standalone,
 * UCHROOT_ENGINE=standalone, uchroot.engine.default = standalone where neither chooses, options the
 * engine has other settings for, an engine in another mount namespace, an engine that cannot
 * start), it runs `uchroot virt-server` in its place instead.
 *
 * Signals: SIGINT is passed on (the engine interrupts this session's commands, never tears the
 * testbed down); so is SIGWINCH, for the terminal lent to `shell`; SIGTERM and SIGHUP are passed
 * on, the engine closes the testbed, then this program dies of the signal, as the reference does.
 * If this program dies, the engine sees its connection end and closes the testbed as at end of
 * input.
 *
 * Frames: see frame.h and docs/protocol.md, "The engine socket".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

#define PROGRAM "autopkgtest-virt-uchroot"
#define CHUNK 32768
/* The reference's status for a failure of the conversation. */
#define EXIT_FAILURE_PROTOCOL 12
/* How long a starting engine may take to answer: a cold JVM on a loaded machine. */
#define START_TIMEOUT_MS 60000
/* The status of `uchroot engine --unless-default-standalone` where uchroot.engine.default is
 * standalone (EngineCommand.NOT_CHOSEN). */
#define ENGINE_NOT_CHOSEN 3

extern char **environ;

static bool debug;
static int sig_pipe[2];
/* What the engine runs for this program: the virt server, or `uchroot run` (UCHROOT_FRONTEND_COMMAND
 * from the launcher). */
static const char *command = "virt-server";
/* The name this program's messages start with: `uchroot` for run. */
static const char *program = PROGRAM;
/* run: the command gets this program's terminal, which the engine opens; stdin stays unread here. */
static bool lends_terminal;

__attribute__((format(printf, 1, 2))) static void say(const char *format, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(line, sizeof line - 1, format, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    struct iovec v[3] = { { (void *)program, strlen(program) }, { ": ", 2 }, { line, (size_t)n } };
    (void)!writev(2, v, 3);
}

static bool write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool read_all(int fd, void *data, size_t len)
{
    char *p = data;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool send_frame(int sock, char type, const void *data, size_t len)
{
    unsigned char header[FRAME_HEADER];
    frame_header(header, type, (uint32_t)len);
    return write_all(sock, header, sizeof header) && write_all(sock, data, len);
}

/* The directory of this program, where the `uchroot` launcher is. */
static const char *bin_dir(void)
{
    static char dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0)
        return NULL;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return NULL;
    *slash = '\0';
    return dir;
}

/* Runs the JVM's server in this process's place: `uchroot virt-server ARGS`, or `uchroot run ARGS`. */
__attribute__((noreturn)) static void run_standalone(int argc, char **argv, const char *why)
{
    if (debug)
        say("running a server of its own: %s", why);
    const char *dir = bin_dir();
    char launcher[PATH_MAX];
    if (dir == NULL || snprintf(launcher, sizeof launcher, "%s/uchroot", dir) >= (int)sizeof launcher) {
        say("cannot find the uchroot launcher beside this program");
        exit(EXIT_FAILURE_PROTOCOL);
    }
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (args == NULL)
        exit(EXIT_FAILURE_PROTOCOL);
    args[0] = "uchroot";
    args[1] = (char *)command;
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    if (strcmp(command, "run") == 0)
        setenv("UCHROOT_NO_FRONTEND", "1", 1);
    else
        setenv("UCHROOT_PROGRAM", PROGRAM, 1);
    /* Caught signals are reset by execv; an ignored one would stay ignored. */
    signal(SIGPIPE, SIG_DFL);
    execv(launcher, args);
    say("cannot run %s: %s", launcher, strerror(errno));
    exit(EXIT_FAILURE_PROTOCOL);
}

/*
 * The user's runtime directory, by the rule of Host.runtimeDir(): $UCHROOT_RUNTIME_DIR, else
 * /run/user/UID/uchroot where /run/user/UID is the user's, else /run/uchroot for root, else
 * /tmp/uchroot-UID.
 */
static void runtime_dir(char *dir, size_t size)
{
    const char *chosen = getenv("UCHROOT_RUNTIME_DIR");
    uid_t uid = getuid();
    char login[64];
    struct stat st;
    snprintf(login, sizeof login, "/run/user/%u", (unsigned)uid);
    if (chosen != NULL && chosen[0] == '/')
        snprintf(dir, size, "%s", chosen);
    else if (lstat(login, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid)
        snprintf(dir, size, "%s/uchroot", login);
    else if (uid == 0)
        snprintf(dir, size, "/run/uchroot");
    else
        snprintf(dir, size, "/tmp/uchroot-%u", (unsigned)uid);
}

static int connect_to(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return -1;
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) == 0)
        return sock;
    int saved = errno;
    close(sock);
    errno = saved;
    return -1;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * Starts the user's engine and connects to it; -1 with *why set if it cannot. A lock in the
 * runtime directory makes the frontends that start at once wait for the first one's engine.
 */
static int start_engine(const char *dir, const char *socket_path, bool chosen, const char **why)
{
    static char reason[PATH_MAX + 256];
    *why = reason;
    uid_t uid = getuid();
    struct stat st;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(reason, sizeof reason, "cannot make %s: %s", dir, strerror(errno));
        return -1;
    }
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 077)) {
        snprintf(reason, sizeof reason, "%s is not a private directory of uid %u", dir, (unsigned)uid);
        return -1;
    }
    char lock_path[PATH_MAX];
    snprintf(lock_path, sizeof lock_path, "%s/engine.lock", dir);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) < 0) {
        snprintf(reason, sizeof reason, "cannot lock %s: %s", lock_path, strerror(errno));
        if (lock >= 0)
            close(lock);
        return -1;
    }
    int sock = connect_to(socket_path);
    if (sock >= 0) {
        close(lock);
        return sock;
    }
    const char *bin = bin_dir();
    char launcher[PATH_MAX];
    if (bin == NULL || snprintf(launcher, sizeof launcher, "%s/uchroot", bin) >= (int)sizeof launcher) {
        snprintf(reason, sizeof reason, "cannot find the uchroot launcher beside this program");
        close(lock);
        return -1;
    }
    /* Where nothing chose the engine, its configuration does, before it starts to serve. */
    const char *unless = chosen ? NULL : "--unless-default-standalone";
    if (debug)
        say("starting the engine: %s engine --detached %s", launcher, chosen ? "" : unless);
    pid_t child = fork();
    if (child < 0) {
        snprintf(reason, sizeof reason, "cannot fork: %s", strerror(errno));
        close(lock);
        return -1;
    }
    if (child == 0) {
        /* Its own session, away from this terminal's signals, with nothing of ours open. */
        setsid();
        if (chdir("/") < 0)
            _exit(127);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        execl(launcher, "uchroot", "engine", "--detached", unless, (char *)NULL);
        _exit(127);
    }
    long deadline = now_ms() + START_TIMEOUT_MS;
    int status;
    while ((sock = connect_to(socket_path)) < 0) {
        if (waitpid(child, &status, WNOHANG) == child) {
            if (!chosen && WIFEXITED(status) && WEXITSTATUS(status) == ENGINE_NOT_CHOSEN)
                snprintf(reason, sizeof reason, "uchroot.engine.default is standalone");
            else
                snprintf(reason, sizeof reason,
                         "the engine ended as it started (see its log, engine.log in uchroot's"
                         " state directory)");
            break;
        }
        if (now_ms() > deadline) {
            snprintf(reason, sizeof reason, "the engine did not answer within %d s",
                     START_TIMEOUT_MS / 1000);
            break;
        }
        usleep(5000);
    }
    close(lock);
    return sock;
}

/* Whether the engine behind sock sees this program's files: the same mount namespace. */
static bool same_files(int sock, const char **why)
{
    static char reason[256];
    struct ucred peer;
    socklen_t len = sizeof peer;
    char theirs_path[64], ours[128], theirs[128];
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0 || peer.pid <= 0)
        return true;
    snprintf(theirs_path, sizeof theirs_path, "/proc/%d/ns/mnt", (int)peer.pid);
    ssize_t a = readlink("/proc/self/ns/mnt", ours, sizeof ours - 1);
    ssize_t b = readlink(theirs_path, theirs, sizeof theirs - 1);
    if (a <= 0 || b <= 0)
        return true;
    ours[a] = theirs[b] = '\0';
    if (strcmp(ours, theirs) == 0)
        return true;
    snprintf(reason, sizeof reason,
             "the engine (pid %d) is in another mount namespace and would not see this program's"
             " files", (int)peer.pid);
    *why = reason;
    return false;
}

/*
 * The device of this program's controlling terminal, which the engine opens to lend it to `shell`
 * as the reference lends /dev/tty: "" if there is none, or none that has a name here.
 */
static void controlling_terminal(char *path, size_t size)
{
    path[0] = '\0';
    char stat_line[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, stat_line, sizeof stat_line - 1);
    close(fd);
    if (n <= 0)
        return;
    stat_line[n] = '\0';
    /* After the command's name, which may hold anything: state ppid pgrp session tty_nr. */
    char *fields = strrchr(stat_line, ')');
    char state;
    int ppid, pgrp, session;
    unsigned tty_nr;
    if (fields == NULL || sscanf(fields + 1, " %c %d %d %d %u", &state, &ppid, &pgrp, &session, &tty_nr) != 5
        || tty_nr == 0)
        return;
    dev_t dev = (dev_t)tty_nr;
    unsigned maj = major(dev), min = minor(dev);
    if (maj >= 136 && maj <= 143)
        snprintf(path, size, "/dev/pts/%u", (maj - 136) * 256 + min);
    else if (maj == 4 && min < 64)
        snprintf(path, size, "/dev/tty%u", min);
    struct stat st;
    if (path[0] != '\0' && (stat(path, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != dev))
        path[0] = '\0';
}

/* The 'w', 'y', 'v' and 'a' frames that open a session. */
static bool send_preamble(int sock, int argc, char **argv)
{
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        strcpy(cwd, "/");
    if (!send_frame(sock, 'w', cwd, strlen(cwd)))
        return false;
    char tty[64] = "";
    if (strcmp(command, "run") != 0) {
        controlling_terminal(tty, sizeof tty);
    } else if (isatty(0) && isatty(1) && ttyname_r(0, tty, sizeof tty) == 0) {
        /* As `uchroot run` of its own: a terminal where stdin and stdout are one. */
        lends_terminal = true;
    }
    if (tty[0] != '\0' && !send_frame(sock, 'y', tty, strlen(tty)))
        return false;
    size_t env_len = 0;
    for (char **e = environ; *e; e++)
        env_len += strlen(*e) + 1;
    size_t args_len = strlen(command) + 1;
    for (int i = 1; i < argc; i++)
        args_len += strlen(argv[i]) + 1;
    if (args_len > FRAME_MAX_ARGV || env_len > FRAME_MAX_ARGV) {
        say("the command line or the environment is longer than %u bytes", FRAME_MAX_ARGV);
        exit(EXIT_FAILURE_PROTOCOL);
    }
    unsigned char header[FRAME_HEADER];
    frame_header(header, 'v', (uint32_t)env_len);
    if (!write_all(sock, header, sizeof header))
        return false;
    for (char **e = environ; *e; e++)
        if (!write_all(sock, *e, strlen(*e) + 1))
            return false;
    frame_header(header, 'a', (uint32_t)args_len);
    if (!write_all(sock, header, sizeof header) || !write_all(sock, command, strlen(command) + 1))
        return false;
    for (int i = 1; i < argc; i++)
        if (!write_all(sock, argv[i], strlen(argv[i]) + 1))
            return false;
    return true;
}

static void on_signal(int sig)
{
    unsigned char s = (unsigned char)sig;
    int saved = errno;
    (void)!write(sig_pipe[1], &s, 1);
    errno = saved;
}

__attribute__((noreturn)) static void die_by(int sig)
{
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

/* relay()'s answer when the engine closed the connection before its first frame. */
#define RELAY_AGAIN (-1)

/*
 * Relays until the engine's last frame; returns the status to exit with, or RELAY_AGAIN if the
 * engine ended the connection before it served it (it was stopping: the next one starts anew).
 */
static int relay(int sock, int argc, char **argv)
{
    static unsigned char buf[CHUNK];
    struct pollfd fds[3] = {
        { .fd = 0, .events = POLLIN },
        { .fd = sock, .events = POLLIN },
        { .fd = sig_pipe[0], .events = POLLIN },
    };
    /* Input waits for the engine's first 'o' (an empty one once it serves the session): a frontend
     * sent to run standalone must leave all of it to the process it runs instead. A terminal lent
     * is read by the engine. */
    bool serving = false, stdin_open = !lends_terminal, stdout_gone = false;
    int terminated_by = 0;
    for (;;) {
        fds[0].fd = serving && stdin_open ? 0 : -1;
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            say("poll: %s", strerror(errno));
            return EXIT_FAILURE_PROTOCOL;
        }
        if (fds[2].revents & POLLIN) {
            unsigned char sig;
            if (read(sig_pipe[0], &sig, 1) == 1) {
                if (sig == SIGTERM || sig == SIGHUP)
                    terminated_by = sig;
                send_frame(sock, 's', &sig, 1);
            }
        }
        if (stdin_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n > 0) {
                send_frame(sock, 'i', buf, (size_t)n);
            } else {
                stdin_open = false;
                send_frame(sock, 'c', NULL, 0);
            }
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            unsigned char header[FRAME_HEADER];
            if (!read_all(sock, header, sizeof header)) {
                if (!serving)
                    return RELAY_AGAIN;
                say("the engine ended without an answer; `uchroot sessions cleanup --orphaned`"
                    " removes the testbeds it left");
                return EXIT_FAILURE_PROTOCOL;
            }
            uint32_t len = frame_length(header);
            if (len > sizeof buf - 1 || !read_all(sock, buf, len)) {
                say("the engine sent a broken frame");
                return EXIT_FAILURE_PROTOCOL;
            }
            buf[len] = '\0';
            switch (header[0]) {
            case 'o':
                serving = true;
                if (!stdout_gone && !write_all(1, buf, len)) {
                    /* The caller stopped reading: its input ends too, and the testbed closes. */
                    stdout_gone = true;
                    if (stdin_open) {
                        stdin_open = false;
                        send_frame(sock, 'c', NULL, 0);
                    }
                }
                break;
            case 'e':
                (void)!write_all(2, buf, len);
                break;
            case 'x':
                if (terminated_by)
                    die_by(terminated_by);
                return len == 1 ? buf[0] : EXIT_FAILURE_PROTOCOL;
            case 'l':
                close(sock);
                run_standalone(argc, argv, (const char *)buf);
            case 'f':
                say("%s", (const char *)buf);
                return EXIT_FAILURE_PROTOCOL;
            default:
                say("the engine sent an unknown frame '%c'", header[0]);
                return EXIT_FAILURE_PROTOCOL;
            }
        }
    }
}

/* Whether arg is a long option of at least min characters that starts name, as argparse takes. */
static bool abbreviates(const char *arg, const char *name, size_t min)
{
    size_t len = strcspn(arg, "=");
    return len >= min && strncmp(arg, name, len) == 0;
}

int main(int argc, char **argv)
{
    const char *engine = getenv("UCHROOT_ENGINE");
    const char *asked = getenv("UCHROOT_FRONTEND_COMMAND");
    if (asked != NULL && strcmp(asked, "run") == 0) {
        command = "run";
        program = "uchroot";
    }
    unsetenv("UCHROOT_FRONTEND_COMMAND");
    /* The options before `--`; run's also end at its command, the first word that is neither an
     * option nor what looks like an option's value. The server parses them all again, with its own
     * rules: what this loop reads only chooses the server and this program's -d. */
    bool run = strcmp(command, "run") == 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (run && argv[i][0] != '-'
            && (argv[i - 1][0] != '-' || strchr(argv[i - 1], '=') != NULL))
            break;
        if (strcmp(argv[i], "-d") == 0 || abbreviates(argv[i], "--debug", 3))
            debug = true;
        if (abbreviates(argv[i], "--engine", 3)) {
            const char *eq = strchr(argv[i], '=');
            engine = eq ? eq + 1 : i + 1 < argc ? argv[i + 1] : engine;
        }
    }
    /* Nothing chose: uchroot.engine.default does, in the engine (README.md says why it is shared).
     * A value other than these two is the server's to refuse, with its own words. */
    bool chosen = engine != NULL && *engine != '\0';
    if (chosen && strcmp(engine, "shared") != 0)
        run_standalone(argc, argv, "--engine or UCHROOT_ENGINE is not shared");

    char dir[PATH_MAX - 16], socket_path[PATH_MAX];
    runtime_dir(dir, sizeof dir);
    snprintf(socket_path, sizeof socket_path, "%s/engine.sock", dir);
    if (debug)
        say("engine socket: %s", socket_path);

    if (pipe2(sig_pipe, O_CLOEXEC) < 0) {
        say("pipe: %s", strerror(errno));
        return EXIT_FAILURE_PROTOCOL;
    }
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* For the terminal the engine may lend to shell: it follows this program's. */
    sigaction(SIGWINCH, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (int attempt = 1;; attempt++) {
        const char *why = NULL;
        int sock = connect_to(socket_path);
        if (sock < 0)
            sock = start_engine(dir, socket_path, chosen, &why);
        if (sock < 0)
            run_standalone(argc, argv, why);
        if (!same_files(sock, &why)) {
            close(sock);
            run_standalone(argc, argv, why);
        }
        if (!send_preamble(sock, argc, argv)) {
            /* An engine that refuses says why before it closes. */
            int saved = errno;
            unsigned char header[FRAME_HEADER];
            static char reason[4096];
            uint32_t len;
            if (read_all(sock, header, sizeof header) && header[0] == 'f'
                && (len = frame_length(header)) < sizeof reason && read_all(sock, reason, len)) {
                reason[len] = '\0';
                say("%s", reason);
                return EXIT_FAILURE_PROTOCOL;
            }
            if (attempt == 3) {
                say("cannot reach the engine: %s", strerror(saved));
                return EXIT_FAILURE_PROTOCOL;
            }
            close(sock);
            continue;
        }
        int status = relay(sock, argc, argv);
        if (status != RELAY_AGAIN)
            return status;
        close(sock);
        if (attempt == 3) {
            say("the engine closed every connection before it answered");
            return EXIT_FAILURE_PROTOCOL;
        }
        if (debug)
            say("the engine was stopping; connecting again");
    }
}
