/*
 * A testbed started by root runs in a user namespace whose root is a
 * subordinate id: a process that escapes the testbed's chroot finds itself an
 * unprivileged user of the host.  What needs the host's privileges is done
 * here, by the host's root, before the namespaces exist; the maps are written
 * from outside, so no entry in /etc/subuid (newuidmap's rule) is needed.
 */
#define _GNU_SOURCE
#include "userns.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"

/* The clone's end of the channel to the process that made it. */
static int parent_channel = -1;

#define fail(...) sandbox_fail(1, __VA_ARGS__)

static void write_file(pid_t pid, const char *name, const char *text)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        fail("cannot write %s", path);
    close(fd);
}

/*
 * clone() with these namespaces and a fork's semantics (no new stack, as in
 * bubblewrap).  In the child: waits until the parent has written its maps and
 * said go, then takes root's ids in the namespace and returns 0.  In the parent:
 * returns the child's pid, with the maps written and nothing said yet; the
 * channel's end in *channel.
 */
static pid_t clone_mapped(unsigned long flags, const struct id_map *ids, int *channel)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
        fail("socketpair");
    pid_t pid = (pid_t)syscall(SYS_clone, flags | CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid < 0)
        fail("cannot create a user namespace");
    if (pid == 0) {
        close(pair[0]);
        parent_channel = pair[1];
        char go;
        if (read(parent_channel, &go, 1) != 1)
            _exit(1); /* the parent is gone */
        /* Supplementary groups are the host's: kept, they would still open the host's
         * group-readable files after an escape from the chroot. */
        if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
            fail("cannot become root in the user namespace");
        /* After the id changes, which clear both: dies with the parent (gone already if the
         * channel shows its end), and no process of the testbed may trace it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        prctl(PR_SET_DUMPABLE, 0);
        struct pollfd end = { .fd = parent_channel, .events = POLLIN };
        if (poll(&end, 1, 0) > 0 && (end.revents & (POLLHUP | POLLERR)))
            _exit(1);
        return 0;
    }
    close(pair[1]);
    *channel = pair[0];
    char map[96];
    snprintf(map, sizeof map, "0 %lu %lu\n", ids->uid, ids->count);
    write_file(pid, "uid_map", map);
    snprintf(map, sizeof map, "0 %lu %lu\n", ids->gid, ids->count);
    write_file(pid, "gid_map", map);
    return pid;
}

static void go(int channel)
{
    if (write(channel, "g", 1) != 1)
        fail("cannot start the user namespace");
}

/* The status a shell would give for a child's end. */
static int status_of(pid_t pid)
{
    signal(SIGCHLD, SIG_DFL); /* an ignored SIGCHLD, inherited, would reap it for us */
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int userns_exec(const struct id_map *ids, char **argv)
{
    int channel;
    pid_t pid = clone_mapped(0, ids, &channel);
    if (pid == 0) {
        execvp(argv[0], argv);
        fail("cannot run %s", argv[0]);
    }
    go(channel);
    return status_of(pid);
}

/* The overlay, made by the host's root: trusted xattrs, so redirect_dir is allowed. */
static int overlay_mount(const struct sandbox *sb, bool with_volatile)
{
    int fs = fsopen("overlay", FSOPEN_CLOEXEC);
    if (fs < 0)
        return -1;
    int rc = fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir", sb->overlay_lower, 0) < 0
                     || fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", sb->overlay_upper, 0) < 0
                     || fsconfig(fs, FSCONFIG_SET_STRING, "workdir", sb->overlay_work, 0) < 0
                 ? -1
                 : 0;
    /* OPTIONS is a mount(8) list: key=value or flag, comma-separated. */
    char *options = strdup(sb->overlay_options);
    for (char *save = NULL, *opt = strtok_r(options, ",", &save); rc == 0 && opt;
         opt = strtok_r(NULL, ",", &save)) {
        char *value = strchr(opt, '=');
        if (value)
            *value++ = '\0';
        rc = value ? fsconfig(fs, FSCONFIG_SET_STRING, opt, value, 0)
                   : fsconfig(fs, FSCONFIG_SET_FLAG, opt, NULL, 0);
    }
    free(options);
    if (rc == 0 && with_volatile)
        rc = fsconfig(fs, FSCONFIG_SET_FLAG, "volatile", NULL, 0);
    if (rc == 0)
        rc = fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
    int mnt = rc == 0 ? fsmount(fs, FSMOUNT_CLOEXEC, 0) : -1;
    int err = errno;
    close(fs);
    errno = err;
    return mnt;
}

/* A detached copy of the mount at path, to be attached in the session's namespace. */
static int detached_copy(const char *path, bool recursive)
{
    int fd = open_tree(AT_FDCWD, path,
                       OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
    if (fd < 0)
        fail("cannot bind %s", path);
    return fd;
}

/*
 * Host ids through the mount are the namespace's: the host's root is the
 * testbed's root there.  Filesystems that cannot (see docs/security.md) keep
 * the plain copy, where files of ids outside the range show as nobody's.
 */
static void idmap(int fd, const char *path, int userns, bool recursive)
{
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (__u64)userns };
    if (mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr)
        < 0)
        fprintf(stderr,
                "uchroot-jobd: %s is bound without an id mapping (%s): the testbed's root "
                "cannot write what the host's root owns there\n",
                path, strerror(errno));
}

void userns_split(struct sandbox *sb, const struct id_map *ids, const char *socket_path,
                  const char *testbed)
{
    if (sb->overlay_lower) {
        sb->overlay_fd = overlay_mount(sb, true);
        if (sb->overlay_fd < 0 && errno == EINVAL)
            sb->overlay_fd = overlay_mount(sb, false); /* a kernel without volatile */
        if (sb->overlay_fd < 0) {
            fprintf(stderr, "uchroot-jobd: cannot mount the overlay: %s\n", strerror(errno));
            exit(SANDBOX_OVERLAY_FAILED);
        }
    }
    /* The clone's working directory is carried into its mount namespace: the testbed's root
     * may not reach the rootfs by its path, and a descriptor would name the host's mount. */
    if (chdir(sb->root) < 0)
        fail("cannot enter %s", sb->root);
    sb->root_is_cwd = true;
    if (sb->scratch) {
        sandbox_scratch_dir(sb->scratch_outside);
        sb->scratch_fd = detached_copy(sb->scratch_outside, false);
    }
    for (size_t i = 0; i < sb->bind_count; i++)
        sb->binds[i].fd = detached_copy(sb->binds[i].outside, true);

    int channel;
    pid_t pid = clone_mapped(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS, ids,
                             &channel);
    if (pid == 0) {
        /* As unshare --propagation private: no mount of the session reaches the host's. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            fail("cannot make the session's mounts private");
        return;
    }
    /* The descriptors were copied by the clone: an id mapping set here shows there too. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
    int userns = open(path, O_RDONLY | O_CLOEXEC);
    if (userns < 0)
        fail("cannot open %s", path);
    if (sb->scratch)
        idmap(sb->scratch_fd, sb->scratch_outside, userns, false);
    for (size_t i = 0; i < sb->bind_count; i++)
        idmap(sb->binds[i].fd, sb->binds[i].outside, userns, true);
    close(userns);
    go(channel);
    (void)!chdir("/");

    /* Only the clone holds the session open: its stdin is the engine's keep-alive pipe. */
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        dup2(null, 0);
        close(null);
    }
    for (int fd = 3; fd < 1024; fd++)
        if (fd != channel)
            close(fd);
    /* A Ctrl+C or SIGTERM for this process group is for the engine to act on. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    int status = status_of(pid);
    char asked = 0;
    bool remove = recv(channel, &asked, 1, MSG_DONTWAIT) == 1 && asked == 'r';
    unlink(socket_path);
    if (remove) {
        /* Nothing of the session is left, and its mounts were never in this namespace. */
        test_hold("remove");
        if (sandbox_remove(sb->root, testbed) < 0)
            exit(1);
        static const char removed[] = "uchroot-testbed-removed\n";
        (void)!write(1, removed, sizeof removed - 1);
    }
    exit(status);
}

void userns_ask_removal(void)
{
    if (parent_channel >= 0)
        (void)!write(parent_channel, "r", 1);
}
