package org.uchroot.engine;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.uchroot.actors.BindMount;

/**
 * The options of a session's job server (uchroot-jobd's first form, whose C source documents them):
 * what the testbed is made of, one field each, rendered into the command line in one place. The
 * command that runs it in the session's namespaces comes before, from the id mapping.
 *
 * @param root the directory jobs chroot into
 * @param socket where the job server listens for commands
 * @param testbed the testbed's directory, removed at the end: it holds the rootfs and the host side
 *     of the scratch directory
 * @param overlay the overlay mounted on {@code root}, if the rootfs is one
 * @param scratch the scratch directory: its host side, and where the testbed sees it
 * @param binds the host directories bound into the testbed
 */
record JobServerCommand(
    Path root,
    Path socket,
    Path testbed,
    Optional<Overlay> overlay,
    Scratch scratch,
    List<BindMount> binds) {

  /** An overlay of a read-only base ({@code lower}) under a testbed's own {@code upper}. */
  record Overlay(Path lower, Path upper, Path work, String options) {}

  /** The host directory {@code outside}, seen at {@code inside} in the testbed. */
  record Scratch(Path outside, String inside) {}

  JobServerCommand {
    binds = List.copyOf(binds);
  }

  /** The options, in the order the job server documents them. */
  List<String> arguments() {
    List<String> argv = new ArrayList<>();
    argv.addAll(
        List.of(
            "--root",
            root.toString(),
            "--socket",
            socket.toString(),
            "--testbed",
            testbed.toString()));
    overlay.ifPresent(
        o ->
            argv.addAll(
                List.of(
                    "--overlay",
                    o.lower().toString(),
                    o.upper().toString(),
                    o.work().toString(),
                    o.options())));
    argv.addAll(List.of("--scratch", scratch.outside().toString(), scratch.inside()));
    for (BindMount bind : binds) {
      argv.addAll(List.of("--bind", bind.outside().toAbsolutePath().toString(), bind.inside()));
    }
    return argv;
  }
}
