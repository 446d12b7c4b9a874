package org.uchroot.adapter.virt;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobStdio;
import org.uchroot.engine.Engine;
import org.uchroot.engine.HostProcess;
import org.uchroot.engine.Job;
import org.uchroot.engine.Session;
import org.uchroot.engine.UchrootException;

/**
 * {@code copydown} and {@code copyup} with the results of the reference's copies through its shared
 * directory ({@code downtmp-host}): a host path inside the scratch directory's host side names the
 * testbed file it is, so a copy from it to that same file copies nothing (autopkgtest writes its
 * packages there and then asks for them at the same place), and a copydown replaces its
 * destination. The testbed end is always a command run inside the testbed ({@code cp}, {@code cat},
 * or {@code tar} in the directory), so a symlink planted in the testbed resolves inside the testbed
 * and never reaches a host file. The host end is the caller's own path, read or written by this
 * process or by the host's GNU tar.
 *
 * <p>Blocking: each method returns when the copy has ended; call from one thread at a time.
 */
final class TestbedCopies {

  private static final Logger LOG = LoggerFactory.getLogger(TestbedCopies.class);
  private static final int STDERR_KEPT = 4096;

  /**
   * The testbed's tar may be busybox's, which knows neither {@code --warning} nor long options: GNU
   * tar gets the reference's options, any other the short ones meaning the same.
   */
  private static final String GNU_TAR = "tar --warning=none --version >/dev/null 2>&1";

  private static final String TESTBED_CREATE =
      "cd \"$1\"; if "
          + GNU_TAR
          + "; then exec tar --warning=none -c . -f -;"
          + " else exec tar -c -f - .; fi";

  /** A copydown replaces what was at its destination, as the reference's {@code rm -rf} does. */
  private static final String TESTBED_EXTRACT =
      "rm -rf -- \"$1\"; mkdir -- \"$1\"; cd \"$1\"; if "
          + GNU_TAR
          + "; then"
          + " exec tar --warning=none --preserve-permissions --extract --no-same-owner -f -;"
          + " else exec tar -x -p -o -f -; fi";

  /** A copy within the testbed, from the scratch directory, as the reference's {@code cp}. */
  private static final String TESTBED_COPY =
      "rm -rf -- \"$2\"; if cp --version >/dev/null 2>&1; then"
          + " exec cp -r --preserve=timestamps,links -- \"$1\" \"$2\";"
          + " else exec cp -r -p -- \"$1\" \"$2\"; fi";

  /** The status of a file copyup whose testbed file is executable: neither cat nor sh use it. */
  private static final int COPIED_EXECUTABLE = 99;

  private final Duration timeout;
  private final Path workingDirectory;
  private final CompletableFuture<Engine> engine;

  /**
   * @param timeout how long one copy may take, as {@code AUTOPKGTEST_VIRT_COPY_TIMEOUT}
   * @param workingDirectory the caller's, where relative host paths start (autopkgtest gives the
   *     .dsc as the user named it)
   * @param engine starts the host's tar, as it starts its own helpers
   */
  TestbedCopies(Duration timeout, Path workingDirectory, CompletableFuture<Engine> engine) {
    this.timeout = timeout;
    this.workingDirectory = workingDirectory;
    this.engine = engine;
  }

  /**
   * The host path of a copy: normalised as the reference does ("a/../b" is b, whether or not a
   * exists), from the caller's working directory.
   */
  private Path hostPath(String host) {
    return workingDirectory.resolve(host).normalize();
  }

  /** Copies a host file or, for paths ending in {@code /}, a host directory into the testbed. */
  void copyDown(Session session, String host, String testbed, boolean directory)
      throws CopyFailure {
    String what = "copydown " + host + " " + testbed;
    Path source = hostPath(host);
    if (directory ? !Files.isDirectory(source) : Files.isDirectory(source)) {
      throw new CopyFailure.OnHost(
          what + ": " + host + (directory ? ": No such directory" : ": Is a directory"));
    }
    if (!directory) {
      // Opened here first, so that a host file we cannot read fails as the reference's does.
      try (InputStream readable = Files.newInputStream(source)) {
        // The testbed reads the file itself.
      } catch (IOException e) {
        throw onHost(what, host, e);
      }
    }
    SharedPaths shared = SharedPaths.of(session, source, testbed);
    if (shared.sameFile()) {
      LOG.debug("{}: already there", what);
      return;
    }
    if (shared.hostInTestbed().isPresent()) {
      // Already in the testbed, seen through the scratch directory: copied there.
      new TestbedCommand(
              what, List.of("sh", "-ec", TESTBED_COPY, "sh", shared.hostInTestbed().get(), testbed))
          .checkRun(session);
      return;
    }
    if (directory) {
      HostProcess tar =
          startHostTar(
              what,
              List.of(
                  "tar", "--directory", source.toString(), "--warning=none", "-c", ".", "-f", "-"));
      TestbedCommand command =
          new TestbedCommand(what, List.of("sh", "-ec", TESTBED_EXTRACT, "sh", testbed));
      command.stdin = tar.process().getInputStream();
      finishWithHostTar(session, command, tar);
      return;
    }
    // The mode cp gives a new file: the source's, less a umask of 022.
    String rune = "rm -rf -- \"$1\"; cat >\"$1\"; chmod " + createdMode(source) + " -- \"$1\"";
    TestbedCommand command = new TestbedCommand(what, List.of("sh", "-ec", rune, "sh", testbed));
    command.stdinFile = Optional.of(source);
    command.checkRun(session);
  }

