/* Change notices on Redis pub/sub: one subscription for the node, its
 * messages parsed once and handed to the listeners. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maildir.h"
#include "notice.h"
#include "store.h"

struct notice_listener {
	notice_fn fn;
	void *arg;
};

struct notice {
	struct redis *redis; /* NULL: no notices */
	bool subscribed;
	struct notice_listener l[NOTICE_LISTENERS_MAX];
	size_t n;
};

struct notice *
notice_new(struct redis *r)
{
	struct notice *n = calloc(1, sizeof(*n));
	if (n)
		n->redis = r;
	return n;
}

void
notice_free(struct notice *n)
{
	if (n == NULL)
		return;
	if (n->redis)
		redis_forget(n->redis, n);
	free(n);
}

/* One message of the channel (msg NULL: subscribed again) to every
 * listener. A malformed message is dropped. */
static void
notice_on_message(const char *msg, size_t len, void *arg)
{
	struct notice *n = arg;
	char user[STORE_ADDR_MAX], box[MAILDIR_MBOX_MAX + 1];
	const char *u = NULL, *b = NULL;

	if (msg) {
		const char *tab = memchr(msg, '\t', len);
		if (tab == NULL)
			return;
		size_t ulen = (size_t)(tab - msg), blen = len - ulen - 1;
		if (ulen >= sizeof(user) || blen >= sizeof(box))
			return;
		memcpy(user, msg, ulen);
		user[ulen] = '\0';
		memcpy(box, tab + 1, blen);
		box[blen] = '\0';
		u = user;
		b = box;
	}
	for (size_t i = 0; i < n->n; i++)
		n->l[i].fn(n->l[i].arg, u, b);
}

int
notice_listen(struct notice *n, notice_fn fn, void *arg)
{
	if (n == NULL)
		return 0;
	if (n->n == NOTICE_LISTENERS_MAX)
		return -1;
	n->l[n->n++] = (struct notice_listener){fn, arg};
	if (n->redis == NULL || n->subscribed)
		return 0;
	if (redis_subscribe(n->redis, NOTICE_CHANNEL, notice_on_message, n) <
	    0) {
		n->n--;
		return -1;
	}
	n->subscribed = true;
	return 0;
}

void
notice_forget(struct notice *n, void *arg)
{
	size_t k = 0;
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		if (n->l[i].arg != arg)
			n->l[k++] = n->l[i];
	n->n = k;
}

void
notice_changed(struct notice *n, const char *user, const char *mailbox)
{
	char msg[STORE_ADDR_MAX + MAILDIR_MBOX_MAX + 2];
	if (n == NULL || n->redis == NULL || !redis_up(n->redis))
		return;
	int len = snprintf(msg, sizeof(msg), "%s\t%s", user,
			   maildir_mailbox_canon(mailbox));
	if (len < 0 || (size_t)len >= sizeof(msg))
		return;
	for (char *p = msg; *p != '\t'; p++)
		*p = (char)tolower((unsigned char)*p);
	redis_command(n->redis, NULL, NULL, "PUBLISH %s %b", NOTICE_CHANNEL,
		      msg, (size_t)len);
}
