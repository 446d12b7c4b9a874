package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.uchroot.engine.Host;

/**
 * An {@code autopkgtest-virt-uchroot} started the way a client that does not setsid it starts it:
 * in one process group with the commands the client runs through the exec program, so that a SIGINT
 * to the group (a terminal's Ctrl+C) reaches the server and those commands alike.
 *
 * <p>A small Perl program leads a new session and process group. It starts the server on the pipes
 * this class talks through, then starts commands on request, each in the same group, and records
 * every pid and wait status in files of its control directory. It survives the group's SIGINT
 * through a handler, which (unlike an ignored signal) does not pass to what it starts.
 *
 * <p>Not thread-safe: one test thread drives it. {@link #close()} kills whatever is left in the
 * group, so a failing test does not leave processes behind for the next.
 */
final class VirtServerProcess implements AutoCloseable {

  static final int SIGHUP = 1;
  static final int SIGINT = 2;
  static final int SIGKILL = 9;
  static final int SIGTERM = 15;

  /** Generous: a busybox testbed opens in about a second, a Debian one in a few. */
  static final Duration ANSWER_TIMEOUT = Duration.ofSeconds(120);

  private static final String GROUP_PROGRAM =
      """
            use strict;
            use warnings;
            use POSIX ();

            my ($dir, @server) = @ARGV;
            defined(POSIX::setsid()) or die "setsid: $!\\n";
            # Outlive the group's SIGINT; a handler reverts to the default in what is exec'd.
            $SIG{INT} = sub {};

            sub put {
                my ($name, $text) = @_;
                open(my $fh, '>', "$dir/$name.tmp") or die "$dir/$name.tmp: $!\\n";
                print $fh $text;
                close($fh) or die "$dir/$name.tmp: $!\\n";
                rename("$dir/$name.tmp", "$dir/$name") or die "$dir/$name: $!\\n";
            }

            # Runs @argv under a watcher process that records its pid and wait status.
            sub spawn {
                my ($name, $stdio, @argv) = @_;
                my $watcher = fork();
                die "fork: $!\\n" unless defined $watcher;
                return if $watcher;
                my $pid = fork();
                die "fork: $!\\n" unless defined $pid;
                if ($pid == 0) {
                    $stdio->() if $stdio;
                    { no warnings 'exec'; exec { $argv[0] } @argv; }
                    print STDERR "cannot run $argv[0]: $!\\n";
                    POSIX::_exit(127);
                }
                open(STDIN, '<', '/dev/null');
                open(STDOUT, '>&', \\*STDERR);
                put("$name.pid", "$pid\\n");
                my $r;
                do { $r = waitpid($pid, 0) } while ($r == -1 && $!{EINTR});
                my $st = $?;
                put("$name.status", ($st & 127) ? "signal " . ($st & 127) . "\\n" : "exit " . ($st >> 8) . "\\n");
                POSIX::_exit(0);
            }

            put("group.pid", "$$\\n");
            spawn("server", undef, @server);
            # Only the server may hold the pipes, so that its end is seen as end of file.
            open(STDIN, '<', '/dev/null') or die;
            open(STDOUT, '>&', \\*STDERR) or die;

            sysopen(my $control, "$dir/control", POSIX::O_RDWR()) or die "$dir/control: $!\\n";
            my $buffer = '';
            while (1) {
                my $n = sysread($control, $buffer, 4096, length $buffer);
                if (!defined $n) {
                    next if $!{EINTR};
                    die "control: $!\\n";
                }
                1 while waitpid(-1, POSIX::WNOHANG()) > 0;
                while ($buffer =~ s/^([^\\n]*)\\n//) {
                    my $name = $1;
                    if ($name eq 'exit') {
                        my $p;
                        while (($p = wait()) != -1 || $!{EINTR}) {}
                        exit 0;
                    }
                    open(my $fh, '<', "$dir/$name.argv") or die "$dir/$name.argv: $!\\n";
                    my @argv = do { local $/; split /\\0/, <$fh> };
                    close($fh);
                    spawn($name, sub {
                        open(STDIN, '<', '/dev/null') or die;
                        open(STDOUT, '>', "$dir/$name.out") or die "$dir/$name.out: $!\\n";
                        open(STDERR, '>', "$dir/$name.err") or die "$dir/$name.err: $!\\n";
                    }, @argv);
                }
            }
            """;