  /** Copies a testbed file or, for paths ending in {@code /}, a testbed directory to the host. */
  void copyUp(Session session, String testbed, String host, boolean directory) throws CopyFailure {
    String what = "copyup " + testbed + " " + host;
    Path target = hostPath(host);
    if (SharedPaths.of(session, target, testbed).sameFile()) {
      LOG.debug("{}: already there", what);
      return;
    }
    if (directory) {
      try {
        Files.createDirectory(target);
      } catch (FileAlreadyExistsException e) {
        // Copied into, as the reference does.
      } catch (IOException e) {
        throw onHost(what, host, e);
      }
      HostProcess tar =
          startHostTar(
              what,
              List.of(
                  "tar",
                  "--directory",
                  target.toString(),
                  "--warning=none",
                  "--preserve-permissions",
                  "--extract",
                  "--no-same-owner",
                  "-f",
                  "-"));
      TestbedCommand command =
          new TestbedCommand(what, List.of("sh", "-ec", TESTBED_CREATE, "sh", testbed));
      command.stdout = tar.process().getOutputStream();
      finishWithHostTar(session, command, tar);
      return;
    }
    // One command both copies and says whether the file is executable in the testbed. A FIFO or a
    // device would never end, or not before the disk is full: only regular files go up.
    String rune =
        "if test -e \"$1\" && ! test -f \"$1\"; then echo \"$1: not a regular file\" >&2; exit 1; fi;"
            + " cat <\"$1\"; if test -x \"$1\"; then exit "
            + COPIED_EXECUTABLE
            + "; fi";
    TestbedCommand command = new TestbedCommand(what, List.of("sh", "-ec", rune, "sh", testbed));
    // Created here first, so that a host path we cannot write fails as the reference's does.
    try (OutputStream writable = Files.newOutputStream(target)) {
      // The command in the testbed writes the file itself.
    } catch (IOException e) {
      throw onHost(what, host, e);
    }
    command.stdoutFile = Optional.of(target);
    ExitStatus status = command.run(session);
    if (status.shellStatus() == COPIED_EXECUTABLE) {
      makeExecutable(what, target);
      return;
    }
    command.check(status);
  }

  /** Runs {@code command} with the host tar at its other end; both must succeed. */
  private void finishWithHostTar(Session session, TestbedCommand command, HostProcess tar)
      throws CopyFailure {
    ExitStatus status;
    try {
      status = command.run(session);
    } catch (CopyFailure e) {
      // Its helper ends it, and whatever it started, on SIGTERM.
      tar.process().destroy();
      throw e;
    } finally {
      // The host tar reading the testbed's archive needs its end of file.
      closeQuietly(tar.process().getOutputStream());
    }
    int tarStatus = tar.process().onExit().join().exitValue();
    command.check(status);
    if (tarStatus != 0) {
      throw new CopyFailure.OnHost(
          command.what
              + ": host tar failed (exit status "
              + tarStatus
              + ", stderr "
              + quoted(tar.stderr().join())
              + ")");
    }
  }

  /** Starts the host's tar; it reads stdin only when extracting. */
  private HostProcess startHostTar(String what, List<String> argv) throws CopyFailure {
    LOG.debug("{}: host {}", what, argv);
    try {
      return engine
          .join()
          .startOnHost(
              argv,
              argv.contains("--extract")
                  ? ProcessBuilder.Redirect.PIPE
                  : ProcessBuilder.Redirect.from(new File("/dev/null")));
    } catch (IOException e) {
      throw new CopyFailure.OnHost(what + ": cannot run tar: " + UchrootException.reason(e));
    }
  }

  /** The octal mode {@code cp} gives a copy of {@code file}: its own, less a umask of 022. */
  private static String createdMode(Path file) {
    int mode = 0644;
    try {
      mode = 0;
      for (PosixFilePermission permission : Files.getPosixFilePermissions(file)) {
        mode |= 0400 >> permission.ordinal();
      }
    } catch (IOException e) {
      // Read a moment ago; a file that changed since gets the default.
    }
    return Integer.toOctalString(mode & ~022);
  }

  /**
   * Where the two ends of a copy meet the scratch directory, which the host sees at {@code
   * downtmp-host}: paths compared as the reference compares them, after normalising.
   *
   * @param hostInTestbed the host path as the testbed sees it, if it is in the scratch directory
   * @param sameFile both ends name one file
   */
  private record SharedPaths(Optional<String> hostInTestbed, boolean sameFile) {

