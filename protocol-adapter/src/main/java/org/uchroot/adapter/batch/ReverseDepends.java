package org.uchroot.adapter.batch;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.SessionSpec;
import org.uchroot.engine.Engine;
import org.uchroot.engine.Session;
import org.uchroot.engine.UchrootException;

/**
 * The source packages to test when a package changes, as britney chooses them: those with tests
 * whose binaries depend on one of its binaries (Depends, Pre-Depends), or whose tests name one in
 * {@code Testsuite-Triggers}, and the package itself. Reads apt's Packages and Sources indices as
 * they stream out of a testbed, keeping only the fields it needs.
 */
public final class ReverseDepends extends OutputStream {

  private static final Set<String> WANTED =
      Set.of(
          "package",
          "source",
          "depends",
          "pre-depends",
          "binary",
          "testsuite",
          "testsuite-triggers");

  /** The changed package: a source package's name, or a binary one's. */
  private final String changed;

  /** The binaries of the changed source (or the changed binary itself). */
  private final Set<String> changedBinaries = new HashSet<>();

  /** The source the changed package is, or was built from. */
  private String changedSource;

  /** Sources with tests, and the names their Testsuite-Triggers give. */
  private final Map<String, Set<String>> triggers = new HashMap<>();

  /** Sources of binaries that depend on one of the changed binaries. */
  private final Set<String> depending = new HashSet<>();

  /**
   * @param changed the package whose reverse dependencies are wanted; the indices must come Sources
   *     first, then Packages
   */
  public ReverseDepends(String changed) {
    this.changed = changed;
    changedBinaries.add(changed);
  }

  private final ByteArrayOutputStream line = new ByteArrayOutputStream();
  private final Map<String, StringBuilder> paragraph = new HashMap<>();
  private StringBuilder field;

  @Override
  public void write(int b) {
    if (b == '\n') {
      endLine(line.toString(StandardCharsets.UTF_8));
      line.reset();
    } else {
      line.write(b);
    }
  }

  @Override
  public void write(byte[] bytes, int offset, int length) {
    for (int i = offset; i < offset + length; i++) {
      write(bytes[i]);
    }
  }

  @Override
  public void close() {
    if (line.size() > 0) {
      endLine(line.toString(StandardCharsets.UTF_8));
      line.reset();
    }
    endParagraph();
  }

  private void endLine(String text) {
    if (text.isBlank()) {
      endParagraph();
      return;
    }
    if (text.charAt(0) == ' ' || text.charAt(0) == '\t') {
      if (field != null) {
        field.append(' ').append(text.strip());
      }
      return;
    }
    int colon = text.indexOf(':');
    if (colon <= 0) {
      field = null;
      return;
    }
    String name = text.substring(0, colon).toLowerCase(Locale.ROOT);
    if (WANTED.contains(name)) {
      field = new StringBuilder(text.substring(colon + 1).strip());
      paragraph.put(name, field);
    } else {
      field = null;
    }
  }

  private void endParagraph() {
    field = null;
    if (paragraph.isEmpty()) {
      return;
    }
    String name = value("package");
    if (paragraph.containsKey("binary")) {
      if (name.equals(changed)) {
        changedSource = name;
        changedBinaries.addAll(names(value("binary")));
      }
      if (paragraph.containsKey("testsuite")) {
        triggers
            .computeIfAbsent(name, k -> new HashSet<>())
            .addAll(names(value("testsuite-triggers")));
      }
    } else if (!name.isEmpty()) {
      // "Source: name (version)" where the binary's version differs.
      String source = value("source").isEmpty() ? name : value("source").split("\\s+")[0];
      if (name.equals(changed) && changedSource == null) {
        changedSource = source;
      }
      Set<String> depends = names(value("depends"));
      depends.addAll(names(value("pre-depends")));
      if (depends.stream().anyMatch(changedBinaries::contains)) {
        depending.add(source);
      }
    }
    paragraph.clear();
  }

  private String value(String name) {
    StringBuilder value = paragraph.get(name);
    return value == null ? "" : value.toString();
  }

  /** The package names of a relation or list field: no versions, alternatives each, no arch. */
  static Set<String> names(String field) {
    Set<String> names = new HashSet<>();
    for (String part : field.split("[,|]")) {
      String name = part.strip().split("[\\s(\\[<]", 2)[0];
      int colon = name.indexOf(':');
      if (colon > 0) {
        name = name.substring(0, colon);
      }
      if (!name.isEmpty()) {
        names.add(name);
      }
    }
    return names;
  }

