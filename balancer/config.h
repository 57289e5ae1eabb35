/* lbd's INI configuration: [lbd], [service NAME], [pool NAME]. Every key
 * lives in one static table per section; a key is one row and one setter. */
#ifndef LBD_CONFIG_H
#define LBD_CONFIG_H

#include <stddef.h>

#include "lbd.h"

/* Reads and validates path. Returns the config, or NULL with every problem
 * written to err as "path:line: what is wrong" lines. */
struct lbd_config *config_load(const char *path, char *err, size_t errlen);
void config_free(struct lbd_config *c);

/* Parses a node line, "NAME HOST:PORT [weight=N] [maxconn=N]" (the config
 * key `node` and the control command `pool add` share it). Returns a new
 * node with health as given, or NULL with the reason in why. */
struct node *config_node_parse(const char *spec, enum node_health health,
			       char *why, size_t whylen);

#endif
