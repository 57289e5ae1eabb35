/* Queue runners: the scan, a job per claimed message, and its steps:
 * claimed -> (per destination domain) lookup -> SMTP -> results ->
 * finished (envelope rewritten or message removed) -> claim given back. */
#include "queue_runner.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/tls.h"
#include "queue_bounce.h"
#include "queue_sync.h"
#include "queue_claim.h"
#include "queue_dkim.h"
#include "queue_dns.h"
#include "queue_smtp.h"

#define QRUN_SCAN_S 1.0 /* how often the shared queue is looked over */
/* Every this many scans (and at the first) the queue is swept of what a
 * node that died while accepting left, once a day old (queue_sweep). */
#define QRUN_SWEEP_SCANS 3600
#define QRUN_ORPHAN_S 86400
#define QRUN_HOP_MAX (QUEUE_ADDR_MAX + 8) /* "[HOST]:PORT" or a domain */

struct qjob;
struct qseen;

struct queue_runner {
	struct ev_loop *loop;
	const struct node_config *cfg;
	struct queue *q;
	struct queue_sync *sync; /* makes removals durable, off the loop */
	struct redis *redis;
	struct directory *dir;
	struct store *store;
	struct queue_dns *dns;
	SSL_CTX *tls;			/* STARTTLS outbound */
	struct queue_smtp_cache *cache; /* idle connections by next hop */
	char relay_password[256]; /* relayhost_password_file's first line */
	ev_timer scan;
	ev_timer pick; /* a next hop has a slot again: see qrun_pick_cb */
	struct qjob *jobs;
	int active;
	bool draining;		   /* stopping: no new job */
	struct qseen *seen, *next; /* the last scan's listing, the next's */
	size_t nseen, capseen, nnext, capnext;
	unsigned long scans;
	struct queue_runner_stats stats;
};

struct qjob {
	struct queue_runner *r;
	struct qjob *next, **prevp;
	char id[QUEUE_ID_MAX];
	struct queue_claim *claim;
	bool lost; /* the claim went: write nothing */
	struct queue_env env;
	bool *due;	  /* per recipient: still to try in this run */
	bool *failed_now; /* failed in this run: to bounce */
	bool *deferred_now;
	int msgfd;
	size_t msgsize;
	char *dkim; /* the DKIM-Signature: field for remote copies; or NULL */
	/* the destination being delivered, and its next hop ("": local) */
	char domain[QUEUE_ADDR_MAX];
	char nexthop[QRUN_HOP_MAX];
	size_t *grp, ngrp;
	const char **grcpts;
	struct queue_dns_req *dns;
	struct queue_smtp *smtp;
	bool via_relayhost; /* the destination is the relayhost: AUTH */
};

static void qjob_next_group(struct qjob *j);
static void qrun_kick(struct queue_runner *r);
static void qrun_pick_soon(struct queue_runner *r);

