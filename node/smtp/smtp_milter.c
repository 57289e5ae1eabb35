/* A received message through the milters (milter.h), between the
 * client's final dot and the node's answer: the verdict is the answer
 * (a reject or tempfail before any 250, nothing stored; a discard is a
 * 250 that stores nothing), the milters' header edits are written into
 * the message, and with spam_to_junk a message they marked as spam (or
 * quarantined) goes into the local recipients' Junk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../../common/log.h"
#include "milter.h"
#include "smtp.h"

struct smtp_milter {
	struct milter_run *run;
	struct milter_message msg;
	struct milter_headers headers;
	const char **rcpts;
	char addr[ADDR_STRLEN];
};

int
smtp_milter_rcpt(struct smtp_session *s, const char *rcpt)
{
	for (size_t i = 0; i < s->nrcptaddr; i++)
		if (strcasecmp(s->rcpt[i], rcpt) == 0)
			return 0;
	if (s->nrcptaddr == s->caprcpt) {
		size_t cap = s->caprcpt ? s->caprcpt * 2 : 8;
		void *m = realloc(s->rcpt, cap * sizeof(*s->rcpt));
		if (m == NULL)
			return -1;
		s->rcpt = m;
		s->caprcpt = cap;
	}
	snprintf(s->rcpt[s->nrcptaddr++], DIR_ADDR_MAX, "%s", rcpt);
	return 0;
}

bool
smtp_milter_wanted(const struct smtp_session *s)
{
	const struct node_config *cfg = s->mn->cfg;
	return cfg->nmilters > 0 &&
	       (!smtp_is_submission(s) || cfg->milter_submission);
}

/* SMFIR_REPLBODY's file. */
static int
smtp_milter_body_file(void *arg)
{
	struct smtp_session *s = arg;
	return spool_tmpfile(s->mn->spool);
}

static void
smtp_milter_free(struct smtp_milter *m)
{
	if (m->msg.body_fd >= 0)
		close(m->msg.body_fd);
	milter_headers_free(&m->headers);
	free(m->rcpts);
	free(m);
}

void
smtp_milter_cancel(struct smtp_session *s)
{
	if (s->milter == NULL)
		return;
	milter_run_cancel(s->milter->run);
	smtp_milter_free(s->milter);
	s->milter = NULL;
}

/* The message with the milters' edits (header section, body), in a new
 * spool file that replaces s->datafd. Returns 0 or -1 with errno. */
