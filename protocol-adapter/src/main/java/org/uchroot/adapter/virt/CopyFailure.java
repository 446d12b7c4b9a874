package org.uchroot.adapter.virt;

/** Why a {@code copyup} or {@code copydown} did not complete; each kind ends differently. */
sealed class CopyFailure extends Exception {

  private CopyFailure(String message) {
    super(message, null, false, false);
  }

  /**
   * The command inside the testbed failed, as when the testbed path does not exist. The reference
   * bombs (status 12).
   */
  static final class InTestbed extends CopyFailure {
    InTestbed(String message) {
      super(message);
    }
  }

  /**
   * A host path could not be read or written, or the host's tar failed. The reference dies of the
   * exception (status 16).
   */
  static final class OnHost extends CopyFailure {
    OnHost(String message) {
      super(message);
    }
  }

  /** The copy took longer than the copy timeout; the answer is {@code timeout}. */
  static final class TimedOut extends CopyFailure {
    TimedOut(String message) {
      super(message);
    }
  }
}
