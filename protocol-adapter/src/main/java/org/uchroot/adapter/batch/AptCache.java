package org.uchroot.adapter.batch;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.uchroot.adapter.virt.AptProxy;
import org.uchroot.engine.Host;
import org.uchroot.engine.UchrootException;

/**
 * One apt cache for a batch's testbeds: squid, the cache behind Debian's squid-deb-proxy, run as
 * the user on loopback, its cache kept between batches. The testbeds' apt reaches it through {@link
 * AptProxy}, so twenty jobs fetch each index and package once. apt-cacher-ng was the first choice,
 * but its resolver refuses to bind on some hosts ("Error resolving address for binding"); squid
 * binds wherever loopback works.
 *
 * <p>One batch at a time uses a cache directory (a lock says which); a second batch runs without.
 */
public final class AptCache implements AutoCloseable {

  /** Debian's squid, which runs as this user when started by root. */
  private static final String SQUID = "/usr/sbin/squid";

  private static final String SQUID_USER = "proxy";
  private static final Duration READY_WITHIN = Duration.ofSeconds(20);

  private final Path dir;
  private final FileLock lock;
  private final Process squid;
  private final AptProxy proxy;
  private final long logStart;

  private AptCache(Path dir, FileLock lock, Process squid, int port) {
    this.dir = dir;
    this.lock = lock;
    this.squid = squid;
    this.proxy = new AptProxy("http://127.0.0.1:" + port + "/");
    // The log goes on from earlier batches: this one's traffic starts here.
    this.logStart = accessLog().toFile().length();
  }

  /** Whether squid is installed here. */
  public static boolean available() {
    return Files.isExecutable(Path.of(SQUID));
  }

