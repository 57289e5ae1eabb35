/* mailctl: edits the shared config in Redis (node/schema.h) that every
 * mailnode caches. Each change is one MULTI/EXEC under WATCH of the keys
 * its checks read (retried when another mailctl got there first), bumps
 * ms:config:gen in the same transaction, then PUBLISHes the new
 * generation on ms:config so every node reloads at once. import and wipe
 * replace the whole config and SET the generation above every node's
 * (node/config/directory.h), so nodes that kept an older Redis's config
 * take theirs.
 *
 * Synchronous hiredis is right here: one short-lived process, every call
 * bounded by a connect and a command timeout. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "../common/decimal.h"
#include "../common/redis.h"
#include "auth/auth.h"
#include "config/config.h"
#include "config/confjson.h"
#include "config/directory.h"
#include "config/schema.h"
#include "store/quota.h"
#include "mailctl_dkim.h"
#include "mailctl_queue.h"
#include "mailctl_quota.h"

#define CTL_DEFAULT_REDIS "127.0.0.1:6379"
#define CTL_CONNECT_TIMEOUT_S 3
#define CTL_COMMAND_TIMEOUT_S 5
#define CTL_RETRIES 10 /* transactions lost to a concurrent change */
#define CTL_PASSWORD_MAX 1024
#define CTL_HASH_MAX 256
#define CTL_KEY_MAX (DIR_ADDR_MAX + 32)

enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2, CTL_RETRY = -1 };

struct ctl {
	redisContext *c;
	struct redis_opts opts;
	char addr[300];	  /* for messages */
	const char *what; /* "user add", for messages */
	char *args[2];	  /* positional arguments (lowercased but file names) */
	int nargs;
	bool password_stdin; /* --password-stdin given */
	bool yes;	     /* --yes given (wipe) */
	const char *store;   /* the shared store (-s), for quota-recount */
	uint64_t set_gen;    /* commit SETs this generation; 0: INCR */
	int queued;	     /* commands appended, replies not read */
};

struct ctl_cmd {
	const char *object, *verb;
	int min, max;  /* positional arguments */
	bool password; /* takes --password-stdin */
	int (*fn)(struct ctl *x);
	const char *usage;
};

static void ctl_usage(FILE *f);

/* "mailctl: COMMAND: message (redis HOST:PORT)": the address once a
 * connection was tried, so an operator with several clusters sees which
 * one said no. */
static void __attribute__((format(printf, 2, 3)))
ctl_error(const struct ctl *x, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mailctl: %s: ", x->what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (x->c)
		fprintf(stderr, " (redis %s)", x->addr);
	fputc('\n', stderr);
}

/* Syntax. */

/* A domain: dot-separated labels of letters, digits and hyphens, no label
 * empty, longer than 63 or starting or ending with a hyphen. */
static bool
ctl_domain_valid(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char ch = d[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!(isalnum((unsigned char)ch) || ch == '-'))
			return false;
		if (label == 0 && ch == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

/* A local part: printable, no space, control byte, '/', '\\', quotes or
 * the specials that need quoting; no leading, trailing or double dot.
 * Bytes over 0x7f pass (SMTPUTF8). */
static bool
ctl_local_valid(const char *s, size_t len)
{
	if (len == 0 || len > 64 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= ' ' || ch == 0x7f || strchr("/\\\"<>(),;:[]@", ch))
			return false;
		if (ch == '.' && s[i + 1] == '.')
			return false;
	}
	return true;
}

/* One '@', a valid local part and a valid domain. */
static bool
ctl_address_valid(const char *a)
{
	const char *at = strchr(a, '@');

	if (at == NULL || strchr(at + 1, '@') != NULL ||
	    strlen(a) >= DIR_ADDR_MAX)
		return false;
	return ctl_local_valid(a, (size_t)(at - a)) && ctl_domain_valid(at + 1);
}

static void
ctl_lower(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static const char *
ctl_domain_of(const char *address)
{
	return strchr(address, '@') + 1;
}

/* Redis. */

static int
ctl_connect(struct ctl *x)
{
	struct timeval ct = {CTL_CONNECT_TIMEOUT_S, 0};
	struct timeval rt = {CTL_COMMAND_TIMEOUT_S, 0};
	redisReply *rep;

	x->c = redisConnectWithTimeout(x->opts.host, x->opts.port, ct);
	if (x->c == NULL || x->c->err) {
		fprintf(stderr, "mailctl: %s: cannot connect to redis %s: %s\n",
			x->what, x->addr,
			x->c ? x->c->errstr : "out of memory");
		redisFree(x->c);
		x->c = NULL;
		return -1;
	}
	if (redisSetTimeout(x->c, rt) != REDIS_OK) {
		ctl_error(x, "cannot set a timeout");
		return -1;
	}
	if (x->opts.password[0] == '\0')
		return 0;
	rep = redisCommand(x->c, "AUTH %s", x->opts.password);
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		ctl_error(x, "AUTH failed: %s", rep ? rep->str : x->c->errstr);
		freeReplyObject(rep);
		return -1;
	}
	freeReplyObject(rep);
	return 0;
}

/* Runs a command. Returns the reply, or NULL (after saying why) on a lost
 * connection, a timeout or an error reply. */
static redisReply *
ctl_redis(struct ctl *x, const char *fmt, ...)
{
	redisReply *rep;
	va_list ap;

	va_start(ap, fmt);
	rep = redisvCommand(x->c, fmt, ap);
	va_end(ap);
	if (rep == NULL) {
		ctl_error(x, "%s",
			  x->c->errstr[0] ? x->c->errstr : "no answer");
		return NULL;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		ctl_error(x, "%s", rep->str);
		freeReplyObject(rep);
		return NULL;
	}
	return rep;
}

/* An integer command (SISMEMBER, SCARD, EXISTS): the value, or -1. */
static long long
ctl_redis_int(struct ctl *x, const char *fmt, const char *a, const char *b)
{
	redisReply *rep = ctl_redis(x, fmt, a, b);
	long long v = -1;

	if (rep && rep->type == REDIS_REPLY_INTEGER)
		v = rep->integer;
	else if (rep)
		ctl_error(x, "unexpected reply");
	freeReplyObject(rep);
	return v;
}

static int
ctl_simple(struct ctl *x, const char *fmt, ...)
{
	redisReply *rep;
	va_list ap;

	va_start(ap, fmt);
	rep = redisvCommand(x->c, fmt, ap);
	va_end(ap);
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		ctl_error(x, "%s",
			  rep ? rep->str
			      : (x->c->errstr[0] ? x->c->errstr : "no answer"));
		freeReplyObject(rep);
		return -1;
	}
	freeReplyObject(rep);
	return 0;
}

static void
ctl_unwatch(struct ctl *x)
{
	freeReplyObject(redisCommand(x->c, "UNWATCH"));
}

/* Ends a transaction opened with MULTI: bumps the version, EXEC, then
 * PUBLISH. Returns CTL_OK, CTL_FAIL, or CTL_RETRY when a watched key
 * changed and nothing was applied. */
static int
ctl_commit(struct ctl *x)
{
	redisReply *rep, *ver;
	long long version;

	if (x->set_gen ? ctl_simple(x, "SET %s %" PRIu64, SCHEMA_GEN,
				    x->set_gen) < 0 ||
			     ctl_simple(x, "GET %s", SCHEMA_GEN) < 0
		       : ctl_simple(x, "INCR %s", SCHEMA_GEN) < 0)
		goto discard;
	rep = ctl_redis(x, "EXEC");
	if (rep == NULL)
		return CTL_FAIL;
	if (rep->type == REDIS_REPLY_NIL) {
		freeReplyObject(rep);
		return CTL_RETRY;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
		ctl_error(x, "unexpected EXEC reply");
		freeReplyObject(rep);
		return CTL_FAIL;
	}
	for (size_t i = 0; i < rep->elements; i++)
		if (rep->element[i]->type == REDIS_REPLY_ERROR) {
			ctl_error(x, "%s", rep->element[i]->str);
			freeReplyObject(rep);
			return CTL_FAIL;
		}
	ver = rep->element[rep->elements - 1];
	version = ver->type == REDIS_REPLY_INTEGER  ? ver->integer
		  : ver->type == REDIS_REPLY_STRING ? atoll(ver->str)
						    : 0;
	freeReplyObject(rep);
	if (ctl_simple(x, "PUBLISH %s %lld", SCHEMA_CHANNEL, version) < 0) {
		fprintf(stderr,
			"mailctl: %s: applied, but the nodes were not told; "
			"they see it on their next reload\n",
			x->what);
		return CTL_FAIL;
	}
	return CTL_OK;
discard:
	freeReplyObject(redisCommand(x->c, "DISCARD"));
	return CTL_FAIL;
}

/* Watches up to three keys (NULL ends the list early). */
static int
ctl_watch(struct ctl *x, const char *k1, const char *k2, const char *k3)
{
	const char *argv[4] = {"WATCH", k1, k2, k3};
	int argc = 2 + (k2 != NULL) + (k2 && k3);
	redisReply *rep = redisCommandArgv(x->c, argc, argv, NULL);
	int rc = rep && rep->type != REDIS_REPLY_ERROR ? 0 : -1;

	if (rc < 0)
		ctl_error(x, "WATCH: %s", rep ? rep->str : x->c->errstr);
	freeReplyObject(rep);
	return rc;
}

