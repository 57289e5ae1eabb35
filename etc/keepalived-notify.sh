#!/bin/sh
# keepalived's notify script for the lbd pair (etc/keepalived.conf): logs
# every VRRP transition with a UTC timestamp, to syslog (logger) and to
# stderr, and appends it to LOGFILE when one is given.
#
#   keepalived-notify.sh [LOGFILE] TYPE NAME STATE PRIORITY
#
# keepalived appends TYPE (INSTANCE|GROUP), NAME, STATE (MASTER|BACKUP|
# FAULT|STOP|DELETED) and PRIORITY to what the notify line configures.
# Exits 0 whatever happens: a notify script must never hold keepalived up.
log=
if [ $# -ge 5 ]; then
	log=$1
	shift
fi
if [ $# -lt 4 ]; then
	echo "usage: $0 [LOGFILE] TYPE NAME STATE PRIORITY" >&2
	exit 0
fi
type=$1 name=$2 state=$3 prio=$4
stamp=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
line="$stamp keepalived: $type $name -> $state (priority $prio, host $(uname -n))"

command -v logger >/dev/null 2>&1 &&
	logger -t keepalived-notify -p daemon.notice -- "$line" 2>/dev/null
echo "$line" >&2
[ -n "$log" ] && echo "$line" >>"$log"
exit 0
