/* SASL pieces shared by SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH:
 * base64 and the PLAIN message (RFC 4616). */
#ifndef MS_SASL_H
#define MS_SASL_H

#include <stddef.h>

/* The value of one base64 digit (RFC 4648 alphabet), or -1. */
int base64_value(unsigned char c);
/* Decodes base64 (RFC 4648, padding required, no whitespace) into out.
 * Returns the decoded length, or -1 on bad input or if it does not fit. */
long base64_decode(const char *in, size_t inlen, unsigned char *out,
		   size_t outlen);
/* Encodes; returns the length written (NUL-terminated) or -1. */
long base64_encode(const unsigned char *in, size_t inlen, char *out,
		   size_t outlen);

/* Splits a decoded PLAIN message "authzid\0authcid\0passwd". An authzid,
 * when present, must equal authcid. Returns 0, or -1 if malformed or a
 * part does not fit. */
int sasl_plain_parse(const unsigned char *msg, size_t len, char *user,
		     size_t userlen, char *pass, size_t passlen);

#endif
