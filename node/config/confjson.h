/* The shared config as one JSON document: what `mailctl export` writes and
 * `mailctl import` reads, and what a node keeps in its snapshot
 * (SPOOL/config.snapshot), so a node's snapshot can be imported too:
 *
 *   {"format": "mailswitch-config", "version": 1, "generation": 42,
 *    "domains": ["example.test"],
 *    "users": [{"address": "alice@example.test", "password": "$y$...",
 *               "quota": 1073741824}],
 *    "aliases": [{"address": "team@example.test",
 *                 "targets": ["alice@example.test"]}],
 *    "settings": {"max_recipients": "50"}}
 *
 * "password" is the crypt(3) hash, or null for a user who cannot log in;
 * "quota" the user's storage limit in bytes, absent when none.
 * "settings" are the cluster-wide node settings (`mailctl config set`),
 * values as strings, the way the INI writes them; a document without
 * them (written before they existed) has none.
 * A document with a member this version does not know (a newer export) is
 * refused whole rather than imported in part. */
#ifndef NODE_CONFJSON_H
#define NODE_CONFJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/strbuf.h"

#define CONFJSON_FORMAT "mailswitch-config"
#define CONFJSON_VERSION 1

struct confjson;

/* Writing: entries are appended as text as they come (no tree: a node
 * writes its snapshot on the event loop, 100k users in milliseconds), in
 * the document's order: every domain, then every user, then every alias,
 * then every setting (a call out of that order fails). */
struct confjson_writer {
	struct strbuf sb;
	int section; /* -1 none yet, 0 domains, 1 users, 2 aliases,
		      * 3 settings */
	bool first;  /* no entry yet in the section */
};

void confjson_writer_init(struct confjson_writer *w, uint64_t gen);
void confjson_writer_free(struct confjson_writer *w);
/* Each returns 0, or -1 (out of memory, past the size cap, out of
 * order). hash may be NULL; quota 0 is none. */
int confjson_write_domain(struct confjson_writer *w, const char *domain);
int confjson_write_user(struct confjson_writer *w, const char *address,
			const char *hash, uint64_t quota);
int confjson_write_alias(struct confjson_writer *w, const char *address,
			 const char *const *targets, size_t ntargets);
int confjson_write_setting(struct confjson_writer *w, const char *key,
			   const char *value);
/* Ends the document and writes it to path, atomically (fd_replace_file,
 * mode 0600: it holds password hashes), or to stdout when path is NULL or
 * "-". Returns 0, or -1 with errno set. */
int confjson_writer_save(struct confjson_writer *w, const char *path);

/* Reading. */

/* Reads path ("-": stdin) and checks its whole layout. Returns the
 * document, or NULL with a reason (file, line, what) in err. */
struct confjson *confjson_load(const char *path, char *err, size_t errlen);
void confjson_free(struct confjson *doc);

uint64_t confjson_generation(const struct confjson *doc);

/* What confjson_walk calls, for each entry in the document's order:
 * domains, then users, then aliases, then settings (setting may be NULL:
 * skipped). A nonzero return stops the walk. */
struct confjson_visitor {
	int (*domain)(void *arg, const char *domain);
	int (*user)(void *arg, const char *address, const char *hash,
		    uint64_t quota); /* quota 0: none */
	int (*alias)(void *arg, const char *address, const char *const *targets,
		     size_t ntargets);
	int (*setting)(void *arg, const char *key, const char *value);
};

/* Returns 0, the first nonzero return of a visitor function, or -1 when
 * out of memory. */
int confjson_walk(const struct confjson *doc, const struct confjson_visitor *v,
		  void *arg);

#endif
