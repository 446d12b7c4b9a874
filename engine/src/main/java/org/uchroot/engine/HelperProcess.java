package org.uchroot.engine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/** Runs the short-lived helper programs of the engine (tar, useradd, rm) to their end. */
final class HelperProcess {

  private HelperProcess() {}

  /** Where helpers find their programs; their environment is otherwise empty. */
  static final String PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

  /**
   * A helper in a session of its own: a Ctrl+C on the terminal reaches the server's process group,
   * and must not kill the namespaces, tar or rm under the server's feet. setsid(1) execs in place
   * here, since a fresh child is not a process group leader.
   */
  static ProcessBuilder builder(List<String> argv) {
    List<String> detached = new ArrayList<>();
    detached.add("setsid");
    detached.addAll(argv);
    ProcessBuilder builder = new ProcessBuilder(detached);
    Map<String, String> env = builder.environment();
    env.clear();
    env.put("PATH", PATH);
    return builder;
  }

  /**
   * Runs {@code argv} with stdin from /dev/null and fails with its stderr when it exits non-zero.
   * Blocks: call only from the blocking executor.
   */
  static void run(String what, List<String> argv) {
    run(what, argv, null, Path.of("/dev/null"));
  }

  /** As {@link #run(String, List)}, in the directory {@code dir} and with stdin from a file. */
  static void run(String what, List<String> argv, Path dir, Path stdin) {
    Process process;
    try {
      process =
          builder(argv)
              .directory(dir == null ? null : dir.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(stdin.toFile()))
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
    } catch (IOException e) {
      throw new UchrootException(what + ": cannot run " + argv.get(0) + ": " + e.getMessage(), e);
    }
    String stderr = drain(process.getErrorStream());
    int status = waitFor(process);
    if (status != 0) {
      throw new UchrootException(
          what + " failed (exit status " + status + ")" + (stderr.isBlank() ? "" : ": " + oneLine(stderr)));
    }
  }

  static int waitFor(Process process) {
    while (true) {
      try {
        return process.waitFor();
      } catch (InterruptedException e) {
        // The executor's threads are not interrupted on purpose; keep waiting for the helper.
      }
    }
  }

  static String drain(InputStream in) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (in) {
      in.transferTo(out);
    } catch (IOException e) {
      // The helper went away; what it wrote so far is all there is.
    }
    return out.toString(StandardCharsets.UTF_8);
  }

  /** Joins the lines of a tool's stderr, so that errors stay one line. */
  static String oneLine(String text) {
    return String.join("; ", text.strip().split("\\s*\\n\\s*"));
  }
}
