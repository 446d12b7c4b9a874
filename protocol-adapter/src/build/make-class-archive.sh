#!/bin/sh
# make-class-archive.sh DIST WORK
#
# Records DIST/lib/uchroot.jsa, the class data archive the launch scripts start the JVM with: the
# classes (and lambda forms) that a server loads while it opens, reverts and closes testbeds,
# loaded here once by a real server on a tiny tarball. Where this build cannot make testbeds (no
# namespaces, no subordinate ids), the opens fail and the archive holds what came before them;
# without any archive the JVM simply loads the classes itself. Nothing outside WORK is left.
set -u

dist=$1
work=$2
rm -rf "$work" "$dist/lib/uchroot.jsa"
mkdir -p "$work/tree/etc" "$work/tree/home" "$work/tree/tmp"

# Just what useradd needs to add the testbed's normal user.
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$work/tree/etc/passwd"
printf 'root:x:0:\n' > "$work/tree/etc/group"
printf 'root:*:19000:0:99999:7:::\n' > "$work/tree/etc/shadow"
printf 'root:*::\n' > "$work/tree/etc/gshadow"
chmod 1777 "$work/tree/tmp"
tar -C "$work/tree" -cf "$work/rootfs.tar" .

# The JVM has crashed while dumping a dynamic archive (lambda proxy classes, JDK-8274944): its
# crash report stays in WORK, and a second try usually makes the archive.
for try in 1 2; do
    printf 'capabilities\nopen\nrevert\nclose\nopen\nclose\nquit\n' |
        TMPDIR=$work UCHROOT_JAVA_OPTS="-XX:ArchiveClassesAtExit=$dist/lib/uchroot.jsa \
            -XX:ErrorFile=$work/hs_err_%p.log \
            -Duchroot.state-dir=$work/state -Duchroot.runtime-dir=$work/run \
            -Duchroot.cache-dir=$work/cache -Djava.io.tmpdir=$work" \
        "$dist/bin/autopkgtest-virt-uchroot" -t "$work/rootfs.tar" > "$work/server.log" 2>&1
    status=$?
    echo "class data archive: server exit status $status (log: $work/server.log)"
    [ "$status" -ge 128 ] || break
    rm -f "$dist/lib/uchroot.jsa"
done
# The cached base is ours to remove; testbeds were removed by the server.
rm -rf "$work/cache" "$work/tree"
exit 0
