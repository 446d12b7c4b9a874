package org.uchroot.engine;

import com.sun.security.auth.module.UnixSystem;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;

/** The calling user and the few system calls the engine needs from the JVM. */
public final class Host {

  private static final UnixSystem USER = new UnixSystem();

  private Host() {}

  /**
   * kill(2), which the JDK lacks; loaded at first use: jnr-posix's set-up costs a fifth of a
   * second.
   */
  private static final class Native {
    static final POSIX POSIX = POSIXFactory.getNativePOSIX();
  }

  public static int uid() {
    return (int) USER.getUid();
  }

  public static int gid() {
    return (int) USER.getGid();
  }

  public static boolean isRoot() {
    return uid() == 0;
  }

  public static String userName() {
    String name = USER.getUsername();
    return name != null ? name : Integer.toString(uid());
  }

  /** Sends {@code signal} to {@code pid}; false if it no longer exists. */
  public static boolean kill(long pid, int signal) {
    return Native.POSIX.kill((int) pid, signal) == 0;
  }

  /**
   * The id mapping for the testbeds of the calling user. Root's run as a subordinate range of
   * root's (see {@link RootIds}), or with the host's ids if the configuration says {@code
   * privileged}. Another user's run as that user, with ids 1..n mapped to the user's own
   * subordinate ranges, read from /etc/subuid and /etc/subgid (never another user's, whatever line
   * comes first).
   */
  public static IdMapping idMapping(EngineConfig config) {
    if (isRoot()) {
      return config.privileged() ? IdMapping.HOST : RootIds.of(config.stateDir()).mapping();
    }
    return subordinate();
  }

  /**
   * An unprivileged caller's mapping: see {@link #idMapping}. Throws {@link UchrootException}
   * naming the file that has no range for the caller.
   */
  public static IdMapping.Subordinate subordinate() {
    String name = userName();
    String uid = Integer.toString(uid());
    IdMapping.Range users =
        subordinateRange(Path.of("/etc/subuid"), name, uid)
            .orElseThrow(() -> new UchrootException(noRange("/etc/subuid", name)));
    IdMapping.Range groups =
        subordinateRange(Path.of("/etc/subgid"), name, uid)
            .orElseThrow(() -> new UchrootException(noRange("/etc/subgid", name)));
    return new IdMapping.Subordinate(users, groups);
  }

  private static String noRange(String file, String name) {
    return "no subordinate id range for " + name + " in " + file + " (see subuid(5))";
  }

  /** The first range that belongs to the user, by name or by numeric uid. */
  static Optional<IdMapping.Range> subordinateRange(Path file, String name, String uid) {
    return subordinateLines(file).stream()
        .filter(line -> line.owner().equals(name) || line.owner().equals(uid))
        .map(SubordinateLine::range)
        .findFirst();
  }

  /** A line of /etc/subuid or /etc/subgid: its owner, by name or uid, and its range. */
  record SubordinateLine(String owner, IdMapping.Range range) {}

  /**
   * Every well-formed line of a subuid(5) file, in order. A malformed line is not ours to judge:
   * newuidmap skips it too.
   */
  static List<SubordinateLine> subordinateLines(Path file) {
    List<String> lines;
    try {
      lines = Files.exists(file) ? Files.readAllLines(file) : List.of();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    List<SubordinateLine> parsed = new ArrayList<>();
    for (String line : lines) {
      String[] f = line.trim().split(":");
      if (f.length == 3) {
        try {
          long start = Long.parseLong(f[1]);
          long count = Long.parseLong(f[2]);
          if (count > 0) {
            parsed.add(new SubordinateLine(f[0], new IdMapping.Range(start, count)));
          }
        } catch (NumberFormatException e) {
          // Skipped, as newuidmap does.
        }
      }
    }
    return parsed;
  }

  /**
   * The user's runtime directory for uchroot, the same however the user was reached (a login, su,
   * sudo, a service): {@code $UCHROOT_RUNTIME_DIR}; else {@code /run/user/UID/uchroot} where the
   * login manager made {@code /run/user/UID}; else {@code /run/uchroot} for root; else {@code
   * /tmp/uchroot-UID}. {@code $XDG_RUNTIME_DIR} is not read: su and sudo pass on another user's.
   * The native frontend (frontend.c) finds it by the same rule.
   */
  public static Path runtimeDir() {
    String chosen = System.getenv("UCHROOT_RUNTIME_DIR");
    if (chosen != null && chosen.startsWith("/")) {
      return Path.of(chosen);
    }
    Path login = Path.of("/run/user", Integer.toString(uid()));
    try {
      if (Files.isDirectory(login, LinkOption.NOFOLLOW_LINKS)
          && (int) Files.getAttribute(login, "unix:uid", LinkOption.NOFOLLOW_LINKS) == uid()) {
        return login.resolve("uchroot");
      }
    } catch (IOException | UnsupportedOperationException e) {
      // Not the user's: the next choice.
    }
    return isRoot() ? Path.of("/run/uchroot") : Path.of("/tmp", "uchroot-" + uid());
  }

  /**
   * {@code /var/lib/uchroot} for root, else {@code $XDG_STATE_HOME/uchroot} or
   * ~/.local/state/uchroot.
   */
  static Path defaultStateDir() {
    if (isRoot()) {
      return Path.of("/var/lib/uchroot");
    }
    String xdg = System.getenv("XDG_STATE_HOME");
    if (xdg != null && xdg.startsWith("/")) {
      return Path.of(xdg, "uchroot");
    }
    return Path.of(System.getProperty("user.home"), ".local", "state", "uchroot");
  }

  /**
   * {@code /var/cache/uchroot} for root, else {@code $XDG_CACHE_HOME/uchroot} or ~/.cache/uchroot.
   */
  static Path defaultCacheDir() {
    if (isRoot()) {
      return Path.of("/var/cache/uchroot");
    }
    String xdg = System.getenv("XDG_CACHE_HOME");
    if (xdg != null && xdg.startsWith("/")) {
      return Path.of(xdg, "uchroot");
    }
    return Path.of(System.getProperty("user.home"), ".cache", "uchroot");
  }
}
