package org.uchroot.engine;

class OverlayJobServerIntegrationTest extends JobServerIntegrationTest {
  @Override
  RootfsMode mode() {
    return RootfsMode.OVERLAY;
  }
}
