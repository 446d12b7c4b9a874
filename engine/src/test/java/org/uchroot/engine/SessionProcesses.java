package org.uchroot.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Finding a session's processes from the host, as the tests look at them. */
final class SessionProcesses {

  private SessionProcesses() {}

  /**
   * The job server of the testbed in {@code rootfs}, found by its command line: the one in the
   * session's pid namespace, not the helper that started it nor, for root, the job server outside
   * the namespaces that waits for it.
   */
  static ProcessHandle jobServerOf(Path rootfs) {
    return ProcessHandle.allProcesses()
        .filter(p -> isJobServerOf(commandLine(p.pid()), rootfs) && inChildPidNamespace(p.pid()))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no job server for " + rootfs));
  }

  /** The value of {@code name} in a command line, or null. */
  static String option(List<String> args, String name) {
    int i = args.indexOf(name);
    return i >= 0 && i + 1 < args.size() ? args.get(i + 1) : null;
  }

  static List<String> commandLine(long pid) {
    try {
      String text = Files.readString(Path.of("/proc", Long.toString(pid), "cmdline"));
      return text.isEmpty() ? List.of() : List.of(text.split("\0"));
    } catch (IOException e) {
      return List.of(); // gone, or not ours to read
    }
  }

  private static boolean isJobServerOf(List<String> args, Path rootfs) {
    String root = option(args, "--root");
    return !args.isEmpty()
        && args.get(0).endsWith("/uchroot-jobd")
        && root != null
        && Path.of(root).startsWith(rootfs);
  }

  private static boolean inChildPidNamespace(long pid) {
    try {
      return Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")).stream()
          .anyMatch(line -> line.startsWith("NSpid:") && line.trim().split("\\s+").length > 2);
    } catch (IOException e) {
      return false;
    }
  }
}
