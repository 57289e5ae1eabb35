/* A socket address from its text ("192.0.2.1", "2001:db8::1"), for the
 * unit tests of per-source tables. */
#ifndef MS_TEST_SOCKADDR_FIXTURE_H
#define MS_TEST_SOCKADDR_FIXTURE_H

#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static inline struct sockaddr_storage
sa(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1)
		in->sin_family = AF_INET;
	else {
		cr_assert(inet_pton(AF_INET6, text, &in6->sin6_addr) == 1);
		in6->sin6_family = AF_INET6;
	}
	return ss;
}

#endif