static void
ctl_key(char *out, const char *prefix, const char *name)
{
	snprintf(out, CTL_KEY_MAX, "%s%s", prefix, name);
}

/* Is name in set key? 1, 0, or -1 on error. */
static int
ctl_member(struct ctl *x, const char *key, const char *name)
{
	return (int)ctl_redis_int(x, "SISMEMBER %s %s", key, name);
}

static int
ctl_cmp_reply(const void *a, const void *b)
{
	return strcmp((*(redisReply *const *)a)->str,
		      (*(redisReply *const *)b)->str);
}

/* SMEMBERS key, sorted. NULL on error. */
static redisReply *
ctl_members(struct ctl *x, const char *key)
{
	redisReply *rep = ctl_redis(x, "SMEMBERS %s", key);

	if (rep == NULL)
		return NULL;
	if (rep->type != REDIS_REPLY_ARRAY) {
		ctl_error(x, "%s is not a set", key);
		freeReplyObject(rep);
		return NULL;
	}
	for (size_t i = 0; i < rep->elements; i++)
		if (rep->element[i]->type != REDIS_REPLY_STRING) {
			ctl_error(x, "%s: unexpected member", key);
			freeReplyObject(rep);
			return NULL;
		}
	if (rep->elements > 1)
		qsort(rep->element, rep->elements, sizeof(*rep->element),
		      ctl_cmp_reply);
	return rep;
}

/* Prints the members of set key, sorted, one a line. */
static int
ctl_print_set(struct ctl *x, const char *key)
{
	redisReply *rep = ctl_members(x, key);

	if (rep == NULL)
		return -1;
	for (size_t i = 0; i < rep->elements; i++)
		printf("%s\n", rep->element[i]->str);
	freeReplyObject(rep);
	return 0;
}

/* HGETALL of the cluster settings, its pairs sorted by key. NULL on
 * error. */
static redisReply *
ctl_settings(struct ctl *x)
{
	redisReply *rep = ctl_redis(x, "HGETALL %s", SCHEMA_SETTINGS);

	if (rep == NULL)
		return NULL;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
		ctl_error(x, "%s is not a hash", SCHEMA_SETTINGS);
		freeReplyObject(rep);
		return NULL;
	}
	for (size_t i = 0; i < rep->elements; i++)
		if (rep->element[i]->type != REDIS_REPLY_STRING) {
			ctl_error(x, "%s: unexpected member", SCHEMA_SETTINGS);
			freeReplyObject(rep);
			return NULL;
		}
	/* Each KEY VALUE pair moves as one: ordered by its key. */
	if (rep->elements > 2)
		qsort(rep->element, rep->elements / 2,
		      2 * sizeof(*rep->element), ctl_cmp_reply);
	return rep;
}

/* Passwords. */

static int
ctl_read_line(FILE *f, char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, f) == NULL)
		return -1;
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(f))
		return -1; /* longer than the buffer */
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return 0;
}

/* Prompts on the terminal with echo off. */
static int
ctl_prompt(FILE *tty, const char *prompt, char *buf, size_t len)
{
	struct termios old, quiet;
	int fd = fileno(tty), rc;

	if (tcgetattr(fd, &old) < 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	/* Echo off before the prompt shows, so nothing typed after it is
	 * echoed or flushed. */
	if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0)
		return -1;
	fputs(prompt, tty);
	fflush(tty);
	rc = ctl_read_line(tty, buf, len);
	tcsetattr(fd, TCSAFLUSH, &old);
	return rc;
}

