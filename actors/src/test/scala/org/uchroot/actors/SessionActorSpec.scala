package org.uchroot.actors

import java.util.Optional
import java.util.concurrent.atomic.AtomicInteger

import scala.concurrent.duration._

import akka.actor.testkit.typed.scaladsl.{ScalaTestWithActorTestKit, TestProbe}
import akka.actor.typed.ActorRef
import org.scalatest.wordspec.AnyWordSpecLike
import org.uchroot.actors.SessionActor._

class SessionActorSpec extends ScalaTestWithActorTestKit with AnyWordSpecLike {

  // Long enough that no escalation beyond SIGINT happens while a test runs.
  private val grace = new GracePeriods(java.time.Duration.ofHours(1), java.time.Duration.ofHours(1))
  private val sessions = new AtomicInteger

  private final class Fixture(spec: SessionSpec = Fixtures.spec) {
    val fakes = new FakePorts(grace)
    val id = new SessionId(s"s${sessions.incrementAndGet()}")
    val openReplies = createTestProbe[OpenReply]()
    val session: ActorRef[Command] =
      spawn(SessionActor.create(id, spec, fakes.ports, openReplies.ref))
    val testbed = Fixtures.testbed(id.value)

    def provisioner: FakeProvisioner = fakes.provisioner
    def launcher: FakeLauncher = fakes.launcher
    def remover: FakeRemover = fakes.remover

    def open(): Testbed = {
      val call = provisioner.provisions.next()
      call shouldBe ProvisionCall(id, spec, Optional.empty[Testbed]())
      call.result.complete(testbed)
      openReplies.expectMessage(new Opened(id, testbed, session))
      testbed
    }

    def status(): Status = {
      val probe = createTestProbe[Status]()
      session ! new GetStatus(probe.ref)
      probe.receiveMessage()
    }

    /** Waits until the session counts `n` jobs; it has then handled every earlier job report. */
    def awaitRunningJobs(n: Int): Unit = eventually { status().runningJobs shouldBe n }

    def runJob(argv: String*): TestProbe[JobActor.Reply] = {
      val replies = createTestProbe[JobActor.Reply]()
      session ! new RunJob(Fixtures.command(argv: _*), replies.ref)
      replies
    }

    /** Runs a command on `on` and lets it start. */
    def startJob(on: Testbed = testbed): (TestProbe[JobActor.Reply], FakeJob) = {
      val replies = runJob("sleep", "infinity")
      val launch = launcher.launches.next()
      launch.testbed shouldBe on
      val job = launch.start()
      replies.expectMessage(new JobActor.JobStarted(launch.id))
      (replies, job)
    }

    def close(): TestProbe[CloseReply] = {
      val replies = createTestProbe[CloseReply]()
      session ! new Close(replies.ref)
      replies
    }

    def revert(): TestProbe[RevertReply] = {
      val replies = createTestProbe[RevertReply]()
      session ! new Revert(replies.ref)
      replies
    }

    def interruptJobs(): JobsInterrupted = {
      val replies = createTestProbe[JobsInterrupted]()
      session ! new InterruptJobs(replies.ref)
      replies.receiveMessage()
    }

    def expectRejected(replies: TestProbe[JobActor.Reply]): Unit =
      replies.expectMessageType[JobActor.JobRejected]: Unit

    def expectStopped(): Unit = createTestProbe[Any]().expectTerminated(session)

    def end(job: FakeJob, replies: TestProbe[JobActor.Reply], status: ExitStatus): Unit = {
      job.exit.complete(status)
      replies.expectMessage(new JobActor.JobCompleted(job.id, status))
    }
  }

