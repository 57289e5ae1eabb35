/* DKIM signing (RFC 6376; ed25519-sha256 of RFC 8463) of outbound
 * messages, relaxed/relaxed, for the envelope sender's domain when it has
 * a key. Keys live on the shared filesystem, where every node reads
 * them: QUEUE/.dkim/DOMAIN, mode 0600, holding "SELECTOR\n" and then the
 * PEM private key (RSA, 1024 bits or more, or Ed25519), written by
 * `mailctl dkim set`. The signed header fields are those of
 * DKIM_SIGNED_HEADERS present in the message (From always), the last
 * instance of each. */
#ifndef NODE_QUEUE_DKIM_H
#define NODE_QUEUE_DKIM_H

#include <stddef.h>

#include "queue.h"

#define DKIM_DIR ".dkim"
#define DKIM_SELECTOR_MAX 64
#define DKIM_SIGNED_HEADERS                                                    \
	"from:sender:reply-to:subject:date:message-id:to:cc:mime-version:"     \
	"content-type:content-transfer-encoding:content-id:"                   \
	"content-description:resent-date:resent-from:resent-sender:"           \
	"resent-to:resent-cc:resent-message-id:in-reply-to:references:"        \
	"list-id:list-help:list-unsubscribe:list-subscribe:list-post:"         \
	"list-owner:list-archive"

/* The DKIM-Signature: field (CRLF-terminated, folded) for the message
 * msg[0..len) signed for domain, into a new string the caller frees.
 * Returns NULL with errno: ENOENT when domain has no key (not an error:
 * send unsigned), another errno when the key is bad or signing failed. */
char *queue_dkim_sign(struct queue *q, const char *domain, const char *msg,
		      size_t len);

/* The DNS TXT record to publish for the key in pem ("v=DKIM1; k=rsa;
 * p=..."), into out. Returns 0 or -1 (not a usable key). */
int queue_dkim_record(const char *pem, size_t pemlen, char *out, size_t outlen);

#endif
