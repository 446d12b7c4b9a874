package org.uchroot.engine;

class UnpackJobServerIntegrationTest extends JobServerIntegrationTest {
  @Override
  RootfsMode mode() {
    return RootfsMode.UNPACK;
  }
}
