package org.uchroot.engine;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.uchroot.actors.Sandbox;

/**
 * The namespaces of one session, held by an {@code unshare} process whose child, the session's
 * init ({@code tini}), is pid 1 of the session's pid namespace. The init lives as long as the
 * engine holds its stdin open: closing it, or the engine dying, ends the session and the kernel
 * kills everything left inside.
 */
final class NamespaceSandbox implements Sandbox {

  private final Process holder;
  private final long initPid;
  private final Path root;
  private final Path hostScratch;

  /**
   * @param root the directory jobs chroot into: the rootfs, or the overlay's mount point (which
   *     only the session's mount namespace sees populated)
   * @param hostScratch where the host sees the testbed's scratch directory
   */
  NamespaceSandbox(Process holder, long initPid, Path root, Path hostScratch) {
    this.holder = holder;
    this.initPid = initPid;
    this.root = root;
    this.hostScratch = hostScratch;
  }

  /** Host pid of the session's init; jobs join the namespaces of this process. */
  long initPid() {
    return initPid;
  }

  Path root() {
    return root;
  }

  Path hostScratch() {
    return hostScratch;
  }

  /** Ends the namespaces and waits until they are gone. Blocks. */
  void end() {
    try (OutputStream keepAlive = holder.getOutputStream()) {
      // Closing is the whole message: the init's child sees end of file and exits.
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
