package org.uchroot.engine;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.BindMount;
import org.uchroot.actors.SessionId;
import org.uchroot.actors.SessionSpec;
import org.uchroot.actors.Testbed;
import org.uchroot.actors.TestbedProvisioner;

/**
 * Unpacks a rootfs tarball into a fresh directory and starts the session's namespaces around it:
 * {@code unshare} (with the caller's subordinate ids when unprivileged) runs {@code
 * session-setup.sh} as pid 1 of a new pid namespace, which mounts /dev, /sys and the bind mounts
 * in a private mount namespace and then becomes {@code tini}.
 */
final class LinuxProvisioner implements TestbedProvisioner {

  private static final Logger LOG = LoggerFactory.getLogger(LinuxProvisioner.class);
  private static final String READY = "uchroot-sandbox-ready";
  private static final String SCRATCH_CHARS =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  private static final SecureRandom RANDOM = new SecureRandom();

  private final EngineConfig config;
  private final IdMapping mapping;
  private final Executor blocking;
  private final SessionRegistry registry;
  private final SafeRemover remover;

  LinuxProvisioner(
      EngineConfig config, IdMapping mapping, SessionRegistry registry, Executor blocking) {
    this.config = config;
    this.mapping = mapping;
    this.blocking = blocking;
    this.registry = registry;
    this.remover = new SafeRemover(mapping, registry, blocking);
  }

  @Override
  public CompletionStage<Testbed> provision(
      SessionId session, SessionSpec spec, Optional<Testbed> previous) {
    return CompletableFuture.supplyAsync(() -> provisionNow(session, spec, previous), blocking);
  }

  @Override
  public CompletionStage<Void> dismantle(Testbed testbed) {
    return CompletableFuture.runAsync(
        () -> {
          ((NamespaceSandbox) testbed.sandbox()).end();
          List<Path> mounts = MountTable.mountsAtOrBelow(testbed.rootfs());
          if (!mounts.isEmpty()) {
            throw new UchrootException("still mounted below " + testbed.rootfs() + ": " + mounts);
          }
        },
        blocking);
  }

  private Testbed provisionNow(SessionId session, SessionSpec spec, Optional<Testbed> previous) {
    if (!Files.isReadable(spec.tarball())) {
      throw new UchrootException("cannot read tarball " + spec.tarball());
    }
    for (BindMount bind : spec.binds()) {
      if (!Files.isDirectory(bind.outside())) {
        throw new UchrootException(bind.outside() + " doesn't exist");
      }
    }
    Path rootfs = createRootfsDir(spec, previous);
    registry.record(session, rootfs);
    String scratch = previous.map(Testbed::scratch).orElseGet(LinuxProvisioner::newScratchPath);
    try {
      long started = System.nanoTime();
      unpack(spec, rootfs, scratch);
      NamespaceSandbox sandbox = startSandbox(spec, rootfs);
      LOG.debug(
          "session {}: testbed ready in {} ms", session, (System.nanoTime() - started) / 1_000_000);
      return new Testbed(rootfs, scratch, sandbox);
    } catch (RuntimeException e) {
      try {
        remover.removeNow(rootfs);
      } catch (RuntimeException cleanup) {
        e.addSuppressed(cleanup);
        LOG.error("could not remove {} after a failed open: {}", rootfs, cleanup.getMessage());
      }
      throw e;
    }
  }

  private static Path createRootfsDir(SessionSpec spec, Optional<Testbed> previous) {
    try {
      if (previous.isPresent()) {
        return Files.createDirectory(previous.get().rootfs());
      }
      if (spec.unpackDir().isPresent()) {
        Path dir = spec.unpackDir().get().toAbsolutePath();
        if (dir.getParent() != null) {
          Files.createDirectories(dir.getParent());
        }
        return Files.createDirectory(dir);
      }
      return Files.createTempDirectory(
          Path.of(System.getProperty("java.io.tmpdir")), spec.unpackPrefix().orElse("uchroot."));
    } catch (FileAlreadyExistsException e) {
      throw new UchrootException("unpack directory " + e.getFile() + " already exists");
    } catch (IOException e) {
      throw new UchrootException("cannot create the unpack directory: " + e.getMessage(), e);
    }
  }

