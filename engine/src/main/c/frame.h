/*
 * The frames the native programs speak: a type byte, the payload's length as a big-endian 32-bit
 * number, the payload. docs/protocol.md lists the types; the Java side is Frame.java. Pure
 * functions of bytes, so that frame-test.c can drive them under the sanitizers.
 */
#ifndef UCHROOT_FRAME_H
#define UCHROOT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER 5
/* As the exec relay (Frame.java): more than execve takes. */
#define FRAME_MAX_ARGV (16u << 20)
#define FRAME_MAX_ARGS (1u << 20)

static inline void frame_header(unsigned char *h, char type, uint32_t len)
{
    h[0] = (unsigned char)type;
    h[1] = (unsigned char)(len >> 24);
    h[2] = (unsigned char)(len >> 16);
    h[3] = (unsigned char)(len >> 8);
    h[4] = (unsigned char)len;
}

/* The payload's length of the header at h. */
static inline uint32_t frame_length(const unsigned char *h)
{
    return (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
}

/* How many arguments an 'a' frame's payload holds: argv needs room for as many and a NULL. */
static inline size_t frame_count_args(const char *args, size_t len)
{
    size_t argc = 0;
    for (size_t i = 0; i < len; i++)
        argc += args[i] == '\0';
    return argc;
}

/*
 * Checks an 'a' frame's payload, the command's arguments each ending in NUL: NULL if it is a
 * command, else what is wrong with it, as the job server tells its client.
 */
static inline const char *frame_check_args(const char *args, size_t len)
{
    if (len == 0)
        return "protocol error: the first frame must be a command";
    if (len > FRAME_MAX_ARGV)
        return "protocol error: the command is longer than the limit of 16777216 bytes";
    if (args != NULL && args[len - 1] != '\0')
        return "protocol error: the command does not end with NUL";
    if (args != NULL && frame_count_args(args, len) > FRAME_MAX_ARGS)
        return "protocol error: the command has more than 1048576 arguments";
    return NULL;
}

/*
 * Splits a checked 'a' payload into argv, which has room for frame_count_args() + 1 pointers:
 * argv[i] points into args, argv[argc] is NULL. Returns argc.
 */
static inline size_t frame_split_args(char *args, size_t len, char **argv)
{
    size_t argc = frame_count_args(args, len);
    char *s = args;
    for (size_t i = 0; i < argc; i++) {
        argv[i] = s;
        while (*s)
            s++;
        s++;
    }
    argv[argc] = NULL;
    return argc;
}

#endif
