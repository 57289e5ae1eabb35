/* Small OpenSSL helpers: contexts, certificate dates, error strings. The
 * probes use the client side; the node adds its server side here. */
#ifndef MS_TLS_H
#define MS_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Initializes OpenSSL. Idempotent and thread-safe. */
void tls_init(void);

/* A client context for non-blocking sockets (partial writes, a moving
 * write buffer, a peer's EOF without close_notify read as EOF). With
 * trust, it loads trust anchors from ca_file, or from the system store when
 * ca_file is NULL or empty; the handshake never stops on a bad chain
 * (SSL_VERIFY_NONE), so the caller reads SSL_get_verify_result() and can
 * name the error. Returns a context the caller frees with SSL_CTX_free(),
 * or NULL with a short reason in err. */
SSL_CTX *tls_client_ctx(const char *ca_file, bool trust, char *err,
			size_t errlen);

/* Time from now until cert's notAfter, as whole days and the seconds
 * left over (both negative once it has expired). Returns 0, or -1 when the
 * date cannot be read. */
int tls_cert_expiry(X509 *cert, int *days, int *secs);

/* Describes the oldest error of this thread's OpenSSL error queue (its
 * reason, "wrong version number"), or fallback when the queue is empty,
 * and clears the queue. Returns buf. */
const char *tls_error_string(char *buf, size_t len, const char *fallback);

#endif
