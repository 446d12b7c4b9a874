package org.uchroot.adapter.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Expected values are what Python 3.11's urllib.parse.quote and unquote return. */
class UrlQuotingTest {

  @ParameterizedTest(name = "quote({0}) = {1}")
  @CsvSource(
      delimiter = '|',
      emptyValue = "",
      value = {
        "/tmp/autopkgtest.AbC123 | /tmp/autopkgtest.AbC123",
        "a b,c                   | a%20b%2Cc",
        "café                    | caf%C3%A9",
        "~user/_x-y.z            | ~user/_x-y.z",
        "%                       | %25",
        "100%                    | 100%25",
        "a+b=c&d                 | a%2Bb%3Dc%26d",
        "€                       | %E2%82%AC",
        "😀                      | %F0%9F%98%80",
        "''                      | ''",
      })
  void quotesAsPython(String text, String quoted) {
    assertEquals(quoted, UrlQuoting.quote(text));
  }

  @Test
  void quotesControlCharacters() {
    assertEquals("tab%09here", UrlQuoting.quote("tab\there"));
  }

  @ParameterizedTest(name = "unquote({0}) = {1}")
  @CsvSource(
      delimiter = '|',
      value = {
        "%41%42       | AB",
        "%4           | %4",
        "%zz          | %zz",
        "%e2%82%ac    | €",
        "%E2%82       | \uFFFD",
        "%E2%82x      | \uFFFDx",
        "caf%C3%A9    | café",
        "é%41         | éA",
        "%ff          | \uFFFD",
        "%C3%28       | \uFFFD(",
        "a%20b        | a b",
        "%%41         | %A",
        "%2541        | %41",
        "plain        | plain",
        "%ED%A0%80    | \uFFFD\uFFFD\uFFFD",
        "%F0%9F%98%80 | 😀",
        "%F0%9F%98    | \uFFFD",
      })
  void unquotesAsPython(String quoted, String text) {
    assertEquals(text, UrlQuoting.unquote(quoted));
  }

  @ParameterizedTest(name = "round trip {0}")
  @CsvSource({"/tmp/a b", "x,y%z", "日本語", "'quote\"d'"})
  void unquoteUndoesQuote(String text) {
    assertEquals(text, UrlQuoting.unquote(UrlQuoting.quote(text)));
  }
}
