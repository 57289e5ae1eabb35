/* mailctl's DKIM key commands (mailctl_dkim.c). */
#ifndef NODE_MAILCTL_DKIM_H
#define NODE_MAILCTL_DKIM_H

#include <stdio.h>

/* argv[0] is the verb (set, show, del); dir the queue directory, under
 * which the keys live (queue/queue_dkim.h). Returns the exit status: 0,
 * 1 failed, 2 usage. */
int mailctl_dkim(int argc, char **argv, const char *dir);
void mailctl_dkim_usage(FILE *f);

#endif