static struct qjob *
qjob_find(struct queue_runner *r, const char *id)
{
	for (struct qjob *j = r->jobs; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

/* Where mail for domain goes next, the key connections are counted and
 * reused by: "" for a local domain (the store), "[HOST]:PORT" for a
 * [route] or the relayhost, else the domain itself (its MX hosts). */
static void
qrun_nexthop(const struct queue_runner *r, const char *domain, char *out,
	     size_t len)
{
	const struct node_hostport *to = node_route_find(r->cfg, domain);
	if (directory_domain_local(r->dir, domain))
		snprintf(out, len, "%s", "");
	else if (to || r->cfg->relayhost.host[0]) {
		to = to ? to : &r->cfg->relayhost;
		snprintf(out, len, "[%s]:%u", to->host, (unsigned)to->port);
	} else
		snprintf(out, len, "%s", domain);
}

/* True when a connection to next hop hop may be in use now by one more
 * job (queue_per_destination: each job of r but except that is at that
 * next hop has one, or waits for one); local domains ("") need none. */
static bool
qrun_hop_free(struct queue_runner *r, const char *hop,
	      const struct qjob *except)
{
	int n = 0;
	if (hop[0] == '\0')
		return true;
	for (struct qjob *j = r->jobs; j; j = j->next)
		if (j != except && strcasecmp(j->nexthop, hop) == 0)
			n++;
	return n < r->cfg->queue_per_destination;
}

static bool
qrun_dest_free(struct queue_runner *r, const char *domain,
	       const struct qjob *except)
{
	char hop[QRUN_HOP_MAX];
	qrun_nexthop(r, domain, hop, sizeof(hop));
	return qrun_hop_free(r, hop, except);
}

/* Everything of the job goes; the claim is given back. */
static void
qjob_end(struct qjob *j)
{
	queue_dns_cancel(j->dns);
	queue_smtp_abort(j->smtp);
	queue_claim_release(j->claim);
	if (j->msgfd >= 0)
		close(j->msgfd);
	queue_env_free(&j->env);
	free(j->dkim);
	free(j->due);
	free(j->failed_now);
	free(j->deferred_now);
	free(j->grp);
	free(j->grcpts);
	if ((*j->prevp = j->next) != NULL)
		j->next->prevp = j->prevp;
	j->r->active--;
	free(j);
}

/* Nothing more to try in this run: the envelope is written back, or the
 * message removed when no recipient is left. */
static bool
qrun_any(const bool *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i])
			return true;
	return false;
}

/* The bounce for what failed in this run, and the delay notice once. */
static void
qjob_notices(struct qjob *j)
{
	struct queue_runner *r = j->r;
	char id[QUEUE_ID_MAX];
	long long age = (long long)time(NULL) - j->env.created;
	size_t n = j->env.nrcpt;
	if (j->env.sender[0] == '\0')
		return;
	if (qrun_any(j->failed_now, n)) {
		if (queue_bounce(r->q, &j->env, j->failed_now, DSN_FAILED,
				 r->cfg->hostname, j->msgfd, j->msgsize,
				 id) < 0)
			log_err("%s: bounce: %s", j->id, strerror(errno));
		else {
			log_info("%s: sender non-delivery notification: %s",
				 j->id, id);
			qrun_kick(r);
		}
	}
	if (r->cfg->delay_warning_s > 0 && !j->env.warned &&
	    age >= r->cfg->delay_warning_s && qrun_any(j->deferred_now, n)) {
		if (queue_bounce(r->q, &j->env, j->deferred_now, DSN_DELAYED,
				 r->cfg->hostname, j->msgfd, j->msgsize,
				 id) < 0)
			log_err("%s: delay notice: %s", j->id, strerror(errno));
		else {
			log_info("%s: sender delay notification: %s", j->id,
				 id);
			j->env.warned = true;
			qrun_kick(r);
		}
	}
}

/* The message is done: removed off the loop, the claim's flock held
 * until its files are gone (inline when that cannot be). */
