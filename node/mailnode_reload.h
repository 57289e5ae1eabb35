/* mailnode's reload without a restart. SIGHUP re-reads the INI and the
 * TLS certificate and key; a change of the cluster-wide settings (a
 * directory load that brings different ones, config.h) applies them under
 * the INI as it is on disk. Either way the whole config is parsed and
 * checked first and refused whole on any error (logged with file, line
 * and key: nothing applied). Every reloadable key is read where it is
 * used, so open sessions go on and their next command sees the new value;
 * a new certificate serves the next handshake. The keys fixed at start
 * (listeners, roles, paths, Redis, threads, the queue runner's files) keep
 * their value and are logged as needing a restart. Loop thread only. */
#ifndef NODE_MAILNODE_RELOAD_H
#define NODE_MAILNODE_RELOAD_H

#include "mailnode.h"

/* Applies the settings the directory holds already (its snapshot), then
 * watches SIGHUP. Call once mn->dir exists and before the listeners
 * start. */
void mailnode_reload_start(struct mailnode *mn);
void mailnode_reload_stop(struct mailnode *mn);
/* A directory load is in: applies the cluster settings when they changed
 * (mailnode.c's one directory_on_load callback calls it). */
void mailnode_reload_settings(struct mailnode *mn);

/* max_connections as applied: kept 128 below the open file limit, so a
 * flood meets the protocol's answer and not a failing accept(). */
long mailnode_max_connections(const struct node_config *cfg);

#endif
