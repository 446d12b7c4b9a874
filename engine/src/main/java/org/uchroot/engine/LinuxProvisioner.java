package org.uchroot.engine;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.BindMount;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.actors.RootfsMode;
import org.uchroot.actors.SessionId;
import org.uchroot.actors.SessionSpec;
import org.uchroot.actors.Testbed;
import org.uchroot.actors.TestbedProvisioner;

/**
 * Puts a testbed (an overlay over the cached base, or an unpacked tarball) in a fresh directory and
 * starts the session's namespaces around it (see {@link IdMapping#sessionCommand}): {@code
 * uchroot-jobd} runs as pid 1 of a new pid namespace, mounts the testbed in a private mount
 * namespace and then serves its commands.
 */
final class LinuxProvisioner implements TestbedProvisioner {

  private static final Logger LOG = LoggerFactory.getLogger(LinuxProvisioner.class);

  /** What the job server prints once it listens. */
  private static final String READY = "uchroot-sandbox-ready";

  /** Exit status of the job server (passed on to the engine) when the overlay cannot be mounted. */
  private static final int OVERLAY_FAILED = 3;

  private static final String SCRATCH_CHARS =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  private static final SecureRandom RANDOM = new SecureRandom();

  private final EngineConfig config;
  private final IdMapping mapping;
  private final Executor blocking;
  private final SessionRegistry registry;
  private final SafeRemover remover;
  private final TestbedTeardown teardown;
  private final RootfsCache cache;

  /** Cleared for good once a mount fails: the kernel or filesystem will not change meanwhile. */
  private volatile boolean overlayUsable = true;

  /**
   * @param remover clears a testbed's directory for a second try at the same path
   * @param teardown removes what a failed open made, and forgets it
   */
  LinuxProvisioner(
      EngineConfig config,
      IdMapping mapping,
      SessionRegistry registry,
      SafeRemover remover,
      TestbedTeardown teardown,
      Executor blocking) {
    this.config = config;
    this.mapping = mapping;
    this.blocking = blocking;
    this.registry = registry;
    this.remover = remover;
    this.teardown = teardown;
    this.cache =
        new RootfsCache(
            config.cacheDir(),
            mapping,
            config.libexecDir(),
            config.cacheMaxBytes(),
            registry::usesBase);
  }

  @Override
  public CompletionStage<Testbed> provision(
      SessionId session, SessionSpec spec, Optional<Testbed> previous) {
    return CompletableFuture.supplyAsync(() -> provisionNow(session, spec, previous), blocking);
  }

  private Testbed provisionNow(SessionId session, SessionSpec spec, Optional<Testbed> previous) {
    if (!Files.isReadable(spec.tarball())) {
      throw new UchrootException("cannot read tarball " + spec.tarball());
    }
    for (BindMount bind : spec.binds()) {
      if (!Files.isDirectory(bind.outside())) {
        throw new UchrootException(BindMount.outsideMissing(bind.outside()));
      }
    }
    Path top = createTopDir(spec, previous);
    registry.record(session, top);
    String scratch = previous.map(Testbed::scratch).orElseGet(LinuxProvisioner::newScratchPath);
    try {
      long started = System.nanoTime();
      NamespaceSandbox sandbox = null;
      if (spec.rootfsMode().orElse(config.rootfsMode()) == RootfsMode.OVERLAY && overlayUsable) {
        sandbox = startOverlay(session, spec, top, scratch);
      }
      if (sandbox == null) {
        Path root = createDirectory(top.resolve("root"));
        mapping.giveToTestbedRoot(root);
        Unpacker.unpack(
            mapping,
            config.libexecDir(),
            spec.tarball(),
            root,
            spec.normalUser(),
            Optional.empty());
        sandbox = startSandbox(session, spec, top, root, Optional.empty(), scratch);
      }
      LOG.debug(
          "session {}: testbed ready in {} ms", session, (System.nanoTime() - started) / 1_000_000);
      return new Testbed(top, scratch, sandbox);
    } catch (RuntimeException e) {
      try {
        teardown.removeUnstarted(top);
      } catch (RuntimeException cleanup) {
        e.addSuppressed(cleanup);
        LOG.error("could not remove {} after a failed open: {}", top, cleanup.getMessage());
      }
      throw e;
    }
  }

  /**
   * A fresh upper directory over the cached base, mounted in the session's mount namespace. Null
   * when this kernel or filesystem cannot do it, said once in the log; the caller then unpacks.
   */
  private NamespaceSandbox startOverlay(
      SessionId session, SessionSpec spec, Path top, String scratch) {
    Path base =
        cache.baseFor(
            spec.tarball(),
            spec.normalUser(),
            claimed -> registry.record(session, top, Optional.of(claimed)));
    // The overlay's root directory is the upper directory's.
    Path upper = createDirectory(top.resolve("upper"));
    mapping.giveToTestbedRoot(upper);
    Path work = createDirectory(top.resolve("work"));
    Path root = createDirectory(top.resolve("root"));
    try {
      return startSandbox(
          session,
          spec,
          top,
          root,
          Optional.of(new JobServerCommand.Overlay(base, upper, work, mapping.overlayOptions())),
          scratch);
    } catch (OverlayUnavailable e) {
      overlayUsable = false;
      LOG.warn(
          "overlayfs cannot be used here ({}); unpacking each testbed instead", e.getMessage());
      remover.removeNow(top);
      try {
        Files.createDirectory(top, PRIVATE);
      } catch (IOException again) {
        throw new UchrootException("cannot recreate " + top + ": " + again.getMessage(), again);
      }
      return null;
    }
  }

  private static Path createDirectory(Path dir) {
    try {
      return Files.createDirectory(dir);
    } catch (IOException e) {
      throw new UchrootException("cannot create " + dir + ": " + UchrootException.reason(e), e);
    }
  }

