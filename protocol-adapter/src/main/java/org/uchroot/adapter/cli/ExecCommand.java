package org.uchroot.adapter.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.uchroot.adapter.exec.ExecClient;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/**
 * {@code uchroot exec SOCKET CMD...}: the exec client in Java, for when {@code
 * libexec/uchroot-exec} could not be built. {@code print-execute-command} names it then; people do
 * not type it.
 */
@Command(name = "exec", hidden = true, description = "Run CMD through a testbed's exec socket.")
final class ExecCommand implements Callable<Integer> {

  @Parameters(arity = "0..*", paramLabel = "SOCKET CMD")
  List<String> args = new ArrayList<>();

  @Override
  public Integer call() {
    return ExecClient.run(args);
  }
}
