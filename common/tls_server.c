#include "tls_server.h"

#include <openssl/err.h>
#include <stdio.h>

static void
tls_server_err(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char reason[160];
	ERR_error_string_n(e, reason, sizeof(reason));
	snprintf(err, errlen, "%s %s: %s", what, file,
		 e ? reason : "unknown error");
	ERR_clear_error();
}

SSL_CTX *
tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		tls_server_err(err, errlen, "cannot create a TLS context", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
				     SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_server_err(err, errlen, "cannot load certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_server_err(err, errlen, "cannot load key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_server_err(err, errlen, "key does not match certificate",
			       key);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}
