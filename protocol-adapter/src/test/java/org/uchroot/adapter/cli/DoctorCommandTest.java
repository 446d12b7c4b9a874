package org.uchroot.adapter.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.uchroot.actors.GracePeriods;
import org.uchroot.actors.RootfsMode;
import org.uchroot.adapter.cli.DoctorCommand.Finding;
import org.uchroot.adapter.cli.DoctorCommand.Verdict;
import org.uchroot.engine.EngineConfig;
import org.uchroot.engine.IdMapping;
import org.uchroot.engine.UchrootException;

/**
 * The verdicts of {@code uchroot doctor} on hosts described by a fake, and what they tell to fix.
 */
class DoctorCommandTest {

  private static final Path CACHE = Path.of("/home/u/.cache/uchroot");

  /** A host where everything works for the unprivileged user {@code u}; tests break one thing. */
  private static final class FakeHost implements DoctorCommand.HostFacts {
    boolean root;
    boolean subordinateIds = true;
    List<String> programs = new ArrayList<>(List.of("newuidmap", "newgidmap", "unshare"));
    DoctorCommand.Ran unshare = new DoctorCommand.Ran(0, "");
    Map<Path, String> files =
        new HashMap<>(Map.of(Path.of("/proc/filesystems"), "nodev\tproc\nnodev\toverlay\n"));
    String release = "6.1.0-18-amd64";
    boolean tun = true;
    Map<Path, DoctorCommand.Space> spaces = new HashMap<>();
    final List<List<String>> ran = new ArrayList<>();

    @Override
    public boolean isRoot() {
      return root;
    }

    @Override
    public String userName() {
      return root ? "root" : "u";
    }

    @Override
    public IdMapping.Subordinate subordinateIds() {
      if (!subordinateIds) {
        throw new UchrootException("no subordinate id range for u in /etc/subuid (see subuid(5))");
      }
      return new IdMapping.Subordinate(
          new IdMapping.Range(100000, 65536), new IdMapping.Range(200000, 65536));
    }

    @Override
    public boolean onPath(String program) {
      return programs.contains(program);
    }

    @Override
    public DoctorCommand.Ran run(List<String> argv) {
      ran.add(argv);
      return unshare;
    }

    @Override
    public Optional<String> read(Path file) {
      return Optional.ofNullable(files.get(file));
    }

    @Override
    public String kernelRelease() {
      return release;
    }

    @Override
    public boolean exists(Path path) {
      return tun && path.equals(Path.of("/dev/net/tun"));
    }

    @Override
    public DoctorCommand.Space space(Path dir) {
      return spaces.getOrDefault(dir, new DoctorCommand.Space(dir, "ext4", true, 50L << 30));
    }
  }

  private static EngineConfig config(RootfsMode mode, boolean privileged) {
    return new EngineConfig(
        Path.of("/opt/uchroot/libexec"),
        Path.of("/run/user/1000/uchroot"),
        Path.of("/home/u/.local/state/uchroot"),
        CACHE,
        OptionalLong.empty(),
        mode,
        new GracePeriods(Duration.ofSeconds(5), Duration.ofSeconds(5)),
        "uchroot",
        privileged,
        ConfigFactory.empty());
  }

  private static final ClassDataArchive ARCHIVE =
      new ClassDataArchive(
          Optional.of("/opt/uchroot/lib/uchroot.jsa"), "made for this installation");

  private static List<Finding> examine(FakeHost host) {
    return DoctorCommand.examine(host, config(RootfsMode.OVERLAY, false), ARCHIVE);
  }

  private static Finding find(List<Finding> findings, String check) {
    return findings.stream().filter(f -> f.check().equals(check)).findFirst().orElseThrow();
  }

