package org.uchroot.actors

import java.util.Optional
import java.util.concurrent.atomic.AtomicLong

import scala.concurrent.duration._

import akka.actor.testkit.typed.scaladsl.{FishingOutcomes, ManualTime, ScalaTestWithActorTestKit}
import org.scalatest.wordspec.AnyWordSpecLike

class JobActorSpec extends ScalaTestWithActorTestKit(ManualTime.config) with AnyWordSpecLike {

  private val manualTime = ManualTime()
  private val beforeTerm = 5.seconds
  private val beforeKill = 3.seconds
  private val grace =
    new GracePeriods(java.time.Duration.ofSeconds(5), java.time.Duration.ofSeconds(3))
  private val sequence = new AtomicLong

  private final class Fixture {
    val launcher = new FakeLauncher
    val session = createTestProbe[SessionActor.Command]()
    val replies = createTestProbe[JobActor.Reply]()
    val processed = createTestProbe[String]()
    val id = new JobId(new SessionId("job-spec"), sequence.incrementAndGet())
    val testbed = Fixtures.testbed("job-spec")
    val spec = Fixtures.command("make", "check")
    val job = spawn(
      ReportProcessed(
        processed.ref,
        classOf[JobActor.Command],
        JobActor.create(id, testbed, spec, launcher, grace, session.ref, replies.ref)))

    /** Lets the launch succeed and waits until the actor has taken the job in. */
    def started(): FakeJob = {
      val fake = launcher.launches.next().start()
      replies.expectMessage(new JobActor.JobStarted(id))
      awaitProcessed("Started")
      fake
    }

    def awaitProcessed(name: String): Unit =
      processed.fishForMessage(3.seconds) { seen =>
        if (seen == name) FishingOutcomes.complete else FishingOutcomes.continueAndIgnore
      }: Unit

    def interrupt(): Unit = {
      job ! new JobActor.Interrupt()
      awaitProcessed("Interrupt")
    }

    /** Lets time pass and waits until the escalation timer that fired has been handled. */
    def timerFires(after: FiniteDuration): Unit = {
      manualTime.timePasses(after)
      awaitProcessed("Escalate")
    }

    def expectEnded(status: ExitStatus): Unit = {
      replies.expectMessage(new JobActor.JobCompleted(id, status))
      session.expectMessage(new SessionActor.JobFinished(id, Optional.of(status)))
      session.expectMessage(new SessionActor.MountsReleased(id))
      session.expectTerminated(job)
    }
  }

