package org.uchroot.adapter.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.actors.BindMount;
import picocli.CommandLine;

/** The options of autopkgtest-virt-unshare 5.28: names, defaults, checks, messages, statuses. */
class TestbedOptionsTest {

  @TempDir Path tmp;

  private static TestbedOptions parse(String... args) {
    VirtServerCommand command = new VirtServerCommand();
    new CommandLine(command).parseArgs(args);
    return command.options;
  }

  @Test
  void defaultsAsTheReference() {
    TestbedOptions options = parse();
    assertEquals("*", options.arch);
    assertEquals("*", options.release);
    assertEquals(List.of(), options.binds());
    assertFalse(options.debug);
    assertEquals(Optional.empty(), options.unpackDir());
  }

  @Test
  void takesShortAndLongNames() {
    TestbedOptions options =
        parse(
            "-a",
            "arm64",
            "--release",
            "sid",
            "-d",
            "-p",
            "pfx",
            "--tarball",
            "/x.tar",
            "-u",
            tmp.resolve("new").toString());
    assertEquals("arm64", options.arch);
    assertEquals("sid", options.release);
    assertTrue(options.debug);
    assertEquals("pfx", options.prefix);
    assertEquals(Optional.of(Path.of("/x.tar")), options.tarball(Map.of()));
    assertEquals(Optional.of(tmp.resolve("new")), options.unpackDir());
    assertTrue(parse("-dt", "/y.tar").debug, "clustered short options, as argparse takes them");
  }

  @Test
  void bindTakesPairsAndRepeats() {
    TestbedOptions options = parse("-b", "/tmp", "/mnt/tmp", "--bind", tmp.toString(), "/srv");
    assertEquals(
        List.of(new BindMount(Path.of("/tmp"), "/mnt/tmp"), new BindMount(tmp, "/srv")),
        options.binds());
  }

  @Test
  void checksBindsWithTheReferencesMessages() {
    CliException missing =
        assertThrows(CliException.class, () -> parse("-b", "/nonexist", "/x").binds());
    assertEquals("/nonexist doesn't exist", missing.getMessage());
    assertEquals(1, missing.exitCode().code());
    CliException relative =
        assertThrows(CliException.class, () -> parse("-b", "/tmp", "rel").binds());
    assertEquals(
        "mountpoint rel must be an absolute path inside the chroot", relative.getMessage());
    assertEquals(1, relative.exitCode().code());
  }

  @Test
  void theUnpackDirectoryMustNotExist() {
    CliException e =
        assertThrows(CliException.class, () -> parse("-u", tmp.toString()).unpackDir());
    assertEquals(tmp + ": File exists", e.getMessage());
    assertEquals(1, e.exitCode().code());
  }

  @Test
  void usageErrorsExitTwoAsArgparse() {
    assertEquals(2, Main.run("virt-server", "--foo"));
    assertEquals(2, Main.run("virt-server", "-b", "/tmp"));
    assertEquals(2, Main.run("virt-server", "-t"));
    assertEquals(2, Main.run("virt-server", "extra"));
    assertEquals(2, Main.run("virt-server", "--grace-before-term", "soon"));
    assertEquals(2, Main.run("run", "-t", "/x.tar"));
  }

  @Test
  void badOptionValuesExitOneWithOneLine() {
    StringWriter err = new StringWriter();
    assertEquals(1, Main.run(new PrintWriter(err), "virt-server", "-b", "/nonexist", "/x"));
    assertTrue(
        err.toString()
            .matches("uchroot \\[\\d\\d:\\d\\d:\\d\\d\\]: ERROR: /nonexist doesn't exist\n"),
        err.toString());
    err.getBuffer().setLength(0);
    assertEquals(
        1,
        Main.run(new PrintWriter(err), "run", "-t", "/x.tar", "-u", tmp.toString(), "--", "true"));
    assertTrue(err.toString().endsWith("ERROR: " + tmp + ": File exists\n"), err.toString());
  }

