/*
 * uchroot-exec SOCKET CMD [ARGS...]
 *
 * Runs CMD in the testbed through the uchroot server listening on the Unix
 * stream socket SOCKET: relays stdin, stdout and stderr, turns a SIGINT,
 * SIGTERM or SIGHUP it receives into an interrupt of this command only (the
 * server escalates from SIGINT, see docs/signals.md), and finally exits with
 * the command's status.  It runs once per testbed
 * command, so it stays small: no stdio, no allocation unless argv is huge.
 *
 * Every frame is 1 type byte, a 4-byte big-endian payload length, the payload.
 *   to the server:   'a' argv, each argument NUL-terminated (first, once)
 *                    'i' stdin data, 'c' end of stdin (empty)
 *                    's' a signal we received (1 byte: its number)
 *   from the server: 'o' stdout data, 'e' stderr data
 *                    'x' exit status (1 byte), then the server closes
 *                    'f' failure message (UTF-8)
 * Our own failures exit 255.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"

#define CHUNK 32768

static int sig_pipe[2];
/* Frames waiting for the socket to accept them.  Stdin is read only when it
 * is empty, so one 'i' frame always fits, with room left for 's' frames. */
static unsigned char out[CHUNK + 4096];
static size_t out_off, out_len;
static bool broken[3]; /* fd 1 or 2 no longer takes output: discard it */

/* One line on stderr: "uchroot-exec: " and the pieces, up to a NULL. */
static void vsay(const char *first, va_list ap)
{
    struct iovec v[8] = { { "uchroot-exec: ", 14 } };
    int n = 1;
    for (const char *s = first; s && n < 7; s = va_arg(ap, const char *))
        v[n++] = (struct iovec){ (void *)s, strlen(s) };
    v[n++] = (struct iovec){ "\n", 1 };
    (void)!writev(2, v, n);
}

__attribute__((sentinel)) static void say(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    vsay(first, ap);
    va_end(ap);
}

__attribute__((sentinel)) static void fail(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    vsay(first, ap);
    va_end(ap);
    _exit(255);
}

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    (void)!write(sig_pipe[1], &b, 1);
    errno = saved;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* someone made our stdout non-blocking */
                struct pollfd pf = { .fd = fd, .events = POLLOUT };
                poll(&pf, 1, -1);
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Queues a frame of at most 1 payload byte; false if there is no room. */
static bool queue_small(char type, const unsigned char *payload, uint32_t len)
{
    if (out_off > 0) {
        memmove(out, out + out_off, out_len - out_off);
        out_len -= out_off;
        out_off = 0;
    }
    if (out_len + 5 + len > sizeof out)
        return false;
    frame_header(out + out_len, type, len);
    if (len)
        out[out_len + 5] = *payload;
    out_len += 5 + len;
    return true;
}

/* Incoming frame parser state: survives across reads. */
static unsigned char hdr[5];
static size_t hdr_got;
static char type;
static uint32_t remain;
static int exit_status;
static char message[1024];
static size_t message_len;

static void incoming_done(void)
{
    hdr_got = 0;
    if (type == 'x')
        _exit(exit_status);
    if (type == 'f') {
        message[message_len] = '\0';
        fail(message, NULL);
    }
}

static void parse(const unsigned char *p, size_t n)
{
    while (n > 0) {
        if (hdr_got < 5) {
            size_t take = 5 - hdr_got < n ? 5 - hdr_got : n;
            memcpy(hdr + hdr_got, p, take);
            hdr_got += take;
            p += take;
            n -= take;
            if (hdr_got < 5)
                return;
            type = (char)hdr[0];
            remain = frame_length(hdr);
            if (!strchr("oexf", type) || type == '\0' || (type == 'x' && remain != 1))
                fail("protocol error from the testbed", NULL);
            message_len = 0;
            if (remain == 0)
                incoming_done();
            continue;
        }
        size_t take = remain < n ? remain : n;
        if (type == 'o' || type == 'e') {
            int fd = type == 'o' ? 1 : 2;
            if (!broken[fd] && write_all(fd, p, take) < 0)
                broken[fd] = true;
        } else if (type == 'x') {
            exit_status = p[0];
        } else {
            size_t room = sizeof message - 1 - message_len;
            size_t copy = take < room ? take : room;
            memcpy(message + message_len, p, copy);
            message_len += copy;
        }
        p += take;
        n -= take;
        remain -= (uint32_t)take;
        if (remain == 0)
            incoming_done();
    }
}

