package org.uchroot.engine;

import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Tag;
import org.uchroot.actors.RootfsMode;

/**
 * The session's job server, in each rootfs mode: the cases are {@link JobServerIntegrationCases}.
 */
@Tag("integration")
class JobServerIntegrationTest {

  @Nested
  class Overlay extends JobServerIntegrationCases {
    @Override
    RootfsMode mode() {
      return RootfsMode.OVERLAY;
    }
  }

  @Nested
  class Unpack extends JobServerIntegrationCases {
    @Override
    RootfsMode mode() {
      return RootfsMode.UNPACK;
    }
  }
}
