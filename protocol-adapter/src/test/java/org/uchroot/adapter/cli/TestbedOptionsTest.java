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

  private static final Map<String, String> NO_ENV = Map.of();

  /** As the server reads its command line: argparse's forms first, then picocli. */
  private static TestbedOptions parse(String... args) {
    VirtServerCommand command = new VirtServerCommand();
    CommandLine commandLine = new CommandLine(command);
    commandLine.parseArgs(ArgparseArgs.normalise(commandLine, args));
    return command.options;
  }

  @Test
  void defaultsAsTheReference() {
    TestbedOptions options = parse();
    assertEquals("*", options.arch);
    assertEquals("*", options.release);
    assertEquals(List.of(), options.binds(NO_ENV));
    assertFalse(options.debug);
    assertEquals(Optional.empty(), options.unpackDir(NO_ENV));
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
    assertEquals(Optional.of(tmp.resolve("new")), options.unpackDir(NO_ENV));
    assertTrue(parse("-dt", "/y.tar").debug, "clustered short options, as argparse takes them");
  }

  @Test
  void bindTakesPairsAndRepeats() {
    TestbedOptions options = parse("-b", "/tmp", "/mnt/tmp", "--bind", tmp.toString(), "/srv");
    assertEquals(
        List.of(new BindMount(Path.of("/tmp"), "/mnt/tmp"), new BindMount(tmp, "/srv")),
        options.binds(NO_ENV));
  }

  @Test
  void checksBindsWithTheReferencesMessages() {
    CliException missing =
        assertThrows(CliException.class, () -> parse("-b", "/nonexist", "/x").binds(NO_ENV));
    assertEquals("/nonexist doesn't exist", missing.getMessage());
    assertEquals(1, missing.exitCode().code());
    CliException relative =
        assertThrows(CliException.class, () -> parse("-b", "/tmp", "rel").binds(NO_ENV));
    assertEquals(
        "mountpoint rel must be an absolute path inside the chroot", relative.getMessage());
    assertEquals(1, relative.exitCode().code());
  }

  @Test
  void theUnpackDirectoryMustNotExist() {
    CliException e =
        assertThrows(CliException.class, () -> parse("-u", tmp.toString()).unpackDir(NO_ENV));
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

  /** One line each: the drop-in server exits 1 as the reference; uchroot's commands 125. */
  @Test
  void badOptionValuesExitWithOneLine() {
    StringWriter err = new StringWriter();
    assertEquals(1, Main.run(new PrintWriter(err), "virt-server", "-b", "/nonexist", "/x"));
    assertTrue(
        err.toString()
            .matches("uchroot \\[\\d\\d:\\d\\d:\\d\\d\\]: ERROR: /nonexist doesn't exist\n"),
        err.toString());
    err.getBuffer().setLength(0);
    assertEquals(
        125,
        Main.run(new PrintWriter(err), "run", "-t", "/x.tar", "-u", tmp.toString(), "--", "true"));
    assertTrue(err.toString().endsWith("ERROR: " + tmp + ": File exists\n"), err.toString());
  }

  @Test
  void takesOptionValuesAfterAnEqualsSignAsArgparse() {
    TestbedOptions options =
        parse("--tarball=/x.tar", "--rootfs-mode=unpack", "-r=sid", "--bind=/tmp", "/mnt");
    assertEquals(Optional.of(Path.of("/x.tar")), options.tarball(NO_ENV));
    assertEquals("unpack", options.rootfsMode);
    assertEquals("sid", options.release);
    assertEquals(List.of(new BindMount(Path.of("/tmp"), "/mnt")), options.binds(NO_ENV));
    assertEquals("a=b", parse("--arch=a=b").arch);
    assertEquals(
        Optional.of(Path.of("").toAbsolutePath().resolve("--tarball=/y")),
        parse("-t", "--tarball=/y").tarball(NO_ENV),
        "an option's value is never read as an option");
  }

  @Test
  void takesTheReferencesOwnOptionsAbbreviatedAndOursInFull() {
    TestbedOptions options =
        parse(
            "--r",
            "sid",
            "--tar=/x.tar",
            "--unp",
            tmp.resolve("u").toString(),
            "--deb",
            "--ar",
            "arm64",
            "--pre",
            "p.");
    assertEquals("sid", options.release, "--r is --release, though --rootfs-mode begins so too");
    assertEquals(Optional.of(Path.of("/x.tar")), options.tarball(NO_ENV));
    assertEquals(Optional.of(tmp.resolve("u")), options.unpackDir(NO_ENV));
    assertTrue(options.debug);
    assertEquals("arm64", options.arch);
    assertEquals("p.", options.prefix);
    assertEquals(2, Main.run("virt-server", "--rootfs", "unpack"), "ours only in full");
    assertEquals(2, Main.run("virt-server", "--grace-before", "1s"));
    assertEquals(2, Main.run("virt-server", "--x=1"));
  }

  @Test
  void expandsTildeAndVariablesInPathsAsTheReferencesShell() throws IOException {
    Map<String, String> env = Map.of("HOME", "/home/me", "SUITE", "sid", "XDG_CACHE_HOME", "/c");
    assertTarball(
        "/home/me/.cache/sbuild/sid-amd64.tar", "~/.cache/sbuild/${SUITE}-amd64.tar", env);
    assertTarball("/home/me", "~", env);
    assertTarball("/c/sid.tar", "$XDG_CACHE_HOME/$SUITE.tar", env);
    assertTarball("/root/x.tar", "~root/x.tar", env);
    // As the shell leaves them: an unknown user, a ~ not leading, any other syntax.
    assertTarball("~nosuchuser42/x.tar", "~nosuchuser42/x.tar", env);
    assertTarball("/a~/x.tar", "/a~/x.tar", env);
    assertTarball("/x/.tar", "/x/$UNSET.tar", env);
    assertTarball("/x/'a b'*.tar", "/x/'a b'*.tar", env);
    Map<String, String> here = Map.of("HOME", tmp.toString(), "D", "new");
    assertEquals(Optional.of(tmp.resolve("new")), parse("-u", "~/$D").unpackDir(here));
    assertEquals(
        List.of(new BindMount(tmp, "/srv/new")), parse("-b", "~", "/srv/${D}").binds(here));
    Files.createDirectories(tmp.resolve("sub"));
    assertEquals(
        Optional.of(tmp.resolve("sub/new.").toString()),
        parse("-p", "~/sub/$D.").unpackPrefix(here));
  }

  /** Relative paths are relative to the working directory, as for the reference's tar. */
  private static void assertTarball(String expected, String given, Map<String, String> env) {
    assertEquals(
        Optional.of(Path.of("").toAbsolutePath().resolve(expected)),
        parse("-t", given).tarball(env),
        given);
  }

  @Test
  void resolvesRelativePathsAgainstTheCallersWorkingDirectoryNotTheServers() throws IOException {
    Files.createDirectories(tmp.resolve("outside"));
    TestbedOptions options = parse("-t", "b.tar", "-b", "outside", "/mnt", "-u", "unpack");
    options.workingDirectory = tmp;
    assertEquals(Optional.of(tmp.resolve("b.tar")), options.tarball(NO_ENV));
    assertEquals(List.of(new BindMount(tmp.resolve("outside"), "/mnt")), options.binds(NO_ENV));
    assertEquals(Optional.of(tmp.resolve("unpack")), options.unpackDir(NO_ENV));
    Files.createDirectories(tmp.resolve("sub"));
    TestbedOptions prefixed = parse("-p", "sub/u.");
    prefixed.workingDirectory = tmp;
    assertEquals(
        Optional.of(tmp.resolve("sub/u.").toString()),
        prefixed.unpackPrefix(Map.of("TMPDIR", ".")));
  }

  @Test
  void placesTheUnpackDirectoryAsPythonsMkdtemp() throws IOException {
    Path sub = Files.createDirectories(tmp.resolve("t/sub"));
    Map<String, String> env = Map.of("TMPDIR", tmp.resolve("t").toString());
    assertEquals(Optional.of(tmp.resolve("t/uchroot.").toString()), parse().unpackPrefix(env));
    assertEquals(
        Optional.of(tmp.resolve("t/unpack.").toString()), parse("-p", "unpack.").unpackPrefix(env));
    assertEquals(Optional.of(sub + "/u."), parse("--prefix", "sub/u.").unpackPrefix(env));
    assertEquals(
        Optional.of(sub + "/u."),
        parse("--prefix", sub + "/u.").unpackPrefix(Map.of()),
        "an absolute prefix is used as it is");
    assertEquals(Optional.empty(), parse("-u", tmp.resolve("new").toString()).unpackPrefix(env));
    Map<String, String> missing =
        Map.of(
            "TMPDIR", tmp.resolve("nonexistent").toString(), "TEMP", tmp.resolve("t").toString());
    assertEquals(
        Optional.of(tmp.resolve("t/uchroot.").toString()),
        parse().unpackPrefix(missing),
        "a temporary directory that does not exist is passed over");
    assertEquals(Path.of("/tmp"), TestbedOptions.temporaryDirectory(Map.of()));
    CliException e =
        assertThrows(
            CliException.class, () -> parse("-p", "/nonexistent/dir/unpack.").unpackPrefix(env));
    assertEquals(1, e.exitCode().code());
    assertTrue(e.getMessage().contains("/nonexistent/dir is not a directory"), e.getMessage());
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
}
