/* Mail for other domains: who may relay (submission after AUTH, the MX
 * listener from relay_networks). The rest of the submission rules, the
 * sender check, the added headers and the hand-off to the queue, are
 * node/submit's, shared with the web role. */
#include "smtp.h"

bool
smtp_relay_allowed(const struct smtp_session *s)
{
	const struct node_config *cfg = s->mn->cfg;
	const struct sockaddr *peer = stream_peer(s->st);
	if (smtp_is_submission(s))
		return s->user[0] != '\0';
	if (!netlist_match(&cfg->relay_networks, peer))
		return false;
	/* The balancer's own address (a PROXY LOCAL, or no header at all)
	 * is not a client of ours. */
	return !(cfg->proxy_protocol &&
		 netlist_match(&cfg->proxy_trusted, peer));
}
