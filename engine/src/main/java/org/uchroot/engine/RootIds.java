package org.uchroot.engine;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The host ids that root's testbeds run as: root's own subordinate ranges, from /etc/subuid and
 * /etc/subgid; where root has none (a fresh Debian install), a range picked once, as
 * systemd-nspawn's {@code --private-users=pick} picks one, and recorded in the state directory so
 * that every later testbed, and the bases of the cache, keep it.
 */
final class RootIds {

  private static final Logger LOG = LoggerFactory.getLogger(RootIds.class);

  /** Where a picked range is recorded, in the state directory: "UID GID COUNT". */
  static final String RECORD = "root-ids";

  /** One range of 64 Ki ids, as nspawn gives each container, from nspawn's pool. */
  private static final long COUNT = 0x10000;

  private static final long POOL_START = 0x80000;
  private static final long POOL_END = 0x6FFF0000L;

  private final Path stateDir;
  private final Path subuid;
  private final Path subgid;
  private final Path passwd;
  private final Path group;

  RootIds(Path stateDir, Path subuid, Path subgid, Path passwd, Path group) {
    this.stateDir = stateDir;
    this.subuid = subuid;
    this.subgid = subgid;
    this.passwd = passwd;
    this.group = group;
  }

  static RootIds of(Path stateDir) {
    return new RootIds(
        stateDir,
        Path.of("/etc/subuid"),
        Path.of("/etc/subgid"),
        Path.of("/etc/passwd"),
        Path.of("/etc/group"));
  }

  IdMapping.Remapped mapping() {
    Optional<IdMapping.Range> users = Host.subordinateRange(subuid, "root", "0");
    Optional<IdMapping.Range> groups = Host.subordinateRange(subgid, "root", "0");
    if (users.isPresent() && groups.isPresent()) {
      return new IdMapping.Remapped(
          users.get().start(),
          groups.get().start(),
          Math.min(users.get().count(), groups.get().count()));
    }
    Path record = stateDir.resolve(RECORD);
    try {
      if (Files.exists(record)) {
        String[] f = Files.readString(record, StandardCharsets.US_ASCII).trim().split(" ");
        return new IdMapping.Remapped(
            Long.parseLong(f[0]), Long.parseLong(f[1]), Long.parseLong(f[2]));
      }
      IdMapping.Remapped picked = pick();
      Files.createDirectories(stateDir);
      Path partial = Files.createTempFile(stateDir, RECORD, ".new");
      Files.writeString(
          partial,
          picked.uid() + " " + picked.gid() + " " + picked.count() + "\n",
          StandardCharsets.US_ASCII);
      Files.move(partial, record, StandardCopyOption.ATOMIC_MOVE);
      LOG.info(
          "root has no subordinate ids in {}: its testbeds run as host ids {} to {}, recorded in {}",
          subuid,
          picked.uid(),
          picked.uid() + picked.count() - 1,
          record);
      return picked;
    } catch (IOException | RuntimeException e) {
      throw new UchrootException(
          "cannot choose the ids of root's testbeds ("
              + record
              + "): "
              + UchrootException.reason(e)
              + "; give root a range in /etc/subuid and /etc/subgid (see subuid(5))",
          e);
    }
  }

  /** The first range of the pool that no subordinate range, user or group of the host touches. */
  private IdMapping.Remapped pick() throws IOException {
    List<long[]> taken = new ArrayList<>();
    for (Path file : List.of(subuid, subgid)) {
      for (Host.SubordinateLine line : Host.subordinateLines(file)) {
        taken.add(new long[] {line.range().start(), line.range().start() + line.range().count()});
      }
    }
    for (Path file : List.of(passwd, group)) {
      for (String[] f : fields(file)) {
        if (f.length >= 3) {
          taken.add(new long[] {number(f[2]), number(f[2]) + 1});
        }
      }
    }
    for (long start = POOL_START; start + COUNT <= POOL_END; start += COUNT) {
      if (isFree(taken, start, start + COUNT)) {
        return new IdMapping.Remapped(start, start, COUNT);
      }
    }
    throw new IOException("no free range of " + COUNT + " ids left");
  }

  private static boolean isFree(List<long[]> taken, long start, long end) {
    for (long[] t : taken) {
      if (t[0] < end && start < t[1]) {
        return false;
      }
    }
    return true;
  }

  private static List<String[]> fields(Path file) throws IOException {
    List<String[]> lines = new ArrayList<>();
    if (Files.exists(file)) {
      for (String line : Files.readAllLines(file)) {
        lines.add(line.trim().split(":"));
      }
    }
    return lines;
  }

  /** A field that is not a number takes nothing: -1 lies below every range of the pool. */
  private static long number(String field) {
    try {
      return Long.parseLong(field);
    } catch (NumberFormatException e) {
      return -1;
    }
  }
}
