#include "tls.h"

#include <stdio.h>

#include <openssl/err.h>

void
tls_init(void)
{
	OPENSSL_init_ssl(0, NULL);
}

SSL_CTX *
tls_client_ctx(const char *ca_file, bool trust, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	tls_init();
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (!trust)
		return ctx;
	if (ca_file != NULL && ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
			goto fail;
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		goto fail;
	return ctx;
fail:
	tls_error_string(err, errlen, "cannot create a TLS context");
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_cert_expiry(X509 *cert, int *days, int *secs)
{
	const ASN1_TIME *not_after = X509_get0_notAfter(cert);

	if (not_after == NULL ||
	    ASN1_TIME_diff(days, secs, NULL, not_after) != 1)
		return -1;
	return 0;
}

const char *
tls_error_string(char *buf, size_t len, const char *fallback)
{
	unsigned long e = ERR_get_error();
	const char *reason;

	if (e == 0)
		snprintf(buf, len, "%s", fallback);
	else if ((reason = ERR_reason_error_string(e)) != NULL)
		snprintf(buf, len, "%s", reason);
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}
