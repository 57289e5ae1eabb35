#include "nofile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "../common/log.h"

#define NOFILE_NR_OPEN "/proc/sys/fs/nr_open"

/* What cfg's connections need (nofile_raise), 0 when unbounded. */
static long
nofile_need(const struct lbd_config *cfg, long listeners)
{
	long conns = 0;
	for (const struct service *s = cfg->services; s; s = s->next) {
		int max = atomic_load(&s->max_connections);
		if (max <= 0)
			return 0;
		conns += max;
	}
	return 2 * conns + listeners + NOFILE_MARGIN;
}

/* fs.nr_open: the most any process's limit may be; -1 if unreadable. */
static long
nofile_nr_open(void)
{
	long n = -1;
	FILE *f = fopen(NOFILE_NR_OPEN, "re");
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &n) != 1)
		n = -1;
	fclose(f);
	return n;
}

long
nofile_raise(const struct lbd_config *cfg, int workers, char *err,
	     size_t len)
{
	long listeners = 0;
	for (const struct service *s = cfg->services; s; s = s->next)
		listeners += workers;
	long need = nofile_need(cfg, listeners);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		snprintf(err, len, "getrlimit(RLIMIT_NOFILE): %s",
			 strerror(errno));
		return -1;
	}
	rlim_t was = rl.rlim_cur;
	long nr_open = nofile_nr_open();
	/* an unlimited hard limit still stops at fs.nr_open */
	if (rl.rlim_max == RLIM_INFINITY && nr_open > 0)
		rl.rlim_max = (rlim_t)nr_open;
	if (need > 0 && (rlim_t)need > rl.rlim_max) {
		struct rlimit up = {(rlim_t)need, (rlim_t)need};
		if ((nr_open < 0 || need <= nr_open) &&
		    setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
		else {
			snprintf(err, len,
				 "the services' max_connections need %ld open "
				 "files (2 per connection, %ld listeners, %d "
				 "spare) but the open-file limit RLIMIT_NOFILE "
				 "is %lu hard (fs.nr_open %ld) and lbd may not "
				 "raise it: raise it (LimitNOFILE= in the unit, "
				 "ulimit -Hn) or lower max_connections",
				 need, listeners, NOFILE_MARGIN,
				 (unsigned long)rl.rlim_max, nr_open);
			return -1;
		}
	}
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur != was && setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("open files: cannot raise the limit %lu to %lu: %s",
			 (unsigned long)was, (unsigned long)rl.rlim_cur,
			 strerror(errno));
		rl.rlim_cur = was;
	}
	long got = rl.rlim_cur == RLIM_INFINITY ? nr_open : (long)rl.rlim_cur;
	long room = (got - listeners - NOFILE_MARGIN) / 2;
	log_info("open files: limit %ld (was %lu, hard %lu): room for about %ld "
		 "connections",
		 got, (unsigned long)was, (unsigned long)rl.rlim_max,
		 room > 0 ? room : 0);
	return got;
}