  @Test
  void aHostWhereEverythingWorksIsOkThroughout() {
    FakeHost host = new FakeHost();
    List<Finding> findings = examine(host);
    assertEquals(9, findings.size());
    findings.forEach(f -> assertEquals(Verdict.OK, f.verdict(), f.line()));
    assertEquals(
        "ok   subordinate ids: u maps uids 100000-165535, gids 200000-265535",
        find(findings, "subordinate ids").line());
    assertEquals(
        List.of(
            List.of("unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "true")),
        host.ran);
  }

  @Test
  void aUserWithoutSubordinateIdsFailsWithTheUsermodThatGivesThem() {
    FakeHost host = new FakeHost();
    host.subordinateIds = false;
    Finding finding = find(examine(host), "subordinate ids");
    assertEquals(
        "FAIL subordinate ids: no subordinate id range for u in /etc/subuid (see subuid(5)); to fix:"
            + " as root, usermod --add-subuids 100000-165535 --add-subgids 100000-165535 u (a range"
            + " no other line of /etc/subuid and /etc/subgid uses)",
        finding.line());
  }

  @Test
  void rootNeedsNeitherSubordinateIdsNorTheUidmapHelpers() {
    FakeHost host = new FakeHost();
    host.root = true;
    host.subordinateIds = false;
    host.programs.clear();
    List<Finding> findings = examine(host);
    assertEquals(Verdict.OK, find(findings, "subordinate ids").verdict());
    assertEquals(Verdict.OK, find(findings, "newuidmap, newgidmap").verdict());
  }

  @Test
  void missingUidmapHelpersNameThePackage() {
    FakeHost host = new FakeHost();
    host.programs.remove("newgidmap");
    Finding finding = find(examine(host), "newuidmap, newgidmap");
    assertEquals(Verdict.FAIL, finding.verdict());
    assertEquals("newgidmap not found on PATH", finding.detail());
    assertTrue(finding.fix().contains("uidmap package"), finding.fix());
  }

  @Test
  void refusedUserNamespacesNameTheSysctlThatRefusesThem() {
    FakeHost host = new FakeHost();
    host.unshare = new DoctorCommand.Ran(1, "unshare: unshare failed: Operation not permitted\n");
    host.files.put(Path.of("/proc/sys/user/max_user_namespaces"), "63000\n");
    host.files.put(Path.of("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"), "1\n");
    Finding finding = find(examine(host), "user namespaces");
    assertEquals(Verdict.FAIL, finding.verdict());
    assertTrue(
        finding
            .detail()
            .endsWith(
                "failed: unshare: unshare failed: Operation not permitted"
                    + " (kernel.apparmor_restrict_unprivileged_userns = 1)"),
        finding.detail());
    assertTrue(
        finding
            .fix()
            .startsWith("as root, sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"),
        finding.fix());

    host.files.put(Path.of("/proc/sys/kernel/unprivileged_userns_clone"), "0\n");
    assertTrue(
        find(examine(host), "user namespaces")
            .fix()
            .contains("kernel.unprivileged_userns_clone=1"));
  }

  @Test
  void aPrivilegedRootIsNotTried() {
    FakeHost host = new FakeHost();
    host.root = true;
    host.unshare = new DoctorCommand.Ran(1, "refused");
    assertEquals(
        Verdict.OK,
        find(
                DoctorCommand.examine(host, config(RootfsMode.OVERLAY, true), ARCHIVE),
                "user namespaces")
            .verdict());
    assertEquals(List.of(), host.ran);
  }

  @Test
  void overlayBeforeLinux511IsAWarningForUsersOnlyAndNoneForUnpack() {
    FakeHost host = new FakeHost();
    host.release = "5.10.0-28-amd64";
    Finding finding = find(examine(host), "overlayfs");
    assertEquals(Verdict.WARN, finding.verdict());
    assertTrue(finding.detail().contains("needs Linux 5.11"), finding.detail());
    host.root = true;
    assertEquals(Verdict.OK, find(examine(host), "overlayfs").verdict());
    host.root = false;
    assertEquals(
        Verdict.OK,
        find(DoctorCommand.examine(host, config(RootfsMode.UNPACK, false), ARCHIVE), "overlayfs")
            .verdict());
    host.files.put(Path.of("/proc/filesystems"), "nodev\tproc\n");
    host.release = "6.1.0";
    assertEquals(Verdict.WARN, find(examine(host), "overlayfs").verdict());
  }

  @Test
  void noTunIsOnlyAWarning() {
    FakeHost host = new FakeHost();
    host.tun = false;
    assertEquals(Verdict.WARN, find(examine(host), "/dev/net/tun").verdict());
  }

  @Test
  void anUnwritableCacheFailsAndSaysWhereToWriteInstead() {
    FakeHost host = new FakeHost();
    host.spaces.put(CACHE, new DoctorCommand.Space(Path.of("/home/u"), "ext4", false, 50L << 30));
    assertEquals(
        "FAIL cache directory: /home/u/.cache/uchroot (ext4, 50.0 GiB free): /home/u, above it, is"
            + " not writable by u; to fix: give u write access to /home/u, or set uchroot.cache-dir"
            + " in ~/.config/uchroot/uchroot.conf elsewhere",
        find(examine(host), "cache directory").line());
  }

  @Test
  void littleSpaceIsAWarningForTheCacheOnly() {
    FakeHost host = new FakeHost();
    host.spaces.put(CACHE, new DoctorCommand.Space(CACHE, "tmpfs", true, 1L << 30));
    host.spaces.put(
        Path.of("/run/user/1000/uchroot"),
        new DoctorCommand.Space(Path.of("/run/user/1000"), "tmpfs", true, 1L << 20));
    List<Finding> findings = examine(host);
    assertEquals(Verdict.WARN, find(findings, "cache directory").verdict());
    assertEquals(Verdict.OK, find(findings, "runtime directory").verdict());
  }

  @Test
  void noClassDataArchiveIsAWarningThatSaysWhy() {
    List<Finding> findings =
        DoctorCommand.examine(
            new FakeHost(),
            config(RootfsMode.OVERLAY, false),
            new ClassDataArchive(Optional.empty(), "none yet: X is being made in the background"));
    Finding finding = find(findings, "class data archive");
    assertEquals(Verdict.WARN, finding.verdict());
    assertTrue(
        finding
            .line()
            .startsWith("warn class data archive: none yet: X is being made in the background"),
        finding.line());
  }
}
