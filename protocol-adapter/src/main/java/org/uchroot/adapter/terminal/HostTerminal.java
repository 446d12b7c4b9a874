package org.uchroot.adapter.terminal;

import java.io.Closeable;
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.FilterInputStream;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.JobStdio;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * A terminal of the host lent to a command, as {@code ssh} or {@code podman run -it} lend theirs:
 * in raw mode, so that every key (Ctrl+C, Ctrl+Z, arrows) reaches the command's pseudo-terminal,
 * and followed in its size. {@code stty} does the terminal's settings, as the well-kept owner of
 * that format. {@link #close()} gives the terminal back as it was; {@link #restoreAll()} does so
 * for every terminal lent, for a process about to die of a signal.
 */
public final class HostTerminal implements JobStdio, JobStdio.Terminal, AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(HostTerminal.class);
  private static final Set<HostTerminal> LENT = ConcurrentHashMap.newKeySet();

  /** What stty reads the terminal from: this process's stdin, or the device. */
  private final ProcessBuilder.Redirect sttyInput;

  private final InputStream keys;
  private final OutputStream screen;

  /** Closes the streams where they are this terminal's own, not the process's. */
  private final Closeable opened;

  private final String savedSettings;
  private final List<Consumer<TerminalSize>> watchers = new CopyOnWriteArrayList<>();
  private boolean restored;

  private HostTerminal(
      ProcessBuilder.Redirect sttyInput,
      InputStream keys,
      OutputStream screen,
      Closeable opened,
      String saved) {
    this.sttyInput = sttyInput;
    this.keys = keys;
    this.screen = screen;
    this.opened = opened;
    this.savedSettings = saved;
  }

  /**
   * The terminal that stdin and stdout both are, in raw mode from now on; empty where they are not
   * one, and the command gets the streams as they are.
   */
  public static Optional<HostTerminal> ofStandardStreams() {
    if (System.console() == null) {
      return Optional.empty();
    }
    // Kept open when the command's relay closes them: stty reads the terminal from stdin, and
    // the process goes on writing to stdout.
    return lend(
        ProcessBuilder.Redirect.INHERIT,
        new FilterInputStream(new FileInputStream(FileDescriptor.in)) {
          @Override
          public void close() {}
        },
        new FilterOutputStream(new FileOutputStream(FileDescriptor.out)) {
          @Override
          public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
          }

          @Override
          public void close() {}
        },
        () -> {});
  }

  /**
   * This process's controlling terminal, {@code /dev/tty}, in raw mode from now on.
   *
   * @throws IOException where there is none, with the reason
   */
  public static HostTerminal ofControllingTerminal() throws IOException {
    return ofDevice(Path.of("/dev/tty"));
  }

  /**
   * The terminal device {@code tty}, in raw mode from now on: a frontend's controlling terminal,
   * lent to the engine serving it. Its resizes come from that frontend ({@link #resized()}).
   *
   * @throws IOException where it cannot be opened or is no terminal, with the reason
   */
  public static HostTerminal ofDevice(Path tty) throws IOException {
    // Channels, because closing them releases a thread still waiting for keystrokes.
    FileChannel in = FileChannel.open(tty, StandardOpenOption.READ);
    FileChannel out = FileChannel.open(tty, StandardOpenOption.WRITE);
    Closeable opened =
        () -> {
          in.close();
          out.close();
        };
    Optional<HostTerminal> terminal =
        lend(
            ProcessBuilder.Redirect.from(new File(tty.toString())),
            Channels.newInputStream(in),
            Channels.newOutputStream(out),
            opened);
    if (terminal.isEmpty()) {
      opened.close();
      throw new IOException(tty + ": its settings cannot be read (see the warning above)");
    }
    return terminal.get();
  }

  private static Optional<HostTerminal> lend(
      ProcessBuilder.Redirect sttyInput, InputStream keys, OutputStream screen, Closeable opened) {
    String saved;
    try {
      saved = stty(sttyInput, "-g").trim();
      stty(sttyInput, "raw", "-echo");
    } catch (IOException e) {
      LOG.warn("the command gets no terminal: {}", e.getMessage());
      return Optional.empty();
    }
    HostTerminal terminal = new HostTerminal(sttyInput, keys, screen, opened, saved);
    LENT.add(terminal);
    Signal.handle(new Signal("WINCH"), signal -> LENT.forEach(HostTerminal::resized));
    return Optional.of(terminal);
  }

  /** Gives every lent terminal back as it was: for a process about to end on a signal. */
  public static void restoreAll() {
    LENT.forEach(HostTerminal::restore);
  }

  /** The terminal's settings as they were before, and its streams closed; idempotent. */
  @Override
  public void close() {
    restore();
    try {
      opened.close();
    } catch (IOException e) {
      // Closed: what matters, the settings, is restored.
    }
  }

  private synchronized void restore() {
    if (restored) {
      return;
    }
    restored = true;
    LENT.remove(this);
    if (LENT.isEmpty()) {
      Signal.handle(new Signal("WINCH"), SignalHandler.SIG_DFL);
    }
    try {
      stty(sttyInput, savedSettings);
    } catch (IOException e) {
      LOG.warn("cannot restore the terminal's settings ({}); `stty sane` does", e.getMessage());
    }
  }

  @Override
  public TerminalSize size() {
    try {
      String[] rowsColumns = stty(sttyInput, "size").trim().split(" ");
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

  /** Passes the terminal's new size on to the commands it is lent to. */
  public void resized() {
    TerminalSize size = size();
    for (Consumer<TerminalSize> watcher : watchers) {
      try {
        watcher.accept(size);
      } catch (RuntimeException e) {
        // A command that ended meanwhile: its terminal is gone with it.
        LOG.debug("resize not passed on: {}", e.toString());
      }
    }
  }

  @Override
  public Optional<Terminal> terminal() {
    return Optional.of(this);
  }

  @Override
  public InputStream stdin() {
    return keys;
  }

  @Override
  public OutputStream stdout() {
    return screen;
  }

  /** Unused: the command's stderr is its terminal. */
  @Override
  public OutputStream stderr() {
    return screen;
  }

  /** Runs stty on the terminal; returns what it printed. */
  private static String stty(ProcessBuilder.Redirect terminal, String... arguments)
      throws IOException {
    ProcessBuilder builder = new ProcessBuilder("stty");
    builder.command().addAll(List.of(arguments));
    builder.redirectInput(terminal);
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