/* Reads a new password (stdin or terminal) and hashes it into hash. */
static int
ctl_new_password(struct ctl *x, char *hash, size_t hashlen)
{
	char pw[CTL_PASSWORD_MAX], again[CTL_PASSWORD_MAX];
	FILE *tty = NULL;
	int rc = -1;

	again[0] = '\0';
	if (x->password_stdin) {
		if (ctl_read_line(stdin, pw, sizeof(pw)) < 0) {
			ctl_error(x,
				  "no password line on stdin (or longer "
				  "than %d bytes)",
				  CTL_PASSWORD_MAX - 2);
			goto out;
		}
	} else {
		tty = fopen("/dev/tty", "r+");
		if (tty == NULL) {
			ctl_error(x, "no terminal to ask for the password; "
				     "use --password-stdin");
			goto out;
		}
		char prompt[DIR_ADDR_MAX + 32];
		snprintf(prompt, sizeof(prompt),
			 "Password for %s: ", x->args[0]);
		if (ctl_prompt(tty, prompt, pw, sizeof(pw)) < 0 ||
		    ctl_prompt(tty, "Retype password: ", again, sizeof(again)) <
			0) {
			ctl_error(x, "could not read the password");
			goto out;
		}
		if (strcmp(pw, again) != 0) {
			ctl_error(x, "the passwords do not match");
			goto out;
		}
	}
	if (pw[0] == '\0') {
		ctl_error(x, "empty password refused");
		goto out;
	}
	if (auth_hash(pw, hash, hashlen) < 0) {
		ctl_error(x, "cannot hash the password (libcrypt)");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(again, sizeof(again));
	if (tty)
		fclose(tty);
	return rc;
}

/* Transactions. */

/* Runs prepare (WATCH, checks, MULTI, the changes queued) and commits,
 * again while a watched key changed under it. prepare returns CTL_OK to
 * commit, or CTL_FAIL after saying why (and UNWATCH or DISCARD). */
static int
ctl_transaction(struct ctl *x, int (*prepare)(struct ctl *x, void *arg),
		void *arg)
{
	for (int i = 0; i < CTL_RETRIES; i++) {
		int rc = prepare(x, arg);
		if (rc != CTL_OK)
			return rc;
		rc = ctl_commit(x);
		if (rc != CTL_RETRY)
			return rc;
	}
	ctl_error(x, "the config kept changing during the change; try again");
	return CTL_FAIL;
}

/* After the checks of a prepare: MULTI. */
static int
ctl_multi(struct ctl *x)
{
	if (ctl_simple(x, "MULTI") < 0) {
		ctl_unwatch(x);
		return CTL_FAIL;
	}
	return CTL_OK;
}

/* A queued change failed: DISCARD. */
static int
ctl_discard(struct ctl *x)
{
	freeReplyObject(redisCommand(x->c, "DISCARD"));
	return CTL_FAIL;
}

/* A check failed: UNWATCH. */
static int
ctl_refuse(struct ctl *x)
{
	ctl_unwatch(x);
	return CTL_FAIL;
}

/* Checks that domain exists: 1 yes, 0 no (said so), -1 error. */
static int
ctl_need_domain(struct ctl *x, const char *domain)
{
	int m = ctl_member(x, SCHEMA_DOMAINS, domain);

	if (m == 0)
		ctl_error(x, "domain %s does not exist (mailctl domain add %s)",
			  domain, domain);
	return m;
}

static int
ctl_check_domain_arg(struct ctl *x, const char *domain)
{
	if (!ctl_domain_valid(domain)) {
		ctl_error(x, "invalid domain \"%s\"", domain);
		return -1;
	}
	return 0;
}

static int
ctl_check_address_arg(struct ctl *x, const char *address)
{
	if (!ctl_address_valid(address)) {
		ctl_error(x,
			  "invalid address \"%s\" (one @, no spaces, control "
			  "bytes, '/' or '..')",
			  address);
		return -1;
	}
	return 0;
}

/* domain add|del|list */

static int
ctl_domain_add_prepare(struct ctl *x, void *arg)
{
	const char *d = x->args[0];
	int m;

	(void)arg;
	if (ctl_watch(x, SCHEMA_DOMAINS, NULL, NULL) < 0)
		return CTL_FAIL;
	m = ctl_member(x, SCHEMA_DOMAINS, d);
	if (m != 0) {
		if (m > 0)
			ctl_error(x, "domain %s already exists", d);
		return ctl_refuse(x);
	}
	if (ctl_multi(x) != CTL_OK)
		return CTL_FAIL;
	if (ctl_simple(x, "SADD %s %s", SCHEMA_DOMAINS, d) < 0)
		return ctl_discard(x);
	return CTL_OK;
}

static int
ctl_domain_add(struct ctl *x)
{
	if (ctl_check_domain_arg(x, x->args[0]) < 0 || ctl_connect(x) < 0)
		return CTL_FAIL;
	return ctl_transaction(x, ctl_domain_add_prepare, NULL);
}

static int
ctl_domain_del_prepare(struct ctl *x, void *arg)
{
	const char *d = x->args[0];
	char users[CTL_KEY_MAX], aliases[CTL_KEY_MAX], key[CTL_KEY_MAX];
	redisReply *al = NULL;
	long long n;
	int m;

	(void)arg;
	ctl_key(users, SCHEMA_USERS_PREFIX, d);
	ctl_key(aliases, SCHEMA_ALIASES_PREFIX, d);
	if (ctl_watch(x, SCHEMA_DOMAINS, users, aliases) < 0)
		return CTL_FAIL;
	m = ctl_member(x, SCHEMA_DOMAINS, d);
	if (m != 1) {
		if (m == 0)
			ctl_error(x, "no such domain %s", d);
		return ctl_refuse(x);
	}
	n = ctl_redis_int(x, "SCARD %s", users, NULL);
	if (n != 0) {
		if (n > 0)
			ctl_error(x,
				  "domain %s still has %lld user%s; delete "
				  "them first (mailctl user list %s)",
				  d, n, n == 1 ? "" : "s", d);
		return ctl_refuse(x);
	}
	al = ctl_members(x, aliases);
	if (al == NULL || ctl_multi(x) != CTL_OK) {
		freeReplyObject(al);
		return al ? CTL_FAIL : ctl_refuse(x);
	}
	for (size_t i = 0; i < al->elements; i++) {
		ctl_key(key, SCHEMA_ALIAS_PREFIX, al->element[i]->str);
		if (ctl_simple(x, "DEL %s", key) < 0)
			goto fail;
	}
	if (ctl_simple(x, "SREM %s %s", SCHEMA_DOMAINS, d) < 0 ||
	    ctl_simple(x, "DEL %s %s", aliases, users) < 0)
		goto fail;
	freeReplyObject(al);
	return CTL_OK;
fail:
	freeReplyObject(al);
	return ctl_discard(x);
}

static int
ctl_domain_del(struct ctl *x)
{
	if (ctl_check_domain_arg(x, x->args[0]) < 0 || ctl_connect(x) < 0)
		return CTL_FAIL;
	return ctl_transaction(x, ctl_domain_del_prepare, NULL);
}

static int
ctl_domain_list(struct ctl *x)
{
	if (ctl_connect(x) < 0 || ctl_print_set(x, SCHEMA_DOMAINS) < 0)
		return CTL_FAIL;
	return CTL_OK;
}

/* user add|del|passwd|list */

/* Checks that address's domain exists and whether address is a user:
 * returns 1 user, 0 not, -1 error or missing domain (said so). Fails too
 * when the address is an alias and is_alias_error is set. */
static int
ctl_user_state(struct ctl *x, const char *a, bool alias_is_error)
{
	char key[CTL_KEY_MAX];
	const char *d = ctl_domain_of(a);
	int m;

	if (ctl_need_domain(x, d) != 1)
		return -1;
	if (alias_is_error) {
		ctl_key(key, SCHEMA_ALIASES_PREFIX, d);
		m = ctl_member(x, key, a);
		if (m != 0) {
			if (m > 0)
				ctl_error(x,
					  "%s is an alias (mailctl alias "
					  "list %s)",
					  a, d);
			return -1;
		}
	}
	ctl_key(key, SCHEMA_USERS_PREFIX, d);
	return ctl_member(x, key, a);
}

static int
ctl_user_add_prepare(struct ctl *x, void *arg)
{
	const char *a = x->args[0], *hash = arg;
	char users[CTL_KEY_MAX], user[CTL_KEY_MAX], aliases[CTL_KEY_MAX];
	int m;

	ctl_key(users, SCHEMA_USERS_PREFIX, ctl_domain_of(a));
	ctl_key(user, SCHEMA_USER_PREFIX, a);
	ctl_key(aliases, SCHEMA_ALIASES_PREFIX, ctl_domain_of(a));
	if (ctl_watch(x, SCHEMA_DOMAINS, users, aliases) < 0)
		return CTL_FAIL;
	m = ctl_user_state(x, a, true);
	if (m != 0) {
		if (m > 0)
			ctl_error(x, "user %s already exists", a);
		return ctl_refuse(x);
	}
	if (ctl_multi(x) != CTL_OK)
		return CTL_FAIL;
	if (ctl_simple(x, "SADD %s %s", users, a) < 0 ||
	    ctl_simple(x, "DEL %s", user) < 0 ||
	    ctl_simple(x, "HSET %s password %s", user, hash) < 0)
		return ctl_discard(x);
	return CTL_OK;
}

static int
ctl_user_add(struct ctl *x)
{
	char hash[CTL_HASH_MAX];
	int m;

	if (ctl_check_address_arg(x, x->args[0]) < 0 || ctl_connect(x) < 0)
		return CTL_FAIL;
	/* Said before asking for a password that would be thrown away. */
	m = ctl_user_state(x, x->args[0], true);
	if (m != 0) {
		if (m > 0)
			ctl_error(x, "user %s already exists", x->args[0]);
		return CTL_FAIL;
	}
	if (ctl_new_password(x, hash, sizeof(hash)) < 0)
		return CTL_FAIL;
	return ctl_transaction(x, ctl_user_add_prepare, hash);
}

static int
ctl_user_del_prepare(struct ctl *x, void *arg)
{
	const char *a = x->args[0];
	char users[CTL_KEY_MAX], user[CTL_KEY_MAX];
	int m;

	(void)arg;
	ctl_key(users, SCHEMA_USERS_PREFIX, ctl_domain_of(a));
	ctl_key(user, SCHEMA_USER_PREFIX, a);
	if (ctl_watch(x, SCHEMA_DOMAINS, users, NULL) < 0)
		return CTL_FAIL;
	m = ctl_user_state(x, a, false);
	if (m != 1) {
		if (m == 0)
			ctl_error(x, "no such user %s", a);
		return ctl_refuse(x);
	}
	if (ctl_multi(x) != CTL_OK)
		return CTL_FAIL;
	if (ctl_simple(x, "SREM %s %s", users, a) < 0 ||
	    ctl_simple(x, "DEL %s", user) < 0)
		return ctl_discard(x);
	return CTL_OK;
}

static int
ctl_user_del(struct ctl *x)
{
	if (ctl_check_address_arg(x, x->args[0]) < 0 || ctl_connect(x) < 0)
		return CTL_FAIL;
	return ctl_transaction(x, ctl_user_del_prepare, NULL);
}

/* A change of an existing user a's hash: watches the user, then opens
 * the MULTI, with the hash's key in user. CTL_OK, or what to return. */
static int
ctl_user_change_begin(struct ctl *x, const char *a, char *user)
{
	char users[CTL_KEY_MAX];
	int m;

	ctl_key(users, SCHEMA_USERS_PREFIX, ctl_domain_of(a));
	ctl_key(user, SCHEMA_USER_PREFIX, a);
	if (ctl_watch(x, SCHEMA_DOMAINS, users, NULL) < 0)
		return CTL_FAIL;
	m = ctl_user_state(x, a, false);
	if (m != 1) {
		if (m == 0)
			ctl_error(x, "no such user %s", a);
		return ctl_refuse(x);
	}
	return ctl_multi(x) == CTL_OK ? CTL_OK : CTL_FAIL;
}

static int
ctl_user_passwd_prepare(struct ctl *x, void *arg)
{
	const char *hash = arg;
	char user[CTL_KEY_MAX];
	int rc = ctl_user_change_begin(x, x->args[0], user);

	if (rc != CTL_OK)
		return rc;
	if (ctl_simple(x, "HSET %s password %s", user, hash) < 0)
		return ctl_discard(x);
	return CTL_OK;
}

static int
ctl_user_passwd(struct ctl *x)
{
	char hash[CTL_HASH_MAX];
	int m;

	if (ctl_check_address_arg(x, x->args[0]) < 0 || ctl_connect(x) < 0)
		return CTL_FAIL;
	m = ctl_user_state(x, x->args[0], false);
	if (m != 1) {
		if (m == 0)
			ctl_error(x, "no such user %s", x->args[0]);
		return CTL_FAIL;
	}
	if (ctl_new_password(x, hash, sizeof(hash)) < 0)
		return CTL_FAIL;
	return ctl_transaction(x, ctl_user_passwd_prepare, hash);
}

/* user quota ADDRESS [BYTES|none] */

/* The quota field of user a: 0 with *limit (0: none), or -1 (said why:
 * no such user, a field that is not a number). */
static int
ctl_user_limit(struct ctl *x, const char *a, uint64_t *limit)
{
	char user[CTL_KEY_MAX];
	redisReply *rep;
	unsigned long long v = 0;
	int m = ctl_user_state(x, a, false);

	if (m != 1) {
		if (m == 0)
			ctl_error(x, "no such user %s", a);
		return -1;
	}
	ctl_key(user, SCHEMA_USER_PREFIX, a);
	if ((rep = ctl_redis(x, "HGET %s quota", user)) == NULL)
		return -1;
	if (rep->type == REDIS_REPLY_STRING &&
	    decimal_ullong(rep->str, UINT64_MAX, &v) < 0) {
		ctl_error(x, "%s: quota \"%s\" is not a number of bytes", a,
			  rep->str);
		freeReplyObject(rep);
		return -1;
	}
	freeReplyObject(rep);
	*limit = v;
	return 0;
}

static int
ctl_user_quota_prepare(struct ctl *x, void *arg)
{
	const uint64_t *limit = arg;
	char user[CTL_KEY_MAX];
	int rc = ctl_user_change_begin(x, x->args[0], user);

	if (rc != CTL_OK)
		return rc;
	if (*limit ? ctl_simple(x, "HSET %s quota %" PRIu64, user, *limit) < 0
		   : ctl_simple(x, "HDEL %s quota", user) < 0)
		return ctl_discard(x);
	return CTL_OK;
}

/* Without a limit, prints the user's ("none" or bytes). */
static int
ctl_user_quota(struct ctl *x)
{
	uint64_t limit = 0;

	if (ctl_check_address_arg(x, x->args[0]) < 0)
		return CTL_FAIL;
	if (x->nargs == 2 && strcmp(x->args[1], "none") != 0 &&
	    quota_parse_limit(x->args[1], &limit) < 0) {
		ctl_error(x,
			  "invalid size \"%s\" (bytes >= 1, or with K, M, G "
			  "or T; or none)",
			  x->args[1]);
		return CTL_USAGE;
	}
	if (ctl_connect(x) < 0)
		return CTL_FAIL;
	if (x->nargs == 2)
		return ctl_transaction(x, ctl_user_quota_prepare, &limit);
	if (ctl_user_limit(x, x->args[0], &limit) < 0)
		return CTL_FAIL;
	if (limit)
		printf("%" PRIu64 "\n", limit);
	else
		printf("none\n");
	return CTL_OK;
}

/* user quota-recount ADDRESS: the usage counted again from the store
 * (mailctl_quota.c), for the limit Redis has. */
static int
ctl_user_quota_recount(struct ctl *x)
{
	uint64_t limit;

	if (ctl_check_address_arg(x, x->args[0]) < 0)
		return CTL_FAIL;
	if (x->store == NULL || x->store[0] == '\0') {
		ctl_error(x, "which store? -s DIR or $MAILCTL_STORE");
		return CTL_USAGE;
	}
	if (ctl_connect(x) < 0 || ctl_user_limit(x, x->args[0], &limit) < 0)
		return CTL_FAIL;
	return mailctl_quota_recount(x->store, x->args[0], limit) < 0 ? CTL_FAIL
								      : CTL_OK;
}

/* Runs fn for the one domain given, or for every domain (sorted). */
static int
ctl_each_domain(struct ctl *x, int (*fn)(struct ctl *x, const char *d))
{
	redisReply *doms;
	int rc = CTL_OK;

	if (x->nargs == 1) {
		if (ctl_check_domain_arg(x, x->args[0]) < 0 ||
		    ctl_connect(x) < 0 || ctl_need_domain(x, x->args[0]) != 1)
			return CTL_FAIL;
		return fn(x, x->args[0]);
	}
	if (ctl_connect(x) < 0 ||
	    (doms = ctl_members(x, SCHEMA_DOMAINS)) == NULL)
		return CTL_FAIL;
	for (size_t i = 0; i < doms->elements && rc == CTL_OK; i++)
		rc = fn(x, doms->element[i]->str);
	freeReplyObject(doms);
	return rc;
}

static int
ctl_user_list_domain(struct ctl *x, const char *d)
{
	char key[CTL_KEY_MAX];

	ctl_key(key, SCHEMA_USERS_PREFIX, d);
	return ctl_print_set(x, key) < 0 ? CTL_FAIL : CTL_OK;
}

static int
ctl_user_list(struct ctl *x)
{
	return ctl_each_domain(x, ctl_user_list_domain);
}

/* alias add|del|list */

static int
ctl_alias_add_prepare(struct ctl *x, void *arg)
{
	const char *a = x->args[0], *t = x->args[1];
	char aliases[CTL_KEY_MAX], alias[CTL_KEY_MAX], users[CTL_KEY_MAX];
	int m;

	(void)arg;
	ctl_key(aliases, SCHEMA_ALIASES_PREFIX, ctl_domain_of(a));
	ctl_key(alias, SCHEMA_ALIAS_PREFIX, a);
	ctl_key(users, SCHEMA_USERS_PREFIX, ctl_domain_of(a));
	if (ctl_watch(x, SCHEMA_DOMAINS, users, alias) < 0)
		return CTL_FAIL;
	m = ctl_user_state(x, a, false);
	if (m != 0) {
		if (m > 0)
			ctl_error(x,
				  "%s is a user; an address is a user or an "
				  "alias, not both",
				  a);
		return ctl_refuse(x);
	}
	m = ctl_member(x, alias, t);
	if (m != 0) {
		if (m > 0)
			ctl_error(x, "alias %s -> %s already exists", a, t);
		return ctl_refuse(x);
	}
	if (ctl_multi(x) != CTL_OK)
		return CTL_FAIL;
	if (ctl_simple(x, "SADD %s %s", aliases, a) < 0 ||
	    ctl_simple(x, "SADD %s %s", alias, t) < 0)
		return ctl_discard(x);
	return CTL_OK;
}

/* Says so when target leads nowhere yet (not an error: the user may
 * come next). */
static void
ctl_alias_warn_target(struct ctl *x, const char *t)
{
	char key[CTL_KEY_MAX];
	const char *d = ctl_domain_of(t);

	if (ctl_member(x, SCHEMA_DOMAINS, d) == 0) {
		fprintf(stderr,
			"mailctl: note: %s is not in a local domain; "
			"mail to the alias is forwarded there (through the "
			"queue, sender rewritten by SRS)\n",
			t);
		return;
	}
	ctl_key(key, SCHEMA_USERS_PREFIX, d);
	if (ctl_member(x, key, t) == 1)
		return;
	ctl_key(key, SCHEMA_ALIASES_PREFIX, d);
	if (ctl_member(x, key, t) == 0)
		fprintf(stderr,
			"mailctl: warning: %s is neither a user nor an alias "
			"(yet)\n",
			t);
}

static int
ctl_alias_add(struct ctl *x)
{
	int rc;

	if (ctl_check_address_arg(x, x->args[0]) < 0 ||
	    ctl_check_address_arg(x, x->args[1]) < 0)
		return CTL_FAIL;
	if (strcmp(x->args[0], x->args[1]) == 0) {
		ctl_error(x, "an alias cannot point to itself");
		return CTL_FAIL;
	}
	if (ctl_connect(x) < 0)
		return CTL_FAIL;
	rc = ctl_transaction(x, ctl_alias_add_prepare, NULL);
	if (rc == CTL_OK)
		ctl_alias_warn_target(x, x->args[1]);
	return rc;
}

static int
ctl_alias_del_prepare(struct ctl *x, void *arg)
{
	const char *a = x->args[0], *t = x->args[1];
	char aliases[CTL_KEY_MAX], alias[CTL_KEY_MAX];
	long long n;
	int m;

	(void)arg;
	ctl_key(aliases, SCHEMA_ALIASES_PREFIX, ctl_domain_of(a));
	ctl_key(alias, SCHEMA_ALIAS_PREFIX, a);
	if (ctl_watch(x, aliases, alias, NULL) < 0)
		return CTL_FAIL;
	m = ctl_member(x, alias, t);
	if (m != 1) {
		if (m == 0)
			ctl_error(x, "no alias %s -> %s", a, t);
		return ctl_refuse(x);
	}
	n = ctl_redis_int(x, "SCARD %s", alias, NULL);
	if (n < 1)
		return ctl_refuse(x);
	if (ctl_multi(x) != CTL_OK)
		return CTL_FAIL;
	if (n == 1) { /* the last target: the alias goes */
		if (ctl_simple(x, "DEL %s", alias) < 0 ||
		    ctl_simple(x, "SREM %s %s", aliases, a) < 0)
			return ctl_discard(x);
	} else if (ctl_simple(x, "SREM %s %s", alias, t) < 0) {
		return ctl_discard(x);
	}
	return CTL_OK;
}

static int
ctl_alias_del(struct ctl *x)
{
	if (ctl_check_address_arg(x, x->args[0]) < 0 ||
	    ctl_check_address_arg(x, x->args[1]) < 0 || ctl_connect(x) < 0)
		return CTL_FAIL;
	return ctl_transaction(x, ctl_alias_del_prepare, NULL);
}

/* "ALIAS TARGET", one line per target. */
static int
ctl_alias_list_domain(struct ctl *x, const char *d)
{
	char key[CTL_KEY_MAX];
	redisReply *al, *ts;

	ctl_key(key, SCHEMA_ALIASES_PREFIX, d);
	if ((al = ctl_members(x, key)) == NULL)
		return CTL_FAIL;
	for (size_t i = 0; i < al->elements; i++) {
		ctl_key(key, SCHEMA_ALIAS_PREFIX, al->element[i]->str);
		if ((ts = ctl_members(x, key)) == NULL) {
			freeReplyObject(al);
			return CTL_FAIL;
		}
		for (size_t k = 0; k < ts->elements; k++)
			printf("%s %s\n", al->element[i]->str,
			       ts->element[k]->str);
		freeReplyObject(ts);
	}
	freeReplyObject(al);
	return CTL_OK;
}

static int
ctl_alias_list(struct ctl *x)
{
	return ctl_each_domain(x, ctl_alias_list_domain);
}

/* export, import, wipe: the whole config at once. */

#define CTL_PIPELINE                                                           \
	1024 /* commands appended before their replies are read                \
	      */

/* Reads the replies of the commands appended since the last flush: each
 * must be QUEUED (inside MULTI). Returns 0 or -1 (said why). */
static int
ctl_flush(struct ctl *x)
{
	int rc = 0;

	for (; x->queued > 0; x->queued--) {
		redisReply *rep = NULL;
		if (redisGetReply(x->c, (void **)&rep) != REDIS_OK) {
			ctl_error(x, "%s", x->c->errstr);
			x->queued = 0;
			return -1;
		}
		if (rc == 0 && rep->type == REDIS_REPLY_ERROR) {
			ctl_error(x, "%s", rep->str);
			rc = -1;
		}
		freeReplyObject(rep);
	}
	return rc;
}

/* Appends one command (argv of argc words) inside MULTI, reading the
 * replies every CTL_PIPELINE commands. Returns 0 or -1. */
static int
ctl_append(struct ctl *x, int argc, const char **argv)
{
	if (redisAppendCommandArgv(x->c, argc, argv, NULL) != REDIS_OK) {
		ctl_error(x, "out of memory");
		return -1;
	}
	return ++x->queued >= CTL_PIPELINE ? ctl_flush(x) : 0;
}

static int
ctl_append3(struct ctl *x, const char *cmd, const char *a, const char *b)
{
	const char *argv[3] = {cmd, a, b};
	return ctl_append(x, b ? 3 : 2, argv);
}

/* The generation every node must see exceeded: the highest of Redis's
 * own and of those the nodes published (SCHEMA_NODES). -1 on error. */
static int
ctl_gen_floor(struct ctl *x, uint64_t *floor)
{
	redisReply *rep = ctl_redis(x, "GET %s", SCHEMA_GEN);

	if (rep == NULL)
		return -1;
	*floor =
	    rep->type == REDIS_REPLY_STRING ? strtoull(rep->str, NULL, 10) : 0;
	freeReplyObject(rep);
	if ((rep = ctl_redis(x, "HVALS %s", SCHEMA_NODES)) == NULL)
		return -1;
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements;
	     i++) {
		redisReply *e = rep->element[i];
		uint64_t g = e->type == REDIS_REPLY_STRING
				 ? strtoull(e->str, NULL, 10)
				 : 0;
		if (g > *floor)
			*floor = g;
	}
	freeReplyObject(rep);
	return 0;
}

