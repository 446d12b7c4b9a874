package org.uchroot.engine;

class OverlayInterruptIntegrationTest extends InterruptIntegrationTest {
  @Override
  RootfsMode mode() {
    return RootfsMode.OVERLAY;
  }
}