  @Test
  void findsTheFirstMatchingTarballInTheSbuildCache() throws IOException {
    Path cache = Files.createDirectories(tmp.resolve("xdg/sbuild"));
    for (String name :
        List.of("sid-arm64.tar", "sid-amd64.tar.zst", "bookworm-amd64.tgz", "notes.txt")) {
      Files.createFile(cache.resolve(name));
    }
    Map<String, String> env = Map.of("XDG_CACHE_HOME", tmp.resolve("xdg").toString());
    assertEquals(Optional.of(cache.resolve("bookworm-amd64.tgz")), parse().tarball(env));
    assertEquals(Optional.of(cache.resolve("sid-amd64.tar.zst")), parse("-r", "sid").tarball(env));
    assertEquals(Optional.of(cache.resolve("sid-arm64.tar")), parse("-a", "arm64").tarball(env));
    assertEquals(Optional.empty(), parse("-r", "trixie").tarball(env));
  }

  @Test
  void looksInXdgCacheHomeRightlyUnlikeTheReference() {
    assertEquals(
        Path.of("/c/sbuild"),
        TestbedOptions.cacheDir(Map.of("XDG_CACHE_HOME", "/c", "HOME", "/h")));
    assertEquals(Path.of("/h/.cache/sbuild"), TestbedOptions.cacheDir(Map.of("HOME", "/h")));
    assertEquals(
        Path.of("/h/.cache/sbuild"),
        TestbedOptions.cacheDir(Map.of("XDG_CACHE_HOME", "", "HOME", "/h")));
    assertEquals(
        Path.of("/h/.cache/sbuild"),
        TestbedOptions.cacheDir(Map.of("XDG_CACHE_HOME", "relative", "HOME", "/h")));
    assertEquals(
        "Unable to find chroot in /h/.cache/sbuild",
        TestbedOptions.missingTarballMessage(Map.of("HOME", "/h")));
  }

  @Test
  void readsDurations() {
    TestbedOptions.DurationConverter convert = new TestbedOptions.DurationConverter();
    assertEquals(Duration.ofSeconds(5), convert.convert("5s"));
    assertEquals(Duration.ofSeconds(7), convert.convert("7"));
    assertEquals(Duration.ofMillis(500), convert.convert("500ms"));
    assertEquals(Duration.ofMillis(1500), convert.convert("1.5s"));
    assertEquals(Duration.ofMinutes(2), convert.convert("2m"));
    assertEquals(Duration.ofHours(1), convert.convert("1h"));
    assertEquals(Duration.ofSeconds(3), convert.convert("PT3S"));
    assertThrows(CommandLine.TypeConversionException.class, () -> convert.convert("soon"));
    assertThrows(CommandLine.TypeConversionException.class, () -> convert.convert("PT-3S"));
    TestbedOptions options = parse("--grace-before-term", "250ms", "--grace-before-kill", "1s");
    assertEquals(Duration.ofMillis(250), options.graceBeforeTerm);
    assertEquals(Duration.ofSeconds(1), options.graceBeforeKill);
  }

  @Test
  void readsGlobsAsFnmatch() {
    assertTrue(Globs.toRegex("*-*.t*").matcher("sid-amd64.tar.gz").matches());
    assertFalse(Globs.toRegex("*-*.t*").matcher("sid.tar").matches());
    assertTrue(Globs.toRegex("s?d-[!x]md64.t*").matcher("sid-amd64.tar").matches());
    assertFalse(Globs.toRegex("sid-[!a]md64.t*").matcher("sid-amd64.tar").matches());
    assertTrue(Globs.toRegex("a.b[").matcher("a.b[").matches());
    assertFalse(Globs.toRegex("a.b").matcher("axb").matches());
  }

  @Test
  void theExecClientSaysHowToUseIt() {
    assertEquals(255, Main.run("exec"));
    assertEquals(255, Main.run("exec", "/nonexistent/exec.sock"));
    assertEquals(255, Main.run("exec", "/nonexistent/exec.sock", "ls", "-l"));
  }
}
