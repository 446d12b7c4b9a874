package org.uchroot.engine;

class OverlayEngineIntegrationTest extends EngineIntegrationTest {
  @Override
  RootfsMode mode() {
    return RootfsMode.OVERLAY;
  }
}
