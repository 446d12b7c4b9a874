/*
 * The session's mounts, made once by the job server before it listens.
 */
#ifndef UCHROOT_SANDBOX_H
#define UCHROOT_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

/* Exit status when the overlay cannot be mounted: the engine then unpacks. */
#define SANDBOX_OVERLAY_FAILED 3

struct bind_mount {
    const char *outside; /* a host path */
    const char *inside;  /* absolute, inside the rootfs */
    int fd;              /* -1, or a detached copy of outside to attach instead */
};

struct sandbox {
    const char *root;          /* absolute host path of the rootfs */
    const char *overlay_lower; /* NULL: root is a plain directory */
    const char *overlay_upper;
    const char *overlay_work;
    const char *overlay_options; /* extra options, may be empty */
    const char *scratch;         /* NULL or an absolute path inside the rootfs */
    const char *scratch_outside; /* the host directory bound there (sandbox_scratch_dir makes it) */
    bool root_is_cwd; /* root is reached as the working directory, not by its path */
    /* Made beforehand by the host's root (userns.c), else -1: */
    int overlay_fd; /* the overlay, detached, to attach on root */
    int scratch_fd; /* a detached copy of scratch_outside, made already */
    struct bind_mount *binds;
    size_t bind_count;
};

/*
 * Mounts the overlay (if any) on root, then /proc, the bind mounts, /dev and
 * /sys inside it, as autopkgtest's unshare-helper prepares a rootfs, and binds
 * a fresh host directory, scratch_outside, on the scratch directory.  Paths
 * inside the rootfs are resolved as a chroot would resolve them, so a symlink
 * in the rootfs never sends a mount or a mkdir to the host.  Leaves the caller
 * in the testbed's root directory, where its jobs find it.  On failure prints
 * one line on stderr and exits (SANDBOX_OVERLAY_FAILED if the overlay failed,
 * else 1).
 */
void sandbox_setup(const struct sandbox *sb);

/* "uchroot-sandbox: WHAT: strerror(errno)" on stderr, then exit(status). */
__attribute__((format(printf, 2, 3), noreturn)) void sandbox_fail(int status, const char *fmt, ...);

/* Makes the host side of the scratch directory, or exits with one line on stderr. */
void sandbox_scratch_dir(const char *dir);

/*
 * Makes DEV, unless it exists, as sandbox_setup completes /dev: its mount
 * points, empty files with no permissions where it binds the host's devices,
 * and its links.  An overlay testbed then finds them in its base, rather than
 * copying them up at each open.  0, or -1 with one line on stderr.
 */
int sandbox_dev_skeleton(const char *dev);

/*
 * The testbed's end, once no process of it is left: detaches every mount at
 * root (in this mount namespace only), then, if nothing is mounted at or below
 * testbed any more, deletes testbed and everything in it, never following a
 * symlink nor entering another filesystem.  0 once it is gone; else -1, with
 * one line on stderr, and what is left is left for the engine.
 */
int sandbox_remove(const char *root, const char *testbed);

#endif
