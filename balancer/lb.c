/* The table of balancing algorithms, by their config name. */
#include "lb.h"

#include <string.h>

static const struct lb_ops *const lb_table[] = {
    &lb_roundrobin,
    &lb_leastconn,
    &lb_maglev,
};

const struct lb_ops *
lb_find(const char *name)
{
	for (size_t i = 0; i < sizeof(lb_table) / sizeof(lb_table[0]); i++)
		if (strcmp(lb_table[i]->name, name) == 0)
			return lb_table[i];
	return NULL;
}
