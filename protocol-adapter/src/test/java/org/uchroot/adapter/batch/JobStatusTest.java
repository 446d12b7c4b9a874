package org.uchroot.adapter.batch;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JobStatusTest {

  @Test
  void autopkgtestsExitStatusesReadAsDebciReadsThem() {
    Map<Integer, JobStatus> expected = new LinkedHashMap<>();
    expected.put(0, JobStatus.pass);
    expected.put(2, JobStatus.pass);
    expected.put(4, JobStatus.fail);
    expected.put(6, JobStatus.fail);
    expected.put(12, JobStatus.fail);
    expected.put(14, JobStatus.fail);
    expected.put(8, JobStatus.neutral);
    expected.put(16, JobStatus.tmpfail);
    expected.put(20, JobStatus.tmpfail);
    expected.put(1, JobStatus.tmpfail);
    expected.forEach(
        (status, verdict) ->
            assertEquals(verdict, JobStatus.ofAutopkgtest(status), "exit " + status));
  }

  @Test
  void sbuildsStatusesReadAsBuilddsReadThem() {
    assertEquals(JobStatus.pass, JobStatus.ofSbuild("successful"));
    assertEquals(JobStatus.fail, JobStatus.ofSbuild("attempted"));
    assertEquals(JobStatus.fail, JobStatus.ofSbuild("failed"));
    assertEquals(JobStatus.tmpfail, JobStatus.ofSbuild("given-back"));
  }

  @Test
  void neutralCountsAsPassed() {
    assertEquals(true, JobStatus.neutral.passed());
    assertEquals(false, JobStatus.tmpfail.passed());
  }
}
