/* The bounds of what names and numbers a pool's node may have, the same
 * for the config, the control socket, lbctl, the state file and the
 * shared state. Only #defines: lbctl includes it without lbd's code. */
#ifndef LBD_LBD_LIMITS_H
#define LBD_LBD_LIMITS_H

#define LBD_NAME_MAX 64	 /* a service, pool or balancer name, NUL included */
#define NODE_NAME_MAX 64 /* a node name, NUL included */
#define NODE_WEIGHT_MAX 256
#define NODE_MAXCONN_MAX 10000000	/* a node's maxconn; 0: no limit */
#define NODE_MAINT_MAX_S (366L * 86400) /* node disable for=SECONDS */

#endif