  /**
   * A testbed's setup that gives apt deb-src entries beside its deb ones (a plain mmdebstrap
   * tarball has none), one-line and deb822 alike, and fetches the lists: for the query below, and
   * for autopkgtest to fetch a source by name.
   */
  private static final String DEB_SRC =
      "if [ -f /etc/apt/sources.list ]; then"
          + " sed -n 's/^deb /deb-src /p' /etc/apt/sources.list"
          + " > /etc/apt/sources.list.d/deb-src.list; fi;"
          + " for f in /etc/apt/sources.list.d/*.sources; do"
          + " if [ -f \"$f\" ]; then sed -i 's/^Types: deb$/Types: deb deb-src/' \"$f\"; fi; done;"
          + " apt-get update -q";

  /**
   * Runs in the testbed: deb-src entries beside the deb ones (a plain mmdebstrap tarball has none),
   * apt's lists fetched, then every Sources index and every Packages index on stdout, in that
   * order.
   */
  static final String INDICES =
      String.join(
          "\n",
          "set -e",
          "{ " + DEB_SRC + "; } >&2",
          "for kind in Sources Packages; do",
          "  for f in $(apt-get indextargets --format '$(FILENAME)' \"Created-By: $kind\"); do",
          // An if, not &&: under set -e a loop whose last test fails would end the script.
          "    if [ -f \"$f\" ]; then /usr/lib/apt/apt-helper cat-file \"$f\"; echo; fi",
          "  done",
          "done");

  /**
   * What {@code changed}'s reverse dependencies are, as apt sees them in a fresh testbed of {@code
   * spec}; apt's own progress goes to {@code messages}. Blocks.
   */
  public static ReverseDepends query(
      Engine engine, SessionSpec spec, String changed, OutputStream messages) {
    ReverseDepends found = new ReverseDepends(changed);
    Session session = engine.open(spec).toCompletableFuture().join();
    try {
      ExitStatus status =
          session
              .run(
                  List.of("sh", "-c", INDICES),
                  JobStdio.of(InputStream.nullInputStream(), found, messages))
              .toCompletableFuture()
              .join();
      found.close();
      if (status.shellStatus() != 0) {
        throw new UchrootException(
            "apt in the testbed could not read its package lists (exit status "
                + status.shellStatus()
                + "; its messages are above)");
      }
    } finally {
      session.close().toCompletableFuture().join();
    }
    return found;
  }

  /**
   * Writes a plan of autopkgtest jobs, one per source package, each fetched by name in its testbed
   * (whose deb-src entries the setup adds) and tested against the archive's binaries.
   */
  public static void writePlan(Path file, String changed, Path tarball, List<String> sources)
      throws IOException {
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    ObjectNode plan = yaml.createObjectNode();
    plan.putObject("defaults").put("tarball", tarball.toString());
    ArrayNode jobs = plan.putArray("jobs");
    for (String source : sources) {
      ObjectNode job = jobs.addObject().put("id", source).put("autopkgtest", source);
      ArrayNode options = job.putArray("options");
      options.add("--apt-upgrade");
      options.add("--setup-commands=" + DEB_SRC);
    }
    String header =
        "# Sources with tests that depend on "
            + changed
            + " or name it in Testsuite-Triggers, as apt in "
            + tarball
            + " saw them. Edit, then run: uchroot batch "
            + file.getFileName()
            + "\n";
    Files.writeString(file, header + yaml.writeValueAsString(plan), StandardCharsets.UTF_8);
  }

  /** The sources with tests to run, sorted; empty where apt knows no such package. */
  public List<String> sources() {
    Set<String> chosen = new TreeSet<>();
    for (Map.Entry<String, Set<String>> source : triggers.entrySet()) {
      String name = source.getKey();
      if (name.equals(changedSource)
          || depending.contains(name)
          || source.getValue().stream().anyMatch(changedBinaries::contains)) {
        chosen.add(name);
      }
    }
    return List.copyOf(chosen);
  }

  /** Whether apt knows the changed package, as a source or a binary package. */
  public boolean knowsChanged() {
    return changedSource != null;
  }
}