/* Key names read before MULTI, for DELs queued in it. */
struct ctl_keys {
	char **k;
	size_t n, cap;
};

/* Appends s to the array v (n used of cap). Returns 0 or -1. */
static int
ctl_push(char ***v, size_t *n, size_t *cap, char *s)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		char **p = realloc(*v, c * sizeof(*p));
		if (p == NULL)
			return -1;
		*v = p;
		*cap = c;
	}
	(*v)[(*n)++] = s;
	return 0;
}

static int
ctl_keys_add(struct ctl *x, struct ctl_keys *ks, const char *prefix,
	     const char *name)
{
	char key[CTL_KEY_MAX], *k;

	ctl_key(key, prefix, name);
	if ((k = strdup(key)) == NULL ||
	    ctl_push(&ks->k, &ks->n, &ks->cap, k)) {
		free(k);
		ctl_error(x, "out of memory");
		return -1;
	}
	return 0;
}

static void
ctl_keys_free(struct ctl_keys *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		free(ks->k[i]);
	free(ks->k);
	memset(ks, 0, sizeof(*ks));
}

/* Adds set prefix+name and each of its members under member_prefix. */
static int
ctl_keys_members(struct ctl *x, struct ctl_keys *ks, const char *prefix,
		 const char *name, const char *member_prefix)
{
	char key[CTL_KEY_MAX];
	redisReply *m;
	int rc;

	ctl_key(key, prefix, name);
	if ((m = ctl_members(x, key)) == NULL)
		return -1;
	rc = ctl_keys_add(x, ks, prefix, name);
	for (size_t i = 0; i < m->elements && rc == 0; i++)
		rc = ctl_keys_add(x, ks, member_prefix, m->element[i]->str);
	freeReplyObject(m);
	return rc;
}

