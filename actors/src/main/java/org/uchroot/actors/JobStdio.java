package org.uchroot.actors;

import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Path;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Where a command's standard streams come from and go to. The launcher pumps them on its own
 * threads; the actors only carry this object from the requester to the launcher.
 */
public interface JobStdio {
  InputStream stdin();

  OutputStream stdout();

  OutputStream stderr();

  /**
   * A host file that the command reads as its stdin itself, with nothing relayed: a copy into the
   * testbed then runs at the command's own speed. When present, {@link #stdin()} is not read.
   */
  default Optional<Path> stdinFile() {
    return Optional.empty();
  }

  /**
   * A host file that the command writes its stdout to itself (created or truncated). When present,
   * {@link #stdout()} receives nothing.
   */
  default Optional<Path> stdoutFile() {
    return Optional.empty();
  }

  /**
   * A pseudo-terminal for the command, as a terminal's user expects: its stdin, stdout and stderr
   * are the terminal, which {@link #stdin()} feeds and {@link #stdout()} shows (stderr is part of
   * it); Ctrl+C, Ctrl+Z and job control work inside the testbed.
   */
  default Optional<Terminal> terminal() {
    return Optional.empty();
  }

  /** The caller's terminal, whose size the command's pseudo-terminal follows. */
  interface Terminal {
    /** The size now. */
    TerminalSize size();

    /** Calls {@code resized} with each new size, for as long as the terminal is used. */
    void onResize(Consumer<TerminalSize> resized);
  }

  /** A terminal's size in characters. */
  record TerminalSize(int rows, int columns) {
    public TerminalSize {
      if (rows < 0 || rows > 0xffff || columns < 0 || columns > 0xffff) {
        throw new IllegalArgumentException("a terminal of " + rows + "x" + columns);
      }
    }
  }

  /** Streams that are what they are for the whole of the command. */
  static JobStdio of(InputStream stdin, OutputStream stdout, OutputStream stderr) {
    return new Streams(stdin, stdout, stderr, Optional.empty(), Optional.empty());
  }

  /** Fixed streams and host files, as the methods of {@link JobStdio} describe them. */
  record Streams(
      InputStream stdin,
      OutputStream stdout,
      OutputStream stderr,
      Optional<Path> stdinFile,
      Optional<Path> stdoutFile)
      implements JobStdio {}
}
