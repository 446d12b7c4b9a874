#!/bin/sh
# session-setup.sh ROOTFS [--overlay LOWER UPPER WORK OPTIONS] [--scratch PATH]
#                  [--bind OUTSIDE INSIDE]... -- INIT [ARGS...]
#
# Runs as pid 1 of the session's fresh pid and mount namespaces (inside a user
# namespace when unprivileged), started by unshare(1).  Mounts the overlay on
# ROOTFS when asked (exit status 3 if that fails, so the engine can fall back
# to unpacking), a fresh /proc for the new pid namespace, prepares ROOTFS the
# way autopkgtest's unshare-helper does, creates the scratch directory and
# execs INIT, which announces readiness on stdout itself (the job server does
# so once it listens).  It does not chroot: the init keeps the host root so
# that each job can set itself up from outside ROOTFS before chrooting.
#
# Failures print one line on stderr and exit non-zero (125 for bad arguments,
# like unshare-helper); mount's own multi-line chatter is folded into it.

set -u

fail() {
    echo "uchroot-sandbox: $*" >&2
    exit 1
}

# run WHAT COMMAND...: runs COMMAND, turning its failure into one line.
run() {
    what=$1
    shift
    if ! out=$("$@" 2>&1); then
        fail "$what: $(printf '%s\n' "$out" | head -n 1)"
    fi
}

if [ "$#" -lt 1 ]; then
    echo "uchroot-sandbox: usage: session-setup.sh ROOTFS [--bind OUTSIDE INSIDE]... -- INIT..." >&2
    exit 125
fi
rootdir=$1
shift
case "$rootdir" in
    (/*) ;;
    (*) echo "uchroot-sandbox: internal error: not an absolute path: $rootdir" >&2; exit 125 ;;
esac
[ -d "$rootdir" ] || fail "not a directory: $rootdir"

overlay_failed() {
    echo "uchroot-sandbox: $*" >&2
    exit 3
}

scratch=
if [ "${1:-}" = --overlay ]; then
    if [ "$#" -lt 5 ]; then
        echo "uchroot-sandbox: internal error: --overlay needs four arguments" >&2
        exit 125
    fi
    # The overlay comes before everything else: all later mounts go on top of it.
    if ! out=$(mount -t overlay overlay \
            -o "lowerdir=$2,upperdir=$3,workdir=$4${5:+,$5}" "$rootdir" 2>&1); then
        overlay_failed "cannot mount the overlay: $(printf '%s\n' "$out" | head -n 1)"
    fi
    shift 5
fi
if [ "${1:-}" = --scratch ]; then
    scratch=$2
    shift 2
fi

# Every fork and exec counts at each open: the directories and device files
# are made in one command each rather than one per file.
run "cannot create /proc, /dev and /sys" mkdir -p "$rootdir/proc" "$rootdir/dev/pts" \
    "$rootdir/dev/shm" "$rootdir/sys"

# /proc of the session's own pid namespace; mounted here rather than by
# unshare --mount-proc because the overlay has to be in place first.
run "cannot mount /proc" mount -t proc -o nosuid,nodev,noexec proc "$rootdir/proc"

# Bind mounts come first, as in unshare-helper, so that one aimed at /dev or
# /sys is covered by the sandbox's own mounts below rather than the reverse.
while [ "$#" -gt 0 ]; do
    case "$1" in
        (--bind)
            if [ "$#" -lt 3 ]; then
                echo "uchroot-sandbox: internal error: --bind needs two arguments" >&2
                exit 125
            fi
            olddir=$2
            newdir=$3
            case "$newdir" in
                (/*) ;;
                (*)
                    echo "uchroot-sandbox: internal error: not an absolute path: $newdir" >&2
                    exit 125
                    ;;
            esac
            run "cannot create mount point $newdir" mkdir -p "$rootdir$newdir"
            run "cannot bind $olddir on $newdir" mount -o rbind "$olddir" "$rootdir$newdir"
            shift 3
            ;;
        (--)
            shift
            break
            ;;
        (*)
            echo "uchroot-sandbox: internal error: argument not understood: $1" >&2
            exit 125
            ;;
    esac
done
if [ "$#" -eq 0 ]; then
    echo "uchroot-sandbox: internal error: no init command" >&2
    exit 125
fi

devices="null zero full random urandom tty console"
nodes=
for f in $devices; do
    nodes="$nodes $rootdir/dev/$f"
done
# Paths of the rootfs hold no whitespace: the engine makes them.
# shellcheck disable=SC2086
run "cannot create the device files" touch $nodes
# Without its bind mount a file is useless rather than a trap: writes to a
# plain file named null would fill the disk.
# shellcheck disable=SC2086
run "cannot chmod the device files" chmod -rwx $nodes
for f in $devices; do
    run "cannot bind /dev/$f" mount -o bind "/dev/$f" "$rootdir/dev/$f"
done
run "cannot link /dev/fd" ln -sfT /proc/self/fd "$rootdir/dev/fd"
run "cannot link /dev/stdin" ln -sfT /proc/self/fd/0 "$rootdir/dev/stdin"
run "cannot link /dev/stdout" ln -sfT /proc/self/fd/1 "$rootdir/dev/stdout"
run "cannot link /dev/stderr" ln -sfT /proc/self/fd/2 "$rootdir/dev/stderr"
# A private devpts instance: the host's ptys stay out of reach.
run "cannot mount /dev/pts" mount -o noexec,nosuid,newinstance,gid=5,mode=620,ptmxmode=666 \
    -t devpts none "$rootdir/dev/pts"
run "cannot link /dev/ptmx" ln -sfT /dev/pts/ptmx "$rootdir/dev/ptmx"
run "cannot mount /dev/shm" mount -t tmpfs tmpfs "$rootdir/dev/shm"
run "cannot bind /sys" mount -o rbind /sys "$rootdir/sys"

# Through chroot, so that a symlink in the rootfs cannot send it to the host.
if [ -n "$scratch" ]; then
    run "cannot create the scratch directory $scratch" \
        chroot "$rootdir" /bin/sh -c 'mkdir -p -- "$1" && chmod 1777 -- "$1"' sh "$scratch"
fi

# Checked here, where a failure can still be said in one line; a failed exec
# would only show as a session that never became ready.
command -v "$1" >/dev/null 2>&1 || fail "init not found: $1"
exec "$@"