  "A JobActor" should {

    "launch the command in the testbed and report JobStarted, then JobCompleted" in {
      val f = new Fixture
      val launch = f.launcher.launches.next()
      launch.testbed shouldBe f.testbed
      launch.id shouldBe f.id
      launch.spec shouldBe f.spec
      f.replies.expectNoMessage(100.millis)

      val job = launch.start()
      f.replies.expectMessage(new JobActor.JobStarted(f.id))
      f.session.expectNoMessage(100.millis)

      job.exit.complete(new ExitStatus.Exited(3))
      // The session hears that the job finished and only then that its mounts are released.
      f.expectEnded(new ExitStatus.Exited(3))
      f.replies.expectNoMessage(100.millis)
      job.signals.expectNone(Duration.Zero)
    }

    "report JobFailed and release the mounts when the launch fails" in {
      val f = new Fixture
      f.launcher.launches.next().result.completeExceptionally(Fixtures.failure("exec: no such file"))

      f.replies.expectMessage(new JobActor.JobFailed(f.id, "exec: no such file"))
      f.session.expectMessage(new SessionActor.JobFinished(f.id, Optional.empty[ExitStatus]()))
      f.session.expectMessage(new SessionActor.MountsReleased(f.id))
      f.session.expectTerminated(f.job)
      f.replies.expectNoMessage(100.millis)
    }

    "report JobFailed and stop, without claiming released mounts, when the end is lost" in {
      val f = new Fixture
      val job = f.started()
      job.exit.completeExceptionally(Fixtures.failure("waitpid: lost child"))

      f.replies.expectMessage(new JobActor.JobFailed(f.id, "waitpid: lost child"))
      // Only the session's watch may count the job as gone; no MountsReleased was earned.
      f.session.expectTerminated(f.job)
      f.session.expectNoMessage(100.millis)
    }

    "deliver an interrupt that came before the job started once it starts" in {
      val f = new Fixture
      val launch = f.launcher.launches.next()
      f.job ! new JobActor.Interrupt()
      f.awaitProcessed("Interrupt")

      val job = launch.start()
      f.replies.expectMessage(new JobActor.JobStarted(f.id))
      job.signals.next() shouldBe Signal.INT
      f.awaitProcessed("Started")

      // The escalation starts from the moment the signal could be delivered.
      manualTime.timePasses(beforeTerm - 1.milli)
      job.signals.expectNone()
      manualTime.timePasses(1.milli)
      job.signals.next() shouldBe Signal.TERM

      job.exit.complete(new ExitStatus.Signalled(15))
      f.expectEnded(new ExitStatus.Signalled(15))
    }

    "escalate SIGINT, SIGTERM and KILL at the grace periods" in {
      val f = new Fixture
      val job = f.started()
      job.signals.expectNone(Duration.Zero)

      f.interrupt()
      job.signals.next() shouldBe Signal.INT

      manualTime.timePasses(beforeTerm - 1.milli)
      job.signals.expectNone()
      f.timerFires(1.milli)
      job.signals.next() shouldBe Signal.TERM

      manualTime.timePasses(beforeKill - 1.milli)
      job.signals.expectNone()
      f.timerFires(1.milli)
      job.signals.next() shouldBe Signal.KILL

      // KILL is the last step, and the job still has to be seen to end.
      manualTime.timePasses(1.hour)
      job.signals.expectNone()
      f.replies.expectNoMessage(Duration.Zero)
      f.session.expectNoMessage(Duration.Zero)

      job.exit.complete(new ExitStatus.Signalled(9))
      f.expectEnded(new ExitStatus.Signalled(9))
    }

    "not restart the escalation on a second interrupt" in {
      val f = new Fixture
      val job = f.started()
      f.interrupt()
      job.signals.next() shouldBe Signal.INT

      manualTime.timePasses(3.seconds)
      f.interrupt()
      job.signals.expectNone()

      // TERM comes at beforeTerm after the first interrupt, not after the second.
      f.timerFires(beforeTerm - 3.seconds)
      job.signals.next() shouldBe Signal.TERM

      manualTime.timePasses(1.second)
      f.interrupt()
      job.signals.expectNone()
      f.timerFires(beforeKill - 1.second)
      job.signals.next() shouldBe Signal.KILL

      f.interrupt()
      manualTime.timePasses(1.hour)
      job.signals.expectNone()

      job.exit.complete(new ExitStatus.Signalled(9))
      f.expectEnded(new ExitStatus.Signalled(9))
    }

    "kill at once on Kill, wherever the escalation stands, and never signal again" in {
      val f = new Fixture
      val job = f.started()
      f.interrupt()
      job.signals.next() shouldBe Signal.INT

      f.job ! new JobActor.Kill()
      f.awaitProcessed("Kill")
      job.signals.next() shouldBe Signal.KILL
      f.job ! new JobActor.Kill()
      f.awaitProcessed("Kill")
      manualTime.timePasses(1.hour)
      job.signals.expectNone()

      job.exit.complete(new ExitStatus.Signalled(9))
      f.expectEnded(new ExitStatus.Signalled(9))
    }

    "begin with KILL when a Kill came before the job started" in {
      val f = new Fixture
      val launch = f.launcher.launches.next()
      f.job ! new JobActor.Interrupt()
      f.awaitProcessed("Interrupt")
      f.job ! new JobActor.Kill()
      f.awaitProcessed("Kill")

      val job = launch.start()
      f.replies.expectMessage(new JobActor.JobStarted(f.id))
      job.signals.next() shouldBe Signal.KILL
      job.signals.expectNone()
      job.exit.complete(new ExitStatus.Signalled(9))
      f.expectEnded(new ExitStatus.Signalled(9))
    }

    "send nothing more once the job exits during the escalation" in {
      val f = new Fixture
      val job = f.started()
      f.interrupt()
      job.signals.next() shouldBe Signal.INT
      f.timerFires(beforeTerm)
      job.signals.next() shouldBe Signal.TERM

      job.exit.complete(new ExitStatus.Signalled(15))
      f.expectEnded(new ExitStatus.Signalled(15))

      manualTime.timePasses(1.hour)
      job.signals.expectNone()
    }

    "send no SIGTERM when the job exits on SIGINT" in {
      val f = new Fixture
      val job = f.started()
      f.interrupt()
      job.signals.next() shouldBe Signal.INT

      job.exit.complete(new ExitStatus.Exited(130))
      f.expectEnded(new ExitStatus.Exited(130))

      manualTime.timePasses(1.hour)
      job.signals.expectNone()
    }
  }
}
