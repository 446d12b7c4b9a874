package org.uchroot.engine;

class UnpackInterruptIntegrationTest extends InterruptIntegrationTest {
  @Override
  RootfsMode mode() {
    return RootfsMode.UNPACK;
  }
}