  private static Path createTopDir(SessionSpec spec, Optional<Testbed> previous) {
    try {
      if (previous.isPresent()) {
        return Files.createDirectory(previous.get().rootfs(), PRIVATE);
      }
      if (spec.unpackDir().isPresent()) {
        Path dir = spec.unpackDir().get().toAbsolutePath();
        if (dir.getParent() != null) {
          Files.createDirectories(dir.getParent());
        }
        return Files.createDirectory(dir, PRIVATE);
      }
      return createRandomDirectory(
          spec.unpackPrefix()
              .orElse(Path.of(System.getProperty("java.io.tmpdir"), "uchroot.").toString()));
    } catch (FileAlreadyExistsException e) {
      throw new UchrootException("unpack directory " + e.getFile() + " already exists");
    } catch (IOException e) {
      throw new UchrootException(
          "cannot create the unpack directory: " + UchrootException.reason(e), e);
    }
  }

  /**
   * A testbed's directory, whoever names it: root's alone. It holds the scratch directory's host
   * side, where the testbed's root acts as the host's root (see docs/security.md).
   */
  private static final FileAttribute<Set<PosixFilePermission>> PRIVATE =
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------"));

  private static final String TEMP_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_";

  /** Python's {@code tempfile.TMP_MAX}: how many names mkdtemp tries. */
  private static final int TEMP_TRIES = 10000;

  /**
   * A new private directory named {@code prefix} and eight random characters, as Python's {@code
   * tempfile.mkdtemp} makes the reference's unpack directory.
   */
  private static Path createRandomDirectory(String prefix) throws IOException {
    for (int i = 0; i < TEMP_TRIES; i++) {
      StringBuilder name = new StringBuilder(prefix);
      for (int c = 0; c < 8; c++) {
        name.append(TEMP_NAME_CHARS.charAt(RANDOM.nextInt(TEMP_NAME_CHARS.length())));
      }
      try {
        return Files.createDirectory(Path.of(name.toString()), PRIVATE);
      } catch (FileAlreadyExistsException e) {
        // Taken: another name.
      }
    }
    throw new IOException("no free name for a directory " + prefix + "XXXXXXXX");
  }

  /** The scratch directory autopkgtest expects: {@code /tmp/autopkgtest.XXXXXX}. */
  private static String newScratchPath() {
    StringBuilder name = new StringBuilder("/tmp/autopkgtest.");
    for (int i = 0; i < 6; i++) {
      name.append(SCRATCH_CHARS.charAt(RANDOM.nextInt(SCRATCH_CHARS.length())));
    }
    return name.toString();
  }

  /** The set-up script could not mount the overlay (its exit status 3 says so). */
  private static final class OverlayUnavailable extends UchrootException {
    OverlayUnavailable(String message) {
      super(message);
    }
  }

  /**
   * @param top the testbed's directory, which the job server removes at the end: it holds the
   *     rootfs (a tree unpacked from the tarball, or the overlay's directories and mount point)
   *     and, beside it, the host side of the scratch directory
   * @param root the directory jobs chroot into
   */
  private NamespaceSandbox startSandbox(
      SessionId session,
      SessionSpec spec,
      Path top,
      Path root,
      Optional<JobServerCommand.Overlay> overlay,
      String scratch) {
    Path jobSocket = NamespaceSandbox.newJobSocket(config.runtimeDir(), session);
    JobServerCommand command =
        new JobServerCommand(
            root,
            jobSocket,
            top,
            overlay,
            new JobServerCommand.Scratch(top.resolve("scratch"), scratch),
            spec.binds());
    List<String> argv = new ArrayList<>(mapping.sessionCommand(config.libexecDir()));
    argv.addAll(command.arguments());
    LOG.debug("sandbox: {}", argv);

    Process holder;
    try {
      holder = HelperProcess.start(HelperProcess.builder(config.libexecDir(), argv));
    } catch (IOException e) {
      NamespaceSandbox.removeSocket(jobSocket);
      throw new UchrootException(
          "cannot start the session's namespaces: " + UchrootException.reason(e), e);
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
      int status = HelperProcess.waitFor(holder);
      NamespaceSandbox.removeSocket(jobSocket);
      String reason = OneLineMessage.of(stderr.join());
      if (status == OVERLAY_FAILED && overlay.isPresent()) {
        throw new OverlayUnavailable(reason);
      }
      throw new UchrootException("cannot set up the session's namespaces: " + reason);
    }
    stderr.thenAccept(
        text -> {
          if (!text.isBlank()) {
            LOG.warn("session namespaces: {}", OneLineMessage.of(text));
          }
        });
    return new NamespaceSandbox(
        holder,
        ProcessHandle.of(childOf(childOf(holder.pid())))
            .orElseThrow(() -> new UchrootException("the session's init exited during set-up")),
        root,
        command.scratch().outside(),
        jobSocket,
        mapping.jobServerOpensHostFiles());
  }

  /**
   * The one child of a process: of the helper, the namespaces' holder ({@code unshare --fork}, or
   * root's job server outside them); of that, the job server, the session's init.
   */
  private static long childOf(long pid) {
    Path children = Path.of("/proc", Long.toString(pid), "task", Long.toString(pid), "children");
    try {
      String text = Files.readString(children).trim();
      if (!text.isEmpty()
          && Files.exists(Path.of("/proc", text.split(" ")[0]), LinkOption.NOFOLLOW_LINKS)) {
        return Long.parseLong(text.split(" ")[0]);
      }
    } catch (IOException | NumberFormatException e) {
      throw new UchrootException(
          "cannot find the session's init: " + UchrootException.reason(e), e);
    }
    throw new UchrootException("the session's init exited during set-up");
  }
}
