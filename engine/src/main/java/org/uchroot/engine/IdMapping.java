package org.uchroot.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** How ids inside a testbed relate to the host's, and the namespaces that make them so. */
public sealed interface IdMapping {

  /** Root's testbeds with {@code --privileged}: no user namespace, ids are the host's. */
  IdMapping HOST = new Host();

  /** The job server's name in the libexec directory. */
  String JOB_SERVER = "uchroot-jobd";

  /**
   * The command, up to the job server's own arguments, that starts a session's job server in its
   * namespaces.
   */
  List<String> sessionCommand(Path libexecDir);

  /** The command prefix that runs a program as root of a user namespace with this mapping. */
  List<String> userNamespaceCommand(Path libexecDir);

  /**
   * Extra overlayfs mount options. An overlay mounted by the host's root keeps its metadata in
   * trusted xattrs and can rename directories of the base ({@code redirect_dir}); one mounted in a
   * user namespace has only user xattrs, with which the kernel refuses redirect_dir, so renaming a
   * base directory fails with EXDEV there and tools fall back to copying, as POSIX lets them.
   */
  String overlayOptions();

  /**
   * Whether the job server can open the engine's host files for a command: only when the testbed's
   * root is the engine's own user, as it is but for {@link Remapped}.
   */
  default boolean jobServerOpensHostFiles() {
    return true;
  }

  /**
   * What tells the cache's bases of this mapping from those of another, by their files' owners:
   * empty but for {@link Remapped}, whose bases are owned by its range.
   */
  default String baseTag() {
    return "";
  }

  /** Gives a directory the engine made to the testbed's root, which must write there. */
  default void giveToTestbedRoot(Path dir) {}

  /** The namespaces of every mapping but the job server's own (see {@link Remapped}). */
  private static List<String> unshare(List<String> userOptions, Path libexecDir) {
    List<String> argv = new ArrayList<>();
    argv.add("unshare");
    argv.addAll(userOptions);
    argv.addAll(
        List.of(
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--ipc",
            "--uts",
            "--fork",
            "--kill-child",
            "--",
            // The job server is the session's init: it mounts the testbed, holds the session open
            // and says when it is ready. Each command has a pid namespace of its own below it,
            // whose pid 1 reaps that command's orphans, so nothing else needs an init here.
            libexecDir.resolve(JOB_SERVER).toString()));
    return argv;
  }

  record Host() implements IdMapping {
    @Override
    public List<String> sessionCommand(Path libexecDir) {
      return unshare(List.of(), libexecDir);
    }

    @Override
    public List<String> userNamespaceCommand(Path libexecDir) {
      return List.of();
    }

    @Override
    public String overlayOptions() {
      return "redirect_dir=on";
    }
  }

  /** A subordinate id range of /etc/subuid or /etc/subgid. */
  record Range(long start, long count) {}

  /**
   * An unprivileged caller's testbeds: root inside is the caller; ids 1..count inside are the
   * caller's subordinate ranges. Mapped explicitly, through newuidmap/newgidmap, rather than with
   * {@code --map-auto}.
   */
  record Subordinate(Range users, Range groups) implements IdMapping {
    /** The options of unshare(1) that make the user namespace. */
    private List<String> unshareOptions() {
      return List.of(
          "--user",
          "--map-root-user",
          "--map-users=" + users.start() + ",1," + users.count(),
          "--map-groups=" + groups.start() + ",1," + groups.count());
    }

    @Override
    public List<String> sessionCommand(Path libexecDir) {
      return unshare(unshareOptions(), libexecDir);
    }

    @Override
    public List<String> userNamespaceCommand(Path libexecDir) {
      List<String> argv = new ArrayList<>(List.of("unshare"));
      argv.addAll(unshareOptions());
      argv.add("--");
      return argv;
    }

    @Override
    public String overlayOptions() {
      return "userxattr";
    }
  }

  /**
   * Root's testbeds: root inside is {@code uid} and {@code gid} on the host, a subordinate range of
   * root's, so that a testbed's root that leaves its chroot is an unprivileged user of the host.
   * The job server makes the namespaces itself and writes their maps as the host's root, which
   * needs no entry in /etc/subuid; the overlay is mounted from outside the user namespace.
   */
  record Remapped(long uid, long gid, long count) implements IdMapping {
    @Override
    public List<String> sessionCommand(Path libexecDir) {
      return List.of(
          libexecDir.resolve(JOB_SERVER).toString(),
          "--ids",
          Long.toString(uid),
          Long.toString(gid),
          Long.toString(count));
    }

    @Override
    public List<String> userNamespaceCommand(Path libexecDir) {
      List<String> argv = new ArrayList<>(sessionCommand(libexecDir));
      argv.add("--exec");
      return argv;
    }

    @Override
    public String overlayOptions() {
      return "redirect_dir=on";
    }

    @Override
    public boolean jobServerOpensHostFiles() {
      return false;
    }

    @Override
    public String baseTag() {
      return "ids " + uid + ":" + gid + "+" + count;
    }

    @Override
    public void giveToTestbedRoot(Path dir) {
      try {
        Files.setAttribute(dir, "unix:uid", (int) uid, LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(dir, "unix:gid", (int) gid, LinkOption.NOFOLLOW_LINKS);
      } catch (IOException e) {
        throw new UchrootException(
            "cannot give " + dir + " to the testbed: " + UchrootException.reason(e), e);
      }
    }
  }
}
