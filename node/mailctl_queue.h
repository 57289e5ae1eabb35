/* mailctl's queue commands (mailctl_queue.c). */
#ifndef NODE_MAILCTL_QUEUE_H
#define NODE_MAILCTL_QUEUE_H

#include <stdio.h>

#include "../common/redis.h"

/* argv[0] is the verb (list, show, flush, delete, hold, release). dir:
 * the queue directory. Returns the exit status: 0, 1 failed, 2 usage. */
int mailctl_queue(int argc, char **argv, const char *dir,
		  const struct redis_opts *opts);
void mailctl_queue_usage(FILE *f);

#endif
