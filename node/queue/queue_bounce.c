/* DSNs: the message is composed in a memfd, then queued as any other. */
#include "queue_bounce.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../common/fdio.h"
#include "../../common/strbuf.h"

#define DSN_HEADERS_MAX (64 << 10) /* original header bytes quoted */
#define DSN_MAX (1 << 20)

static void
dsn_date(char *buf, size_t len, time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* The enhanced status code of reply ("550 5.1.1 ..." -> "5.1.1"), or the
 * class's generic one. */
static void
dsn_status(const char *reply, enum queue_dsn_kind kind, char *out, size_t len)
{
	const char *p = reply;
	if (strlen(p) > 4 && isdigit((unsigned char)p[0]) && p[3] == ' ' &&
	    (p[4] == '2' || p[4] == '4' || p[4] == '5') && p[5] == '.') {
		size_t n = strspn(p + 4, "0123456789.");
		if (n >= 5 && n < len) {
			memcpy(out, p + 4, n);
			out[n] = '\0';
			return;
		}
	}
	snprintf(out, len, "%s", kind == DSN_DELAYED ? "4.0.0" : "5.0.0");
}

/* The header section of the message (bounded), CRLF line ends. */
static void
dsn_headers(struct strbuf *sb, int fd, size_t size)
{
	size_t len = size < DSN_HEADERS_MAX ? size : DSN_HEADERS_MAX;
	char *buf = malloc(len + 1);
	if (buf == NULL)
		return;
	ssize_t got = pread(fd, buf, len, 0);
	if (got > 0) {
		buf[got] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		size_t n = end ? (size_t)(end - buf) + 2 : (size_t)got;
		strbuf_append(sb, buf, n);
	}
	free(buf);
}

static void
dsn_compose(struct strbuf *sb, const struct queue_env *env, const bool *which,
	    enum queue_dsn_kind kind, const char *host, int msgfd,
	    size_t msgsize)
{
	char date[64], arrival[64], boundary[QUEUE_ID_MAX + 300], status[32];
	bool failed = kind == DSN_FAILED;
	dsn_date(date, sizeof(date), time(NULL));
	dsn_date(arrival, sizeof(arrival), (time_t)env->created);
	snprintf(boundary, sizeof(boundary), "%s/%s", env->id, host);
	strbuf_appendf(
	    sb,
	    "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: %s\r\n"
	    "Date: %s\r\n"
	    "Message-ID: <%s.%s@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n"
	    "\r\n"
	    "This is a MIME-encapsulated message.\r\n"
	    "\r\n"
	    "--%s\r\n"
	    "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n"
	    "\r\n"
	    "This is the mail system at host %s.\r\n"
	    "\r\n",
	    host, env->sender,
	    failed ? "Undelivered Mail Returned to Sender"
		   : "Delayed Mail (still being retried)",
	    date, env->id, failed ? "bounce" : "delay", host, boundary,
	    boundary, host);
	strbuf_appends(sb, failed ? "I'm sorry to have to inform you that your "
				    "message could not\r\nbe delivered to one "
				    "or more recipients.\r\n\r\n"
				  : "Your message could not be delivered yet "
				    "to the recipients below.\r\nIt is still "
				    "being retried; you need not send it "
				    "again.\r\n\r\n");
	for (size_t i = 0; i < env->nrcpt; i++)
		if (which[i])
			strbuf_appendf(sb, "<%s>: %s\r\n", env->rcpt[i].addr,
				       env->rcpt[i].reply);
	strbuf_appendf(sb,
		       "\r\n--%s\r\n"
		       "Content-Description: Delivery report\r\n"
		       "Content-Type: message/delivery-status\r\n"
		       "\r\n"
		       "Reporting-MTA: dns; %s\r\n"
		       "X-Mailswitch-Queue-ID: %s\r\n"
		       "Arrival-Date: %s\r\n",
		       boundary, host, env->id, arrival);
	for (size_t i = 0; i < env->nrcpt; i++) {
		if (!which[i])
			continue;
		const struct queue_rcpt *r = &env->rcpt[i];
		dsn_status(r->reply, kind, status, sizeof(status));
		strbuf_appendf(sb,
			       "\r\nFinal-Recipient: rfc822; %s\r\n"
			       "Action: %s\r\n"
			       "Status: %s\r\n",
			       r->addr, failed ? "failed" : "delayed", status);
		if (r->reply[0])
			strbuf_appendf(sb, "Diagnostic-Code: smtp; %s\r\n",
				       r->reply);
	}
	strbuf_appendf(sb,
		       "\r\n--%s\r\n"
		       "Content-Description: Undelivered Message Headers\r\n"
		       "Content-Type: text/rfc822-headers\r\n"
		       "\r\n",
		       boundary);
	dsn_headers(sb, msgfd, msgsize);
	strbuf_appendf(sb, "\r\n--%s--\r\n", boundary);
}

int
queue_bounce(struct queue *q, const struct queue_env *env, const bool *which,
	     enum queue_dsn_kind kind, const char *hostname, int msgfd,
	     size_t msgsize, char id[QUEUE_ID_MAX])
{
	struct strbuf sb;
	int fd = -1, rc = -1, saved;
	id[0] = '\0';
	if (env->sender[0] == '\0')
		return 0; /* never a notice about a notice */
	strbuf_init(&sb, DSN_MAX);
	dsn_compose(&sb, env, which, kind, hostname, msgfd, msgsize);
	if (sb.buf == NULL) {
		errno = ENOMEM;
		goto out;
	}
	if ((fd = memfd_create("dsn", MFD_CLOEXEC)) < 0 ||
	    fd_write_all(fd, sb.buf, sb.len) < 0)
		goto out;
	const char *rcpt = env->sender;
	rc = queue_enqueue(q, fd, sb.len, "", "", &rcpt, 1, id);
out:
	saved = errno;
	if (fd >= 0)
		close(fd);
	strbuf_free(&sb);
	errno = saved;
	return rc;
}