static int
smtp_milter_rewrite(struct smtp_session *s, const struct smtp_milter *m)
{
	int fd = spool_tmpfile(s->mn->spool);
	if (fd < 0)
		return -1;
	long n = milter_headers_write(&m->headers, s->datafd, s->datasize,
				      m->msg.body_fd, m->msg.body_len, fd);
	if (n < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	close(s->datafd);
	s->datafd = fd;
	s->datasize = (size_t)n;
	return 0;
}

/* The answer for a verdict without a reply text of the milter's. */
static const char *
smtp_milter_default_reply(enum milter_verdict v)
{
	return v == MILTER_V_REJECT ? "550 5.7.1 Message content rejected"
				    : "451 4.7.1 Service unavailable - try "
				      "again later";
}

static void
smtp_milter_done(void *arg, const struct milter_result *r)
{
	struct smtp_session *s = arg;
	struct smtp_milter *m = s->milter;
	struct mailnode_counters *k = &s->mn->counters;
	bool junk = false;

	m->run = NULL;
	k->milter_unavailable += (unsigned)r->unavailable; /* each logged */
	stream_batch_begin(s->st);
	switch (r->verdict) {
	case MILTER_V_REJECT:
	case MILTER_V_TEMPFAIL:
		k->milter_results[r->verdict == MILTER_V_REJECT
				      ? MAILNODE_MILTER_REJECT
				      : MAILNODE_MILTER_TEMPFAIL]++;
		log_info("smtp %s: from=<%s> client=%s milter %s: %s", s->id,
			 s->sender, stream_peer_str(s->st), r->by,
			 r->reply[0] ? r->reply
				     : smtp_milter_default_reply(r->verdict));
		smtp_reply(s, "%s",
			   r->reply[0] ? r->reply
				       : smtp_milter_default_reply(r->verdict));
		smtp_data_done(s);
		break;
	case MILTER_V_DISCARD:
		k->milter_results[MAILNODE_MILTER_DISCARD]++;
		log_info("smtp %s: from=<%s> client=%s milter %s: discarded",
			 s->id, s->sender, stream_peer_str(s->st), r->by);
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", s->id);
		smtp_data_done(s);
		break;
	case MILTER_V_ACCEPT:
		if ((m->headers.changed || m->msg.body_fd >= 0) &&
		    smtp_milter_rewrite(s, m) < 0) {
			log_err("smtp %s: spool: %s", s->id, strerror(errno));
			smtp_reply(s, "451 4.3.0 Local spool error, try again "
				      "later");
			smtp_data_done(s);
			break;
		}
		junk = s->mn->cfg->spam_to_junk &&
		       (r->quarantined || milter_headers_spam(&m->headers));
		if (r->quarantined)
			log_info("smtp %s: quarantined by a milter: %s", s->id,
				 r->reason);
		k->milter_results[junk ? MAILNODE_MILTER_JUNK
				       : MAILNODE_MILTER_ACCEPT]++;
		smtp_data_deliver(s, junk ? "Junk" : NULL);
		break;
	}
	smtp_milter_free(m);
	s->milter = NULL;
	stream_batch_end(s->st);
	if (s->state != SMTP_QUIT && s->state != SMTP_DELIVER)
		stream_resume(s->st); /* else held until the queue's answer */
}

void
smtp_milter_start(struct smtp_session *s)
{
	struct smtp_milter *m = calloc(1, sizeof(*m));
	char *head = NULL;
	if (m)
		m->msg.body_fd = -1; /* for smtp_milter_free on failure */
	size_t want =
	    s->datasize < MILTER_HEADERS_MAX ? s->datasize : MILTER_HEADERS_MAX;
	if (m == NULL || (head = malloc(want + 1)) == NULL ||
	    (m->rcpts = calloc(s->nrcptaddr + 1, sizeof(*m->rcpts))) == NULL)
		goto fail;
	ssize_t got = pread(s->datafd, head, want, 0);
	if (got < 0 || milter_headers_read(&m->headers, head, (size_t)got) < 0)
		goto fail;
	free(head);
	head = NULL;
	for (size_t i = 0; i < s->nrcptaddr; i++)
		m->rcpts[i] = s->rcpt[i];
	const struct sockaddr *peer = stream_peer(s->st);
	addr_host(peer, m->addr, sizeof(m->addr));
	m->msg = (struct milter_message){
	    .queue_id = s->id,
	    .hostname = s->mn->cfg->hostname,
	    .daemon = node_role_name(s->role),
	    .client_addr = m->addr,
	    .client_name = "unknown",
	    .family = peer->sa_family == AF_INET6 ? '6' : '4',
	    .client_port = addr_port(peer),
	    .helo = s->helo,
	    .auth_user = s->user,
	    .tls = stream_is_tls(s->st) ? "TLS" : "",
	    .sender = s->sender,
	    .rcpts = m->rcpts,
	    .nrcpts = s->nrcptaddr,
	    .fd = s->datafd,
	    .size = s->datasize,
	    .headers = &m->headers,
	    .body_file = smtp_milter_body_file,
	    .body_arg = s,
	    .body_max = s->mn->cfg->msg_max,
	    .body_fd = -1,
	};
	s->milter = m;
	m->run = milter_run_start(s->mn->loop, s->mn->cfg, &m->msg,
				  smtp_milter_done, s);
	if (m->run == NULL) {
		s->milter = NULL;
		goto fail;
	}
	s->state = SMTP_MILTER;
	stream_pause(s->st);
	return;
fail:
	log_err("smtp %s: milters: out of memory or read error", s->id);
	free(head);
	if (m)
		smtp_milter_free(m);
	smtp_reply(s, "451 4.3.0 Temporary local failure, try again later");
	smtp_data_done(s);
}
