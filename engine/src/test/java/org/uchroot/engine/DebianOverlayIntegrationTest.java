package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.RootfsMode;
import org.uchroot.actors.SessionSpec;

/**
 * dpkg and apt on an overlay testbed over a Debian base, including maintainer scripts that rename
 * directories of the base (once broken on overlay chroots: Debian bug #836211).
 */
@Tag("integration")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DebianOverlayIntegrationTest {

  private Engine engine;

  @BeforeAll
  void startEngine() {
    engine = Engine.start(EngineConfig.load().withRootfsMode(RootfsMode.OVERLAY));
  }

  @AfterAll
  void stopEngine() {
    engine.close();
  }

  /** Builds demo packages with dpkg-deb inside the testbed; version 2 renames base directories. */
  private static final String MAKE_PACKAGES =
      """
      set -e
      mk() {
        v=$1; d=/tmp/pkg-$v
        mkdir -p $d/DEBIAN $d/usr/share/uchroot-demo
        echo "version $v" > $d/usr/share/uchroot-demo/VERSION
        printf 'Package: uchroot-demo\\nVersion: %s\\nArchitecture: all\\nMaintainer: uchroot <uchroot@localhost>\\nDescription: demo\\n' $v > $d/DEBIAN/control
        printf '#!/bin/sh\\nset -e\\n%s\\n' "$2" > $d/DEBIAN/postinst
        chmod 755 $d/DEBIAN/postinst
        dpkg-deb --root-owner-group -b $d /tmp/uchroot-demo_$v.deb >/dev/null
      }
      mk 1 'true'
      # A directory of the base layer renamed and renamed back, by mv and by rename(2) itself.
      mk 2 'if [ "$1" = configure ]; then mv /usr/share/doc/dpkg /usr/share/doc/dpkg.moved; mv /usr/share/doc/dpkg.moved /usr/share/doc/dpkg; perl -e "rename(q{/etc/apt/apt.conf.d}, q{/etc/apt/conf.moved}) or die qq{rename: \\$!}; rename(q{/etc/apt/conf.moved}, q{/etc/apt/apt.conf.d}) or die qq{rename back: \\$!}"; fi'
      """;

  @Test
  void packagesInstallUpgradeAndRemoveOnTheOverlay() throws Exception {
    Session session =
        engine.open(SessionSpec.of(DebianTarball.path())).toCompletableFuture().join();
    try {
      run(session, MAKE_PACKAGES);
      run(session, "dpkg -i /tmp/uchroot-demo_1.deb");
      run(
          session,
          "dpkg -i /tmp/uchroot-demo_2.deb && grep -q 'version 2' /usr/share/uchroot-demo/VERSION");
      run(session, "test -d /usr/share/doc/dpkg && test -d /etc/apt/apt.conf.d");
      run(
          session,
          "apt-get remove -y -q uchroot-demo >/dev/null && ! dpkg -s uchroot-demo 2>/dev/null | grep -q '^Status: install'");
      run(
          session,
          "apt-get install -y -q /tmp/uchroot-demo_1.deb >/dev/null && dpkg -s uchroot-demo | grep -q '^Version: 1'");
      // A base directory replaced outright, as dpkg does when a package turns a directory into a
      // symlink, then the whole tree of a base package removed.
      run(
          session,
          "mv /usr/share/doc/base-files /usr/share/doc/base-files.old && ln -s base-files.old /usr/share/doc/base-files && rm -rf /usr/share/doc/base-files.old /usr/share/doc/base-files");
      run(session, "dpkg --purge uchroot-demo && test ! -e /usr/share/uchroot-demo");
      session.revert().toCompletableFuture().join();
      run(session, "test -d /usr/share/doc/base-files && ! dpkg -s uchroot-demo >/dev/null 2>&1");
    } finally {
      session.close().toCompletableFuture().join();
    }
  }

  private static void run(Session session, String script) {
    CapturedStdio io = new CapturedStdio();
    ExitStatus status = session.run(List.of("sh", "-ec", script), io).toCompletableFuture().join();
    assertEquals(
        new ExitStatus.Exited(0),
        status,
        script + "\nstdout: " + io.out() + "\nstderr: " + io.err());
  }
}
