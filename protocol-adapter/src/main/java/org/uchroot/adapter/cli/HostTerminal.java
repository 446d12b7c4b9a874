package org.uchroot.adapter.cli;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.JobStdio;

/**
 * The terminal {@code uchroot run} was started on, lent to the command as {@code ssh} or {@code
 * podman run -it} lend theirs: in raw mode, so that every key (Ctrl+C, Ctrl+Z, arrows) reaches the
 * command's pseudo-terminal, and followed in its size. {@code stty} does the terminal's settings,
 * as the well-kept owner of that format. {@link #restore()} gives the terminal back as it was.
 */
final class HostTerminal implements JobStdio, JobStdio.Terminal {

  private static final Logger LOG = LoggerFactory.getLogger(HostTerminal.class);

  private final String savedSettings;
  private final List<Consumer<TerminalSize>> watchers = new CopyOnWriteArrayList<>();
  private volatile boolean restored;

  private HostTerminal(String savedSettings) {
    this.savedSettings = savedSettings;
  }

  /**
   * The terminal, in raw mode from now on, if stdin and stdout both are one; otherwise empty, and
   * the command gets the streams as they are.
   */
  static Optional<HostTerminal> ifInteractive() {
    if (System.console() == null) {
      return Optional.empty();
    }
    String saved;
    try {
      saved = stty("-g").trim();
      stty("raw", "-echo");
    } catch (IOException e) {
      LOG.warn("the command gets no terminal: {}", e.getMessage());
      return Optional.empty();
    }
    HostTerminal terminal = new HostTerminal(saved);
    Signals.on("WINCH", terminal::resized);
    return Optional.of(terminal);
  }

  /** The terminal's settings as they were before; safe to call more than once. */
  synchronized void restore() {
    if (restored) {
      return;
    }
    restored = true;
    try {
      stty(savedSettings);
    } catch (IOException e) {
      LOG.warn("cannot restore the terminal's settings ({}); `stty sane` does", e.getMessage());
    }
  }

  @Override
  public TerminalSize size() {
    try {
      String[] rowsColumns = stty("size").trim().split(" ");
      return new TerminalSize(Integer.parseInt(rowsColumns[0]), Integer.parseInt(rowsColumns[1]));
    } catch (IOException | RuntimeException e) {
      // A terminal that does not know its size: the kernel's default for a new one.
      return new TerminalSize(0, 0);
    }
  }

  @Override
  public void onResize(Consumer<TerminalSize> resized) {
    watchers.add(resized);
  }

  private void resized() {
    TerminalSize size = size();
    watchers.forEach(watcher -> watcher.accept(size));
  }

  @Override
  public Optional<Terminal> terminal() {
    return Optional.of(this);
  }

  @Override
  public InputStream stdin() {
    return new FileInputStream(FileDescriptor.in);
  }

  @Override
  public OutputStream stdout() {
    return new FileOutputStream(FileDescriptor.out);
  }

  /** Unused: the command's stderr is its terminal. */
  @Override
  public OutputStream stderr() {
    return new FileOutputStream(FileDescriptor.err);
  }

  /** Runs stty on this process's terminal; returns what it printed. */
  private static String stty(String... arguments) throws IOException {
    ProcessBuilder builder = new ProcessBuilder("stty");
    builder.command().addAll(List.of(arguments));
    builder.redirectInput(ProcessBuilder.Redirect.INHERIT);
    builder.redirectError(ProcessBuilder.Redirect.PIPE);
    Process stty = builder.start();
    String output = new String(stty.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    String errors = new String(stty.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (stty.waitFor() != 0) {
        throw new IOException("stty " + String.join(" ", arguments) + ": " + errors.strip());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("stty was interrupted", e);
    }
    return output;
  }
}
