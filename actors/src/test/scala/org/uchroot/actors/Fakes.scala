package org.uchroot.actors

import java.io.{InputStream, OutputStream}
import java.nio.file.{Path, Paths}
import java.util.Optional
import java.util.concurrent.{CompletableFuture, CompletionException, CompletionStage, LinkedBlockingQueue, TimeUnit}

import scala.concurrent.duration._

import akka.actor.typed.{ActorRef, Behavior, BehaviorInterceptor, TypedActorContext}
import akka.actor.typed.scaladsl.Behaviors
import org.scalatest.Assertions.fail

/** Calls a port received, in order; the test takes them out one by one. */
final class Calls[C <: AnyRef] {
  private val queue = new LinkedBlockingQueue[C]()

  def record(call: C): Unit = queue.put(call)

  /** The next call, waiting for it: the actors call their ports from their own threads. */
  def next(within: FiniteDuration = 3.seconds): C = {
    val call = queue.poll(within.toMillis, TimeUnit.MILLISECONDS)
    if (call == null) fail(s"expected a call within $within")
    call
  }

  /** Fails if a call arrives within `during` (zero: only what has arrived already counts). */
  def expectNone(during: FiniteDuration = 150.millis): Unit = {
    val call = queue.poll(during.toMillis, TimeUnit.MILLISECONDS)
    if (call != null) fail(s"unexpected call: $call")
  }
}

final case class FakeSandbox(name: String) extends Sandbox

object NoStdio extends JobStdio {
  override def stdin(): InputStream = InputStream.nullInputStream()
  override def stdout(): OutputStream = OutputStream.nullOutputStream()
  override def stderr(): OutputStream = OutputStream.nullOutputStream()
}

object Fixtures {
  val spec: SessionSpec = SessionSpec.of(Paths.get("/srv/images/sid.tar.gz"))

  def testbed(name: String, scratch: String = "/tmp/autopkgtest.scratch"): Testbed =
    new Testbed(Paths.get("/var/tmp/uchroot-test", name), scratch, FakeSandbox(name))

  def command(argv: String*): JobSpec = new JobSpec(java.util.List.of(argv: _*), NoStdio)

  /** A failure as the ports' executors report it: wrapped, with the real cause inside. */
  def failure(message: String): Throwable =
    new CompletionException(new java.io.IOException(message))
}

final case class ProvisionCall(session: SessionId, spec: SessionSpec, previous: Optional[Testbed]) {
  val result: CompletableFuture[Testbed] = new CompletableFuture[Testbed]()
}

/** Records each call; nothing happens until the test completes the call's `result`. */
final class FakeProvisioner extends TestbedProvisioner {
  val provisions = new Calls[ProvisionCall]

  override def provision(
      session: SessionId,
      spec: SessionSpec,
      previous: Optional[Testbed]): CompletionStage[Testbed] = {
    val call = ProvisionCall(session, spec, previous)
    provisions.record(call)
    call.result
  }
}

/** A started command: the test ends it through `exit` and reads the signals it was sent. */
final class FakeJob(val id: JobId) extends JobLauncher.RunningJob {
  val exit: CompletableFuture[ExitStatus] = new CompletableFuture[ExitStatus]()
  val signals = new Calls[Signal]

  override def finished(): CompletionStage[ExitStatus] = exit
  override def signal(signal: Signal): Unit = signals.record(signal)
  override def toString: String = s"FakeJob($id)"
}

final case class LaunchCall(testbed: Testbed, id: JobId, spec: JobSpec) {
  val result: CompletableFuture[JobLauncher.RunningJob] =
    new CompletableFuture[JobLauncher.RunningJob]()

  /** Lets the launch succeed: the command's process now exists. */
  def start(): FakeJob = {
    val job = new FakeJob(id)
    result.complete(job)
    job
  }
}

final class FakeLauncher extends JobLauncher {
  val launches = new Calls[LaunchCall]

  override def launch(
      testbed: Testbed,
      id: JobId,
      spec: JobSpec): CompletionStage[JobLauncher.RunningJob] = {
    val call = LaunchCall(testbed, id, spec)
    launches.record(call)
    call.result
  }
}

final case class RemoveCall(testbed: Testbed) {
  val result: CompletableFuture[Void] = new CompletableFuture[Void]()
  def rootfs: Path = testbed.rootfs
}

final class FakeRemover extends TestbedRemover {
  val removals = new Calls[RemoveCall]

  override def remove(testbed: Testbed): CompletionStage[Void] = {
    val call = RemoveCall(testbed)
    removals.record(call)
    call.result
  }
}

final class FakePorts(val grace: GracePeriods) {
  val provisioner = new FakeProvisioner
  val launcher = new FakeLauncher
  val remover = new FakeRemover
  val ports = new SessionActor.Ports(provisioner, launcher, remover, grace)
}

/**
 * Tells `to` the simple class name of each message once the wrapped behaviour has handled it, so
 * a test knows when the state changes and timers of that message are in place. A timer's message
 * is reported under its own name, once unwrapped.
 */
final class ReportProcessed[T](to: ActorRef[String], messages: Class[T])
    extends BehaviorInterceptor[T, T](messages) {
  override def aroundReceive(
      ctx: TypedActorContext[T],
      msg: T,
      target: BehaviorInterceptor.ReceiveTarget[T]): Behavior[T] = {
    val next = target(ctx, msg)
    to ! msg.getClass.getSimpleName
    next
  }
}

object ReportProcessed {
  def apply[T](to: ActorRef[String], messages: Class[T], behavior: Behavior[T]): Behavior[T] =
    Behaviors.intercept(() => new ReportProcessed[T](to, messages))(behavior)
}