  private final String name;
  private final Path dir;
  private final Process process;
  private final OutputStream requests;
  private final BlockingQueue<Optional<String>> answers = new LinkedBlockingQueue<>();
  private final StringBuffer stderr = new StringBuffer();
  private final Path stderrLog;
  private final long groupId;
  private final long serverPid;
  private int jobs;

  private VirtServerProcess(String name, Path dir, Process process) throws IOException {
    this.name = name;
    this.dir = dir;
    this.process = process;
    this.requests = process.getOutputStream();
    this.stderrLog = E2e.logDir().resolve(name + "-server.log");
    pump(process.getInputStream(), line -> answers.add(Optional.of(line)), "answers", answers);
    OutputStream log = Files.newOutputStream(stderrLog);
    pump(
        process.getErrorStream(),
        line -> {
          stderr.append(line).append('\n');
          try {
            log.write((line + "\n").getBytes(StandardCharsets.UTF_8));
            log.flush();
          } catch (IOException e) {
            // The copy in memory is what the assertions read.
          }
        },
        "stderr",
        null);
    this.groupId = Long.parseLong(awaitFile("group.pid", Duration.ofSeconds(30)).strip());
    this.serverPid = Long.parseLong(awaitFile("server.pid", Duration.ofSeconds(30)).strip());
  }

  /**
   * Starts the server of the distribution with {@code args}, as {@code user} (null: root), in a new
   * session and process group, with its control files in {@code dir} (created here).
   */
  static VirtServerProcess start(
      String name, String user, Path dir, Map<String, String> env, List<String> args)
      throws IOException {
    return start(name, user, dir, env, args, List.of());
  }

