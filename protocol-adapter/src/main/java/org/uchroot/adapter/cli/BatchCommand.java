package org.uchroot.adapter.cli;

import java.io.ByteArrayOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Semaphore;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.actors.SessionSpec;
import org.uchroot.engine.Engine;
import org.uchroot.engine.UchrootException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code uchroot batch FILE}: every line of FILE run with {@code sh -c} in a fresh testbed of its
 * own, several at a time, all in this one process. Output lines carry the number of the line that
 * made them; a summary gives each line's exit status.
 */
@Command(
    name = "batch",
    description = "Run each line of a file in a fresh testbed of its own, several at a time.",
    sortOptions = false,
    separator = " ")
final class BatchCommand implements Callable<Integer> {

  @Mixin TestbedOptions options;

  @Option(
      names = {"-h", "--help"},
      usageHelp = true,
      description = "Show this help message and exit.")
  boolean help;

  @Option(
      names = {"-j", "--jobs"},
      paramLabel = "N",
      description = "Testbeds open at once (default: the number of processors).")
  int jobs = Runtime.getRuntime().availableProcessors();

  @Parameters(
      paramLabel = "FILE",
      description = "Commands, one per line; blank lines and # comments are skipped.")
  Path file;

  /** One command of the batch and its line number. */
  record Line(int number, String command) {}

  @Override
  public Integer call() throws IOException {
    Logging.start(options.debug);
    if (jobs < 1) {
      throw new CliException(ExitCode.USAGE, "--jobs must be at least 1");
    }
    List<Line> lines = read(file);
    PrintStream out =
        new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    TestbedOptions.Started started = options.startEngine(System.getenv());
    Engine engine = started.engine();
    SessionSpec spec = started.spec();
    try {
      Semaphore slots = new Semaphore(jobs);
      List<CompletableFuture<String>> results = new ArrayList<>();
      for (Line line : lines) {
        slots.acquireUninterruptibly();
        results.add(
            runInFreshTestbed(engine, spec, line, out)
                .whenComplete((ok, error) -> slots.release())
                .toCompletableFuture());
      }
      // The summary comes after every command's output.
      CompletableFuture.allOf(results.toArray(CompletableFuture[]::new)).join();
      boolean allPassed = true;
      for (int i = 0; i < lines.size(); i++) {
        String outcome = results.get(i).join();
        allPassed &= outcome.equals("exit 0");
        out.println("line " + lines.get(i).number() + ": " + outcome);
      }
      return allPassed ? 0 : 1;
    } finally {
      engine.close();
    }
  }

  private static CompletionStage<String> runInFreshTestbed(
      Engine engine, SessionSpec spec, Line line, PrintStream out) {
    LinePrefixer output = new LinePrefixer("[" + line.number() + "] ", out);
    return engine
        .open(spec)
        .thenCompose(
            session ->
                session
                    .run(List.of("sh", "-c", line.command()), stdio(output))
                    .handle(
                        (status, error) -> {
                          // A last line without a newline is still the command's output.
                          output.close();
                          return outcome(status, error);
                        })
                    .thenCompose(
                        outcome ->
                            session
                                .close()
                                .handle(
                                    (ok, error) ->
                                        error == null
                                            ? outcome
                                            : outcome
                                                + " (testbed not removed: "
                                                + OneLineMessage.of(error)
                                                + ")")))
        .exceptionally(error -> "failed: " + OneLineMessage.of(error));
  }

  private static String outcome(ExitStatus status, Throwable error) {
    if (error != null) {
      return "failed: " + OneLineMessage.of(error);
    }
    return "exit " + status.shellStatus();
  }

  static List<Line> read(Path file) throws IOException {
    List<Line> lines = new ArrayList<>();
    List<String> all;
    try {
      all = Files.readAllLines(file);
    } catch (IOException e) {
      throw new CliException(
          ExitCode.INVALID_ARGUMENT, "cannot read " + file + ": " + UchrootException.reason(e));
    }
    for (int i = 0; i < all.size(); i++) {
      String text = all.get(i).strip();
      if (!text.isEmpty() && !text.startsWith("#")) {
        lines.add(new Line(i + 1, text));
      }
    }
    return lines;
  }

  /** No input; stdout and stderr both to {@code lines}. */
  static JobStdio stdio(LinePrefixer lines) {
    return JobStdio.of(InputStream.nullInputStream(), lines, lines);
  }

  /**
   * Writes whole lines to {@code out}, each prefixed with {@code [n] }: buffering up to each
   * newline keeps the lines of concurrent commands from interleaving.
   */
  static final class LinePrefixer extends OutputStream {
    private final byte[] prefix;
    private final PrintStream out;
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();

    LinePrefixer(String prefix, PrintStream out) {
      this.prefix = prefix.getBytes(StandardCharsets.UTF_8);
      this.out = out;
    }

    @Override
    public synchronized void write(int b) {
      line.write(b);
      if (b == '\n') {
        emit();
      }
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) {
      for (int i = off; i < off + len; i++) {
        write(b[i]);
      }
    }

    @Override
    public synchronized void close() {
      if (line.size() > 0) {
        line.write('\n');
        emit();
      }
    }

    private void emit() {
      synchronized (out) {
        out.write(prefix, 0, prefix.length);
        out.write(line.toByteArray(), 0, line.size());
        out.flush();
      }
      line.reset();
    }
  }
}
