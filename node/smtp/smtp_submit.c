/* Mail for other domains: who may relay (submission after AUTH, the MX
 * listener from relay_networks), whose sender addresses a user may use,
 * the headers submission adds (RFC 6409), and the hand-off of the
 * remote recipients to the shared queue. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../queue/queue.h"
#include "../queue/queue_runner.h"
#include "../queue/queue_srs.h"
#include "smtp.h"

#define SMTP_HEADER_SCAN_MAX (1 << 20) /* header bytes looked at */

bool
smtp_relay_allowed(const struct smtp_session *s)
{
	const struct node_config *cfg = s->mn->cfg;
	const struct sockaddr *peer = stream_peer(s->st);
	if (smtp_is_submission(s))
		return s->user[0] != '\0';
	if (!netlist_match(&cfg->relay_networks, peer))
		return false;
	/* The balancer's own address (a PROXY LOCAL, or no header at all)
	 * is not a client of ours. */
	return !(cfg->proxy_protocol &&
		 netlist_match(&cfg->proxy_trusted, peer));
}

bool
smtp_sender_allowed(const struct smtp_session *s, const char *sender)
{
	char mb[DIR_MAX_TARGETS][DIR_ADDR_MAX];
	size_t n = 0;
	if (strcasecmp(sender, s->user) == 0)
		return true;
	if (sender[0] == '\0' ||
	    directory_resolve(s->mn->dir, sender, mb, DIR_MAX_TARGETS, &n) !=
		DIR_OK)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(mb[i], s->user) == 0)
			return true;
	return false;
}

/* Adds addr to a list once. Returns 0 or -1 (out of memory). */
static int
smtp_list_add(char (**list)[DIR_ADDR_MAX], size_t *n, size_t *cap,
	      const char *addr)
{
	for (size_t i = 0; i < *n; i++)
		if (strcasecmp((*list)[i], addr) == 0)
			return 0;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		void *m = realloc(*list, c * sizeof(**list));
		if (m == NULL)
			return -1;
		*list = m;
		*cap = c;
	}
	snprintf((*list)[(*n)++], DIR_ADDR_MAX, "%s", addr);
	return 0;
}

int
smtp_add_remote(struct smtp_session *s, const char *rcpt)
{
	return smtp_list_add(&s->remote, &s->nremote, &s->capremote, rcpt);
}

int
smtp_add_forwards(struct smtp_session *s, const char *rcpt)
{
	char fw[DIR_MAX_TARGETS][DIR_ADDR_MAX], orig[DIR_ADDR_MAX];
	size_t n = directory_forwards(s->mn->dir, rcpt, fw, DIR_MAX_TARGETS);
	for (size_t i = 0; i < n; i++)
		if (smtp_list_add(&s->fwd, &s->nfwd, &s->capfwd, fw[i]) < 0)
			return -1;
	if (n > 0) {
		if (s->fwd_domain[0] == '\0')
			snprintf(s->fwd_domain, sizeof(s->fwd_domain), "%s",
				 strrchr(rcpt, '@') + 1);
		return 1;
	}
	switch (queue_srs_reverse(s->mn->queue, rcpt, orig, sizeof(orig))) {
	case 1:
		return smtp_add_remote(s, orig) < 0 ? -1 : 1;
	case -1:
		return -1;
	default:
		return 0;
	}
}

/* Which of Message-ID: and Date: the header section of fd has. */
static void
smtp_header_scan(int fd, size_t size, bool *has_id, bool *has_date)
{
	size_t len = size < SMTP_HEADER_SCAN_MAX ? size : SMTP_HEADER_SCAN_MAX;
	char *buf = malloc(len + 1);
	*has_id = *has_date = false;
	if (buf == NULL) {
		*has_id = *has_date = true; /* add nothing rather than guess */
		return;
	}
	ssize_t got = pread(fd, buf, len, 0);
	if (got < 0)
		got = 0;
	buf[got] = '\0';
	for (char *line = buf; line && *line;) {
		if (line[0] == '\r' || line[0] == '\n')
			break; /* the end of the header section */
		if (strncasecmp(line, "message-id:", 11) == 0)
			*has_id = true;
		else if (strncasecmp(line, "date:", 5) == 0)
			*has_date = true;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	free(buf);
}

void
smtp_added_headers(struct smtp_session *s, char *out, size_t outlen)
{
	bool has_id, has_date;
	size_t n = 0;
	out[0] = '\0';
	if (!smtp_is_submission(s))
		return;
	smtp_header_scan(s->datafd, s->datasize, &has_id, &has_date);
	if (!has_id) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		n += (size_t)snprintf(out + n, outlen - n,
				      "Message-ID: <%s.%06ld.%s@%s>\r\n", s->id,
				      (long)tv.tv_usec, s->mn->cfg->name,
				      s->mn->cfg->hostname);
	}
	if (!has_date && n < outlen) {
		char date[64];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
		snprintf(out + n, outlen - n, "Date: %s\r\n", date);
	}
}

/* Queues for one list of recipients from sender. */
static int
smtp_queue_list(struct smtp_session *s, const char *prefix,
		char (*rcpts)[DIR_ADDR_MAX], size_t n, const char *sender,
		char qid[QUEUE_ID_MAX])
{
	const char **list = calloc(n, sizeof(*list));
	if (list == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		list[i] = rcpts[i];
	int rc = queue_enqueue(s->mn->queue, s->datafd, s->datasize, prefix,
			       sender, list, n, qid);
	int saved = errno;
	free(list);
	errno = saved;
	return rc;
}

int
smtp_queue_remote(struct smtp_session *s, const char *prefix, char *id,
		  size_t idlen)
{
	char qid[QUEUE_ID_MAX] = "", fid[QUEUE_ID_MAX] = "";
	char srs[DIR_ADDR_MAX * 2];
	if (s->nremote > 0 && smtp_queue_list(s, prefix, s->remote, s->nremote,
					      s->sender, qid) < 0)
		return -1;
	if (s->nfwd > 0) {
		/* Our own users' mail keeps its sender: SPF passes as it is. */
		const char *at = strrchr(s->sender, '@');
		const char *sender = s->sender;
		if (at && !directory_domain_local(s->mn->dir, at + 1)) {
			if (queue_srs_forward(s->mn->queue, s->sender,
					      s->fwd_domain, srs,
					      sizeof(srs)) < 0)
				goto fail;
			sender = srs;
		}
		if (smtp_queue_list(s, prefix, s->fwd, s->nfwd, sender, fid) <
		    0)
			goto fail;
	}
	snprintf(id, idlen, "%s", qid[0] ? qid : fid);
	if (qid[0])
		queue_runner_queued(s->mn->runner, qid);
	if (fid[0])
		queue_runner_queued(s->mn->runner, fid);
	return 0;
fail:;
	int saved = errno;
	if (qid[0])
		queue_remove(s->mn->queue, qid);
	errno = saved;
	return -1;
}
