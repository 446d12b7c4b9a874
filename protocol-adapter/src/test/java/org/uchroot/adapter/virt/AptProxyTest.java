package org.uchroot.adapter.virt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

class AptProxyTest {

  @Test
  void theTestbedsAptGoesThroughTheProxyForHttpAndDirectForHttps() {
    List<String> command = new AptProxy("http://127.0.0.1:3142/").command();
    assertEquals(List.of("sh", "-c"), command.subList(0, 2));
    assertEquals(
        List.of(
            "Acquire::http::Proxy \"http://127.0.0.1:3142/\";",
            "Acquire::https::Proxy \"DIRECT\";"),
        command.subList(5, 7));
  }

  @Test
  void hostNamesAndIpv6AddressesAreTaken() {
    new AptProxy("http://proxy.example.org:8000");
    new AptProxy("http://[::1]:3142/");
  }

  @Test
  void whatAptsConfigurationCannotQuoteIsRefusedInOneLine() {
    for (String bad :
        List.of(
            "https://127.0.0.1:3142/",
            "127.0.0.1:3142",
            "http://host/\"; Dir \"/",
            "http://host:3142/path",
            "http://ho st/",
            "http://host/\n")) {
      IllegalArgumentException refused =
          assertThrows(IllegalArgumentException.class, () -> new AptProxy(bad), bad);
      assertEquals(
          "--apt-proxy takes an http URL such as http://127.0.0.1:3142/, not " + bad,
          refused.getMessage());
    }
  }
}