static void send_argv(int sock, int argc, char **argv)
{
    size_t len = 0;
    for (int i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    unsigned char *frame = len + 5 <= sizeof out ? out : malloc(len + 5);
    if (!frame)
        fail("out of memory", NULL);
    frame_header(frame, 'a', (uint32_t)len);
    unsigned char *p = frame + 5;
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]) + 1;
        memcpy(p, argv[i], l);
        p += l;
    }
    /* A refusal here is not fatal yet: the server may have said why in an 'f' frame. */
    (void)write_all(sock, frame, len + 5);
    if (frame != out)
        free(frame);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        say("usage: uchroot-exec SOCKET CMD [ARGS...]", NULL);
        return 255;
    }
    /* A closed fd 0, 1 or 2 would be reused by our socket or pipe below and
     * then mistaken for stdin or stdout: park /dev/null there instead. */
    int fl = fcntl(0, F_GETFL);
    bool in_open = fl >= 0 && (fl & O_ACCMODE) != O_WRONLY;
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd ? O_WRONLY : O_RDONLY) != fd)
            fail("cannot open /dev/null", NULL);

    /* Caught from the start, so that an early ^C is relayed rather than fatal. */
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        fail("pipe: ", strerror(errno), NULL);
    struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t plen = strlen(argv[1]);
    if (plen >= sizeof addr.sun_path)
        fail(argv[1], ": socket path too long", NULL);
    memcpy(addr.sun_path, argv[1], plen);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0)
        fail("cannot connect to ", argv[1], ": ", strerror(errno), NULL);
    send_argv(sock, argc - 2, argv + 2);
    fcntl(sock, F_SETFL, O_NONBLOCK);

    if (!in_open)
        queue_small('c', NULL, 0);
    bool sock_out_dead = false;
    static unsigned char buf[65536];

    for (;;) {
        bool pending = out_off < out_len && !sock_out_dead;
        struct pollfd pf[3] = {
            { .fd = in_open && !pending ? 0 : -1, .events = POLLIN },
            { .fd = sock, .events = POLLIN | (pending ? POLLOUT : 0) },
            { .fd = sig_pipe[0], .events = POLLIN },
        };
        if (poll(pf, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            fail("poll: ", strerror(errno), NULL);
        }
        if (pf[2].revents) {
            unsigned char sigs[16];
            ssize_t n = read(sig_pipe[0], sigs, sizeof sigs);
            for (ssize_t i = 0; i < n; i++)
                queue_small('s', &sigs[i], 1); /* a flood beyond the buffer is dropped */
        }
        if (pf[1].revents & POLLOUT) {
            ssize_t w = send(sock, out + out_off, out_len - out_off, MSG_NOSIGNAL);
            if (w > 0)
                out_off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                /* The server stopped reading: keep taking its output, send nothing more. */
                sock_out_dead = true;
                in_open = false;
                out_off = out_len = 0;
            }
        }
        if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(sock, buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                fail("connection to the testbed was lost", NULL);
            if (n > 0)
                parse(buf, (size_t)n);
        }
        if (pf[0].revents) {
            /* Built in place: out held nothing when stdin was polled, and at
             * most a few 's' frames were queued since. */
            memmove(out, out + out_off, out_len - out_off);
            out_len -= out_off;
            out_off = 0;
            unsigned char *frame = out + out_len;
            size_t room = sizeof out - out_len - 5;
            ssize_t n = read(0, frame + 5, room < CHUNK ? room : CHUNK);
            if (n > 0) {
                frame_header(frame, 'i', (uint32_t)n);
                out_len += 5 + (size_t)n;
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                in_open = false;
                queue_small('c', NULL, 0);
            }
        }
    }
}
