package org.uchroot.engine;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import org.uchroot.actors.Sandbox;
import org.uchroot.actors.SessionId;
import org.uchroot.actors.Testbed;

/**
 * The namespaces of one session, held by the engine's helper process (see {@link
 * IdMapping#sessionCommand}): below it, the session's job server ({@code uchroot-jobd}) is pid 1 of
 * the session's pid namespace, runs every command and listens on {@link #jobSocket()}. The job
 * server lives as long as the engine holds its stdin open: closing it, or the engine dying, ends
 * the session and the kernel kills everything left inside.
 */
final class NamespaceSandbox implements Sandbox {

  /** What the job server prints once it has removed the testbed. */
  private static final String REMOVED = "uchroot-testbed-removed";

  private final Process holder;

  /** The session's init, by handle: a kill checks its start time, so never hits a reused pid. */
  private final ProcessHandle init;

  private final Path root;
  private final Path hostScratch;
  private final Path jobSocket;
  private final boolean opensHostFiles;
  /*
   * Armed at every close: made here, so that its class is not made then, on the path the client
   * waits on.
   */
  private final Runnable stopper;

  /** Set once the job server has said it removed the testbed, and with it its socket. */
  private volatile boolean removed;

  private volatile boolean killed;

  /**
   * @param root the directory jobs chroot into: the rootfs, or the overlay's mount point (which
   *     only the session's mount namespace sees populated)
   * @param hostScratch where the host sees the testbed's scratch directory
   * @param jobSocket the job server's socket, in the user's private runtime directory
   * @param opensHostFiles whether the job server can open the engine's files for a command (see
   *     {@link IdMapping#jobServerOpensHostFiles})
   */
  NamespaceSandbox(
      Process holder,
      ProcessHandle init,
      Path root,
      Path hostScratch,
      Path jobSocket,
      boolean opensHostFiles) {
    this.holder = holder;
    this.init = init;
    this.root = root;
    this.hostScratch = hostScratch;
    this.jobSocket = jobSocket;
    this.opensHostFiles = opensHostFiles;
    this.stopper = this::stop;
  }

  /** The sandbox the engine made for a testbed: the actors pass it on without looking inside. */
  static NamespaceSandbox of(Testbed testbed) {
    return (NamespaceSandbox) testbed.sandbox();
  }

  Path root() {
    return root;
  }

  Path hostScratch() {
    return hostScratch;
  }

  boolean opensHostFiles() {
    return opensHostFiles;
  }

  /** Where the session's job server listens; one connection per command. */
  Path jobSocket() {
    return jobSocket;
  }

  /**
   * Asks the job server to end, removing the testbed's directory on its way out from inside the
   * session, where every file of it is the engine user's to delete. Then call {@link #awaitRemoval}
   * and {@link #awaitEnd}.
   */
  void end() {
    try (OutputStream keepAlive = holder.getOutputStream()) {
      // 'r' asks for the removal; the end of file that follows ends the job server.
      keepAlive.write('r');
    } catch (IOException e) {
      // Already closed: the holder is going or gone.
    }
  }

  /**
   * Blocks until the job server says it removed the testbed, or until it is gone without saying so:
   * it then left the testbed, or part of it, for the {@link SafeRemover}, as it does when the
   * {@link #stopper} ends it (a tree too large to go within the wait).
   *
   * @return whether the testbed was removed
   */
  boolean awaitRemoval() {
    // The job server's stdout is ours to read again after its ready line, and nothing else of
    // the session writes to it.
    InputStream out = holder.getInputStream();
    StringBuilder line = new StringBuilder();
    try {
      for (int c; (c = out.read()) >= 0 && c != '\n'; ) {
        line.append((char) c);
      }
    } catch (IOException e) {
      return false;
    }
    removed = REMOVED.contentEquals(line);
    return removed;
  }

  /**
   * Blocks until the namespaces are gone: the job server ends at the end of file {@link #end} sent,
   * and {@link TestbedTeardown} arms the {@link #stopper} against one that does not.
   */
  void awaitEnd() {
    try {
      holder.waitFor();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return;
    }
    // A job server that said so removed its socket itself; the path may be its successor's by
    // now, after a revert.
    if (!removed) {
      removeSocket(jobSocket);
    }
  }

  /**
   * What stops the namespaces unless they are gone, made as the sandbox starts: its first run kills
   * the job server, a later one the helper too, whose end closes the pipe a removal's report is
   * awaited on even when the job server cannot die (a process of the session stuck in the kernel).
   */
  Runnable stopper() {
    return stopper;
  }

  private synchronized void stop() {
    if (!holder.isAlive()) {
      return;
    }
    if (!killed) {
      killed = true;
      init.destroyForcibly();
    } else {
      holder.destroyForcibly();
    }
  }

  /**
   * Where a session's job server is to listen: a socket directly in the user's private runtime
   * directory. A socket left by an earlier job server of the session, killed before it could remove
   * it, is removed.
   */
  static Path newJobSocket(Path runtimeDir, SessionId session) {
    try {
      SessionRegistry.requirePrivateRuntimeDir(runtimeDir);
    } catch (IOException e) {
      throw new UchrootException(
          "cannot use the runtime directory " + runtimeDir + ": " + UchrootException.reason(e), e);
    }
    Path socket = SessionRegistry.socketOf(runtimeDir, session, "jobd");
    removeSocket(socket);
    return socket;
  }

  /**
   * The job server removes its socket as it exits, unless it was killed with the session. The
   * runtime directory stays: other sessions of the user may be making their sockets there.
   */
  static void removeSocket(Path socket) {
    // java.io.File says false where nio would throw: on this path, nothing is usually left.
    if (!socket.toFile().delete() && Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
      try {
        Files.deleteIfExists(socket);
      } catch (IOException e) {
        throw new UchrootException(
            "cannot remove " + socket + ": " + UchrootException.reason(e), e);
      }
    }
  }

  boolean isAlive() {
    return holder.isAlive();
  }
}
