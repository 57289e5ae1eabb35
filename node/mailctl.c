/* mailctl: edits the shared config in Redis (node/schema.h) that every
 * mailnode caches. Each change is one MULTI/EXEC under WATCH of the keys
 * its checks read (retried when another mailctl got there first), bumps
 * ms:config:version in the same transaction, then PUBLISHes the new
 * version on ms:config so every node reloads at once.
 *
 * Synchronous hiredis is right here: one short-lived process, every call
 * bounded by a connect and a command timeout. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "../common/redis.h"
#include "auth/auth.h"
#include "config/directory.h"
#include "config/schema.h"
#include "mailctl_dkim.h"
#include "mailctl_queue.h"

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
	char *args[2];	  /* positional arguments, lowercased */
	int nargs;
	bool password_stdin; /* --password-stdin given */
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

	if (ctl_simple(x, "INCR %s", SCHEMA_VERSION) < 0)
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
	version = ver->type == REDIS_REPLY_INTEGER ? ver->integer : 0;
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

static int
ctl_user_passwd_prepare(struct ctl *x, void *arg)
{
	const char *a = x->args[0], *hash = arg;
	char users[CTL_KEY_MAX], user[CTL_KEY_MAX];
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
	if (ctl_multi(x) != CTL_OK)
		return CTL_FAIL;
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
    {"alias", "add", 2, 2, false, ctl_alias_add, "alias add ALIAS TARGET"},
    {"alias", "del", 2, 2, false, ctl_alias_del, "alias del ALIAS TARGET"},
    {"alias", "list", 0, 1, false, ctl_alias_list, "alias list [DOMAIN]"},
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
	    "Exit status: 0 done, 1 refused or failed, 2 usage.\n",
	    CTL_DEFAULT_REDIS);
}

static const struct ctl_cmd *
ctl_find(const char *object, const char *verb)
{
	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		if (strcmp(ctl_cmds[i].object, object) == 0 && verb &&
		    strcmp(ctl_cmds[i].verb, verb) == 0)
			return &ctl_cmds[i];
	return NULL;
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
	while ((c = getopt_long(argc, argv, "+r:a:q:h", longopts, NULL)) !=
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
	snprintf(what, sizeof(what), "%s %s", cmd->object, cmd->verb);
	x.what = what;
	if (ctl_parse_args(&x, cmd, argc - optind - 2, argv + optind + 2) < 0) {
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
