#include "decimal.h"

#include <errno.h>
#include <stdlib.h>

/* True when s is digits only, at least one, after an optional '-'. */
static int
decimal_shape(const char *s, int sign_ok)
{
	if (sign_ok && *s == '-')
		s++;
	if (*s < '0' || *s > '9')
		return 0;
	while (*s >= '0' && *s <= '9')
		s++;
	return *s == '\0';
}

int
decimal_long(const char *s, long min, long max, long *out)
{
	if (s == NULL || !decimal_shape(s, min < 0))
		return -1;
	errno = 0;
	long v = strtol(s, NULL, 10);
	if (errno != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
decimal_ullong(const char *s, unsigned long long max, unsigned long long *out)
{
	if (s == NULL || !decimal_shape(s, 0))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno != 0 || v > max)
		return -1;
	*out = v;
	return 0;
}
