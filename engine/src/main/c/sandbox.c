/*
 * The session's mounts, made with mount(2) by the job server itself: an open
 * costs these system calls rather than a process for each of them.
 *
 * Every path inside the rootfs is opened with openat2(RESOLVE_IN_ROOT), as a
 * chroot would resolve it, and mounted on through /proc/self/fd: a symlink
 * planted in the rootfs (or in a tarball) can never aim a mount or a mkdir at
 * the host.
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const DEVICES[] = { "null", "zero", "full", "random", "urandom", "tty", "console" };

/* The links of /dev, and their targets. */
static const struct {
    const char *name, *target;
} DEV_LINKS[] = {
    { "fd", "/proc/self/fd" },       { "stdin", "/proc/self/fd/0" }, { "stdout", "/proc/self/fd/1" },
    { "stderr", "/proc/self/fd/2" }, { "ptmx", "/dev/pts/ptmx" },
};

static int root_fd = -1;

void sandbox_fail(int status, const char *fmt, ...)
{
    int err = errno;
    va_list ap;
    va_start(ap, fmt);
    fputs("uchroot-sandbox: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", strerror(err));
    exit(status);
}

#define fail(...) sandbox_fail(1, __VA_ARGS__)

/* PATH (absolute or not) inside the rootfs, resolved as if the rootfs were /. */
static int open_in_root(const char *path, int flags)
{
    struct open_how how = {
        .flags = (unsigned)(flags | O_CLOEXEC),
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    while (*path == '/')
        path++;
    return (int)syscall(SYS_openat2, root_fd, *path ? path : ".", &how, sizeof how);
}

/* mkdir -p PATH inside the rootfs; an O_PATH descriptor of the directory, or -1. */
static int mkdirs_in_root(const char *path)
{
    int fd = open_in_root(path, O_PATH | O_DIRECTORY);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    char parent[PATH_MAX];
    if (snprintf(parent, sizeof parent, "%s", path) >= (int)sizeof parent) {
        errno = ENAMETOOLONG;
        return -1;
    }
    size_t len = strlen(parent);
    while (len > 1 && parent[len - 1] == '/')
        parent[--len] = '\0';
    char *slash = strrchr(parent, '/');
    const char *name = slash ? slash + 1 : parent;
    int parent_fd;
    if (slash) {
        *slash = '\0';
        parent_fd = mkdirs_in_root(parent);
    } else {
        parent_fd = open_in_root(".", O_PATH | O_DIRECTORY);
    }
    if (parent_fd < 0)
        return -1;
    /* name comes after the parent's own resolution: a ".." stays at the root. */
    if (mkdirat(parent_fd, name, 0755) < 0 && errno != EEXIST) {
        int err = errno;
        close(parent_fd);
        errno = err;
        return -1;
    }
    close(parent_fd);
    return open_in_root(path, O_PATH | O_DIRECTORY);
}

/* mount(2) on the object fd refers to, which mount itself would not re-resolve. */
static int mount_on(int fd, const char *source, const char *type, unsigned long flags, const char *data)
{
    char target[32];
    snprintf(target, sizeof target, "/proc/self/fd/%d", fd);
    return mount(source, target, type, flags, data);
}

/* A detached mount attached on a directory inside the rootfs, made if need be. */
static void attach_dir(const char *inside, int mnt, const char *what)
{
    int fd = mkdirs_in_root(inside);
    if (fd < 0)
        fail("cannot create mount point %s", inside);
    if (move_mount(mnt, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
        fail("cannot mount %s", what);
    close(fd);
    close(mnt);
}

/* A directory inside the rootfs made (if need be) and mounted on. */
static void mount_dir(const char *inside, const char *source, const char *type, unsigned long flags,
                      const char *data, const char *what)
{
    int fd = mkdirs_in_root(inside);
    if (fd < 0)
        fail("cannot create mount point %s", inside);
    if (mount_on(fd, source, type, flags, data) < 0)
        fail("cannot mount %s", what);
    close(fd);
}

/* ln -sfT TARGET NAME in the directory dir_fd; kept if the rootfs has it already. */
static void symlink_in(int dir_fd, const char *target, const char *name)
{
    char existing[PATH_MAX];
    ssize_t n = readlinkat(dir_fd, name, existing, sizeof existing - 1);
    if (n >= 0 && (size_t)n == strlen(target) && memcmp(existing, target, (size_t)n) == 0)
        return;
    if (unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT)
        fail("cannot replace /dev/%s", name);
    if (symlinkat(target, dir_fd, name) < 0)
        fail("cannot link /dev/%s", name);
}

/*
 * /dev/NAME: an empty file with no permissions (without its bind mount, a
 * trap-free plain file rather than one that fills the disk) with the host's
 * device bound on it.
 */
static void bind_device(int dev_fd, const char *name)
{
    struct stat st;
    /* The rootfs cache makes them with the base: touching them would copy them up. */
    bool made = fstatat(dev_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    if (!made && unlinkat(dev_fd, name, 0) < 0 && errno != ENOENT)
        fail("cannot replace /dev/%s", name);
    if (!made && mknodat(dev_fd, name, S_IFREG, 0) < 0)
        fail("cannot create /dev/%s", name);
    int fd = openat(dev_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    char source[32];
    snprintf(source, sizeof source, "/dev/%s", name);
    if (fd < 0 || mount_on(fd, source, NULL, MS_BIND, NULL) < 0)
        fail("cannot bind %s", source);
    close(fd);
}

static void mount_overlay(const struct sandbox *sb)
{
    char options[4 * PATH_MAX];
    int n = snprintf(options, sizeof options, "lowerdir=%s,upperdir=%s,workdir=%s%s%s,volatile",
                     sb->overlay_lower, sb->overlay_upper, sb->overlay_work,
                     *sb->overlay_options ? "," : "", sb->overlay_options);
    if (n >= (int)sizeof options) {
        errno = ENAMETOOLONG;
        sandbox_fail(SANDBOX_OVERLAY_FAILED, "cannot mount the overlay");
    }
    if (mount("overlay", sb->root, "overlay", 0, options) == 0)
        return;
    if (errno == EINVAL) {
        options[n - strlen(",volatile")] = '\0';
        if (mount("overlay", sb->root, "overlay", 0, options) == 0)
            return;
    }
    sandbox_fail(SANDBOX_OVERLAY_FAILED, "cannot mount the overlay");
}

void sandbox_setup(const struct sandbox *sb)
{
    mode_t mask = umask(022); /* the directories made here are 0755 whoever started us */

    /* The overlay, or else the rootfs bound on itself, comes before everything else: all later
     * mounts go on top of it, and the testbed is one tree of mounts that one detach takes down. */
    int dir = open(sb->root_is_cwd ? "." : sb->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        fail("cannot open %s", sb->root);
    if (sb->overlay_fd >= 0) {
        if (move_mount(sb->overlay_fd, "", dir, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            sandbox_fail(SANDBOX_OVERLAY_FAILED, "cannot attach the overlay on %s", sb->root);
        root_fd = sb->overlay_fd;
    } else if (sb->overlay_lower) {
        mount_overlay(sb);
        root_fd = open(sb->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    } else {
        /* By descriptor: a root testbed's job server may not reach the rootfs by its path. */
        root_fd = open_tree(dir, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (root_fd < 0
            || move_mount(root_fd, "", dir, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
            fail("cannot bind %s on itself", sb->root);
    }
    if (root_fd < 0)
        fail("cannot open %s", sb->root);
    close(dir);

    /* /proc of the session's own pid namespace, which this process is in. */
    mount_dir("/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, "/proc");

    /* Bind mounts before /dev and /sys, as in unshare-helper, so that one aimed at /dev or
     * /sys is covered by the sandbox's own mounts below rather than the reverse. */
    for (size_t i = 0; i < sb->bind_count; i++) {
        if (sb->binds[i].fd >= 0)
            attach_dir(sb->binds[i].inside, sb->binds[i].fd, sb->binds[i].inside);
        else
            mount_dir(sb->binds[i].inside, sb->binds[i].outside, NULL, MS_BIND | MS_REC, NULL,
                      sb->binds[i].inside);
    }

    int dev_fd = mkdirs_in_root("/dev");
    if (dev_fd < 0)
        fail("cannot create /dev");
    for (size_t i = 0; i < sizeof DEVICES / sizeof *DEVICES; i++)
        bind_device(dev_fd, DEVICES[i]);
    for (size_t i = 0; i < sizeof DEV_LINKS / sizeof *DEV_LINKS; i++)
        symlink_in(dev_fd, DEV_LINKS[i].target, DEV_LINKS[i].name);
    close(dev_fd);
    /* A private devpts instance: the host's ptys stay out of reach. */
    mount_dir("/dev/pts", "none", "devpts", MS_NOEXEC | MS_NOSUID,
              "newinstance,gid=5,mode=620,ptmxmode=666", "/dev/pts");
    mount_dir("/dev/shm", "tmpfs", "tmpfs", 0, NULL, "/dev/shm");
    mount_dir("/sys", "/sys", NULL, MS_BIND | MS_REC, NULL, "/sys");

    /* The scratch directory is a plain host directory beside the rootfs, bound in: the host
     * writes there (autopkgtest's downtmp-host) with no overlay in between, whose behaviour is
     * undefined for changes made to its upper layer while mounted. */
    if (sb->scratch_fd >= 0) {
        attach_dir(sb->scratch, sb->scratch_fd, sb->scratch);
    } else if (sb->scratch) {
        sandbox_scratch_dir(sb->scratch_outside);
        mount_dir(sb->scratch, sb->scratch_outside, NULL, MS_BIND, NULL, sb->scratch);
    }
    /* Jobs find the testbed as their working directory, by descriptor. */
    if (fchdir(root_fd) < 0)
        fail("cannot enter %s", sb->root);
    close(root_fd);
    umask(mask);
}

void sandbox_scratch_dir(const char *dir)
{
    mode_t mask = umask(022);
    if (mkdir(dir, 0755) < 0)
        fail("cannot create the scratch directory %s", dir);
    /* Sticky and writable by all, as autopkgtest makes it: tests run as a normal user too. */
    if (chmod(dir, 01777) < 0)
        fail("cannot make the scratch directory %s shared", dir);
    umask(mask);
}

/* mountinfo writes space, tab, newline and backslash in a path as octal escapes. */
static void unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0'
            && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

/* The first mount point at or below dir in this mount namespace, as a new string; or NULL. */
static char *mount_at_or_below(const char *dir)
{
    FILE *table = fopen("/proc/self/mountinfo", "re");
    if (!table)
        return strdup("/proc/self/mountinfo (unreadable)");
    size_t len = strlen(dir);
    char *line = NULL, *found = NULL;
    size_t size = 0;
    while (!found && getline(&line, &size, table) > 0) {
        char *point = line;
        for (int field = 0; field < 4 && point; field++) {
            point = strchr(point, ' ');
            if (point)
                point++;
        }
        if (!point)
            continue;
        point[strcspn(point, " ")] = '\0';
        unescape(point);
        if (strncmp(point, dir, len) == 0 && (point[len] == '\0' || point[len] == '/'))
            found = strdup(point);
    }
    free(line);
    fclose(table);
    return found;
}

/*
 * Deletes everything in the directory dfd, which is on device dev, and closes
 * dfd.  A symlink is deleted, never followed; a directory on another device
 * stops it (EXDEV): nothing should be mounted here any more, and if something
 * is, it is not ours to delete.
 */
static int empty_dir(int dfd, dev_t dev)
{
    DIR *dir = fdopendir(dfd);
    if (!dir) {
        close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (errno = 0, entry = readdir(dir))) {
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        bool is_dir = entry->d_type == DT_DIR;
        if (entry->d_type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                rc = -1;
                break;
            }
            is_dir = S_ISDIR(st.st_mode);
        }
        if (!is_dir) {
            rc = unlinkat(dirfd(dir), name, 0);
            continue;
        }
        int sub = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (sub < 0 || fstat(sub, &st) < 0) {
            rc = -1;
        } else if (st.st_dev != dev) {
            errno = EXDEV;
            rc = -1;
        }
        if (rc < 0) {
            if (sub >= 0)
                close(sub);
            break;
        }
        rc = empty_dir(sub, dev);
        if (rc == 0)
            rc = unlinkat(dirfd(dir), name, AT_REMOVEDIR);
    }
    if (rc == 0 && errno != 0)
        rc = -1; /* readdir failed */
    int err = errno;
    closedir(dir);
    errno = err;
    return rc;
}

int sandbox_dev_skeleton(const char *dev)
{
    int fd = -1;
    if (mkdir(dev, 0755) < 0) {
        if (errno == EEXIST)
            return 0; /* a /dev the tarball brought after all: sandbox_setup completes it */
        goto failed;
    }
    fd = open(dev, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || mkdirat(fd, "pts", 0755) < 0 || mkdirat(fd, "shm", 0755) < 0)
        goto failed;
    /* Empty files with no permissions: without their bind mounts, nothing can use them. */
    for (size_t i = 0; i < sizeof DEVICES / sizeof *DEVICES; i++)
        if (mknodat(fd, DEVICES[i], S_IFREG, 0) < 0)
            goto failed;
    for (size_t i = 0; i < sizeof DEV_LINKS / sizeof *DEV_LINKS; i++)
        if (symlinkat(DEV_LINKS[i].target, fd, DEV_LINKS[i].name) < 0)
            goto failed;
    close(fd);
    return 0;
failed:
    fprintf(stderr, "uchroot-sandbox: cannot prepare %s: %s\n", dev, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int sandbox_remove(const char *root, const char *testbed)
{
    /* Every mount of the testbed hangs from root: detached together, in this namespace only
     * (the session's mounts are private). */
    if (umount2(root, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL) {
        fprintf(stderr, "uchroot-sandbox: cannot detach %s: %s\n", root, strerror(errno));
        return -1;
    }
    /* The mount table names canonical paths: so must the one it is searched for. */
    char real[PATH_MAX];
    if (!realpath(testbed, real)) {
        fprintf(stderr, "uchroot-sandbox: cannot resolve %s: %s\n", testbed, strerror(errno));
        return -1;
    }
    char *mounted = mount_at_or_below(real);
    if (mounted) {
        fprintf(stderr, "uchroot-sandbox: not removing %s: %s is still mounted\n", real, mounted);
        free(mounted);
        return -1;
    }
    testbed = real;
    int fd = open(testbed, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) < 0) {
        close(fd);
        fd = -1;
    }
    if (fd < 0 || empty_dir(fd, st.st_dev) < 0 || rmdir(testbed) < 0) {
        fprintf(stderr, "uchroot-sandbox: cannot remove %s: %s\n", testbed, strerror(errno));
        return -1;
    }
    return 0;
}