static void
qjob_remove(struct qjob *j)
{
	int fds[2];
	size_t n = 0;
	if (j->msgfd >= 0)
		fds[n++] = j->msgfd;
	fds[n++] = queue_claim_hand_over(j->claim); /* the flock, last */
	j->msgfd = -1;
	j->claim = NULL;
	if (queue_sync_remove(j->r->sync, j->id, fds, n) == 0) {
		log_info("%s: removed", j->id);
		return;
	}
	if (queue_remove(j->r->q, j->id) < 0)
		log_err("queue %s: remove: %s", j->id, strerror(errno));
	else
		log_info("%s: removed", j->id);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static void
qjob_finish(struct qjob *j)
{
	if (!j->lost && queue_claim_valid(j->claim)) {
		qjob_notices(j);
		if (queue_env_done(&j->env))
			qjob_remove(j);
		else if (queue_env_write(j->r->q, &j->env) < 0)
			log_err("queue %s: envelope: %s", j->id,
				strerror(errno));
	} else
		log_warn("%s: claim lost: results not written", j->id);
	/* The next message may take this destination's slot (and its idle
	 * connection). */
	qrun_pick_soon(j->r);
	qjob_end(j);
}

static long long
qrun_backoff(const struct node_config *cfg, int attempts)
{
	long long d = cfg->queue_retry_min_s;
	for (int i = 1; i < attempts && d < cfg->queue_retry_max_s; i++)
		d *= 2;
	return d < cfg->queue_retry_max_s ? d : cfg->queue_retry_max_s;
}

/* One recipient's attempt is over: its new state and the log line. */
static void
qjob_result(struct qjob *j, size_t i, int code, const char *reply,
	    const char *relay)
{
	struct queue_runner *r = j->r;
	struct queue_rcpt *rc = &j->env.rcpt[i];
	long long now = (long long)time(NULL);
	const char *status;

	rc->attempts++;
	snprintf(rc->reply, sizeof(rc->reply), "%s", reply);
	rc->reply[strcspn(rc->reply, "\r\n")] = '\0';
	if (code / 100 == 2) {
		rc->state = QR_SENT;
		status = "sent";
		r->stats.sent++;
	} else if (code / 100 == 5) {
		rc->state = QR_FAILED;
		j->failed_now[i] = true;
		status = "bounced";
		r->stats.failed++;
	} else {
		rc->state = QR_DEFERRED;
		j->deferred_now[i] = true;
		rc->next_try = now + qrun_backoff(r->cfg, rc->attempts);
		status = "deferred";
		r->stats.deferred++;
	}
	log_info("%s: to=<%s>, relay=%s, delay=%lld, status=%s (%s)", j->id,
		 rc->addr, relay, now - j->env.created, status, rc->reply);
}

static void
qjob_smtp_cb(const struct queue_smtp_result *res, const char *relay, void *arg)
{
	struct qjob *j = arg;
	j->smtp = NULL;
	if (j->r->draining) /* the connection just parked QUITs */
		queue_smtp_cache_flush(j->r->cache);
	for (size_t k = 0; k < j->ngrp; k++)
		qjob_result(j, j->grp[k], res[k].code, res[k].reply, relay);
	qjob_next_group(j);
}

static bool
qjob_may_commit(void *arg)
{
	struct qjob *j = arg;
	return !j->lost && queue_claim_valid(j->claim);
}

/* The SMTP client's job for the current destination's recipients. */
static void
qjob_smtp_job(struct qjob *j, struct queue_smtp_job *out)
{
	struct queue_smtp_job sj = {
	    .helo = j->r->cfg->hostname,
	    .sender = j->env.sender,
	    .rcpts = j->grcpts,
	    .nrcpt = j->ngrp,
	    .msgfd = j->msgfd,
	    .msgsize = j->msgsize,
	    .prefix = j->dkim,
	    .timeout = j->r->cfg->smtp_timeout_s,
	    .tls = j->r->tls,
	    .tls_policy = j->r->cfg->smtp_tls,
	    .auth_user = j->via_relayhost && j->r->cfg->relayhost_user[0]
			     ? j->r->cfg->relayhost_user
			     : NULL,
	    .auth_password = j->r->relay_password,
	    .may_commit = qjob_may_commit,
	    .cache = j->r->cache,
	    .nexthop = j->nexthop,
	};
	*out = sj;
}

static void
qjob_dns_cb(const struct queue_dest *dest, void *arg)
{
	struct qjob *j = arg;
	struct queue_smtp_job sj;
	j->dns = NULL;
	if (dest->status != 0) {
		for (size_t k = 0; k < j->ngrp; k++)
			qjob_result(j, j->grp[k], dest->status * 100,
				    dest->reply, "none");
		qjob_next_group(j);
		return;
	}
	qjob_smtp_job(j, &sj);
	j->smtp = queue_smtp_send(j->r->loop, dest, &sj, qjob_smtp_cb, j);
	if (j->smtp == NULL) {
		for (size_t k = 0; k < j->ngrp; k++)
			qjob_result(j, j->grp[k], 451,
				    "451 4.3.0 out of memory", "none");
		qjob_next_group(j);
	}
}

static const char *
qrun_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at ? at + 1 : "";
}

