package org.uchroot.adapter.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BatchCommandTest {

  @Test
  void blankLinesAndCommentsAreSkippedAndLinesKeepTheirNumbers(@TempDir Path tmp) throws Exception {
    Path file = Files.writeString(tmp.resolve("batch"), "echo a\n\n# not this\n  echo b  \n");
    assertEquals(
        List.of(new BatchCommand.Line(1, "echo a"), new BatchCommand.Line(4, "echo b")),
        BatchCommand.read(file));
  }

  @Test
  void outputIsWrittenAsWholePrefixedLines() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    BatchCommand.LinePrefixer first = new BatchCommand.LinePrefixer("[1] ", out);
    BatchCommand.LinePrefixer second = new BatchCommand.LinePrefixer("[2] ", out);
    first.write("hal".getBytes(StandardCharsets.UTF_8), 0, 3);
    second.write("other\n".getBytes(StandardCharsets.UTF_8), 0, 6);
    first.write("f\ntail".getBytes(StandardCharsets.UTF_8), 0, 6);
    first.close();
    assertEquals("[2] other\n[1] half\n[1] tail\n", bytes.toString(StandardCharsets.UTF_8));
  }
}
