package org.uchroot.actors

import java.util.concurrent.atomic.AtomicInteger

import scala.concurrent.duration._

import akka.actor.testkit.typed.scaladsl.{ScalaTestWithActorTestKit, TestProbe}
import akka.actor.typed.ActorRef
import org.scalatest.wordspec.AnyWordSpecLike

class SessionManagerSpec extends ScalaTestWithActorTestKit with AnyWordSpecLike {

  private val grace = new GracePeriods(java.time.Duration.ofHours(1), java.time.Duration.ofHours(1))

  private final class Fixture {
    val fakes = new FakePorts(grace)
    private val ids = new AtomicInteger
    val manager: ActorRef[SessionManager.Command] =
      spawn(SessionManager.create(fakes.ports, () => new SessionId(s"m${ids.incrementAndGet()}")))

    def requestOpen(): TestProbe[SessionActor.OpenReply] = {
      val replies = createTestProbe[SessionActor.OpenReply]()
      manager ! new SessionManager.OpenSession(Fixtures.spec, replies.ref)
      replies
    }

    /** Opens a session whose testbed is named after its id. */
    def open(): SessionActor.Opened = {
      val replies = requestOpen()
      val call = fakes.provisioner.provisions.next()
      call.result.complete(Fixtures.testbed(call.session.value))
      replies.expectMessageType[SessionActor.Opened]
    }

    def startJob(session: SessionActor.Opened): (TestProbe[JobActor.Reply], FakeJob) = {
      val replies = createTestProbe[JobActor.Reply]()
      session.ref ! new SessionActor.RunJob(Fixtures.command("sleep", "9"), replies.ref)
      val launch = fakes.launcher.launches.next()
      launch.testbed shouldBe session.testbed
      val job = launch.start()
      replies.expectMessage(new JobActor.JobStarted(launch.id))
      (replies, job)
    }

    def status(session: SessionActor.Opened): SessionActor.Status = {
      val probe = createTestProbe[SessionActor.Status]()
      session.ref ! new SessionActor.GetStatus(probe.ref)
      probe.receiveMessage()
    }

    def closeAll(): TestProbe[SessionManager.AllClosed] = {
      val replies = createTestProbe[SessionManager.AllClosed]()
      manager ! new SessionManager.CloseAll(replies.ref)
      replies
    }
  }

  "A SessionManager" should {

    "open several sessions, each with its own id and testbed" in {
      val f = new Fixture
      val probes = (1 to 3).map(_ => f.requestOpen())
      val calls = (1 to 3).map(_ => f.fakes.provisioner.provisions.next())
      calls.map(_.session).toSet shouldBe Set("m1", "m2", "m3").map(new SessionId(_))
      calls.foreach(_.spec shouldBe Fixtures.spec)
      // Each client hears about its own session only.
      calls.foreach(call => call.result.complete(Fixtures.testbed(call.session.value)))
      val opened = probes.map(_.expectMessageType[SessionActor.Opened])
      opened.map(_.session) shouldBe Seq("m1", "m2", "m3").map(new SessionId(_))
      opened.foreach(o => o.testbed shouldBe Fixtures.testbed(o.session.value))
      opened.map(_.ref).toSet.size shouldBe 3
      probes.foreach(_.expectNoMessage(Duration.Zero))
    }

    "interrupt the jobs of every session and leave the sessions open" in {
      val f = new Fixture
      val a = f.open()
      val b = f.open()
      val (ra, ja) = f.startJob(a)
      val (_, jb) = f.startJob(b)

      f.manager ! new SessionManager.InterruptAll()
      ja.signals.next() shouldBe Signal.INT
      jb.signals.next() shouldBe Signal.INT
      f.status(a).state shouldBe SessionActor.State.INTERRUPTED
      f.status(b).state shouldBe SessionActor.State.INTERRUPTED
      f.fakes.remover.removals.expectNone()

      ja.exit.complete(new ExitStatus.Exited(130))
      ra.expectMessage(new JobActor.JobCompleted(ja.id, new ExitStatus.Exited(130)))
      // Still usable.
      val (_, jc) = f.startJob(a)
      jc.signals.expectNone(Duration.Zero)
    }

    "kill the jobs of every session at once and leave the sessions open" in {
      val f = new Fixture
      val a = f.open()
      val b = f.open()
      val (_, ja) = f.startJob(a)
      val (_, jb) = f.startJob(b)

      f.manager ! new SessionManager.KillAll()
      ja.signals.next() shouldBe Signal.KILL
      jb.signals.next() shouldBe Signal.KILL
      f.fakes.remover.removals.expectNone()
    }

    "answer CloseAll only after every session's rootfs is removed" in {
      val f = new Fixture
      val a = f.open()
      val b = f.open()
      val (rb, jb) = f.startJob(b)
      val allClosed = f.closeAll()

      jb.signals.next() shouldBe Signal.INT
      // a has no jobs and is taken down at once; b waits for its job.
      val removalA = f.fakes.remover.removals.next()
      removalA.testbed shouldBe a.testbed
      removalA.result.complete(null)
      allClosed.expectNoMessage(100.millis)

      jb.exit.complete(new ExitStatus.Exited(130))
      rb.expectMessage(new JobActor.JobCompleted(jb.id, new ExitStatus.Exited(130)))
      val removalB = f.fakes.remover.removals.next()
      removalB.testbed shouldBe b.testbed
      allClosed.expectNoMessage(100.millis)

      removalB.result.complete(null)
      allClosed.expectMessage(new SessionManager.AllClosed(2, 0))
      val watcher = createTestProbe[Any]()
      watcher.expectTerminated(a.ref)
      watcher.expectTerminated(b.ref)
    }

    "refuse to open sessions once CloseAll was asked" in {
      val f = new Fixture
      f.open()
      val allClosed = f.closeAll()
      val refused = f.requestOpen()
      refused.expectMessageType[SessionActor.OpenFailed].reason should include("shutting down")
      f.fakes.remover.removals.next().result.complete(null)
      allClosed.expectMessage(new SessionManager.AllClosed(1, 0))

      val later = f.requestOpen()
      later.expectMessageType[SessionActor.OpenFailed]
      f.fakes.provisioner.provisions.expectNone()
    }

    "answer CloseAll at once when no session is open" in {
      val f = new Fixture
      f.closeAll().expectMessage(new SessionManager.AllClosed(0, 0))
    }
  }
}
