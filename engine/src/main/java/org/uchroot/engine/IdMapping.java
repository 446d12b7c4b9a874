package org.uchroot.engine;

import java.util.ArrayList;
import java.util.List;

/** How ids inside a testbed relate to the host's. */
public sealed interface IdMapping {

  /** Root runs testbeds without a user namespace: ids are the host's. */
  IdMapping HOST = new Host();

  /** The options that put a process in a user namespace with this mapping (none for root). */
  List<String> unshareOptions();

  /**
   * Extra overlayfs mount options. Root keeps overlay metadata in trusted xattrs and can rename
   * directories of the base ({@code redirect_dir}); in a user namespace only user xattrs are
   * allowed, and the kernel refuses redirect_dir with them, so renaming a base directory fails
   * with EXDEV there and tools fall back to copying, as POSIX lets them.
   */
  String overlayOptions();

  record Host() implements IdMapping {
    @Override
    public List<String> unshareOptions() {
      return List.of();
    }

    @Override
    public String overlayOptions() {
      return "redirect_dir=on";
    }
  }

  /** A subordinate id range of /etc/subuid or /etc/subgid. */
  record Range(long start, long count) {}

  /**
   * Root inside is the caller; ids 1..count inside are the caller's subordinate ranges. Mapped
   * explicitly, through newuidmap/newgidmap, rather than with {@code --map-auto}.
   */
  record Subordinate(Range users, Range groups) implements IdMapping {
    @Override
    public List<String> unshareOptions() {
      List<String> options = new ArrayList<>();
      options.add("--user");
      options.add("--map-root-user");
      options.add("--map-users=" + users.start() + ",1," + users.count());
      options.add("--map-groups=" + groups.start() + ",1," + groups.count());
      return options;
    }

    @Override
    public String overlayOptions() {
      return "userxattr";
    }
  }
}
