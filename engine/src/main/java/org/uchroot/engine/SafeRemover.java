package org.uchroot.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import org.uchroot.actors.RootfsRemover;
import org.uchroot.actors.Testbed;

/**
 * Deletes a rootfs with GNU {@code rm -rf --one-file-system}, which never follows symlinks and
 * skips (and reports) directories on another filesystem; unprivileged, inside a user namespace with
 * the session's id mapping, so that files owned by subordinate ids can go too. Refuses to start
 * while anything is mounted at or below the rootfs.
 */
final class SafeRemover implements RootfsRemover {

  private final IdMapping mapping;
  private final SessionRegistry registry;
  private final Executor blocking;

  /** @param registry forgets each removed testbed; null for trees that are not testbeds */
  SafeRemover(IdMapping mapping, SessionRegistry registry, Executor blocking) {
    this.mapping = mapping;
    this.registry = registry;
    this.blocking = blocking;
  }

  @Override
  public CompletionStage<Void> remove(Testbed testbed) {
    return CompletableFuture.runAsync(() -> removeNow(testbed.rootfs()), blocking);
  }

  /** Blocks: call only from the blocking executor. */
  void removeNow(Path rootfs) {
    Path dir = rootfs.toAbsolutePath().normalize();
    if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      forget(dir);
      return;
    }
    checkRemovable(dir);
    List<Path> mounts = MountTable.mountsAtOrBelow(dir);
    if (!mounts.isEmpty()) {
      throw new UchrootException(
          "refusing to remove " + dir + ": still mounted there: " + mounts);
    }
    List<String> argv = new ArrayList<>();
    if (!mapping.unshareOptions().isEmpty()) {
      argv.add("unshare");
      argv.addAll(mapping.unshareOptions());
      argv.add("--");
    }
    argv.addAll(List.of("rm", "-rf", "--one-file-system", "--", dir.toString()));
    HelperProcess.run("removing " + dir, argv);
    if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      throw new UchrootException("could not remove all of " + dir);
    }
    forget(dir);
  }

  private void forget(Path dir) {
    if (registry != null) {
      registry.forget(dir);
    }
  }

  /** The path itself must be a real directory reached without symlinks, and never /. */
  private static void checkRemovable(Path dir) {
    if (dir.getNameCount() < 1) {
      throw new UchrootException("refusing to remove " + dir);
    }
    try {
      if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS) || !dir.toRealPath().equals(dir)) {
        throw new UchrootException("refusing to remove " + dir + ": not a plain directory");
      }
    } catch (IOException e) {
      throw new UchrootException("cannot inspect " + dir + ": " + e.getMessage(), e);
    }
  }
}
