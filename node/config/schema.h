/* The shared config in Redis: key names that mailnode and mailctl share.
 *
 *   ms:domains              set of local domains (lowercase)
 *   ms:users:DOMAIN         set of addresses of DOMAIN's users
 *   ms:user:ADDRESS         hash: password = crypt(3) hash, quota =
 *                           storage limit in bytes (absent: none)
 *   ms:aliases:DOMAIN       set of alias addresses in DOMAIN
 *   ms:alias:ADDRESS        set of target addresses
 *   ms:config:gen           the config's generation: INCR in the MULTI of
 *                           every change; import and wipe SET it above
 *                           every node's (directory.h)
 *   ms:config:nodes         hash: node name -> the generation it loaded
 *   ms:config:settings      hash: cluster-wide node settings, KEY -> VALUE
 *                           (mailctl config set; config.h)
 *   channel ms:config       a message (the new generation) after every
 *                           change
 *   ms:qlock:ID             the claim on queued message ID (a lease: the
 *                           owner's token, PX queue_lease_s)
 */
#ifndef NODE_SCHEMA_H
#define NODE_SCHEMA_H

#define SCHEMA_DOMAINS "ms:domains"
#define SCHEMA_USERS_PREFIX "ms:users:"
#define SCHEMA_USER_PREFIX "ms:user:"
#define SCHEMA_ALIASES_PREFIX "ms:aliases:"
#define SCHEMA_ALIAS_PREFIX "ms:alias:"
#define SCHEMA_GEN "ms:config:gen"
#define SCHEMA_NODES "ms:config:nodes"
#define SCHEMA_SETTINGS "ms:config:settings"
#define SCHEMA_CHANNEL "ms:config"
#define SCHEMA_QUEUE_LOCK_PREFIX "ms:qlock:"

#endif