/* Every config key Redis holds now: ms:domains, each domain's user and
 * alias sets, each user's hash, each alias's set. Read before MULTI; the
 * WATCH on ms:config:gen voids the transaction if a change came in
 * between (every change raises it). */
static int
ctl_keys_config(struct ctl *x, struct ctl_keys *ks)
{
	redisReply *doms = ctl_members(x, SCHEMA_DOMAINS);
	int rc;

	if (doms == NULL)
		return -1;
	rc = ctl_keys_add(x, ks, SCHEMA_DOMAINS, "");
	if (rc == 0)
		rc = ctl_keys_add(x, ks, SCHEMA_SETTINGS, "");
	for (size_t i = 0; i < doms->elements && rc == 0; i++) {
		const char *d = doms->element[i]->str;
		rc = ctl_keys_members(x, ks, SCHEMA_USERS_PREFIX, d,
				      SCHEMA_USER_PREFIX);
		if (rc == 0)
			rc = ctl_keys_members(x, ks, SCHEMA_ALIASES_PREFIX, d,
					      SCHEMA_ALIAS_PREFIX);
	}
	freeReplyObject(doms);
	return rc;
}

/* The start of a whole-config transaction (import, wipe): WATCH the
 * generation, read the generation to go above and the keys to delete,
 * MULTI, and queue the DELs. Sets x->set_gen one above the highest of
 * the floor (ctl_gen_floor) and min_gen. Returns CTL_OK inside MULTI, or
 * CTL_FAIL (said why). */
static int
ctl_replace_begin(struct ctl *x, uint64_t min_gen)
{
	struct ctl_keys ks = {NULL, 0, 0};
	uint64_t floor;

	if (ctl_watch(x, SCHEMA_GEN, NULL, NULL) < 0)
		return CTL_FAIL;
	if (ctl_gen_floor(x, &floor) < 0 || ctl_keys_config(x, &ks) < 0) {
		ctl_keys_free(&ks);
		return ctl_refuse(x);
	}
	x->set_gen = (floor > min_gen ? floor : min_gen) + 1;
	if (ctl_multi(x) != CTL_OK) {
		ctl_keys_free(&ks);
		return CTL_FAIL;
	}
	for (size_t i = 0; i < ks.n; i++)
		if (ctl_append3(x, "DEL", ks.k[i], NULL) < 0)
			goto fail;
	ctl_keys_free(&ks);
	return CTL_OK;
fail:
	ctl_keys_free(&ks);
	ctl_flush(x);
	return ctl_discard(x);
}

/* export [FILE] */

/* Writes domain d's users (with their hashes and quotas, pipelined) to w.
 * Returns 0 or -1 (said why). */
static int
ctl_export_users(struct ctl *x, struct confjson_writer *w, const char *d)
{
	char key[CTL_KEY_MAX];
	redisReply *m, *h = NULL;
	size_t sent = 0, got = 0;
	int rc = -1;

	ctl_key(key, SCHEMA_USERS_PREFIX, d);
	if ((m = ctl_members(x, key)) == NULL)
		return -1;
	for (; sent < m->elements; sent++) {
		ctl_key(key, SCHEMA_USER_PREFIX, m->element[sent]->str);
		if (redisAppendCommand(x->c, "HMGET %s password quota", key) !=
		    REDIS_OK)
			goto out;
	}
	for (; got < m->elements; got++) {
		const char *a = m->element[got]->str;
		if (redisGetReply(x->c, (void **)&h) != REDIS_OK) {
			ctl_error(x, "%s", x->c->errstr);
			goto out;
		}
		unsigned long long quota = 0;
		if (h->type != REDIS_REPLY_ARRAY || h->elements != 2) {
			ctl_error(x, "%s: cannot read its password", a);
			goto out;
		}
		redisReply *pw = h->element[0], *q = h->element[1];
		if (q->type == REDIS_REPLY_STRING &&
		    (decimal_ullong(q->str, UINT64_MAX, &quota) < 0 ||
		     quota == 0)) {
			ctl_error(x,
				  "%s: quota \"%s\" is not a number of bytes",
				  a, q->str);
			goto out;
		}
		if (confjson_write_user(
			w, a, pw->type == REDIS_REPLY_STRING ? pw->str : NULL,
			quota) < 0) {
			ctl_error(x, "out of memory");
			goto out;
		}
		freeReplyObject(h);
		h = NULL;
	}
	rc = 0;
out:
	freeReplyObject(h);
	/* Replies still on the way would answer the next command. */
	for (got++; rc < 0 && got < sent; got++) {
		h = NULL;
		if (redisGetReply(x->c, (void **)&h) != REDIS_OK)
			break;
		freeReplyObject(h);
	}
	freeReplyObject(m);
	return rc;
}

/* Writes domain d's aliases to w. Returns 0 or -1 (said why). */
static int
ctl_export_aliases(struct ctl *x, struct confjson_writer *w, const char *d)
{
	char key[CTL_KEY_MAX];
	redisReply *m, *t;
	int rc = 0;

	ctl_key(key, SCHEMA_ALIASES_PREFIX, d);
	if ((m = ctl_members(x, key)) == NULL)
		return -1;
	for (size_t i = 0; i < m->elements && rc == 0; i++) {
		ctl_key(key, SCHEMA_ALIAS_PREFIX, m->element[i]->str);
		if ((t = ctl_members(x, key)) == NULL) {
			rc = -1;
			break;
		}
		const char **names = calloc(t->elements + 1, sizeof(*names));
		for (size_t k = 0; names && k < t->elements; k++)
			names[k] = t->element[k]->str;
		if (names == NULL ||
		    confjson_write_alias(w, m->element[i]->str, names,
					 t->elements) < 0) {
			ctl_error(x, "out of memory");
			rc = -1;
		}
		free(names);
		freeReplyObject(t);
	}
	freeReplyObject(m);
	return rc;
}

