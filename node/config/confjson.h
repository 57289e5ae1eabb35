/* The shared config as one JSON document: what `mailctl export` writes and
 * `mailctl import` reads, and what a node keeps in its snapshot
 * (SPOOL/config.snapshot), so a node's snapshot can be imported too:
 *
 *   {"format": "mailswitch-config", "version": 1, "generation": 42,
 *    "domains": ["example.test"],
 *    "users": [{"address": "alice@example.test", "password": "$y$..."}],
 *    "aliases": [{"address": "team@example.test",
 *                 "targets": ["alice@example.test"]}]}
 *
 * "password" is the crypt(3) hash, or null for a user who cannot log in.
 * A document with a member this version does not know (a newer export) is
 * refused whole rather than imported in part. */
#ifndef NODE_CONFJSON_H
#define NODE_CONFJSON_H

#include <stddef.h>
#include <stdint.h>

#define CONFJSON_FORMAT "mailswitch-config"
#define CONFJSON_VERSION 1

struct confjson;

/* An empty document at generation gen. NULL when out of memory. */
struct confjson *confjson_new(uint64_t gen);
void confjson_free(struct confjson *doc);

/* Each returns 0, or -1 when out of memory. hash may be NULL. */
int confjson_add_domain(struct confjson *doc, const char *domain);
int confjson_add_user(struct confjson *doc, const char *address,
		      const char *hash);
int confjson_add_alias(struct confjson *doc, const char *address,
		       char *const *targets, size_t ntargets);

/* Writes doc to path, atomically (fd_replace_file, mode 0600: it holds
 * password hashes), or to stdout when path is NULL or "-". Returns 0, or
 * -1 with errno set. */
int confjson_save(const struct confjson *doc, const char *path);

/* Reads path ("-": stdin) and checks its whole layout. Returns the
 * document, or NULL with a reason (file, line, what) in err. */
struct confjson *confjson_load(const char *path, char *err, size_t errlen);

uint64_t confjson_generation(const struct confjson *doc);

/* What confjson_walk calls, for each entry in the document's order:
 * domains, then users, then aliases. A nonzero return stops the walk. */
struct confjson_visitor {
	int (*domain)(void *arg, const char *domain);
	int (*user)(void *arg, const char *address, const char *hash);
	int (*alias)(void *arg, const char *address, const char *const *targets,
		     size_t ntargets);
};

/* Returns 0, the first nonzero return of a visitor function, or -1 when
 * out of memory. */
int confjson_walk(const struct confjson *doc, const struct confjson_visitor *v,
		  void *arg);

#endif
