/* SRS0 addresses: the hash, the day stamp, the secret file. */
#include "queue_srs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../common/fdio.h"

#define SRS_SECRET_FILE ".srs-secret"
#define SRS_SECRET_LEN 32
#define SRS_HASH_LEN 6

static const char srs_b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* The cluster's secret: read, or made once (O_EXCL: a node that loses
 * the race reads the winner's). */
static int
srs_secret(struct queue *q, unsigned char *key)
{
	int dfd = queue_dirfd(q);
	for (int tries = 0; tries < 2; tries++) {
		int fd = openat(dfd, SRS_SECRET_FILE, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t n = read(fd, key, SRS_SECRET_LEN);
			close(fd);
			if (n == SRS_SECRET_LEN)
				return 0;
			usleep(10000); /* being written by its maker */
			continue;
		}
		if (errno != ENOENT)
			return -1;
		unsigned char k[SRS_SECRET_LEN];
		char tmp[64];
		if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k))
			return -1;
		snprintf(tmp, sizeof(tmp), SRS_SECRET_FILE ".%ld",
			 (long)getpid());
		fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			    0600);
		if (fd < 0)
			return -1;
		int ok = fd_write_all(fd, k, sizeof(k)) == 0 && fsync(fd) == 0;
		close(fd);
		/* link() refuses to replace: the first secret stays. */
		if (ok && linkat(dfd, tmp, dfd, SRS_SECRET_FILE, 0) == 0)
			fsync(dfd);
		unlinkat(dfd, tmp, 0);
	}
	errno = EIO;
	return -1;
}

static int
srs_hash(struct queue *q, const char *tt, const char *domain, const char *local,
	 size_t locallen, char out[SRS_HASH_LEN + 1])
{
	unsigned char key[SRS_SECRET_LEN], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char data[600];
	size_t n = 0;
	if (srs_secret(q, key) < 0)
		return -1;
	n = (size_t)snprintf(data, sizeof(data), "%s%s", tt, domain);
	if (n + locallen >= sizeof(data)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(data + n, local, locallen);
	n += locallen;
	for (size_t i = 0; i < n; i++)
		data[i] = (char)tolower((unsigned char)data[i]);
	if (HMAC(EVP_sha256(), key, sizeof(key), (unsigned char *)data, n, mac,
		 &maclen) == NULL)
		return -1;
	for (int i = 0; i < SRS_HASH_LEN; i++)
		out[i] = srs_b32[mac[i] & 31];
	out[SRS_HASH_LEN] = '\0';
	return 0;
}

static int
srs_today(void)
{
	return (int)((time(NULL) / 86400) % 1024);
}

int
queue_srs_forward(struct queue *q, const char *sender, const char *domain,
		  char *out, size_t outlen)
{
	char tt[3], hash[SRS_HASH_LEN + 1];
	const char *at = strrchr(sender, '@');
	if (sender[0] == '\0' || at == NULL) {
		snprintf(out, outlen, "%s", sender);
		return 0;
	}
	int day = srs_today();
	tt[0] = srs_b32[(day >> 5) & 31];
	tt[1] = srs_b32[day & 31];
	tt[2] = '\0';
	if (srs_hash(q, tt, at + 1, sender, (size_t)(at - sender), hash) < 0)
		return -1;
	int n = snprintf(out, outlen, "SRS0=%s=%s=%s=%.*s@%s", hash, tt, at + 1,
			 (int)(at - sender), sender, domain);
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int
srs_b32_value(char c)
{
	const char *p = strchr(srs_b32, toupper((unsigned char)c));
	return c && p ? (int)(p - srs_b32) : -1;
}

int
queue_srs_reverse(struct queue *q, const char *rcpt, char *out, size_t outlen)
{
	char hash[SRS_HASH_LEN + 1], tt[3], domain[256];
	const char *at = strrchr(rcpt, '@');
	if (strncasecmp(rcpt, "SRS0=", 5) != 0 || at == NULL)
		return 0;
	/* SRS0=HASH=TT=DOMAIN=LOCAL@ours */
	const char *h = rcpt + 5, *t = strchr(h, '=');
	const char *d = t ? strchr(t + 1, '=') : NULL;
	const char *l = d ? strchr(d + 1, '=') : NULL;
	if (l == NULL || l > at || t - h != SRS_HASH_LEN || d - t != 3 ||
	    (size_t)(l - d - 1) >= sizeof(domain) || l - d - 1 == 0 ||
	    l + 1 == at)
		return -1;
	memcpy(tt, t + 1, 2);
	tt[2] = '\0';
	memcpy(domain, d + 1, (size_t)(l - d - 1));
	domain[l - d - 1] = '\0';
	int v0 = srs_b32_value(tt[0]), v1 = srs_b32_value(tt[1]);
	if (v0 < 0 || v1 < 0)
		return -1;
	for (int i = 0; i < 2; i++)
		tt[i] = (char)toupper((unsigned char)tt[i]);
	int age = (srs_today() - (v0 * 32 + v1) + 1024) % 1024;
	if (age > SRS_MAX_AGE_DAYS)
		return -1;
	if (srs_hash(q, tt, domain, l + 1, (size_t)(at - l - 1), hash) < 0 ||
	    strncasecmp(hash, h, SRS_HASH_LEN) != 0)
		return -1;
	int n =
	    snprintf(out, outlen, "%.*s@%s", (int)(at - l - 1), l + 1, domain);
	return n > 0 && (size_t)n < outlen ? 1 : -1;
}
