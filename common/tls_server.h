/* The server side of TLS: a context from a certificate chain and key. */
#ifndef MS_TLS_SERVER_H
#define MS_TLS_SERVER_H

#include <openssl/ssl.h>
#include <stddef.h>

/* A TLS 1.2+ server context from PEM files (cert may hold the chain).
 * Returns NULL with a reason naming the file in err. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err,
			size_t errlen);

#endif