    /**
     * @param hostPath the host end, normalised
     */
    static SharedPaths of(Session session, Path hostPath, String testbed) {
      Path scratchOnHost = session.scratchOnHost().normalize();
      Path scratch = Path.of(session.scratch()).normalize();
      Path testbedPath = Path.of(testbed).normalize();
      Optional<String> hostInTestbed = Optional.empty();
      if (hostPath.startsWith(scratchOnHost)) {
        hostInTestbed =
            Optional.of(scratch.resolve(scratchOnHost.relativize(hostPath)).normalize().toString());
      }
      if (hostInTestbed.isPresent() && hostInTestbed.get().equals(testbedPath.toString())) {
        return new SharedPaths(hostInTestbed, true);
      }
      // The same file by another name on the host, such as a symlink to the scratch directory.
      boolean aliased = false;
      if (testbedPath.startsWith(scratch)) {
        Path testbedOnHost = scratchOnHost.resolve(scratch.relativize(testbedPath));
        try {
          aliased = Files.exists(hostPath) && Files.isSameFile(hostPath, testbedOnHost);
        } catch (IOException e) {
          aliased = false;
        }
      }
      return new SharedPaths(hostInTestbed, aliased);
    }
  }

  /** Execute permission for whoever may read the file, as {@code chmod +x} gives with umask 022. */
  private static void makeExecutable(String what, Path file) throws CopyFailure {
    try {
      Set<PosixFilePermission> permissions = EnumSet.copyOf(Files.getPosixFilePermissions(file));
      permissions.add(PosixFilePermission.OWNER_EXECUTE);
      if (permissions.contains(PosixFilePermission.GROUP_READ)) {
        permissions.add(PosixFilePermission.GROUP_EXECUTE);
      }
      if (permissions.contains(PosixFilePermission.OTHERS_READ)) {
        permissions.add(PosixFilePermission.OTHERS_EXECUTE);
      }
      Files.setPosixFilePermissions(file, permissions);
    } catch (IOException | IllegalArgumentException e) {
      throw onHost(what, file.toString(), e);
    }
  }

  private static CopyFailure onHost(String what, String path, Exception e) {
    return new CopyFailure.OnHost(what + ": " + path + ": " + UchrootException.reason(e));
  }

  private static String quoted(String stderr) {
    String text = stderr.strip();
    return "'" + text.replace("\\", "\\\\").replace("\n", "\\n").replace("'", "\\'") + "'";
  }

  private static void closeQuietly(OutputStream out) {
    try {
      out.close();
    } catch (IOException e) {
      // The host tar has gone; its status tells why.
    }
  }

  /** One command in the testbed, with the streams of one copy and its stderr kept for messages. */
  private final class TestbedCommand {
    final String what;
    final List<String> argv;
    InputStream stdin = InputStream.nullInputStream();
    OutputStream stdout = OutputStream.nullOutputStream();
    Optional<Path> stdinFile = Optional.empty();
    Optional<Path> stdoutFile = Optional.empty();
    final ByteArrayOutputStream stderr = new ByteArrayOutputStream();

    TestbedCommand(String what, List<String> argv) {
      this.what = what;
      this.argv = new ArrayList<>(argv);
    }

    /** Runs to the end, or interrupts the command once the copy timeout has passed. */
    ExitStatus run(Session session) throws CopyFailure {
      Job job =
          session.start(
              argv,
              new JobStdio.Streams(stdin, stdout, new Bounded(stderr), stdinFile, stdoutFile));
      CompletableFuture<ExitStatus> result = job.result().toCompletableFuture();
      try {
        return result.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (TimeoutException e) {
        job.interrupt();
        result.handle((status, error) -> null).join();
        throw new CopyFailure.TimedOut(what + ": timed out after " + timeout.toSeconds() + "s");
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        throw new CopyFailure.InTestbed(what + ": " + cause.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        job.interrupt();
        throw new CopyFailure.InTestbed(what + ": interrupted");
      }
    }

    void checkRun(Session session) throws CopyFailure {
      check(run(session));
    }

    void check(ExitStatus status) throws CopyFailure {
      if (status.shellStatus() != 0) {
        throw new CopyFailure.InTestbed(
            what
                + ": failed in the testbed (exit status "
                + status.shellStatus()
                + ", stderr "
                + quoted(stderr.toString(StandardCharsets.UTF_8))
                + ")");
      }
    }
  }

  /** Keeps the first {@value #STDERR_KEPT} bytes and drops the rest. */
  private static final class Bounded extends OutputStream {
    private final ByteArrayOutputStream into;

    Bounded(ByteArrayOutputStream into) {
      this.into = into;
    }

    @Override
    public void write(int b) {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] data, int offset, int length) {
      synchronized (into) {
        into.write(data, offset, Math.max(0, Math.min(length, STDERR_KEPT - into.size())));
      }
    }
  }
}
