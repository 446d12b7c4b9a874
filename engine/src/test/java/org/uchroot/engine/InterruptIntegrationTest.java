package org.uchroot.engine;

import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Tag;
import org.uchroot.actors.RootfsMode;

/**
 * Interrupts and closes on real namespaces, in each rootfs mode: the cases are {@link
 * InterruptIntegrationCases}.
 */
@Tag("integration")
class InterruptIntegrationTest {

  @Nested
  class Overlay extends InterruptIntegrationCases {
    @Override
    RootfsMode mode() {
      return RootfsMode.OVERLAY;
    }
  }

  @Nested
  class Unpack extends InterruptIntegrationCases {
    @Override
    RootfsMode mode() {
      return RootfsMode.UNPACK;
    }
  }
}