/* One recipient in a local domain: its mailboxes in the store. */
static void
qjob_deliver_local(struct qjob *j, size_t i)
{
	struct queue_runner *r = j->r;
	char mb[DIR_MAX_TARGETS][DIR_ADDR_MAX], prefix[QUEUE_ADDR_MAX + 32];
	const char *list[DIR_MAX_TARGETS];
	bool failed[DIR_MAX_TARGETS];
	size_t n = 0;
	const char *addr = j->env.rcpt[i].addr;

	switch (directory_resolve(r->dir, addr, mb, DIR_MAX_TARGETS, &n)) {
	case DIR_UNKNOWN:
		qjob_result(j, i, 550,
			    "550 5.1.1 Recipient address rejected: no such "
			    "user",
			    "local");
		return;
	case DIR_NOT_LOCAL:
		qjob_result(j, i, 451, "451 4.3.0 domain no longer local",
			    "local");
		return;
	case DIR_OK:
		break;
	}
	for (size_t k = 0; k < n; k++)
		list[k] = mb[k];
	snprintf(prefix, sizeof(prefix), "Return-Path: <%s>\r\n",
		 j->env.sender);
	if (store_deliver(r->store, list, n, j->msgfd, j->msgsize, prefix,
			  failed) < 0)
		qjob_result(j, i, 451, "451 4.3.0 store unavailable", "local");
	else
		qjob_result(j, i, 250, "250 2.0.0 delivered to the store",
			    "local");
}

/* The recipients of the next destination domain: delivered at once when
 * it is local, else looked up; or the end. */
static void
qjob_next_group(struct qjob *j)
{
	const struct node_config *cfg = j->r->cfg;
	size_t first;
	for (;;) {
		for (first = 0; first < j->env.nrcpt && !j->due[first]; first++)
			;
		if (first == j->env.nrcpt) {
			qjob_finish(j);
			return;
		}
		snprintf(j->domain, sizeof(j->domain), "%s",
			 qrun_domain(j->env.rcpt[first].addr));
		j->ngrp = 0;
		for (size_t i = first; i < j->env.nrcpt; i++)
			if (j->due[i] &&
			    strcasecmp(qrun_domain(j->env.rcpt[i].addr),
				       j->domain) == 0) {
				j->due[i] = false;
				j->grcpts[j->ngrp] = j->env.rcpt[i].addr;
				j->grp[j->ngrp++] = i;
			}
		qrun_nexthop(j->r, j->domain, j->nexthop, sizeof(j->nexthop));
		if (j->nexthop[0]) {
			if (qrun_dest_free(j->r, j->domain, j))
				break;
			/* Busy destination: these wait for a later scan,
			 * untouched (no attempt counted). */
			continue;
		}
		for (size_t k = 0; k < j->ngrp; k++)
			qjob_deliver_local(j, j->grp[k]);
	}
	if (!directory_loaded(j->r->dir)) {
		/* Whether it is local is not known yet. */
		for (size_t k = 0; k < j->ngrp; k++)
			qjob_result(j, j->grp[k], 451,
				    "451 4.3.0 configuration not loaded yet",
				    "none");
		qjob_next_group(j);
		return;
	}
	const struct node_hostport *to = node_route_find(cfg, j->domain);
	j->via_relayhost = to == NULL && cfg->relayhost.host[0];
	if (j->via_relayhost)
		to = &cfg->relayhost;
	struct queue_smtp_job sj;
	qjob_smtp_job(j, &sj);
	if ((j->smtp = queue_smtp_reuse(j->r->cache, j->nexthop, &sj,
					qjob_smtp_cb, j)) != NULL)
		return; /* no lookup: the connection is there */
	j->dns = to ? queue_dns_lookup(j->r->dns, to->host, false, to->port,
				       qjob_dns_cb, j)
		    : queue_dns_lookup(j->r->dns, j->domain, true, cfg->mx_port,
				       qjob_dns_cb, j);
	if (j->dns == NULL) {
		for (size_t k = 0; k < j->ngrp; k++)
			qjob_result(j, j->grp[k], 451,
				    "451 4.3.0 out of memory", "none");
		qjob_finish(j);
	}
}

