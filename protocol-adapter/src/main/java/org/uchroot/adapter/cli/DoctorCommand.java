package org.uchroot.adapter.cli;

import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.actors.RootfsMode;
import org.uchroot.engine.EngineConfig;
import org.uchroot.engine.Host;
import org.uchroot.engine.IdMapping;
import org.uchroot.engine.UchrootException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * {@code uchroot doctor}: whether this host and this user can make testbeds, one line per check,
 * each failure with what to change. The checks read the host through {@link HostFacts}, so that
 * their verdicts can be tested without the host.
 */
@Command(
    name = "doctor",
    mixinStandardHelpOptions = true,
    description = {
      "Check that this user can make testbeds here: subordinate ids, user namespaces, overlayfs,"
          + " /dev/net/tun, the cache, state and runtime directories, and the class data archive"
          + " the JVM starts with. One line per check: ok, warn or FAIL, and what to change."
    },
    exitCodeListHeading = "%nExit status:%n",
    exitCodeList = {"0:No check failed (warnings allowed).", "125:At least one check failed."})
final class DoctorCommand implements Callable<Integer> {

  /** Below this, a cache of a few unpacked Debian trees and their testbeds runs short. */
  static final long LOW_SPACE = 5L << 30;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    List<Finding> findings =
        examine(new LiveHost(), Main.loadConfig(), ClassDataArchive.ofThisJvm());
    PrintWriter out = spec.commandLine().getOut();
    findings.forEach(finding -> out.println(finding.line()));
    out.flush();
    return findings.stream().anyMatch(f -> f.verdict() == Verdict.FAIL)
        ? ExitCode.TESTBED_FAILED.code()
        : 0;
  }

  enum Verdict {
    OK("ok"),
    WARN("warn"),
    FAIL("FAIL");

    final String word;

    Verdict(String word) {
      this.word = word;
    }
  }

  /** One check's verdict; {@code fix} says what to change, empty where nothing needs to. */
  record Finding(Verdict verdict, String check, String detail, String fix) {
    static Finding ok(String check, String detail) {
      return new Finding(Verdict.OK, check, detail, "");
    }

    String line() {
      return String.format(Locale.ROOT, "%-4s %s: %s", verdict.word, check, detail)
          + (fix.isEmpty() ? "" : "; to fix: " + fix);
    }
  }

  /** What the checks read from the host. */
  interface HostFacts {
    boolean isRoot();

    String userName();

    /** As the engine maps the caller's ids; throws {@link UchrootException} if it cannot. */
    IdMapping.Subordinate subordinateIds();

    boolean onPath(String program);

    /** Runs {@code argv} to its end, as the caller: its status and its output. */
    Ran run(List<String> argv);

    /** A file's content, such as a sysctl's in /proc/sys; empty if it cannot be read. */
    Optional<String> read(Path file);

    /** {@code uname -r}. */
    String kernelRelease();

    boolean exists(Path path);

    /**
     * The filesystem of {@code dir}, or of its nearest existing parent where it is yet to be made.
     */
    Space space(Path dir);
  }

  record Ran(int status, String output) {}

  /**
   * @param existing {@code dir} itself, or its nearest existing parent
   * @param type the filesystem's type, as /proc/mounts names it
   * @param writable whether the caller can write there (and so make {@code dir})
   * @param free bytes the caller can use
   */
  record Space(Path existing, String type, boolean writable, long free) {}

  /** Every check, in the order a reader fixes them. */
  static List<Finding> examine(HostFacts host, EngineConfig config, ClassDataArchive archive) {
    List<Finding> findings = new ArrayList<>();
    findings.add(subordinateIds(host));
    findings.add(idMapHelpers(host));
    findings.add(userNamespaces(host, config));
    findings.add(overlay(host, config));
    findings.add(tun(host));
    findings.add(directory(host, "cache directory", conf("cache-dir"), config.cacheDir(), true));
    findings.add(directory(host, "state directory", conf("state-dir"), config.stateDir(), false));
    findings.add(
        directory(host, "runtime directory", "UCHROOT_RUNTIME_DIR", config.runtimeDir(), false));
    findings.add(classDataArchive(archive));
    return findings;
  }

  static Finding subordinateIds(HostFacts host) {
    String check = "subordinate ids";
    if (host.isRoot()) {
      return Finding.ok(
          check, "not needed by root (its testbeds use root's range, or one picked once)");
    }
    try {
      IdMapping.Subordinate ids = host.subordinateIds();
      return Finding.ok(
          check,
          host.userName() + " maps uids " + range(ids.users()) + ", gids " + range(ids.groups()));
    } catch (UchrootException e) {
      return new Finding(
          Verdict.FAIL,
          check,
          OneLineMessage.of(e),
          "as root, usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "
              + host.userName()
              + " (a range no other line of /etc/subuid and /etc/subgid uses)");
    }
  }

  private static String range(IdMapping.Range range) {
    return range.start() + "-" + (range.start() + range.count() - 1);
  }

  static Finding idMapHelpers(HostFacts host) {
    String check = "newuidmap, newgidmap";
    if (host.isRoot()) {
      return Finding.ok(check, "not needed by root");
    }
    List<String> missing =
        List.of("newuidmap", "newgidmap").stream().filter(p -> !host.onPath(p)).toList();
    return missing.isEmpty()
        ? Finding.ok(check, "found")
        : new Finding(
            Verdict.FAIL,
            check,
            String.join(" and ", missing) + " not found on PATH",
            "install the uidmap package (apt-get install uidmap)");
  }

  /** The kernel switches that refuse user namespaces, and the value that allows them. */
  private record Sysctl(String name, String refusing, String allowing, boolean rootToo) {
    Path file() {
      return Path.of("/proc/sys", name.replace('.', '/'));
    }
  }

  private static final List<Sysctl> USERNS_SYSCTLS =
      List.of(
          new Sysctl("user.max_user_namespaces", "0", "65536", true),
          new Sysctl("kernel.unprivileged_userns_clone", "0", "1", false),
          new Sysctl("kernel.apparmor_restrict_unprivileged_userns", "1", "0", false));

  /** Tried rather than inferred: sysctls, AppArmor and seccomp all have a say. */
  static Finding userNamespaces(HostFacts host, EngineConfig config) {
    String check = "user namespaces";
    if (host.isRoot() && config.privileged()) {
      return Finding.ok(check, "not needed (privileged = true)");
    }
    List<String> argv =
        List.of("unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "true");
    Ran ran = host.run(argv);
    if (ran.status() == 0) {
      return Finding.ok(check, String.join(" ", argv) + " works");
    }
    String detail = String.join(" ", argv) + " failed: " + firstLine(ran.output());
    for (Sysctl sysctl : USERNS_SYSCTLS) {
      if ((sysctl.rootToo() || !host.isRoot())
          && host.read(sysctl.file()).map(String::strip).orElse("").equals(sysctl.refusing())) {
        return new Finding(
            Verdict.FAIL,
            check,
            detail + " (" + sysctl.name() + " = " + sysctl.refusing() + ")",
            "as root, sysctl -w "
                + sysctl.name()
                + "="
                + sysctl.allowing()
                + ", and the same line in /etc/sysctl.d/ to keep it");
      }
    }
    return new Finding(
        Verdict.FAIL, check, detail, "see user_namespaces(7): something on this host refuses them");
  }

  private static final Pattern RELEASE = Pattern.compile("^(\\d+)\\.(\\d+)");

  static Finding overlay(HostFacts host, EngineConfig config) {
    String check = "overlayfs";
    if (config.rootfsMode() != RootfsMode.OVERLAY) {
      return Finding.ok(check, "not used (rootfs-mode = unpack)");
    }
    String fix = "or set rootfs-mode = \"unpack\" in uchroot.conf to skip the try";
    boolean listed =
        host.read(Path.of("/proc/filesystems"))
            .orElse("")
            .lines()
            .anyMatch(line -> line.strip().endsWith("overlay"));
    if (!listed) {
      return new Finding(
          Verdict.WARN,
          check,
          "not in /proc/filesystems: testbeds are unpacked whole, slower, if it cannot be loaded",
          "as root, modprobe overlay, " + fix);
    }
    String release = host.kernelRelease();
    Matcher version = RELEASE.matcher(release);
    // Mounting one inside a user namespace came with Linux 5.11; root mounts from outside.
    if (!host.isRoot()
        && version.find()
        && Integer.parseInt(version.group(1)) * 1000 + Integer.parseInt(version.group(2)) < 5011) {
      return new Finding(
          Verdict.WARN,
          check,
          "an unprivileged user needs Linux 5.11 for it (this is "
              + release
              + "): testbeds are unpacked whole, slower",
          "a newer kernel, " + fix);
    }
    return Finding.ok(check, "available (Linux " + release + ")");
  }

  static Finding tun(HostFacts host) {
    String check = "/dev/net/tun";
    return host.exists(Path.of("/dev/net/tun"))
        ? Finding.ok(check, "present")
        : new Finding(
            Verdict.WARN,
            check,
            "missing: tests that make tun devices (network tests) cannot",
            "as root, modprobe tun");
  }

  /** Where a user sets a key of the configuration. */
  private static String conf(String key) {
    return "uchroot." + key + " in ~/.config/uchroot/uchroot.conf";
  }

  /**
   * @param setting what chooses the directory, for the advice
   */
  static Finding directory(
      HostFacts host, String check, String setting, Path dir, boolean holdsTrees) {
    Space space = host.space(dir);
    String where = dir + " (" + space.type() + ", " + gibibytes(space.free()) + " free)";
    String elsewhere = "or set " + setting + " elsewhere";
    if (!space.writable()) {
      String what =
          space.existing().equals(dir) ? dir.toString() : space.existing() + ", above it,";
      return new Finding(
          Verdict.FAIL,
          check,
          where + ": " + what + " is not writable by " + host.userName(),
          "give " + host.userName() + " write access to " + space.existing() + ", " + elsewhere);
    }
    if (holdsTrees && space.free() < LOW_SPACE) {
      return new Finding(
          Verdict.WARN,
          check,
          where + ": under " + gibibytes(LOW_SPACE) + " free, too little for unpacked tarballs",
          "uchroot cache prune, free some space, " + elsewhere);
    }
    return Finding.ok(check, where);
  }

  private static String gibibytes(long bytes) {
    return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30));
  }

  static Finding classDataArchive(ClassDataArchive archive) {
    String check = "class data archive";
    return archive.path().isPresent()
        ? Finding.ok(check, archive.toString())
        : new Finding(
            Verdict.WARN,
            check,
            archive.note() + ": each start takes a third of a second more",
            "");
  }

  private static String firstLine(String output) {
    return output.strip().lines().findFirst().orElse("no message");
  }

  /** The host as this JVM sees it. */
  static final class LiveHost implements HostFacts {

    @Override
    public boolean isRoot() {
      return Host.isRoot();
    }

    @Override
    public String userName() {
      return Host.userName();
    }

    @Override
    public IdMapping.Subordinate subordinateIds() {
      return Host.subordinate();
    }

    @Override
    public boolean onPath(String program) {
      String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
      for (String dir : path.split(File.pathSeparator)) {
        if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, program))) {
          return true;
        }
      }
      return false;
    }

    @Override
    public Ran run(List<String> argv) {
      try {
        Process process =
            new ProcessBuilder(argv)
                .redirectErrorStream(true)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                .start();
        // `true` in fresh namespaces: the output is a line at most, read to its end here.
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
          process.destroyForcibly().waitFor();
          return new Ran(-1, "did not finish within 30 s");
        }
        return new Ran(process.exitValue(), output);
      } catch (IOException e) {
        return new Ran(-1, UchrootException.reason(e));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return new Ran(-1, "interrupted");
      }
    }

    @Override
    public Optional<String> read(Path file) {
      try {
        return Optional.of(Files.readString(file, StandardCharsets.UTF_8));
      } catch (IOException e) {
        return Optional.empty();
      }
    }

    @Override
    public String kernelRelease() {
      return System.getProperty("os.version");
    }

    @Override
    public boolean exists(Path path) {
      return Files.exists(path);
    }

    @Override
    public Space space(Path dir) {
      Path existing = dir.toAbsolutePath();
      while (!Files.exists(existing) && existing.getParent() != null) {
        existing = existing.getParent();
      }
      try {
        FileStore store = Files.getFileStore(existing);
        return new Space(
            existing,
            store.type(),
            Files.isWritable(existing) && !store.isReadOnly(),
            store.getUsableSpace());
      } catch (IOException e) {
        return new Space(existing, "unknown: " + UchrootException.reason(e), false, 0);
      }
    }
  }
}
