package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.uchroot.actors.BindMount;

/** The job server's options as uchroot-jobd.c reads them: their order, arity and paths. */
class JobServerCommandTest {

  private static final JobServerCommand.Scratch SCRATCH =
      new JobServerCommand.Scratch(Path.of("/t/tb/scratch"), "/tmp/autopkgtest.AbC123");

  @Test
  void anUnpackedTestbedNamesItsRootSocketTestbedAndScratch() {
    JobServerCommand command =
        new JobServerCommand(
            Path.of("/t/tb/root"),
            Path.of("/run/u/s1.jobd.sock"),
            Path.of("/t/tb"),
            Optional.empty(),
            SCRATCH,
            List.of());
    assertEquals(
        List.of(
            "--root",
            "/t/tb/root",
            "--socket",
            "/run/u/s1.jobd.sock",
            "--testbed",
            "/t/tb",
            "--scratch",
            "/t/tb/scratch",
            "/tmp/autopkgtest.AbC123"),
        command.arguments());
  }

  @Test
  void anOverlayComesBeforeTheScratchDirectoryAndBindsLastWithAbsoluteHostPaths() {
    JobServerCommand command =
        new JobServerCommand(
            Path.of("/t/tb/root"),
            Path.of("/run/u/s1.jobd.sock"),
            Path.of("/t/tb"),
            Optional.of(
                new JobServerCommand.Overlay(
                    Path.of("/c/base"),
                    Path.of("/t/tb/upper"),
                    Path.of("/t/tb/work"),
                    "redirect_dir=on")),
            SCRATCH,
            List.of(
                new BindMount(Path.of("data"), "/srv/data"), new BindMount(Path.of("/a b"), "/x")));
    String here = Path.of("data").toAbsolutePath().toString();
    assertEquals(
        List.of(
            "--root",
            "/t/tb/root",
            "--socket",
            "/run/u/s1.jobd.sock",
            "--testbed",
            "/t/tb",
            "--overlay",
            "/c/base",
            "/t/tb/upper",
            "/t/tb/work",
            "redirect_dir=on",
            "--scratch",
            "/t/tb/scratch",
            "/tmp/autopkgtest.AbC123",
            "--bind",
            here,
            "/srv/data",
            "--bind",
            "/a b",
            "/x"),
        command.arguments());
  }
}
