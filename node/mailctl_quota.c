/* mailctl user quota-recount (mailctl_quota.h): the Redis side (the
 * user and the limit) is mailctl.c's; this is the store's. */
#include "mailctl_quota.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store/quota.h"
#include "store/store.h"

int
mailctl_quota_recount(const char *root, const char *address, uint64_t limit)
{
	static struct store st; /* 4 KiB of paths: not on the stack */
	struct quota_usage u;
	char dir[sizeof(st.root) + 512], lim[24] = "none";

	if (store_init(&st, root, "mailctl") < 0) {
		fprintf(stderr, "mailctl: user quota-recount: store %s: %s\n",
			root, strerror(errno));
		return -1;
	}
	if (store_user_dir(&st, address, dir, sizeof(dir), false) < 0 ||
	    quota_recount(dir, limit, &u) < 0) {
		fprintf(stderr, "mailctl: user quota-recount: %s in %s: %s\n",
			address, root, strerror(errno));
		return -1;
	}
	if (limit)
		snprintf(lim, sizeof(lim), "%" PRIu64, limit);
	printf("%s %" PRIu64 " bytes, %" PRIu64 " messages, limit %s\n",
	       address, u.bytes, u.count, lim);
	return 0;
}
