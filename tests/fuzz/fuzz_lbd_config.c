/* lbd's INI configuration (balancer/config.c over common/conf.c and
 * inih): the input is written to a file, which config_load reads as lbd
 * does at start and on SIGHUP. */
#include "fuzz.h"

#include <stdio.h>
#include <unistd.h>

#include "../../balancer/config.h"
#include "../../common/log.h"

static char path[64];

static void
fuzz_cleanup(void)
{
	unlink(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[4096];
	if (path[0] == '\0') {
		log_init("fuzz_lbd_config", LOG_LVL_ERR);
		snprintf(path, sizeof(path), "/tmp/fuzz_lbd_config.%ld.ini",
			 (long)getpid());
		atexit(fuzz_cleanup);
	}
	FILE *f = fopen(path, "w");
	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	struct lbd_config *c = config_load(path, err, sizeof(err));
	if (c == NULL && err[0] == '\0')
		abort(); /* refused without saying why */
	config_free(c);
	return 0;
}