  /**
   * As {@link #start(String, String, Path, Map, List)}, root's server run through {@code wrapper}.
   */
  static VirtServerProcess start(
      String name,
      String user,
      Path dir,
      Map<String, String> env,
      List<String> args,
      List<String> wrapper)
      throws IOException {
    Files.createDirectories(dir);
    Path program = dir.resolve("group.pl");
    Files.writeString(program, GROUP_PROGRAM);
    Path control = dir.resolve("control");
    Process mkfifo =
        new ProcessBuilder("mkfifo", "-m", "600", control.toString()).inheritIO().start();
    try {
      if (!mkfifo.waitFor(30, TimeUnit.SECONDS) || mkfifo.exitValue() != 0) {
        fail("mkfifo " + control + " failed");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      fail("interrupted");
    }
    if (user != null) {
      E2e.chownTree(dir, user);
    }
    List<String> argv = new ArrayList<>();
    if (user != null) {
      argv.addAll(List.of("runuser", "-u", user, "--", "env"));
      env.forEach((k, v) -> argv.add(k + "=" + v));
    }
    argv.addAll(wrapper);
    argv.addAll(
        List.of(
            "perl",
            program.toString(),
            dir.toString(),
            E2e.distributionDir().resolve("bin/autopkgtest-virt-uchroot").toString()));
    argv.addAll(args);
    ProcessBuilder pb = new ProcessBuilder(argv).directory(dir.toFile());
    pb.environment().putAll(env);
    VirtServerProcess server = new VirtServerProcess(name, dir, pb.start());
    String greeting = server.nextAnswer(ANSWER_TIMEOUT);
    if (!"ok".equals(greeting)) {
      server.close();
      fail("the server greeted with " + greeting + " instead of ok\n" + server.describe());
    }
    return server;
  }

  long serverPid() {
    return serverPid;
  }

  /** Sends one request and returns the server's one-line answer. */
  String request(String line) throws IOException {
    return request(line, ANSWER_TIMEOUT);
  }

  /** Sends one request and returns the answer; fails if none comes within {@code limit}. */
  String request(String line, Duration limit) throws IOException {
    send(line);
    String answer = nextAnswer(limit);
    if (answer == null) {
      fail("no answer to '" + line + "': the server ended\n" + describe());
    }
    return answer;
  }

  /** Sends a request that has no answer, such as {@code quit}. */
  void send(String line) throws IOException {
    requests.write((line + "\n").getBytes(StandardCharsets.UTF_8));
    requests.flush();
  }

  /** Sends a request that must succeed; returns the words after {@code ok}. */
  String ok(String line) throws IOException {
    String answer = request(line);
    assertTrue(
        answer.equals("ok") || answer.startsWith("ok "),
        "'" + line + "' answered '" + answer + "'\n" + describe());
    return answer.length() > 3 ? answer.substring(3) : "";
  }

  /** The exec program and its leading arguments, as {@code print-execute-command} gives them. */
  List<String> execProgram() throws IOException {
    String word = ok("print-execute-command").strip();
    List<String> program = new ArrayList<>();
    for (String part : word.split(",")) {
      program.add(unquote(part));
    }
    return program;
  }

  /** Closes the server's stdin: end of file for the protocol. */
  void closeInput() throws IOException {
    requests.close();
  }

  /** Starts {@code argv} in the server's process group, with stdin from /dev/null. */
  Job launch(String jobName, List<String> argv) throws IOException {
    String id = "job" + (++jobs) + "-" + jobName.replaceAll("[^A-Za-z0-9_-]", "_");
    Files.writeString(dir.resolve(id + ".argv"), String.join("\0", argv));
    try (FileChannel control =
        FileChannel.open(
            dir.resolve("control"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      control.write(ByteBuffer.wrap((id + "\n").getBytes(StandardCharsets.UTF_8)));
    }
    return new Job(id);
  }

  /** Runs {@code sh -c script} through the exec program, to its end. */
  Job run(String jobName, List<String> execProgram, String script, Duration limit)
      throws IOException {
    Job job = launch(jobName, exec(execProgram, script));
    job.awaitStatus(limit);
    return job;
  }

  /** The exec program running {@code sh -c script} in the testbed. */
  static List<String> exec(List<String> execProgram, String script) {
    List<String> argv = new ArrayList<>(execProgram);
    argv.addAll(List.of("sh", "-c", script));
    return argv;
  }

  /** Sends {@code signal} to every process of the group. */
  void signalGroup(int signal) {
    assertTrue(Host.kill(-groupId, signal), "no process group " + groupId);
  }

  /** Sends {@code signal} to the server alone. */
  void signalServer(int signal) {
    assertTrue(Host.kill(serverPid, signal), "the server (pid " + serverPid + ") is gone");
  }

  /** How the server ended: {@code exit N} or {@code signal N}. */
  String awaitServerExit(Duration limit) {
    return awaitFile("server.status", limit).strip();
  }

  /** Null while the server runs. */
  String serverStatus() {
    return read("server.status");
  }

  String stderr() {
    return stderr.toString();
  }

  /** Waits until the server's stderr has a line matching {@code pattern}; returns it. */
  String awaitStderr(Pattern pattern, Duration limit) {
    String[] found = new String[1];
    Await.until(
        "a line of the server's stderr matching " + pattern,
        limit,
        () -> {
          for (String line : stderr().split("\n")) {
            if (pattern.matcher(line).find()) {
              found[0] = line;
              return true;
            }
          }
          return false;
        },
        this::describe);
    return found[0];
  }

  /** For assertion messages. */
  String describe() {
    StringBuilder out =
        new StringBuilder(
            "server "
                + name
                + " (pid "
                + serverPid
                + ", group "
                + groupId
                + "): status "
                + serverStatus()
                + "\n--- server stderr ("
                + stderrLog
                + ") ---\n"
                + tail(stderr(), 60));
    for (int i = 1; i <= jobs; i++) {
      final int n = i;
      try (var files = Files.list(dir)) {
        for (Path p :
            files
                .filter(
                    f ->
                        f.getFileName().toString().startsWith("job" + n + "-")
                            && f.getFileName().toString().matches(".*\\.(status|out|err)"))
                .sorted()
                .toList()) {
          out.append("\n--- ")
              .append(p.getFileName())
              .append(" ---\n")
              .append(tail(Files.readString(p), 20));
        }
      } catch (IOException e) {
        out.append("\n(cannot list ").append(dir).append(": ").append(e).append(")");
      }
    }
    return out.toString();
  }

  /**
   * Ends the group program; then kills whatever of the group is left (after a failure) and waits
   * for it, so that nothing of this server outlives the test.
   */
  @Override
  public void close() {
    try (FileChannel control =
        FileChannel.open(
            dir.resolve("control"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      control.write(ByteBuffer.wrap("exit\n".getBytes(StandardCharsets.UTF_8)));
    } catch (IOException e) {
      // The group program is gone already.
    }
    try {
      requests.close();
    } catch (IOException e) {
      // Already closed.
    }
    try {
      // Long enough for the server to close a testbed through both grace periods.
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        Host.kill(-groupId, SIGKILL);
        process.waitFor(30, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    Host.kill(-groupId, SIGKILL);
    process.destroyForcibly();
  }

  /**
   * The next answer if one comes within {@code wait}, else empty; a server that ended answers
   * {@code "(ended)"}.
   */
  Optional<String> pollAnswer(Duration wait) {
    try {
      Optional<String> answer = answers.poll(wait.toMillis(), TimeUnit.MILLISECONDS);
      return answer == null ? Optional.empty() : Optional.of(answer.orElse("(ended)"));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return fail("interrupted");
    }
  }

  private String nextAnswer(Duration limit) {
    try {
      Optional<String> answer = answers.poll(limit.toMillis(), TimeUnit.MILLISECONDS);
      if (answer == null) {
        fail("no answer within " + limit + "\n" + describe());
      }
      return answer.orElse(null);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return fail("interrupted");
    }
  }

  private interface LineSink {
    void accept(String line);
  }

  /** Copies lines to {@code sink}; an empty element in {@code ends}, if given, marks the end. */
  private static void pump(
      InputStream in, LineSink sink, String what, BlockingQueue<Optional<String>> ends) {
    Thread t =
        new Thread(
            () -> {
              try (BufferedReader reader =
                  new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                  sink.accept(line);
                }
              } catch (IOException e) {
                // The process is gone; what was read is kept.
              } finally {
                if (ends != null) {
                  ends.add(Optional.empty());
                }
              }
            },
            "virt-server-" + what);
    t.setDaemon(true);
    t.start();
  }

  String awaitFile(String file, Duration limit) {
    String[] text = new String[1];
    Await.until(
        dir.resolve(file) + " to appear",
        limit,
        () -> (text[0] = read(file)) != null,
        () -> "server stderr:\n" + tail(stderr(), 40));
    return text[0];
  }

  private String read(String file) {
    try {
      return Files.readString(dir.resolve(file));
    } catch (NoSuchFileException e) {
      return null;
    } catch (IOException e) {
      return fail("cannot read " + dir.resolve(file) + ": " + e);
    }
  }

  static String tail(String text, int lines) {
    List<String> all = text.lines().toList();
    return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
  }

  /** autopkgtest URL-unquotes each word of an answer: %XX only, '+' stays. */
  static String unquote(String word) {
    ByteBuffer out = ByteBuffer.allocate(word.length() * 4);
    byte[] bytes = word.getBytes(StandardCharsets.UTF_8);
    for (int i = 0; i < bytes.length; i++) {
      if (bytes[i] == '%' && i + 2 < bytes.length) {
        out.put(
            (byte) Integer.parseInt(new String(bytes, i + 1, 2, StandardCharsets.US_ASCII), 16));
        i += 2;
      } else {
        out.put(bytes[i]);
      }
    }
    return new String(out.array(), 0, out.position(), StandardCharsets.UTF_8);
  }

  /** A command started in the server's process group. */
  final class Job {
    private final String id;

    private Job(String id) {
      this.id = id;
    }

    long pid() {
      return Long.parseLong(awaitFile(id + ".pid", Duration.ofSeconds(30)).strip());
    }

    /** {@code exit N} or {@code signal N}. */
    String awaitStatus(Duration limit) {
      return awaitFile(id + ".status", limit).strip();
    }

    /** Null while it runs. */
    String status() {
      String text = read(id + ".status");
      return text == null ? null : text.strip();
    }

    String stdout() {
      String text = read(id + ".out");
      return text == null ? "" : text;
    }

    String stderr() {
      String text = read(id + ".err");
      return text == null ? "" : text;
    }

    /** Waits until the command has printed {@code line} on a line of its own. */
    void awaitLine(String line, Duration limit) {
      Await.until(
          id + " to print '" + line + "' or end",
          limit,
          () -> stdout().lines().anyMatch(line::equals) || status() != null,
          this::describe);
      if (stdout().lines().noneMatch(line::equals)) {
        fail(id + " ended without printing '" + line + "'\n" + describe());
      }
    }

    void signal(int signal) {
      assertTrue(Host.kill(pid(), signal), id + " is gone");
    }

    String describe() {
      return id
          + ": status "
          + status()
          + "\nstdout:\n"
          + tail(stdout(), 20)
          + "\nstderr:\n"
          + tail(stderr(), 20)
          + "\n"
          + VirtServerProcess.this.describe();
    }
  }
}
