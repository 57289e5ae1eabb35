/* Maildir names: message file names (what a name holds: UID, flags,
 * size; unique names; the name with a UID and flags) and mailbox names
 * (the Maildir of a mailbox, the canonical form of INBOX). Nothing here
 * touches the disk. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "maildir.h"
#include "maildir_int.h"

/* ---- message file names ---- */

void
maildir_parse_name(const char *name, uint32_t *uid, char *flags,
		   size_t flagslen, uint64_t *size)
{
	uint64_t physical = 0, virtual = 0;
	*uid = 0;
	flags[0] = '\0';
	const char *info = strstr(name, ":2,");
	size_t baselen = info ? (size_t)(info - name) : strlen(name);
	if (info)
		snprintf(flags, flagslen, "%s", info + 3);
	for (const char *p = name; p < name + baselen; p++) {
		if (*p != ',' || p + 3 > name + baselen)
			continue;
		char key = p[1];
		if ((key != 'U' && key != 'S' && key != 'W') || p[2] != '=')
			continue;
		uint64_t v = 0;
		const char *d = p + 3;
		bool ok = d < name + baselen && isdigit((unsigned char)*d);
		for (; d < name + baselen && isdigit((unsigned char)*d); d++) {
			if (v > UINT64_MAX / 10 - 10) {
				ok = false;
				break;
			}
			v = v * 10 + (uint64_t)(*d - '0');
		}
		if (!ok || (d < name + baselen && *d != ','))
			continue;
		if (key == 'U' && v > 0 && v <= UINT32_MAX)
			*uid = (uint32_t)v;
		else if (key == 'S')
			physical = v;
		else if (key == 'W')
			virtual = v;
	}
	*size = virtual ? virtual : physical;
}

int
maildir_unique_name(const char *host, unsigned q, uint64_t size, uint64_t wire,
		    char *out, size_t outlen)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	int n = snprintf(out, outlen, "%lld.M%ldP%ldQ%u.%s,S=%" PRIu64,
			 (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
			 q, host, size);
	/* room left for ",U=4294967295:2," and the flags */
	if (n < 0 || (size_t)n >= outlen || n > MAILDIR_BASE_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (wire != 0 && wire != size) {
		int w =
		    snprintf(out + n, outlen - (size_t)n, ",W=%" PRIu64, wire);
		if (w < 0 || (size_t)(n + w) >= outlen ||
		    n + w > MAILDIR_BASE_MAX)
			out[n] = '\0'; /* no room: the size on disk it is */
	}
	return 0;
}

/* Sorted, duplicate-free copy of the Maildir info letters in. Refuses
 * (EINVAL) anything but ASCII letters, or more than fit a maildir_msg. */
int
maildir_flags_norm(const char *in, char *out, size_t outlen)
{
	bool seen[128] = {false};
	size_t o = 0;

	for (const char *p = in ? in : ""; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
			errno = EINVAL;
			return -1;
		}
		seen[c] = true;
	}
	for (int c = 0; c < 128; c++) {
		if (!seen[c])
			continue;
		if (o + 1 >= outlen ||
		    o + 1 >= sizeof(((struct maildir_msg *)0)->flags)) {
			errno = EINVAL;
			return -1;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* A message file name we may touch: one path component, not hidden. */
bool
maildir_msg_name_ok(const char *name)
{
	size_t len = strnlen(name, MAILDIR_NAME_MAX + 1);
	return len > 0 && len <= MAILDIR_NAME_MAX && name[0] != '.' &&
	       strchr(name, '/') == NULL;
}

/* Length of name's base: what precedes its Maildir info ":". */
size_t
maildir_base_len(const char *name)
{
	const char *colon = strchr(name, ':');
	return colon ? (size_t)(colon - name) : strlen(name);
}

/* base ",U=uid:2," flags into out. */
int
maildir_cur_name(const char *base, size_t baselen, uint32_t uid,
		 const char *flags, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%.*s,U=%" PRIu32 ":2,%s", (int)baselen,
			 base, uid, flags);
	if (n < 0 || (size_t)n >= outlen || n > MAILDIR_LISTED_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* ---- mailbox names ---- */

bool
maildir_valid_folder(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > MAILDIR_MBOX_MAX || name[0] == '.' ||
	    name[len - 1] == '.' || strstr(name, "..") != NULL)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
			return false;
	}
	return true;
}

int
maildir_mailbox_path(const char *userdir, const char *mailbox, char *out,
		     size_t outlen)
{
	int n;
	if (strcasecmp(mailbox, "INBOX") == 0)
		n = snprintf(out, outlen, "%s", userdir);
	else if (maildir_valid_folder(mailbox) &&
		 strncasecmp(mailbox, "INBOX.", 6) != 0)
		n = snprintf(out, outlen, "%s/.%s", userdir, mailbox);
	else {
		errno = EINVAL;
		return -1;
	}
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

const char *
maildir_mailbox_canon(const char *mailbox)
{
	return strcasecmp(mailbox, "INBOX") == 0 ? "INBOX" : mailbox;
}