static bool
qrun_rcpt_due(const struct queue_rcpt *rc, long long now)
{
	return (rc->state == QR_QUEUED || rc->state == QR_DEFERRED) &&
	       rc->next_try <= now;
}

/* Signs the message for its sender's domain, when that has a key. */
static void
qjob_dkim(struct qjob *j)
{
	const char *domain = qrun_domain(j->env.sender);
	if (domain[0] == '\0' || j->msgsize == 0)
		return;
	void *m = mmap(NULL, j->msgsize, PROT_READ, MAP_PRIVATE, j->msgfd, 0);
	if (m == MAP_FAILED) {
		log_warn("%s: DKIM: %s", j->id, strerror(errno));
		return;
	}
	j->dkim = queue_dkim_sign(j->r->q, domain, m, j->msgsize);
	if (j->dkim == NULL && errno != ENOENT)
		log_warn("%s: DKIM key of %s: %s: sent unsigned", j->id, domain,
			 strerror(errno));
	munmap(m, j->msgsize);
}

/* The claim is ours: the envelope as it is now decides. */
static void
qjob_claimed(struct qjob *j)
{
	struct queue_runner *r = j->r;
	char name[QUEUE_ID_MAX + 8];
	struct stat st;
	long long now = (long long)time(NULL);

	if (queue_env_read(r->q, j->id, &j->env) < 0) {
		if (errno != ENOENT)
			log_warn("queue %s: envelope: %s", j->id,
				 strerror(errno));
		qjob_end(j);
		return;
	}
	snprintf(name, sizeof(name), "%s.msg", j->id);
	j->msgfd =
	    openat(queue_dirfd(r->q), name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (j->msgfd < 0 || fstat(j->msgfd, &st) < 0) {
		log_warn("queue %s: message: %s", j->id, strerror(errno));
		qjob_end(j);
		return;
	}
	j->msgsize = (size_t)st.st_size;
	qjob_dkim(j);
	size_t n = j->env.nrcpt;
	j->due = calloc(n, sizeof(*j->due));
	j->failed_now = calloc(n, sizeof(*j->failed_now));
	j->deferred_now = calloc(n, sizeof(*j->deferred_now));
	j->grp = calloc(n, sizeof(*j->grp));
	j->grcpts = calloc(n, sizeof(*j->grcpts));
	if (j->due == NULL || j->grp == NULL || j->grcpts == NULL ||
	    j->failed_now == NULL || j->deferred_now == NULL || j->env.held) {
		qjob_end(j);
		return;
	}
	bool expired = now - j->env.created >= r->cfg->queue_lifetime_s;
	size_t ndue = 0;
	for (size_t i = 0; i < n; i++) {
		struct queue_rcpt *rc = &j->env.rcpt[i];
		if (expired &&
		    (rc->state == QR_QUEUED || rc->state == QR_DEFERRED)) {
			char why[QUEUE_REPLY_MAX];
			snprintf(why, sizeof(why),
				 "554 5.4.7 message expired after %d s in "
				 "the queue (last: %.300s)",
				 r->cfg->queue_lifetime_s, rc->reply);
			rc->attempts--; /* not an attempt */
			qjob_result(j, i, 554, why, "none");
			continue;
		}
		j->due[i] = qrun_rcpt_due(rc, now);
		ndue += j->due[i];
	}
	if (ndue == 0 && !expired) {
		qjob_end(j); /* another node did it meanwhile */
		return;
	}
	qjob_next_group(j);
}

static void
qjob_claim_cb(struct queue_claim *c, enum queue_claim_state st, void *arg)
{
	struct qjob *j = arg;
	(void)c;
	switch (st) {
	case QC_HELD:
		qjob_claimed(j);
		return;
	case QC_BUSY:
		qjob_end(j);
		return;
	case QC_LOST:
		j->lost = true;
		/* Drop what is in flight; qjob_finish writes nothing. */
		queue_dns_cancel(j->dns);
		j->dns = NULL;
		queue_smtp_abort(j->smtp);
		j->smtp = NULL;
		qjob_finish(j);
		return;
	case QC_PENDING:
		return;
	}
}

static void
qrun_start(struct queue_runner *r, const char *id, const char *domain)
{
	enum queue_claim_state st;
	struct qjob *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return;
	j->r = r;
	j->msgfd = -1;
	snprintf(j->id, sizeof(j->id), "%s", id);
	snprintf(j->domain, sizeof(j->domain), "%s", domain); /* reserved */
	qrun_nexthop(r, domain, j->nexthop, sizeof(j->nexthop));
	j->claim = queue_claim_take(r->q, r->redis, id, r->cfg->queue_lease_s,
				    qjob_claim_cb, j, &st);
	if (j->claim == NULL) {
		free(j);
		return;
	}
	if ((j->next = r->jobs) != NULL)
		j->next->prevp = &j->next;
	r->jobs = j;
	j->prevp = &r->jobs;
	r->active++;
	if (st == QC_HELD)
		qjob_claimed(j);
}

/* What the last scan learned of a message: its envelope file (inode and
 * mtime: a rewrite is a rename, so either changes), when it is next due,
 * and, when it was due but waited for a busy next hop (every recipient
 * due going there), that next hop. A message whose file has not changed
 * is not read again before it is due, nor while that next hop stays
 * busy: a long queue to one busy destination costs a stat per message
 * and scan, not a read. */
struct qseen {
	char id[QUEUE_ID_MAX];
	ino_t ino;
	struct timespec mtime;
	long long due;		 /* LLONG_MAX: held, or nothing left to try */
	char busy[QRUN_HOP_MAX]; /* "": none */
};

static int
qseen_cmp(const void *a, const void *b)
{
	return strcmp(((const struct qseen *)a)->id,
		      ((const struct qseen *)b)->id);
}

static void
qrun_remember(struct queue_runner *r, const char *id, const struct stat *st,
	      long long due, const char *busy)
{
	if (r->nnext == r->capnext) {
		size_t cap = r->capnext ? r->capnext * 2 : 256;
		void *p = realloc(r->next, cap * sizeof(*r->next));
		if (p == NULL)
			return; /* forgotten: read again next time */
		r->next = p;
		r->capnext = cap;
	}
	struct qseen *e = &r->next[r->nnext++];
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->ino = st->st_ino;
	e->mtime = st->st_mtim;
	e->due = due;
	snprintf(e->busy, sizeof(e->busy), "%s", busy);
}

/* When env next has something to try. */
static long long
qrun_env_due(const struct queue_runner *r, const struct queue_env *env)
{
	long long due = LLONG_MAX;
	long long expiry = env->created + r->cfg->queue_lifetime_s;
	if (env->held)
		return due;
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct queue_rcpt *rc = &env->rcpt[i];
		if (rc->state != QR_QUEUED && rc->state != QR_DEFERRED)
			continue;
		long long t = rc->next_try < expiry ? rc->next_try : expiry;
		if (t < due)
			due = t;
	}
	return due;
}

