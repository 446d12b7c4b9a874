package org.uchroot.adapter.protocol;

/**
 * A request the server cannot serve. The reference answers every one of these the same way: it
 * closes the testbed, prints {@code <VirtSubproc>: failure: MESSAGE} on stderr and exits 12. The
 * factories give the reference's exact wording.
 */
public final class ProtocolError extends Exception {

  private ProtocolError(String message) {
    super(message, null, false, false);
  }

  public static ProtocolError of(String message) {
    return new ProtocolError(message);
  }

  public static ProtocolError unknownCommand(String word) {
    return of("unknown command `" + word + "'");
  }

  public static ProtocolError tooFewArguments(String word) {
    return of("too few arguments to command `" + word + "'");
  }

  public static ProtocolError tooManyArguments(String word) {
    return of("too many arguments to command `" + word + "'");
  }

  /** For the commands whose message names them with quotes, such as {@code `close'}. */
  public static ProtocolError notOpen(Verb verb) {
    return of("`" + verb.protocolName() + "' when not open");
  }

  public static ProtocolError alreadyOpen() {
    return of("`open' when already open");
  }

  public static ProtocolError notAdvertised(Verb verb) {
    String name = verb.protocolName();
    return of("`" + name + "' when `" + name + "' not advertised");
  }

  /** Copy messages name the command as the caller spelt it, without quotes. */
  public static ProtocolError copyNotOpen(String word) {
    return of(word + " when not open");
  }

  public static ProtocolError copyPathsEmpty(String word) {
    return of(word + " paths must be nonempty");
  }

  public static ProtocolError copyDirectoryness(String word) {
    return of(word + " paths must agree about directoryness (presence or absence of trailing /)");
  }

  public static ProtocolError endOfFile() {
    return of("end of file - caller quit?");
  }
}
