/* ENABLE (RFC 5161): CONDSTORE and QRESYNC (RFC 7162) are the
 * extensions here that a client turns on; others it names are not
 * enabled and not listed. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imap.h"

void
imap_cmd_enable(struct imap_session *s, struct imap_cmd *c)
{
	char cap[64], enabled[64] = "";
	if (imap_at_end(&c->cur)) {
		imap_bad(s, c, "ENABLE needs a capability");
		return;
	}
	do {
		if (imap_atom(&c->cur, cap, sizeof(cap)) < 0) {
			imap_bad(s, c, "%s", c->cur.err);
			return;
		}
		bool qresync = strcasecmp(cap, "QRESYNC") == 0;
		bool was = qresync ? s->modseq.qresync : s->modseq.condstore;
		if (!qresync && strcasecmp(cap, "CONDSTORE") != 0)
			continue;
		imap_condstore_enable(s, qresync);
		if (!was &&
		    strstr(enabled, qresync ? "QRESYNC" : "CONDSTORE") == NULL)
			snprintf(enabled + strlen(enabled),
				 sizeof(enabled) - strlen(enabled), " %s",
				 qresync ? "QRESYNC" : "CONDSTORE");
	} while (!imap_at_end(&c->cur) && imap_sp(&c->cur) == 0);
	if (imap_end(&c->cur) < 0) {
		imap_bad(s, c, "%s", c->cur.err);
		return;
	}
	imap_untagged(s, "ENABLED%s", enabled);
	imap_ok(s, c, "ENABLE completed");
}
