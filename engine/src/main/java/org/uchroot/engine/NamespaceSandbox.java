package org.uchroot.engine;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.uchroot.actors.Sandbox;
import org.uchroot.actors.SessionId;

/**
 * The namespaces of one session, held by an {@code unshare} process whose child, the session's
 * job server ({@code uchroot-jobd}), is pid 1 of the session's pid namespace, runs every command
 * and listens on {@link #jobSocket()}.
 * The job server lives as long as the engine holds its stdin open: closing it, or the engine
 * dying, ends the session and the kernel kills everything left inside.
 */
final class NamespaceSandbox implements Sandbox {

  private final Process holder;
  private final long initPid;
  private final Path root;
  private final Path hostScratch;
  private final Path jobSocket;

  /**
   * @param root the directory jobs chroot into: the rootfs, or the overlay's mount point (which
   *     only the session's mount namespace sees populated)
   * @param hostScratch where the host sees the testbed's scratch directory
   * @param jobSocket the job server's socket, in the user's private runtime directory
   */
  NamespaceSandbox(Process holder, long initPid, Path root, Path hostScratch, Path jobSocket) {
    this.holder = holder;
    this.initPid = initPid;
    this.root = root;
    this.hostScratch = hostScratch;
    this.jobSocket = jobSocket;
  }

  Path root() {
    return root;
  }

  Path hostScratch() {
    return hostScratch;
  }

  /** Where the session's job server listens; one connection per command. */
  Path jobSocket() {
    return jobSocket;
  }

  /**
   * Ends the namespaces and waits until they are gone. Blocks. On its way out, the job server
   * removes the testbed's directory from inside the session, where every file of it is the engine
   * user's to delete; whatever it could not remove, it leaves for the {@link SafeRemover}, and so
   * does a removal cut short by the kill below (a tree too large to go within the wait).
   */
  void end() {
    try (OutputStream keepAlive = holder.getOutputStream()) {
      // 'r' asks for the removal; the end of file that follows ends the job server.
      keepAlive.write('r');
    } catch (IOException e) {
      // Already closed: the holder is going or gone.
    }
    if (!waitFor(10)) {
      Host.kill(initPid, 9);
      if (!waitFor(10)) {
        holder.destroyForcibly();
        waitFor(10);
      }
    }
    removeSocket(jobSocket);
  }

  /**
   * Where a session's job server is to listen: a socket directly in the user's private runtime
   * directory. A socket left by an earlier job server of the session, killed before it could
   * remove it, is removed.
   */
  static Path newJobSocket(Path runtimeDir, SessionId session) {
    try {
      SessionRegistry.requirePrivateRuntimeDir(runtimeDir);
    } catch (IOException e) {
      throw new UchrootException("cannot use the runtime directory " + runtimeDir + ": "
          + e.getMessage(), e);
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
        Files.delete(socket);
      } catch (IOException e) {
        throw new UchrootException("cannot remove " + socket + ": " + e.getMessage(), e);
      }
    }
  }

  private boolean waitFor(int seconds) {
    try {
      return holder.waitFor(seconds, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  boolean isAlive() {
    return holder.isAlive();
  }
}