/* One pass over Redis into w (initialized here, at the generation read
 * first). Returns 0, or -1 (said why; w freed). */
static int
ctl_export_pass(struct ctl *x, struct confjson_writer *w)
{
	redisReply *doms = NULL, *rep;
	uint64_t gen = 0;

	if ((rep = ctl_redis(x, "GET %s", SCHEMA_GEN)) == NULL)
		return -1;
	if (rep->type == REDIS_REPLY_STRING)
		gen = strtoull(rep->str, NULL, 10);
	freeReplyObject(rep);
	confjson_writer_init(w, gen);
	x->set_gen = gen; /* for the message */
	if ((doms = ctl_members(x, SCHEMA_DOMAINS)) == NULL)
		goto fail;
	for (size_t k = 0; k < doms->elements; k++)
		if (confjson_write_domain(w, doms->element[k]->str) < 0) {
			ctl_error(x, "out of memory");
			goto fail;
		}
	/* Users of every domain first, then aliases: the document's order. */
	for (size_t k = 0; k < doms->elements; k++)
		if (ctl_export_users(x, w, doms->element[k]->str) < 0)
			goto fail;
	for (size_t k = 0; k < doms->elements; k++)
		if (ctl_export_aliases(x, w, doms->element[k]->str) < 0)
			goto fail;
	freeReplyObject(doms);
	if ((doms = ctl_settings(x)) == NULL)
		goto fail;
	for (size_t k = 0; k + 1 < doms->elements; k += 2)
		if (confjson_write_setting(w, doms->element[k]->str,
					   doms->element[k + 1]->str) < 0) {
			ctl_error(x, "out of memory");
			goto fail;
		}
	freeReplyObject(doms);
	return 0;
fail:
	freeReplyObject(doms);
	confjson_writer_free(w);
	return -1;
}

/* Reads the whole config into w under WATCH of the generation, then an
 * empty MULTI/EXEC that fails if a change came in between: the export is
 * one generation's config. Returns 0 (w to be freed), or -1. */
static int
ctl_export_read(struct ctl *x, struct confjson_writer *w)
{
	for (int i = 0; i < CTL_RETRIES; i++) {
		redisReply *rep;

		if (ctl_watch(x, SCHEMA_GEN, NULL, NULL) < 0)
			return -1;
		if (ctl_export_pass(x, w) < 0) {
			ctl_unwatch(x);
			return -1;
		}
		if (ctl_simple(x, "MULTI") < 0 ||
		    (rep = ctl_redis(x, "EXEC")) == NULL) {
			confjson_writer_free(w);
			return -1;
		}
		bool changed = rep->type == REDIS_REPLY_NIL;
		freeReplyObject(rep);
		if (!changed)
			return 0;
		confjson_writer_free(w);
	}
	ctl_error(x, "the config kept changing during the export; try again");
	return -1;
}

static int
ctl_export(struct ctl *x)
{
	const char *path = x->nargs ? x->args[0] : NULL;
	struct confjson_writer w;
	int rc = CTL_OK;

	if (ctl_connect(x) < 0 || ctl_export_read(x, &w) < 0)
		return CTL_FAIL;
	if (confjson_writer_save(&w, path) < 0) {
		ctl_error(x, "%s: %s", path ? path : "stdout", strerror(errno));
		rc = CTL_FAIL;
	} else if (path && strcmp(path, "-") != 0) {
		fprintf(stderr,
			"mailctl: export: generation %" PRIu64
			" written to %s\n",
			x->set_gen, path);
	}
	confjson_writer_free(&w);
	return rc;
}

/* import FILE */

/* What an import checks as it walks the document, before anything is
 * sent: every name valid and lowercase, each domain and user listed once,
 * every user and alias in a listed domain, no address both a user and an
 * alias. The walk gives domains, then users, then aliases: each list is
 * sorted (for bsearch) when the next kind begins. */
struct ctl_import_check {
	struct ctl *x;
	char **domains, **users;
	size_t ndomains, nusers, capd, capu;
	int phase; /* 0 domains, 1 users, 2 aliases */
	size_t naliases, nsettings;
};

static int
ctl_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts v and says which name comes twice. 0 or 1. */
static int
ctl_sort_unique(struct ctl *x, char **v, size_t n, const char *what)
{
	qsort(v, n, sizeof(*v), ctl_strcmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i - 1], v[i]) == 0) {
			ctl_error(x, "%s %s listed twice", what, v[i]);
			return 1;
		}
	return 0;
}

/* Moves the check on to phase, closing the lists before it. 0 or 1. */
static int
ctl_import_phase(struct ctl_import_check *k, int phase)
{
	for (; k->phase < phase; k->phase++) {
		if (k->phase == 0 &&
		    ctl_sort_unique(k->x, k->domains, k->ndomains, "domain"))
			return 1;
		if (k->phase == 1 &&
		    ctl_sort_unique(k->x, k->users, k->nusers, "user"))
			return 1;
	}
	return 0;
}

/* Valid and lowercase, as mailctl writes names. */
static bool
ctl_import_name_ok(const char *s, bool address)
{
	for (const char *p = s; *p; p++)
		if (isupper((unsigned char)*p))
			return false;
	return address ? ctl_address_valid(s) : ctl_domain_valid(s);
}

/* A user's or an alias's address: valid, in a listed domain. 0 or 1. */
static int
ctl_import_address(struct ctl_import_check *k, const char *a)
{
	const char *d;

	if (!ctl_import_name_ok(a, true)) {
		ctl_error(k->x, "invalid address \"%s\"", a);
		return 1;
	}
	d = ctl_domain_of(a);
	if (bsearch(&d, k->domains, k->ndomains, sizeof(char *), ctl_strcmp) ==
	    NULL) {
		ctl_error(k->x, "%s: its domain is not in \"domains\"", a);
		return 1;
	}
	return 0;
}

static int
ctl_import_domain(void *arg, const char *d)
{
	struct ctl_import_check *k = arg;

	if (!ctl_import_name_ok(d, false)) {
		ctl_error(k->x, "invalid domain \"%s\"", d);
		return 1;
	}
	return ctl_push(&k->domains, &k->ndomains, &k->capd, (char *)d);
}

static int
ctl_import_user(void *arg, const char *a, const char *hash, uint64_t quota)
{
	struct ctl_import_check *k = arg;

	if (ctl_import_phase(k, 1) || ctl_import_address(k, a))
		return 1;
	if (hash && (hash[0] == '\0' || strlen(hash) >= CTL_HASH_MAX)) {
		ctl_error(k->x, "%s: the password hash is empty or too long",
			  a);
		return 1;
	}
	(void)quota; /* confjson checked it: a whole number of bytes > 0 */
	return ctl_push(&k->users, &k->nusers, &k->capu, (char *)a);
}