  /**
   * Starts the cache in {@code dir}, made if missing.
   *
   * @throws UchrootException with the reason, when it cannot: the batch then runs without
   */
  public static AptCache start(Path dir) {
    FileLock lock = null;
    try {
      Files.createDirectories(dir);
      FileChannel channel =
          FileChannel.open(
              dir.resolve("lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
      lock = channel.tryLock();
      if (lock == null) {
        channel.close();
        throw new UchrootException("another batch uses the apt cache in " + dir);
      }
      stopLeftOver(dir);
      UserPrincipalLookupService users = dir.getFileSystem().getUserPrincipalLookupService();
      for (String sub : List.of("cache", "log")) {
        Files.createDirectories(dir.resolve(sub));
        if (Host.isRoot()) {
          // squid leaves root for its own user: what it writes must be that user's.
          PosixFileAttributeView owner =
              Files.getFileAttributeView(dir.resolve(sub), PosixFileAttributeView.class);
          owner.setOwner(users.lookupPrincipalByName(SQUID_USER));
          owner.setGroup(users.lookupPrincipalByGroupName(SQUID_USER));
        }
      }
      int port = freePort();
      Path conf = dir.resolve("squid.conf");
      Files.writeString(conf, config(dir, port), StandardCharsets.UTF_8);
      if (!Files.exists(dir.resolve("cache").resolve("00"))) {
        run(List.of(SQUID, "-N", "-z", "-n", service(), "-f", conf.toString()), dir);
      }
      Process squid =
          // In a session of its own: a Ctrl+C meant for the jobs leaves the cache serving.
          new ProcessBuilder("setsid", SQUID, "-N", "-n", service(), "-f", conf.toString())
              .directory(dir.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
              .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("squid.out").toFile()))
              .redirectErrorStream(true)
              .start();
      AptCache cache = new AptCache(dir, lock, squid, port);
      cache.awaitReady(port);
      return cache;
    } catch (IOException e) {
      release(lock);
      throw new UchrootException("cannot start the apt cache in " + dir + ": " + e.getMessage(), e);
    } catch (RuntimeException e) {
      release(lock);
      throw e;
    }
  }

  /** What the testbeds' apt goes through. */
  public AptProxy proxy() {
    return proxy;
  }

  public Path dir() {
    return dir;
  }

  private Path accessLog() {
    return dir.resolve("log").resolve("access.log");
  }

  /** What went through the cache in this batch, from squid's access log. */
  public Traffic traffic() {
    long fetched = 0;
    long cached = 0;
    try (InputStream file = Files.newInputStream(accessLog());
        BufferedReader log =
            new BufferedReader(new InputStreamReader(file, StandardCharsets.UTF_8))) {
      file.skipNBytes(logStart);
      for (String line = log.readLine(); line != null; line = log.readLine()) {
        // time elapsed client CODE/status bytes method URL ...
        String[] fields = line.trim().split("\\s+");
        if (fields.length < 5 || !fields[4].chars().allMatch(Character::isDigit)) {
          continue;
        }
        long bytes = Long.parseLong(fields[4]);
        if (fields[3].contains("HIT")) {
          cached += bytes;
        } else {
          fetched += bytes;
        }
      }
    } catch (IOException | NumberFormatException e) {
      // No log yet, or a line being written: what was read counts.
    }
    return new Traffic(fetched, cached);
  }

  /**
   * Bytes through the cache.
   *
   * @param fetched what squid fetched from the network for the testbeds
   * @param cached what it answered from its cache
   */
  public record Traffic(long fetched, long cached) {
    @Override
    public String toString() {
      return String.format(
          Locale.ROOT, "%.1f MB fetched, %.1f MB from the cache", fetched / 1e6, cached / 1e6);
    }
  }

  /** Stops squid, which has a second to finish what it serves, and its helpers. */
  @Override
  public void close() {
    List<ProcessHandle> helpers = squid.descendants().toList();
    squid.destroy();
    try {
      if (!squid.waitFor(10, TimeUnit.SECONDS)) {
        squid.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
      }
      // Its helpers (unlinkd) end when they read the end of their pipe; one that lingers is killed.
      for (ProcessHandle helper : helpers) {
        try {
          helper.onExit().get(5, TimeUnit.SECONDS);
        } catch (TimeoutException | ExecutionException e) {
          helper.destroyForcibly();
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      squid.destroyForcibly();
      helpers.forEach(ProcessHandle::destroyForcibly);
    }
    release(lock);
  }

  private static String config(Path dir, int port) {
    return String.join(
        "\n",
        "# Written by uchroot batch at every start.",
        "http_port 127.0.0.1:" + port,
        "http_access allow localhost",
        "http_access deny all",
        "pid_filename " + dir.resolve("log").resolve("squid.pid"),
        "cache_dir ufs " + dir.resolve("cache") + " 20000 16 256",
        "maximum_object_size 2 GB",
        "cache_mem 16 MB",
        // Testbeds started together ask for the same indices at once: one fetch serves them all.
        "collapsed_forwarding on",
        "access_log stdio:" + dir.resolve("log").resolve("access.log"),
        "cache_log " + dir.resolve("log").resolve("cache.log"),
        "cache_store_log none",
        "logfile_rotate 0",
        "shutdown_lifetime 1 seconds",
        // The pinger measures peers' distances: there are none, and it would outlive squid.
        "pinger_enable off",
        "coredump_dir " + dir.resolve("cache"),
        // As squid-deb-proxy: packages and by-hash indices never change; the rest is checked.
        "refresh_pattern \\.(u?deb|dsc|tar\\.[a-z0-9]+|diff\\.gz)$ 129600 100% 129600",
        // apt asks for its indices with max-age=0; those by hash cannot change.
        "refresh_pattern /by-hash/ 129600 100% 129600 ignore-reload",
        "refresh_pattern (InRelease|Release|Release\\.gpg)$ 0 0% 0 refresh-ims",
        "refresh_pattern . 0 20% 60 refresh-ims",
        "");
  }

  /** A squid a killed batch left, found by its pid file. */
  private static void stopLeftOver(Path dir) {
    Path pidFile = dir.resolve("log").resolve("squid.pid");
    try {
      long pid = Long.parseLong(Files.readString(pidFile).trim());
      ProcessHandle.of(pid)
          .filter(p -> p.info().command().map(c -> c.endsWith("squid")).orElse(false))
          .ifPresent(
              p -> {
                p.destroy();
                p.onExit().completeOnTimeout(p, 10, TimeUnit.SECONDS).join();
              });
      Files.deleteIfExists(pidFile);
    } catch (IOException | NumberFormatException e) {
      // None left.
    }
    // A squid that was killed leaves its shared memory, and the next one would not start.
    try (DirectoryStream<Path> segments =
        Files.newDirectoryStream(Path.of("/dev/shm"), service() + "-*.shm")) {
      for (Path segment : segments) {
        Files.deleteIfExists(segment);
      }
    } catch (IOException e) {
      // No /dev/shm: squid will say what it lacks.
    }
  }

  /** squid names its shared memory after this: one per user, as the cache directory is. */
  private static String service() {
    return "uchrootapt" + Host.uid();
  }

  private static int freePort() throws IOException {
    try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return probe.getLocalPort();
    }
  }

  private void awaitReady(int port) {
    long deadline = System.nanoTime() + READY_WITHIN.toNanos();
    while (true) {
      try (Socket socket = new Socket()) {
        socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 1000);
        return;
      } catch (IOException notYet) {
        if (!squid.isAlive() || System.nanoTime() > deadline) {
          close();
          throw new UchrootException(
              "squid did not start (see " + dir.resolve("log").resolve("cache.log") + ")");
        }
        try {
          squid.waitFor(50, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          close();
          throw new UchrootException("interrupted while squid started");
        }
      }
    }
  }

  private static void run(List<String> argv, Path dir) throws IOException {
    Process process =
        new ProcessBuilder(argv)
            .directory(dir.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("squid.out").toFile()))
            .redirectErrorStream(true)
            .start();
    try {
      if (!process.waitFor(60, TimeUnit.SECONDS) || process.exitValue() != 0) {
        process.destroyForcibly();
        throw new UchrootException(
            "squid could not make its cache (see " + dir.resolve("squid.out") + ")");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
      throw new UchrootException("interrupted while squid made its cache");
    }
  }

  private static void release(FileLock lock) {
    if (lock == null) {
      return;
    }
    try {
      lock.channel().close();
    } catch (IOException e) {
      // Closing the channel is what releases it; nothing else to do.
    }
  }
}
