package org.uchroot.engine;

class UnpackEngineIntegrationTest extends EngineIntegrationTest {
  @Override
  RootfsMode mode() {
    return RootfsMode.UNPACK;
  }
}
