/* The node's in-memory copy of the shared config (domains, users with
 * their password hashes and quotas, aliases, the cluster-wide node
 * settings), loaded from Redis at start and again whenever a change is
 * published on SCHEMA_CHANNEL or the connection comes back. Lookups never
 * wait on Redis: while it is away they answer from the cache, and
 * directory_stale() says so (for /health).
 *
 * Generations: every change raises SCHEMA_GEN. The node remembers the
 * highest generation it loaded and keeps what it loaded in a snapshot
 * (SPOOL/config.snapshot, the format of `mailctl export`). A Redis whose
 * generation is missing or below it lost the config (restarted empty, a
 * failover to a replica that was behind): the node treats it as away,
 * keeps its cache, and checks again every second and on every change
 * published, until a generation at least as high comes (`mailctl
 * import`). A node that starts serves from its snapshot until Redis
 * catches up with it. */
#ifndef NODE_DIRECTORY_H
#define NODE_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/redis.h"

#define DIR_ADDR_MAX 256
#define DIR_MAX_TARGETS 64 /* mailboxes one address may expand to */

struct directory;

#define DIR_SNAPSHOT_NAME "config.snapshot"

struct directory_opts {
	const char *node;  /* this node's name, for SCHEMA_NODES */
	const char *spool; /* where the snapshot lives; NULL: no snapshot */
};

/* Loads the snapshot (if any: the node can serve at once), then starts
 * loading from Redis. */
struct directory *directory_new(struct redis *r,
				const struct directory_opts *opts);
void directory_free(struct directory *d);

/* cb runs after every complete load is swapped in (the first one
 * included), e.g. to start listeners only once the node can answer. One
 * callback; a second call replaces it. */
void directory_on_load(struct directory *d,
		       void (*cb)(struct directory *d, void *arg), void *arg);

/* True once a first full load has succeeded. */
bool directory_loaded(const struct directory *d);
/* True while Redis is away or holds an older generation than this node
 * loaded (the cache may be behind, or Redis is). */
bool directory_stale(const struct directory *d);
/* The generation of the config in the cache (0: none known). */
uint64_t directory_generation(const struct directory *d);

struct node_setting;
/* The cluster-wide node settings (config.h) in the cache, sorted by key,
 * n of them; valid until the next load is swapped in (on_load). */
const struct node_setting *directory_settings(const struct directory *d,
					      size_t *n);
/* Raised whenever the settings in the cache change (a load, or the
 * snapshot at start, brought different ones): a node reapplies them when
 * it moves. */
uint64_t directory_settings_version(const struct directory *d);

/* Case-insensitive. */
bool directory_domain_local(const struct directory *d, const char *domain);

enum dir_result { DIR_OK, DIR_NOT_LOCAL, DIR_UNKNOWN };

/* Resolves address to the local users it delivers to: a user itself, or
 * an alias's targets (aliases of aliases followed up to a depth of 8,
 * duplicates dropped). out receives lowercase addresses. DIR_NOT_LOCAL:
 * the domain is not ours; DIR_UNKNOWN: ours, but nobody. */
enum dir_result directory_resolve(const struct directory *d,
				  const char *address,
				  char (*out)[DIR_ADDR_MAX], size_t max,
				  size_t *n);

/* Forwarding: the addresses outside the local domains that the local
 * address leads to through aliases (the same walk as directory_resolve,
 * which leaves them out), lowercase, each once, at most max. Returns how
 * many. */
size_t directory_forwards(const struct directory *d, const char *address,
			  char (*out)[DIR_ADDR_MAX], size_t max);

/* The crypt(3) hash of user address, or NULL if no such user. */
const char *directory_password_hash(const struct directory *d,
				    const char *address);

/* User address's storage limit in bytes (`mailctl user quota`), 0 when
 * none or no such user. */
uint64_t directory_quota(const struct directory *d, const char *address);

#endif
