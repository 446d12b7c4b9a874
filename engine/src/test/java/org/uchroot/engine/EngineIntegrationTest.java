package org.uchroot.engine;

import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Tag;
import org.uchroot.actors.RootfsMode;

/**
 * The embedding API on real namespaces and a busybox rootfs, in each rootfs mode: the cases are
 * {@link EngineIntegrationCases}.
 */
@Tag("integration")
class EngineIntegrationTest {

  @Nested
  class Overlay extends EngineIntegrationCases {
    @Override
    RootfsMode mode() {
      return RootfsMode.OVERLAY;
    }
  }

  @Nested
  class Unpack extends EngineIntegrationCases {
    @Override
    RootfsMode mode() {
      return RootfsMode.UNPACK;
    }
  }
}
