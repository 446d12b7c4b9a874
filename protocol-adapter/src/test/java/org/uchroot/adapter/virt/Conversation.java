package org.uchroot.adapter.virt;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.channels.Channels;
import java.nio.channels.Pipe;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.uchroot.actors.SessionSpec;
import org.uchroot.adapter.protocol.UrlQuoting;
import org.uchroot.engine.Engine;
import org.uchroot.engine.EngineConfig;

/**
 * A {@link VirtServer} on its own engine and thread, driven line by line as autopkgtest drives it.
 * One test thread uses it; {@link #close} quits the server if it still runs.
 */
final class Conversation implements AutoCloseable {

  static final Duration ANSWER_TIMEOUT = Duration.ofSeconds(120);

  private final OutputStream commands;
  private final BlockingQueue<String> answers = new LinkedBlockingQueue<>();
  private final ByteArrayOutputStream messages = new ByteArrayOutputStream();
  private final CompletableFuture<Integer> exit = new CompletableFuture<>();
  private final EngineConfig config;

  Conversation(EngineConfig config, Path tarball, List<String> execProgram)
      throws IOException, InterruptedException {
    this(config, tarball, execProgram, Optional.empty());
  }

  Conversation(
      EngineConfig config, Path tarball, List<String> execProgram, Optional<AptProxy> aptProxy)
      throws IOException, InterruptedException {
    this.config = config;
    Pipe in = Pipe.open();
    Pipe out = Pipe.open();
    commands = Channels.newOutputStream(in.sink());
    VirtServer server =
        new VirtServer(
            new VirtServer.Settings(
                () -> SessionSpec.of(tarball),
                config.normalUser(),
                config.runtimeDir(),
                execProgram,
                Duration.ofSeconds(60),
                Path.of("").toAbsolutePath(),
                aptProxy),
            CompletableFuture.completedFuture(Engine.start(config)),
            Channels.newInputStream(in.source()),
            Channels.newOutputStream(out.sink()),
            new PrintStream(messages, true, StandardCharsets.UTF_8));
    Thread serving =
        new Thread(
            () -> {
              try {
                exit.complete(server.serve());
              } catch (Throwable e) {
                exit.completeExceptionally(e);
              } finally {
                try {
                  out.sink().close();
                } catch (IOException e) {
                  // The reader sees the end either way.
                }
              }
            },
            "virt-server");
    serving.start();
    Thread reading =
        new Thread(
            () -> {
              try (BufferedReader reader =
                  new BufferedReader(
                      new InputStreamReader(
                          Channels.newInputStream(out.source()), StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                  answers.add(line);
                }
              } catch (IOException e) {
                // The server has gone.
              }
            },
            "virt-server-answers");
    reading.setDaemon(true);
    reading.start();
    expect("ok");
  }

  EngineConfig config() {
    return config;
  }

  /** Sends one command and returns its answer. */
  String ask(String command) throws Exception {
    send(command);
    return answer();
  }

  void send(String command) throws IOException {
    commands.write((command + "\n").getBytes(StandardCharsets.UTF_8));
    commands.flush();
  }

  String answer() throws InterruptedException {
    String line = answers.poll(ANSWER_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    assertNotNull(line, "no answer; stderr: " + messages());
    return line;
  }

  /** The next answer, or null if the server ends without one or none comes within the limit. */
  String pollAnswer(int seconds) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (System.nanoTime() < deadline) {
      String line = answers.poll(20, TimeUnit.MILLISECONDS);
      if (line != null) {
        return line;
      }
      if (exit.isDone() && answers.isEmpty()) {
        return null;
      }
    }
    throw new AssertionError(
        "no answer and no end within " + seconds + " s; stderr: " + messages());
  }

  void expect(String answer) throws InterruptedException {
    String line = answer();
    if (!line.equals(answer)) {
      throw new AssertionError(
          "expected `" + answer + "', got `" + line + "'; stderr: " + messages());
    }
  }

  /** The words of an {@code ok} answer, unquoted as autopkgtest unquotes them. */
  static List<String> words(String answer) {
    List<String> words = new ArrayList<>();
    for (String word : answer.split(" ")) {
      words.add(UrlQuoting.unquote(word));
    }
    if (!words.get(0).equals("ok")) {
      throw new AssertionError("not ok: " + answer);
    }
    return words.subList(1, words.size());
  }

  void endOfFile() throws IOException {
    commands.close();
  }

  int exitStatus() throws Exception {
    return exit.get(ANSWER_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
  }

  /** Answers the server gave that no one asked for. */
  List<String> unread() {
    return List.copyOf(answers);
  }

  String messages() {
    synchronized (messages) {
      return messages.toString(StandardCharsets.UTF_8);
    }
  }

  @Override
  public void close() throws Exception {
    if (!exit.isDone()) {
      try {
        send("quit");
        commands.close();
      } catch (IOException e) {
        // The server stopped reading: it is ending anyway.
      }
    }
    exitStatus();
  }
}