static int
ctl_import_alias(void *arg, const char *a, const char *const *targets, size_t n)
{
	struct ctl_import_check *k = arg;
	const char *key = a;

	if (ctl_import_phase(k, 2) || ctl_import_address(k, a))
		return 1;
	if (bsearch(&key, k->users, k->nusers, sizeof(char *), ctl_strcmp)) {
		ctl_error(k->x, "%s is both a user and an alias", a);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		if (!ctl_import_name_ok(targets[i], true)) {
			ctl_error(k->x, "alias %s: invalid target \"%s\"", a,
				  targets[i]);
			return 1;
		}
	k->naliases++;
	return 0;
}

/* A cluster setting: what `config set` would take. */
static int
ctl_import_setting(void *arg, const char *key, const char *value)
{
	struct ctl_import_check *k = arg;
	char err[1024];

	if (node_setting_check(key, value, err, sizeof(err)) < 0) {
		ctl_error(k->x, "%s", err);
		return 1;
	}
	if (++k->nsettings > NODE_SETTINGS_MAX) {
		ctl_error(k->x, "more than %d settings", NODE_SETTINGS_MAX);
		return 1;
	}
	return 0;
}

/* Checks doc whole. Returns 0, or -1 (said why). */
static int
ctl_import_check(struct ctl *x, const struct confjson *doc, size_t counts[4])
{
	static const struct confjson_visitor v = {
	    ctl_import_domain, ctl_import_user, ctl_import_alias,
	    ctl_import_setting};
	struct ctl_import_check k = {.x = x};
	int rc = confjson_walk(doc, &v, &k);

	if (rc == 0)
		rc = ctl_import_phase(&k, 2);
	if (rc < 0)
		ctl_error(x, "out of memory");
	counts[0] = k.ndomains;
	counts[1] = k.nusers;
	counts[2] = k.naliases;
	counts[3] = k.nsettings;
	free(k.domains);
	free(k.users);
	return rc == 0 ? 0 : -1;
}

/* The writes of an import, queued inside MULTI. */
static int
ctl_import_put_domain(void *arg, const char *d)
{
	return ctl_append3(arg, "SADD", SCHEMA_DOMAINS, d) < 0;
}

static int
ctl_import_put_user(void *arg, const char *a, const char *hash, uint64_t quota)
{
	struct ctl *x = arg;
	char set[CTL_KEY_MAX], key[CTL_KEY_MAX], bytes[24];
	const char *hset[4] = {"HSET", key, "password", hash};
	const char *qset[4] = {"HSET", key, "quota", bytes};

	ctl_key(set, SCHEMA_USERS_PREFIX, ctl_domain_of(a));
	ctl_key(key, SCHEMA_USER_PREFIX, a);
	snprintf(bytes, sizeof(bytes), "%" PRIu64, quota);
	if (ctl_append3(x, "SADD", set, a) < 0)
		return 1;
	if (hash && ctl_append(x, 4, hset) < 0)
		return 1;
	return quota && ctl_append(x, 4, qset) < 0;
}

static int
ctl_import_put_alias(void *arg, const char *a, const char *const *targets,
		     size_t n)
{
	struct ctl *x = arg;
	char set[CTL_KEY_MAX], key[CTL_KEY_MAX];

	ctl_key(set, SCHEMA_ALIASES_PREFIX, ctl_domain_of(a));
	ctl_key(key, SCHEMA_ALIAS_PREFIX, a);
	if (ctl_append3(x, "SADD", set, a) < 0)
		return 1;
	for (size_t i = 0; i < n; i++)
		if (ctl_append3(x, "SADD", key, targets[i]) < 0)
			return 1;
	return 0;
}

static int
ctl_import_put_setting(void *arg, const char *key, const char *value)
{
	const char *hset[4] = {"HSET", SCHEMA_SETTINGS, key, value};
	return ctl_append(arg, 4, hset) < 0;
}

static int
ctl_import_prepare(struct ctl *x, void *arg)
{
	static const struct confjson_visitor v = {
	    ctl_import_put_domain, ctl_import_put_user, ctl_import_put_alias,
	    ctl_import_put_setting};
	const struct confjson *doc = arg;

	if (ctl_replace_begin(x, confjson_generation(doc)) != CTL_OK)
		return CTL_FAIL;
	if (confjson_walk(doc, &v, x) != 0 || ctl_flush(x) < 0) {
		ctl_flush(x);
		return ctl_discard(x);
	}
	return CTL_OK;
}

static int
ctl_import(struct ctl *x)
{
	struct confjson *doc;
	size_t counts[4];
	char err[512];
	int rc;

	if ((doc = confjson_load(x->args[0], err, sizeof(err))) == NULL) {
		ctl_error(x, "%s", err);
		return CTL_FAIL;
	}
	if (ctl_import_check(x, doc, counts) < 0 || ctl_connect(x) < 0) {
		confjson_free(doc);
		return CTL_FAIL;
	}
	rc = ctl_transaction(x, ctl_import_prepare, doc);
	if (rc == CTL_OK)
		fprintf(stderr,
			"mailctl: import: %zu domains, %zu users, %zu aliases, "
			"%zu settings at generation %" PRIu64 "\n",
			counts[0], counts[1], counts[2], counts[3], x->set_gen);
	confjson_free(doc);
	return rc;
}

/* wipe --yes */

static int
ctl_wipe_prepare(struct ctl *x, void *arg)
{
	(void)arg;
	if (ctl_replace_begin(x, 0) != CTL_OK)
		return CTL_FAIL;
	return ctl_flush(x) < 0 ? ctl_discard(x) : CTL_OK;
}

static int
ctl_wipe(struct ctl *x)
{
	int rc;

	if (!x->yes) {
		ctl_error(x, "this deletes every domain, user, alias and "
			     "cluster setting, and every node follows; say "
			     "--yes");
		return CTL_USAGE;
	}
	if (ctl_connect(x) < 0)
		return CTL_FAIL;
	rc = ctl_transaction(x, ctl_wipe_prepare, NULL);
	if (rc == CTL_OK)
		fprintf(stderr,
			"mailctl: wipe: the config is empty, generation "
			"%" PRIu64 "\n",
			x->set_gen);
	return rc;
}

/* config set|get|unset|list: the cluster-wide node settings (config.h),
 * one hash. A node's INI overrides a key for that node. */

static int
ctl_config_set_prepare(struct ctl *x, void *arg)
{
	const char *key = x->args[0];
	long long has, n = 0;

	(void)arg;
	if (ctl_watch(x, SCHEMA_SETTINGS, NULL, NULL) < 0)
		return CTL_FAIL;
	has = ctl_redis_int(x, "HEXISTS %s %s", SCHEMA_SETTINGS, key);
	if (has == 0)
		n = ctl_redis_int(x, "HLEN %s", SCHEMA_SETTINGS, NULL);
	if (has < 0 || n < 0)
		return ctl_refuse(x);
	if (n >= NODE_SETTINGS_MAX) {
		ctl_error(x,
			  "there are %lld settings already, the most there "
			  "may be",
			  n);
		return ctl_refuse(x);
	}
	if (ctl_multi(x) != CTL_OK)
		return CTL_FAIL;
	if (ctl_simple(x, "HSET %s %s %s", SCHEMA_SETTINGS, key, x->args[1]) <
	    0)
		return ctl_discard(x);
	return CTL_OK;
}

static int
ctl_config_set(struct ctl *x)
{
	char err[1024];

	if (node_setting_check(x->args[0], x->args[1], err, sizeof(err)) < 0) {
		ctl_error(x, "%s", err);
		return CTL_FAIL;
	}
	if (ctl_connect(x) < 0)
		return CTL_FAIL;
	return ctl_transaction(x, ctl_config_set_prepare, NULL);
}

static int
ctl_config_get(struct ctl *x)
{
	redisReply *rep;
	int rc = CTL_OK;

	if (ctl_connect(x) < 0 ||
	    (rep = ctl_redis(x, "HGET %s %s", SCHEMA_SETTINGS, x->args[0])) ==
		NULL)
		return CTL_FAIL;
	if (rep->type == REDIS_REPLY_STRING)
		printf("%s\n", rep->str);
	else {
		ctl_error(x, "%s is not set cluster-wide", x->args[0]);
		rc = CTL_FAIL;
	}
	freeReplyObject(rep);
	return rc;
}

static int
ctl_config_unset_prepare(struct ctl *x, void *arg)
{
	long long has;

	(void)arg;
	if (ctl_watch(x, SCHEMA_SETTINGS, NULL, NULL) < 0)
		return CTL_FAIL;
	has = ctl_redis_int(x, "HEXISTS %s %s", SCHEMA_SETTINGS, x->args[0]);
	if (has == 0)
		ctl_error(x, "%s is not set cluster-wide", x->args[0]);
	if (has <= 0)
		return ctl_refuse(x);
	if (ctl_multi(x) != CTL_OK)
		return CTL_FAIL;
	if (ctl_simple(x, "HDEL %s %s", SCHEMA_SETTINGS, x->args[0]) < 0)
		return ctl_discard(x);
	return CTL_OK;
}

static int
ctl_config_unset(struct ctl *x)
{
	if (ctl_connect(x) < 0)
		return CTL_FAIL;
	return ctl_transaction(x, ctl_config_unset_prepare, NULL);
}

static int
ctl_config_list(struct ctl *x)
{
	redisReply *rep;

	if (ctl_connect(x) < 0 || (rep = ctl_settings(x)) == NULL)
		return CTL_FAIL;
	for (size_t i = 0; i + 1 < rep->elements; i += 2)
		printf("%s %s\n", rep->element[i]->str,
		       rep->element[i + 1]->str);
	freeReplyObject(rep);
	return CTL_OK;
}

/* The command table and main. */

static const struct ctl_cmd ctl_cmds[] = {
    {"domain", "add", 1, 1, false, ctl_domain_add, "domain add DOMAIN"},
    {"domain", "del", 1, 1, false, ctl_domain_del, "domain del DOMAIN"},
    {"domain", "list", 0, 0, false, ctl_domain_list, "domain list"},
    {"user", "add", 1, 1, true, ctl_user_add,
     "user add ADDRESS [--password-stdin]"},
    {"user", "del", 1, 1, false, ctl_user_del, "user del ADDRESS"},
    {"user", "passwd", 1, 1, true, ctl_user_passwd,
     "user passwd ADDRESS [--password-stdin]"},
    {"user", "list", 0, 1, false, ctl_user_list, "user list [DOMAIN]"},
    {"user", "quota", 1, 2, false, ctl_user_quota,
     "user quota ADDRESS [BYTES|none]"},
    {"user", "quota-recount", 1, 1, false, ctl_user_quota_recount,
     "user quota-recount ADDRESS"},
    {"alias", "add", 2, 2, false, ctl_alias_add, "alias add ALIAS TARGET"},
    {"alias", "del", 2, 2, false, ctl_alias_del, "alias del ALIAS TARGET"},
    {"alias", "list", 0, 1, false, ctl_alias_list, "alias list [DOMAIN]"},
    {"config", "set", 2, 2, false, ctl_config_set, "config set KEY VALUE"},
    {"config", "get", 1, 1, false, ctl_config_get, "config get KEY"},
    {"config", "unset", 1, 1, false, ctl_config_unset, "config unset KEY"},
    {"config", "list", 0, 0, false, ctl_config_list, "config list"},
    /* One-word commands (verb NULL) take file names, kept as given. */
    {"export", NULL, 0, 1, false, ctl_export, "export [FILE]"},
    {"import", NULL, 1, 1, false, ctl_import, "import FILE"},
    {"wipe", NULL, 0, 0, false, ctl_wipe, "wipe --yes"},
};

/* Options a command takes beyond --password-stdin: which command, the
 * option, the flag it sets in struct ctl. */
static const struct ctl_flag {
	int (*fn)(struct ctl *x);
	const char *name;
	size_t offset;
} ctl_flags[] = {
    {ctl_wipe, "--yes", offsetof(struct ctl, yes)},
};

static void
ctl_usage(FILE *f)
{
	fprintf(f, "usage: mailctl [-r HOST:PORT] COMMAND ...\n\n");
	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		fprintf(f, "  mailctl %s\n", ctl_cmds[i].usage);
	mailctl_queue_usage(f);
	mailctl_dkim_usage(f);
	fprintf(
	    f,
	    "\n"
	    "Edits the shared config in Redis that every mailnode caches;\n"
	    "each change is published, so the nodes see it at once.\n\n"
	    "  -r, --redis HOST:PORT  Redis (default $MAILCTL_REDIS, then "
	    "%s)\n"
	    "  -a, --auth PASSWORD    Redis password; prefer "
	    "$MAILCTL_REDIS_PASSWORD,\n"
	    "                         as arguments are visible to other "
	    "users\n"
	    "  -q, --queue DIR        the shared outbound queue (default "
	    "$MAILCTL_QUEUE)\n"
	    "  -s, --store DIR        the shared message store, for "
	    "quota-recount\n"
	    "                         (default $MAILCTL_STORE)\n"
	    "  -h, --help             this help\n\n"
	    "Passwords are stored only as crypt(3) hashes (yescrypt or "
	    "SHA-512-crypt).\n"
	    "Without --password-stdin, user add and user passwd ask twice on "
	    "the\n"
	    "terminal; --password-stdin reads one line and strips its "
	    "newline.\n"
	    "Addresses and domains are lowercased. A user or an alias needs "
	    "its\n"
	    "domain first; domain del refuses a domain that still has users "
	    "(there\n"
	    "is no --force: delete them first); its aliases go with it.\n"
	    "Lists print one name a line, sorted; alias list prints "
	    "\"ALIAS TARGET\"\n"
	    "pairs. Mail to an alias goes to the local users it leads to, and\n"
	    "is forwarded to its targets in other domains.\n\n"
	    "user quota sets a user's storage limit in bytes (K, M, G, T: "
	    "powers\n"
	    "of 1024) or none; without one it prints the limit. "
	    "quota-recount\n"
	    "counts the user's usage again from the store and prints it.\n\n"
	    "export writes the whole config as JSON (password hashes "
	    "included;\n"
	    "a FILE is made mode 0600). import replaces the whole config "
	    "with a\n"
	    "file's (an export, or a node's SPOOL/config.snapshot) in one\n"
	    "transaction, at a generation above every node's, so the nodes "
	    "take\n"
	    "it even after Redis lost the config; wipe --yes empties it the "
	    "same\n"
	    "way.\n\n"
	    "config set KEY VALUE sets a node setting for every node of the\n"
	    "cluster (the INI's syntax and bounds; a key in a node's INI wins\n"
	    "for that node); the nodes apply it within a second. The keys:\n"
	    "%s.\n"
	    "config list prints \"KEY VALUE\" lines.\n\n"
	    "Exit status: 0 done, 1 refused or failed, 2 usage.\n",
	    CTL_DEFAULT_REDIS, node_setting_keys());
}

static const struct ctl_cmd *
ctl_find(const char *object, const char *verb)
{
	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		if (strcmp(ctl_cmds[i].object, object) == 0 &&
		    (ctl_cmds[i].verb == NULL ||
		     (verb && strcmp(ctl_cmds[i].verb, verb) == 0)))
			return &ctl_cmds[i];
	return NULL;
}

/* Sets the flag of option arg if cmd takes it. True when it did. */
static bool
ctl_parse_flag(struct ctl *x, const struct ctl_cmd *cmd, const char *arg)
{
	for (size_t i = 0; i < sizeof(ctl_flags) / sizeof(ctl_flags[0]); i++)
		if (ctl_flags[i].fn == cmd->fn &&
		    strcmp(ctl_flags[i].name, arg) == 0) {
			*(bool *)((char *)x + ctl_flags[i].offset) = true;
			return true;
		}
	return false;
}

/* Takes the command's own arguments: positional ones (lowercased) and
 * --password-stdin where it is allowed. */
static int
ctl_parse_args(struct ctl *x, const struct ctl_cmd *cmd, int argc, char **argv)
{
	bool options = true;

	for (int i = 0; i < argc; i++) {
		if (options && strcmp(argv[i], "--") == 0) {
			options = false;
			continue;
		}
		if (options && strcmp(argv[i], "--password-stdin") == 0 &&
		    cmd->password) {
			x->password_stdin = true;
			continue;
		}
		if (options && ctl_parse_flag(x, cmd, argv[i]))
			continue;
		if (options && argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "mailctl: %s: unknown option %s\n",
				x->what, argv[i]);
			return -1;
		}
		if (x->nargs == cmd->max) {
			fprintf(stderr, "mailctl: %s: too many arguments\n",
				x->what);
			return -1;
		}
		if (cmd->verb)
			ctl_lower(argv[i]);
		x->args[x->nargs++] = argv[i];
	}
	if (x->nargs < cmd->min) {
		fprintf(stderr, "mailctl: %s: missing argument\n", x->what);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"redis", required_argument, NULL, 'r'},
	    {"auth", required_argument, NULL, 'a'},
	    {"queue", required_argument, NULL, 'q'},
	    {"store", required_argument, NULL, 's'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *redis = getenv("MAILCTL_REDIS");
	const char *password = getenv("MAILCTL_REDIS_PASSWORD");
	const char *queue = getenv("MAILCTL_QUEUE");
	const struct ctl_cmd *cmd;
	char what[64];
	struct ctl x;
	int c, rc;

	memset(&x, 0, sizeof(x));
	x.what = "mailctl";
	x.store = getenv("MAILCTL_STORE");
	while ((c = getopt_long(argc, argv, "+r:a:q:s:h", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'r':
			redis = optarg;
			break;
		case 'a':
			password = optarg;
			break;
		case 'q':
			queue = optarg;
			break;
		case 's':
			x.store = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return CTL_OK;
		default:
			ctl_usage(stderr);
			return CTL_USAGE;
		}
	}
	if (optind < argc && strcmp(argv[optind], "help") == 0) {
		ctl_usage(stdout);
		return CTL_OK;
	}
	if (optind >= argc) {
		ctl_usage(stderr);
		return CTL_USAGE;
	}
	if (strcmp(argv[optind], "dkim") == 0)
		return mailctl_dkim(argc - optind - 1, argv + optind + 1,
				    queue);
	if (strcmp(argv[optind], "queue") == 0) {
		if (redis == NULL || redis[0] == '\0')
			redis = CTL_DEFAULT_REDIS;
		if (redis_opts_parse(redis, &x.opts) < 0) {
			fprintf(stderr, "mailctl: bad Redis address \"%s\"\n",
				redis);
			return CTL_USAGE;
		}
		if (password)
			snprintf(x.opts.password, sizeof(x.opts.password), "%s",
				 password);
		rc = mailctl_queue(argc - optind - 1, argv + optind + 1, queue,
				   &x.opts);
		explicit_bzero(x.opts.password, sizeof(x.opts.password));
		return rc;
	}
	cmd =
	    ctl_find(argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL);
	if (cmd == NULL) {
		fprintf(stderr, "mailctl: unknown command \"%s%s%s\"\n",
			argv[optind], optind + 1 < argc ? " " : "",
			optind + 1 < argc ? argv[optind + 1] : "");
		ctl_usage(stderr);
		return CTL_USAGE;
	}
	snprintf(what, sizeof(what), "%s%s%s", cmd->object,
		 cmd->verb ? " " : "", cmd->verb ? cmd->verb : "");
	x.what = what;
	int words = cmd->verb ? 2 : 1;
	if (ctl_parse_args(&x, cmd, argc - optind - words,
			   argv + optind + words) < 0) {
		fprintf(stderr, "usage: mailctl %s\n", cmd->usage);
		return CTL_USAGE;
	}
	if (redis == NULL || redis[0] == '\0')
		redis = CTL_DEFAULT_REDIS;
	if (redis_opts_parse(redis, &x.opts) < 0) {
		fprintf(stderr,
			"mailctl: bad Redis address \"%s\" (HOST:PORT)\n",
			redis);
		return CTL_USAGE;
	}
	snprintf(x.addr, sizeof(x.addr), "%s:%d", x.opts.host, x.opts.port);
	if (password && snprintf(x.opts.password, sizeof(x.opts.password), "%s",
				 password) >= (int)sizeof(x.opts.password)) {
		fprintf(stderr, "mailctl: Redis password too long\n");
		return CTL_USAGE;
	}
	rc = cmd->fn(&x);
	if (x.c)
		redisFree(x.c);
	explicit_bzero(x.opts.password, sizeof(x.opts.password));
	return rc;
}
