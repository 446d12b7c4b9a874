#!/bin/sh
# make-class-archive.sh DIST WORK [ARCHIVE]
#
# Records ARCHIVE, the class data archive the launch scripts start the JVM with: the classes (and
# lambda forms) that a server loads while it opens, reverts and closes testbeds, loaded here once
# by a real server on a tiny tarball. ARCHIVE defaults to DIST/lib/uchroot.jsa, which is then
# marked (DIST/lib/uchroot.jsa.home) as made for DIST where it is now, the only place its jars'
# paths match. Where this build cannot make testbeds (no namespaces, no subordinate ids), the opens
# fail and the archive holds what came before them; without any archive the JVM simply loads the
# classes itself. ARCHIVE appears whole or not at all (a rename). WORK, empty for a temporary
# directory, keeps the server's log; nothing else is left, and a temporary WORK is removed.
set -u

dist=$(readlink -f "$1")
work=$2
archive=${3:-$dist/lib/uchroot.jsa}
marker=
if [ -z "${3:-}" ]; then
    marker=$dist/lib/uchroot.jsa.home
fi
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/uchroot-class-archive.XXXXXX") || exit 1
    trap 'rm -rf "$work"' EXIT
else
    rm -rf "$work"
fi
partial=$archive.$$.partial
rm -f "$archive" $marker
mkdir -p "$work/tree/etc" "$work/tree/home" "$work/tree/tmp"

# Just what useradd needs to add the testbed's normal user.
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$work/tree/etc/passwd"
printf 'root:x:0:\n' > "$work/tree/etc/group"
printf 'root:*:19000:0:99999:7:::\n' > "$work/tree/etc/shadow"
printf 'root:*::\n' > "$work/tree/etc/gshadow"
chmod 1777 "$work/tree/tmp"
# Owned by root, as a real rootfs is, whoever records the archive.
tar -C "$work/tree" --owner=0 --group=0 --numeric-owner -cf "$work/rootfs.tar" .

# A server of its own, whose JVM ends with the conversation and writes the archive then; the
# shared engine uses the same archive.
# The JVM has crashed while dumping a dynamic archive (lambda proxy classes, JDK-8274944): its
# crash report stays in WORK, and a second try usually makes the archive. UCHROOT_CLASS_ARCHIVE
# keeps the launch script from using an archive, or starting to make one, for this server.
for try in 1 2; do
    printf 'capabilities\nopen\nrevert\nclose\nopen\nclose\nquit\n' |
        TMPDIR=$work UCHROOT_CLASS_ARCHIVE=none UCHROOT_RUNTIME_DIR=$work/run \
        UCHROOT_JAVA_OPTS="-XX:ArchiveClassesAtExit=$partial \
            -XX:ErrorFile=$work/hs_err_%p.log \
            -Duchroot.state-dir=$work/state \
            -Duchroot.cache-dir=$work/cache -Djava.io.tmpdir=$work" \
        "$dist/bin/autopkgtest-virt-uchroot" --engine=standalone -t "$work/rootfs.tar" \
        > "$work/server.log" 2>&1
    status=$?
    echo "class data archive: server exit status $status (log: $work/server.log)"
    [ "$status" -ge 128 ] || break
    rm -f "$partial"
done
if [ -s "$partial" ] && mv -f "$partial" "$archive"; then
    if [ -n "$marker" ]; then
        printf '%s\n' "$dist" > "$marker"
    fi
    echo "class data archive: $archive"
else
    rm -f "$partial"
    echo "class data archive: none made"
    # A temporary WORK goes: what the server said is kept here, in the caller's log.
    [ "$2" ] || cat "$work/server.log"
fi
# The cached base is ours to remove; testbeds were removed by the server.
rm -rf "$work/cache" "$work/tree"
exit 0
