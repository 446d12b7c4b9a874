/*
 * The frame codec of frame.h, driven with the payloads a client may send, edge cases first. Built
 * with AddressSanitizer and UndefinedBehaviorSanitizer (make sanitized): a read past a payload or
 * an overflow ends it with a report. Prints one line per check and exits non-zero on a failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

static int failures;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    failures += !ok;
}

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* A payload in a buffer of its exact size, so that a read past it is the sanitizer's. */
static char *payload(const char *bytes, size_t len)
{
    char *p = malloc(len ? len : 1);
    memcpy(p, bytes, len);
    return p;
}

static void header_round_trips(void)
{
    const uint32_t lengths[] = { 0, 1, 255, 256, 65535, 65536, 16777216, 2147483648u, 4294967295u };
    for (size_t i = 0; i < sizeof lengths / sizeof *lengths; i++) {
        unsigned char h[FRAME_HEADER];
        frame_header(h, 'o', lengths[i]);
        char what[64];
        snprintf(what, sizeof what, "header of length %u", lengths[i]);
        check(h[0] == 'o' && frame_length(h) == lengths[i], what);
    }
    unsigned char big_endian[FRAME_HEADER] = { 'a', 0x01, 0x02, 0x03, 0x04 };
    check(frame_length(big_endian) == 0x01020304u, "length is big-endian");
}

static void commands(void)
{
    check(same(frame_check_args(NULL, 0), "protocol error: the first frame must be a command"),
          "an empty command is refused before its payload is read");
    check(same(frame_check_args(NULL, FRAME_MAX_ARGV + 1),
               "protocol error: the command is longer than the limit of 16777216 bytes"),
          "a command over the limit is refused before its payload is read");
    check(frame_check_args(NULL, FRAME_MAX_ARGV) == NULL, "a command at the limit may be read");

    char *unterminated = payload("true", 4);
    check(same(frame_check_args(unterminated, 4),
               "protocol error: the command does not end with NUL"),
          "a command without its last NUL is refused");
    free(unterminated);

    char *two = payload("echo\0hi\0", 8);
    check(frame_check_args(two, 8) == NULL, "two arguments are a command");
    char *argv[3];
    size_t argc = frame_split_args(two, 8, argv);
    check(argc == 2 && strcmp(argv[0], "echo") == 0 && strcmp(argv[1], "hi") == 0
              && argv[2] == NULL,
          "two arguments split, NULL after them");
    free(two);

    char *empties = payload("\0\0\0", 3);
    char *three[4];
    check(frame_check_args(empties, 3) == NULL && frame_split_args(empties, 3, three) == 3
              && three[0][0] == '\0' && three[2][0] == '\0' && three[3] == NULL,
          "empty arguments are arguments");
    free(empties);

    size_t many = (size_t)FRAME_MAX_ARGS + 1;
    char *nuls = calloc(many, 1);
    check(same(frame_check_args(nuls, many),
               "protocol error: the command has more than 1048576 arguments"),
          "more arguments than the limit are refused");
    check(frame_check_args(nuls, many - 1) == NULL, "as many arguments as the limit are a command");
    char **argv_many = malloc(many * sizeof *argv_many);
    check(frame_split_args(nuls, many - 1, argv_many) == many - 1 && argv_many[many - 1] == NULL,
          "as many arguments as the limit split");
    free(argv_many);
    free(nuls);
}

int main(void)
{
    header_round_trips();
    commands();
    return failures ? 1 : 0;
}