/* One queued message seen by the scan: started when something is due
 * and a connection to its destination is to spare. */
static int
qrun_consider(const char *id, void *arg)
{
	struct queue_runner *r = arg;
	struct queue_env env;
	struct stat st;
	char name[QUEUE_ID_MAX + 8];
	long long now = (long long)time(NULL);

	if (qjob_find(r, id))
		return 0;
	snprintf(name, sizeof(name), "%s.env", id);
	if (fstatat(queue_dirfd(r->q), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	struct qseen key, *old;
	snprintf(key.id, sizeof(key.id), "%s", id);
	old = r->seen ? bsearch(&key, r->seen, r->nseen, sizeof(*r->seen),
				qseen_cmp)
		      : NULL;
	if (old && old->ino == st.st_ino &&
	    old->mtime.tv_sec == st.st_mtim.tv_sec &&
	    old->mtime.tv_nsec == st.st_mtim.tv_nsec &&
	    (old->due > now ||
	     (old->busy[0] && !qrun_hop_free(r, old->busy, NULL)))) {
		qrun_remember(r, id, &st, old->due, old->busy);
		return 0;
	}
	if (r->active >= r->cfg->queue_concurrency ||
	    queue_env_read(r->q, id, &env) < 0)
		return 0;
	long long due = qrun_env_due(r, &env);
	bool expired = now - env.created >= r->cfg->queue_lifetime_s;
	const char *domain = NULL;
	char busy[QRUN_HOP_MAX] = "", hop[QRUN_HOP_MAX];
	bool one_hop = true; /* every due recipient waits for busy */
	for (size_t i = 0; i < env.nrcpt && !domain && due <= now; i++) {
		const char *dom = qrun_domain(env.rcpt[i].addr);
		if (!qrun_rcpt_due(&env.rcpt[i], now) &&
		    !(expired && env.rcpt[i].state == QR_DEFERRED))
			continue;
		/* the first due destination with a connection to spare */
		qrun_nexthop(r, dom, hop, sizeof(hop));
		if (expired || qrun_hop_free(r, hop, NULL))
			domain = dom;
		else if (busy[0] == '\0')
			snprintf(busy, sizeof(busy), "%s", hop);
		else
			one_hop &= strcasecmp(busy, hop) == 0;
	}
	qrun_remember(r, id, &st, due, domain || !one_hop ? "" : busy);
	if (domain)
		qrun_start(r, id, domain);
	queue_env_free(&env);
	return 0;
}

/* Messages the last scan saw waiting for a next hop that has a slot
 * again are considered, without listing the directory (each once: the
 * next scan sees the rest). From the loop, never inside a job's own
 * callbacks. */
static void
qrun_pick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct queue_runner *r = w->data;
	const char *last = NULL; /* the last next hop asked about */
	bool last_free = false;
	(void)loop;
	(void)revents;
	for (size_t i = 0; i < r->nseen && !r->draining &&
			   r->active < r->cfg->queue_concurrency;
	     i++) {
		struct qseen *e = &r->seen[i];
		if (e->busy[0] == '\0')
			continue;
		/* A long queue waits mostly for one next hop: asked once
		 * per run of it, not once per message. */
		if (last == NULL || strcasecmp(last, e->busy) != 0) {
			last = e->busy;
			last_free = qrun_hop_free(r, e->busy, NULL);
		}
		if (!last_free)
			continue;
		e->busy[0] = '\0';
		last = NULL; /* it was e's; and a job may start now */
		qrun_consider(e->id, r);
	}
}

static void
qrun_pick_soon(struct queue_runner *r)
{
	if (!r->draining && !ev_is_active(&r->pick))
		ev_timer_start(r->loop, &r->pick);
}

static void
qrun_swept(const char *id, void *arg)
{
	(void)arg;
	log_info("%s: removed: never committed (a node died while accepting "
		 "it; its client had no 250)",
		 id);
}

static void
qrun_scan_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct queue_runner *r = w->data;
	(void)loop;
	(void)revents;
	/* Which domains are local decides where mail goes: nothing is
	 * claimed before the config is known. */
	if (!directory_loaded(r->dir))
		return;
	if (r->scans++ % QRUN_SWEEP_SCANS == 0)
		queue_sweep(r->q, QRUN_ORPHAN_S, qrun_swept, r);
	r->nnext = 0;
	queue_each(r->q, qrun_consider, r);
	if (r->nnext > 1)
		qsort(r->next, r->nnext, sizeof(*r->next), qseen_cmp);
	struct qseen *t = r->seen; /* the new listing replaces the old */
	size_t cap = r->capseen;
	r->seen = r->next;
	r->nseen = r->nnext;
	r->capseen = r->capnext;
	r->next = t;
	r->capnext = cap;
	r->nnext = 0; /* what qrun_consider remembers until the next scan
			 lands in this spare listing, and is dropped */
}