  /** The scratch directory autopkgtest expects: {@code /tmp/autopkgtest.XXXXXX}. */
  private static String newScratchPath() {
    StringBuilder name = new StringBuilder("/tmp/autopkgtest.");
    for (int i = 0; i < 6; i++) {
      name.append(SCRATCH_CHARS.charAt(RANDOM.nextInt(SCRATCH_CHARS.length())));
    }
    return name.toString();
  }

  /**
   * Unpacks without ./dev (device nodes cannot be made unprivileged; the sandbox binds the host's)
   * and creates the normal user and the scratch directory. The last two run through chroot so that
   * a symlink in the tarball cannot point them at the host.
   */
  private void unpack(SessionSpec spec, Path rootfs, String scratch) {
    List<String> argv = new ArrayList<>(mapping.unshareOptions().isEmpty()
        ? List.of()
        : prefixed("unshare", mapping.unshareOptions()));
    argv.addAll(
        List.of(
            "/bin/sh",
            "-ec",
            "tar --exclude=./dev --directory \"$1\" --extract --file \"$2\"\n"
                + "useradd --create-home --root \"$1\" \"$3\"\n"
                + "chroot \"$1\" /bin/sh -c 'mkdir -p -- \"$1\" && chmod 1777 -- \"$1\"' sh \"$4\"\n",
            "uchroot-unpack",
            rootfs.toString(),
            spec.tarball().toAbsolutePath().toString(),
            spec.normalUser(),
            scratch));
    HelperProcess.run("unpacking " + spec.tarball(), argv);
  }

  private NamespaceSandbox startSandbox(SessionSpec spec, Path rootfs) {
    List<String> argv = new ArrayList<>();
    argv.add("unshare");
    argv.addAll(mapping.unshareOptions());
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
            "--mount-proc=" + rootfs.resolve("proc"),
            "--",
            "/bin/sh",
            config.libexecDir().resolve("session-setup.sh").toString(),
            rootfs.toString()));
    for (BindMount bind : spec.binds()) {
      argv.addAll(List.of("--bind", bind.outside().toAbsolutePath().toString(), bind.inside()));
    }
    argv.addAll(List.of("--", "tini", "-s", "--", "/bin/sh", "-c", "exec cat >/dev/null"));
    LOG.debug("sandbox: {}", argv);

    Process holder;
    try {
      holder = HelperProcess.builder(argv).start();
    } catch (IOException e) {
      throw new UchrootException("cannot start the session's namespaces: " + e.getMessage(), e);
    }
    CompletableFuture<String> stderr =
        CompletableFuture.supplyAsync(() -> HelperProcess.drain(holder.getErrorStream()), blocking);
    String line;
    try {
      line =
          new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8))
              .readLine();
    } catch (IOException e) {
      line = null;
    }
    if (!READY.equals(line)) {
      holder.destroyForcibly();
      HelperProcess.waitFor(holder);
      throw new UchrootException(
          "cannot set up the session's namespaces: " + HelperProcess.oneLine(stderr.join()));
    }
    stderr.thenAccept(
        text -> {
          if (!text.isBlank()) {
            LOG.warn("session namespaces: {}", HelperProcess.oneLine(text));
          }
        });
    long init = childOf(holder.pid());
    NamespaceSandbox sandbox = new NamespaceSandbox(holder, init, rootfs);
    return sandbox;
  }

  /** The one child of {@code unshare --fork}: the session's init. */
  private static long childOf(long pid) {
    Path children = Path.of("/proc", Long.toString(pid), "task", Long.toString(pid), "children");
    try {
      String text = Files.readString(children).trim();
      if (!text.isEmpty() && Files.exists(Path.of("/proc", text.split(" ")[0]), LinkOption.NOFOLLOW_LINKS)) {
        return Long.parseLong(text.split(" ")[0]);
      }
    } catch (IOException | NumberFormatException e) {
      throw new UchrootException("cannot find the session's init: " + e.getMessage(), e);
    }
    throw new UchrootException("the session's init exited during set-up");
  }

  private static List<String> prefixed(String program, List<String> options) {
    List<String> argv = new ArrayList<>();
    argv.add(program);
    argv.addAll(options);
    argv.add("--");
    return argv;
  }
}