  "A SessionActor" when {

    "opening" should {

      "provision a fresh testbed and reply Opened" in {
        val f = new Fixture
        val call = f.provisioner.provisions.next()
        call.session shouldBe f.id
        call.spec shouldBe Fixtures.spec
        call.previous shouldBe Optional.empty[Testbed]()
        f.status() shouldBe new Status(f.id, State.OPENING, 0, 0)
        f.openReplies.expectNoMessage(100.millis)

        call.result.complete(f.testbed)
        f.openReplies.expectMessage(new Opened(f.id, f.testbed, f.session))
        f.status() shouldBe new Status(f.id, State.OPEN, 0, 0)
      }

      "reply OpenFailed and stop when provisioning fails" in {
        val f = new Fixture
        f.provisioner.provisions.next().result.completeExceptionally(Fixtures.failure("tar: bad header"))
        f.openReplies.expectMessage(new OpenFailed(f.id, "tar: bad header"))
        f.expectStopped()
        f.remover.removals.expectNone(Duration.Zero)
      }

      "serve the commands sent meanwhile once open, in order" in {
        val f = new Fixture
        val provision = f.provisioner.provisions.next()
        val replies = f.runJob("true")
        val interrupted = createTestProbe[JobsInterrupted]()
        f.session ! new InterruptJobs(interrupted.ref)
        f.launcher.launches.expectNone()
        interrupted.expectNoMessage(Duration.Zero)

        provision.result.complete(f.testbed)
        f.openReplies.expectMessage(new Opened(f.id, f.testbed, f.session))
        val launch = f.launcher.launches.next()
        launch.testbed shouldBe f.testbed
        launch.id shouldBe new JobId(f.id, 1)
        launch.spec.argv shouldBe java.util.List.of("true")
        // The job existed by the time the interrupt was served.
        interrupted.expectMessage(new JobsInterrupted(1))

        val job = launch.start()
        replies.expectMessage(new JobActor.JobStarted(launch.id))
        job.signals.next() shouldBe Signal.INT
        f.end(job, replies, new ExitStatus.Exited(130))
        f.awaitRunningJobs(0)
        f.status().state shouldBe State.INTERRUPTED
      }

      "escalate by the session's own grace periods, where it has them, not the engine's" in {
        val own = new GracePeriods(java.time.Duration.ofMillis(50), java.time.Duration.ofMillis(50))
        val f = new Fixture(Fixtures.spec.withGrace(own))
        f.open()
        val (replies, job) = f.startJob()
        f.interruptJobs() shouldBe new JobsInterrupted(1)
        job.signals.next() shouldBe Signal.INT
        // The engine's grace is an hour: these come from the session's.
        job.signals.next() shouldBe Signal.TERM
        job.signals.next() shouldBe Signal.KILL
        f.end(job, replies, new ExitStatus.Signalled(9))
      }

      "leave a command sent after an interrupt alone" in {
        val f = new Fixture
        val interrupted = createTestProbe[JobsInterrupted]()
        f.session ! new InterruptJobs(interrupted.ref)
        f.open()
        interrupted.expectMessage(new JobsInterrupted(0))
        val (_, job) = f.startJob()
        job.signals.expectNone()
      }

      "close once open when Close came while opening" in {
        val f = new Fixture
        val provision = f.provisioner.provisions.next()
        val closed = f.close()
        f.remover.removals.expectNone()

        provision.result.complete(f.testbed)
        f.openReplies.expectMessage(new Opened(f.id, f.testbed, f.session))
        f.remover.removals.next().result.complete(null)
        closed.expectMessage(new Closed(f.id))
        f.expectStopped()
      }
    }

    "open" should {

      "count running jobs and interrupts in its status" in {
        val f = new Fixture
        f.open()
        val (r1, j1) = f.startJob()
        val (r2, j2) = f.startJob()
        f.status() shouldBe new Status(f.id, State.OPEN, 2, 0)

        // A job whose launch has not completed counts as running too.
        val r3 = f.runJob("make")
        val launch3 = f.launcher.launches.next()
        f.status() shouldBe new Status(f.id, State.OPEN, 3, 0)

        f.end(j1, r1, new ExitStatus.Exited(0))
        f.awaitRunningJobs(2)
        launch3.result.completeExceptionally(Fixtures.failure("fork: out of memory"))
        r3.expectMessage(new JobActor.JobFailed(launch3.id, "fork: out of memory"))
        f.awaitRunningJobs(1)
        f.end(j2, r2, new ExitStatus.Exited(1))
        f.awaitRunningJobs(0)
        f.status() shouldBe new Status(f.id, State.OPEN, 0, 0)
      }

      "number jobs from 1 and run each on the testbed" in {
        val f = new Fixture
        f.open()
        f.runJob("a")
        f.runJob("b")
        val first = f.launcher.launches.next()
        val second = f.launcher.launches.next()
        Set(first.id, second.id) shouldBe Set(new JobId(f.id, 1), new JobId(f.id, 2))
        first.testbed shouldBe f.testbed
        second.testbed shouldBe f.testbed
      }

      "interrupt every job on InterruptJobs and stay open" in {
        val f = new Fixture
        f.open()
        val (r1, j1) = f.startJob()
        val (r2, j2) = f.startJob()

        f.interruptJobs() shouldBe new JobsInterrupted(2)
        j1.signals.next() shouldBe Signal.INT
        j2.signals.next() shouldBe Signal.INT
        f.status() shouldBe new Status(f.id, State.INTERRUPTED, 2, 1)

        f.end(j1, r1, new ExitStatus.Exited(130))
        f.end(j2, r2, new ExitStatus.Signalled(2))
        f.awaitRunningJobs(0)

        // The testbed stays: the client may still run its own cleanup in it.
        f.remover.removals.expectNone(Duration.Zero)
        val (r3, j3) = f.startJob()
        f.status() shouldBe new Status(f.id, State.INTERRUPTED, 1, 1)
        f.interruptJobs() shouldBe new JobsInterrupted(1)
        j3.signals.next() shouldBe Signal.INT
        f.status().interrupts shouldBe 2
        f.end(j3, r3, new ExitStatus.Exited(0))
        f.awaitRunningJobs(0)
        f.interruptJobs() shouldBe new JobsInterrupted(0)
        f.status() shouldBe new Status(f.id, State.INTERRUPTED, 0, 3)
        f.remover.removals.expectNone(Duration.Zero)
        j1.signals.expectNone(Duration.Zero)
        j2.signals.expectNone(Duration.Zero)
      }

      "kill every job at once on KillJobs and stay open" in {
        val f = new Fixture
        f.open()
        val (r1, j1) = f.startJob()
        val (r2, j2) = f.startJob()
        f.interruptJobs()
        j1.signals.next() shouldBe Signal.INT
        j2.signals.next() shouldBe Signal.INT

        val killed = createTestProbe[JobsInterrupted]()
        f.session ! new KillJobs(killed.ref)
        killed.expectMessage(new JobsInterrupted(2))
        j1.signals.next() shouldBe Signal.KILL
        j2.signals.next() shouldBe Signal.KILL
        f.end(j1, r1, new ExitStatus.Signalled(9))
        f.end(j2, r2, new ExitStatus.Signalled(9))
        f.awaitRunningJobs(0)
        f.status().state shouldBe State.INTERRUPTED
        f.remover.removals.expectNone(Duration.Zero)
      }

      "interrupt only the job named by InterruptJob" in {
        val f = new Fixture
        f.open()
        val (_, j1) = f.startJob()
        val (_, j2) = f.startJob()
        f.session ! new InterruptJob(j2.id)
        j2.signals.next() shouldBe Signal.INT
        j1.signals.expectNone()
        // Not a session-wide interrupt.
        f.status() shouldBe new Status(f.id, State.OPEN, 2, 0)
      }
    }

    "closing" should {

      "have the testbed taken down, then reply Closed and stop" in {
        val f = new Fixture
        val testbed = f.open()
        val closed = f.close()

        val removal = f.remover.removals.next()
        removal.testbed shouldBe testbed
        f.status().state shouldBe State.CLOSING
        closed.expectNoMessage(100.millis)

        removal.result.complete(null)
        closed.expectMessage(new Closed(f.id))
        f.expectStopped()
        f.remover.removals.expectNone(Duration.Zero)
      }

      "interrupt running jobs and take the testbed down only after every job has ended" in {
        val f = new Fixture
        val testbed = f.open()
        val (r1, j1) = f.startJob()
        val (r2, j2) = f.startJob()
        val closed = f.close()

        j1.signals.next() shouldBe Signal.INT
        j2.signals.next() shouldBe Signal.INT
        f.status() shouldBe new Status(f.id, State.CLOSING, 2, 0)
        f.remover.removals.expectNone()

        f.end(j1, r1, new ExitStatus.Exited(130))
        f.awaitRunningJobs(1)
        // The session has handled the first job's release: one job still holds mounts.
        f.remover.removals.expectNone(Duration.Zero)

        f.end(j2, r2, new ExitStatus.Signalled(2))
        val removal = f.remover.removals.next()
        removal.testbed shouldBe testbed
        closed.expectNoMessage(100.millis)
        removal.result.complete(null)
        closed.expectMessage(new Closed(f.id))
        f.expectStopped()
        f.remover.removals.expectNone(Duration.Zero)
      }

      "kill the jobs it drains on KillJobs" in {
        val f = new Fixture
        f.open()
        val (replies, job) = f.startJob()
        val closed = f.close()
        job.signals.next() shouldBe Signal.INT

        val killed = createTestProbe[JobsInterrupted]()
        f.session ! new KillJobs(killed.ref)
        killed.expectMessage(new JobsInterrupted(1))
        job.signals.next() shouldBe Signal.KILL
        f.end(job, replies, new ExitStatus.Signalled(9))
        f.remover.removals.next().result.complete(null)
        closed.expectMessage(new Closed(f.id))
      }

      "wait for a job that was still launching" in {
        val f = new Fixture
        f.open()
        val replies = f.runJob("make")
        val launch = f.launcher.launches.next()
        val closed = f.close()
        f.remover.removals.expectNone()

        val job = launch.start()
        replies.expectMessage(new JobActor.JobStarted(launch.id))
        job.signals.next() shouldBe Signal.INT
        f.remover.removals.expectNone()
        f.end(job, replies, new ExitStatus.Exited(130))

        f.remover.removals.next().result.complete(null)
        closed.expectMessage(new Closed(f.id))
      }

      "reply CloseFailed with the reason, and try no second removal, when the teardown fails" in {
        val f = new Fixture
        f.open()
        val closed = f.close()
        f.remover.removals.next().result.completeExceptionally(
          Fixtures.failure("refusing to remove it: still mounted there: /proc"))
        closed.expectMessage(
          new CloseFailed(f.id, "refusing to remove it: still mounted there: /proc"))
        f.expectStopped()
        f.remover.removals.expectNone()
      }

      "reject RunJob at every step" in {
        val f = new Fixture
        f.open()
        val (r1, j1) = f.startJob()
        val closed = f.close()
        j1.signals.next() shouldBe Signal.INT

        // Waiting for the job.
        f.expectRejected(f.runJob("true"))
        f.end(j1, r1, new ExitStatus.Exited(130))
        val removal = f.remover.removals.next()
        // Removing.
        f.expectRejected(f.runJob("true"))
        removal.result.complete(null)
        closed.expectMessage(new Closed(f.id))
        f.launcher.launches.expectNone(Duration.Zero)
      }

      "answer a second Close with the same outcome, and refuse Revert" in {
        val f = new Fixture
        f.open()
        val (r1, j1) = f.startJob()
        val first = f.close()
        j1.signals.next() shouldBe Signal.INT
        val second = f.close()
        val revert = f.revert()
        revert.expectMessageType[RevertFailed]

        f.end(j1, r1, new ExitStatus.Exited(130))
        val removal = f.remover.removals.next()
        val third = f.close()
        removal.result.complete(null)

        first.expectMessage(new Closed(f.id))
        second.expectMessage(new Closed(f.id))
        third.expectMessage(new Closed(f.id))
        // One teardown served all of them.
        f.remover.removals.expectNone(Duration.Zero)
      }

      "answer every Close with CloseFailed when the teardown fails" in {
        val f = new Fixture
        f.open()
        val first = f.close()
        val removal = f.remover.removals.next()
        val second = f.close()
        f.status().state shouldBe State.CLOSING // the second Close is queued before the failure
        removal.result.completeExceptionally(Fixtures.failure("namespace still alive"))
        first.expectMessage(new CloseFailed(f.id, "namespace still alive"))
        second.expectMessage(new CloseFailed(f.id, "namespace still alive"))
      }
    }

    "reverting" should {

      "provision again at once when the testbed is down" in {
        val f = new Fixture
        val old = f.open()
        val reverted = f.revert()

        f.remover.removals.next().result.complete(null)
        val again = f.provisioner.provisions.next()
        again shouldBe ProvisionCall(f.id, Fixtures.spec, Optional.of(old))
        f.remover.removals.expectNone(Duration.Zero)

        val fresh = new Testbed(old.rootfs, old.scratch, FakeSandbox(s"${f.id.value}-fresh"))
        again.result.complete(fresh)
        reverted.expectMessage(new Reverted(fresh))
      }

      "drain, take down and provision again in place of the old testbed" in {
        val f = new Fixture
        val scratch = "/tmp/autopkgtest.XyZ123"
        val provision = f.provisioner.provisions.next()
        val old = Fixtures.testbed(s"${f.id.value}-old", scratch)
        provision.result.complete(old)
        f.openReplies.expectMessage(new Opened(f.id, old, f.session))
        val (r1, j1) = f.startJob(on = old)
        f.interruptJobs()
        j1.signals.next() shouldBe Signal.INT
        f.status().state shouldBe State.INTERRUPTED

        val reverted = f.revert()
        f.status() shouldBe new Status(f.id, State.REVERTING, 1, 1)
        f.remover.removals.expectNone()
        f.end(j1, r1, new ExitStatus.Exited(130))

        val removal = f.remover.removals.next()
        removal.testbed shouldBe old
        f.provisioner.provisions.expectNone()
        removal.result.complete(null)

        val again = f.provisioner.provisions.next()
        // The old testbed names the rootfs and scratch paths to make again.
        again shouldBe ProvisionCall(f.id, Fixtures.spec, Optional.of(old))
        again.previous.get.scratch shouldBe scratch
        f.status().state shouldBe State.REVERTING
        reverted.expectNoMessage(100.millis)

        // Same paths, new namespaces.
        val fresh = new Testbed(old.rootfs, scratch, FakeSandbox(s"${f.id.value}-fresh"))
        again.result.complete(fresh)
        reverted.expectMessage(new Reverted(fresh))
        // Open again, no longer interrupted, and jobs run on the fresh testbed.
        f.status() shouldBe new Status(f.id, State.OPEN, 0, 1)
        val (r2, j2) = f.startJob(on = fresh)
        r2.expectNoMessage(Duration.Zero)
        j2.signals.expectNone(Duration.Zero)
      }

      "serve commands sent while it provisions again once it is open" in {
        val f = new Fixture
        f.open()
        val reverted = f.revert()
        f.remover.removals.next().result.complete(null)
        val again = f.provisioner.provisions.next()

        val replies = f.runJob("true")
        val closed = f.close()
        f.launcher.launches.expectNone()

        val fresh = Fixtures.testbed(s"${f.id.value}-fresh")
        again.result.complete(fresh)
        reverted.expectMessage(new Reverted(fresh))
        val launch = f.launcher.launches.next()
        launch.testbed shouldBe fresh
        val job = launch.start()
        replies.expectMessage(new JobActor.JobStarted(launch.id))

        // The Close queued behind the RunJob is served afterwards too.
        job.signals.next() shouldBe Signal.INT
        f.end(job, replies, new ExitStatus.Exited(130))
        f.remover.removals.next().testbed shouldBe fresh
      }

      "serve a RunJob sent while it drains once it is open" in {
        val f = new Fixture
        f.open()
        val (r1, j1) = f.startJob()
        val reverted = f.revert()
        j1.signals.next() shouldBe Signal.INT

        val replies = f.runJob("true")
        // Held until the testbed is back, not turned away.
        replies.expectNoMessage(100.millis)
        f.end(j1, r1, new ExitStatus.Exited(130))
        f.remover.removals.next().result.complete(null)
        val fresh = Fixtures.testbed(s"${f.id.value}-fresh")
        f.provisioner.provisions.next().result.complete(fresh)
        reverted.expectMessage(new Reverted(fresh))

        val launch = f.launcher.launches.next()
        launch.testbed shouldBe fresh
        launch.start()
        replies.expectMessage(new JobActor.JobStarted(launch.id))
      }

      "leave a command sent after an interrupt that came while it provisions again alone" in {
        val f = new Fixture
        f.open()
        val reverted = f.revert()
        f.remover.removals.next().result.complete(null)
        val again = f.provisioner.provisions.next()

        // A Ctrl+C while the fresh testbed is made: nothing runs then, and nothing later is hit.
        val interrupted = createTestProbe[JobsInterrupted]()
        f.session ! new InterruptJobs(interrupted.ref)
        val fresh = Fixtures.testbed(s"${f.id.value}-fresh")
        again.result.complete(fresh)
        reverted.expectMessage(new Reverted(fresh))
        interrupted.expectMessage(new JobsInterrupted(0))
        val (replies, job) = f.startJob(on = fresh)
        job.signals.expectNone()
        replies.expectNoMessage(Duration.Zero)
      }

      "reply RevertFailed and stop when provisioning again fails" in {
        val f = new Fixture
        f.open()
        val reverted = f.revert()
        f.remover.removals.next().result.complete(null)
        f.provisioner.provisions.next().result.completeExceptionally(Fixtures.failure("disk full"))
        reverted.expectMessage(new RevertFailed("disk full"))
        f.expectStopped()
      }

      "reply RevertFailed, remove nothing more and provision nothing when the teardown fails" in {
        val f = new Fixture
        f.open()
        val reverted = f.revert()
        f.remover.removals.next().result.completeExceptionally(Fixtures.failure("rm: busy"))
        reverted.expectMessage(new RevertFailed("rm: busy"))
        f.expectStopped()
        f.remover.removals.expectNone(Duration.Zero)
        f.provisioner.provisions.expectNone(Duration.Zero)
      }
    }
  }
}