/* The first line of path (the relayhost's password). */
static int
qrun_read_password(const char *path, char *out, size_t outlen, char *err,
		   size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (f == NULL || fgets(out, (int)outlen, f) == NULL) {
		snprintf(err, errlen, "relayhost_password_file %s: %s", path,
			 f ? "empty" : strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

struct queue_runner *
queue_runner_new(struct ev_loop *loop, const struct node_config *cfg,
		 struct queue *q, struct queue_sync *sync, struct redis *redis,
		 struct directory *dir, struct store *store, char *err,
		 size_t errlen)
{
	struct queue_runner *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->loop = loop;
	r->cfg = cfg;
	r->q = q;
	r->sync = sync;
	r->redis = redis;
	r->dir = dir;
	r->store = store;
	r->dns = queue_dns_new(loop, cfg->has_resolver ? &cfg->resolver : NULL,
			       err, errlen);
	if (r->dns == NULL) {
		free(r);
		return NULL;
	}
	if (cfg->relayhost_password_file[0] &&
	    qrun_read_password(cfg->relayhost_password_file, r->relay_password,
			       sizeof(r->relay_password), err, errlen) < 0) {
		queue_dns_free(r->dns);
		free(r);
		return NULL;
	}
	r->tls = tls_client_ctx(cfg->smtp_tls_ca, true, err, errlen);
	if (r->tls == NULL || (r->cache = queue_smtp_cache_new()) == NULL) {
		if (r->tls)
			snprintf(err, errlen, "out of memory");
		SSL_CTX_free(r->tls);
		queue_dns_free(r->dns);
		free(r);
		return NULL;
	}
	ev_timer_init(&r->scan, qrun_scan_cb, 0.05, QRUN_SCAN_S);
	r->scan.data = r;
	ev_timer_init(&r->pick, qrun_pick_cb, 0., 0.);
	r->pick.data = r;
	ev_timer_start(loop, &r->scan);
	return r;
}

void
queue_runner_free(struct queue_runner *r)
{
	if (r == NULL)
		return;
	ev_timer_stop(r->loop, &r->scan);
	ev_timer_stop(r->loop, &r->pick);
	while (r->jobs)
		qjob_end(r->jobs);
	queue_smtp_cache_free(r->cache);
	queue_dns_free(r->dns);
	free(r->seen);
	free(r->next);
	SSL_CTX_free(r->tls);
	explicit_bzero(r->relay_password, sizeof(r->relay_password));
	free(r);
}

int
queue_runner_drain(struct queue_runner *r)
{
	if (r == NULL)
		return 0;
	r->draining = true;
	ev_timer_stop(r->loop, &r->scan);
	ev_timer_stop(r->loop, &r->pick);
	queue_smtp_cache_flush(r->cache); /* deliveries that end QUIT */
	return r->active;
}

/* A scan soon. */
static void
qrun_kick(struct queue_runner *r)
{
	if (r->draining)
		return;
	/* Already due this soon: kicks in a row do not push it back. */
	if (ev_is_active(&r->scan) &&
	    ev_timer_remaining(r->loop, &r->scan) <= 0.01)
		return;
	ev_timer_stop(r->loop, &r->scan);
	ev_timer_set(&r->scan, 0.01, QRUN_SCAN_S);
	ev_timer_start(r->loop, &r->scan);
}

void
queue_runner_queued(struct queue_runner *r, const char *id)
{
	if (r == NULL || r->draining || !directory_loaded(r->dir))
		return;
	qrun_consider(id, r);
}

void
queue_runner_stats(const struct queue_runner *r, struct queue_runner_stats *st)
{
	*st = r->stats;
}
