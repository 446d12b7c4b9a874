#!/bin/sh
# make-deb.sh DIST MAN VERSION OUT
#
# Builds OUT/uchroot_VERSION_ARCH.deb (VERSION as Debian orders it: 0.1.0-SNAPSHOT is 0.1.0~SNAPSHOT) from the distribution directory DIST and the man pages in MAN
# (*.1): the programs in /usr/lib/uchroot, uchroot and autopkgtest-virt-uchroot in /usr/bin (where
# sbuild and autopkgtest look for a virtualisation server), the configuration in /etc/uchroot.
# The class data archive is made by the package's postinst, for the JDK installed there.
set -eu

dist=$1
man=$2
version=$(printf '%s' "$3" | tr - '~')
out=$4
build=$(dirname "$(readlink -f "$0")")

arch=$(dpkg --print-architecture)
stage=$out/deb
rm -rf "$stage"
umask 022
mkdir -p "$stage/DEBIAN" "$stage/usr/lib/uchroot" "$stage/usr/bin" "$stage/etc/uchroot" \
    "$stage/usr/share/man/man1" "$stage/usr/share/doc/uchroot"

cp -R "$dist/bin" "$dist/lib" "$dist/libexec" "$stage/usr/lib/uchroot/"
rm -f "$stage/usr/lib/uchroot/lib/uchroot.jsa" "$stage/usr/lib/uchroot/lib/uchroot.jsa.home"
# As dh_strip does.
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    "$stage/usr/lib/uchroot/libexec/uchroot-jobd" "$stage/usr/lib/uchroot/libexec/uchroot-exec" \
    "$stage/usr/lib/uchroot/bin/autopkgtest-virt-uchroot"
cp "$dist/conf/uchroot.conf" "$dist/conf/logback.xml" "$stage/etc/uchroot/"
# The launch scripts read DIST/conf: here, the administrator's copy.
ln -s /etc/uchroot "$stage/usr/lib/uchroot/conf"
ln -s ../lib/uchroot/bin/uchroot "$stage/usr/bin/uchroot"
ln -s ../lib/uchroot/bin/autopkgtest-virt-uchroot "$stage/usr/bin/autopkgtest-virt-uchroot"

for page in "$man"/*.1; do
    gzip -9n < "$page" > "$stage/usr/share/man/man1/$(basename "$page").gz"
done
cp "$build/deb/copyright" "$stage/usr/share/doc/uchroot/"
mkdir -p "$stage/usr/share/lintian/overrides"
cp "$build/deb/lintian-overrides" "$stage/usr/share/lintian/overrides/uchroot"
sed "s/@VERSION@/$version/; s/@DATE@/$(date -R -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")/" \
    "$build/deb/changelog" | gzip -9n > "$stage/usr/share/doc/uchroot/changelog.gz"

for script in postinst prerm postrm triggers conffiles; do
    cp "$build/deb/$script" "$stage/DEBIAN/"
done
chmod 755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed "s/@VERSION@/$version/; s/@ARCH@/$arch/; s/@SIZE@/$size/" "$build/deb/control" \
    > "$stage/DEBIAN/control"

dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/uchroot_${version}_${arch}.deb"
