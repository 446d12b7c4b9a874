/*
 * Testbeds started by root: a user namespace whose root is a subordinate id
 * of the host, never the host's root.
 */
#ifndef UCHROOT_USERNS_H
#define UCHROOT_USERNS_H

#include <sys/types.h>

#include "sandbox.h"

/* Root inside is uid and gid on the host; ids 0..count-1 map to uid.., gid... */
struct id_map {
    unsigned long uid, gid, count;
};

/*
 * As the host's root, makes what the testbed's root may not make itself: the
 * overlay (mounted with the host's privileges, so that directories of the base
 * can be renamed) and detached copies of the bind mounts and of the scratch
 * directory, idmapped so that the testbed's root reads and writes them as the
 * host's root.  Then clones the session's namespaces, owned by a new user
 * namespace with this mapping.
 *
 * Returns in the clone, pid 1 of its pid namespace, running as the
 * namespace's root with sb's descriptors in place.  The calling process never
 * returns: it waits for the clone, then removes socket_path and, if the clone
 * asked for it (userns_ask_removal), deletes testbed and says so on stdout, as
 * a job server that could do it itself would.
 */
void userns_split(struct sandbox *sb, const struct id_map *ids, const char *socket_path,
                  const char *testbed);

/* From the clone: delete the testbed once the session has ended. */
void userns_ask_removal(void);

/* Runs argv in a new user namespace with this mapping, as its root; its exit status. */
int userns_exec(const struct id_map *ids, char **argv);

#endif
