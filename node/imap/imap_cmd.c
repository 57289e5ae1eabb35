/* The IMAP command table (which command runs in which state, which take
 * the UID prefix) and the commands of any state: CAPABILITY, NOOP,
 * LOGOUT, ID (RFC 2971), NAMESPACE (RFC 2342), IDLE
 * (RFC 2177). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "imap.h"

#define S_NOAUTH (1u << IMAP_NOT_AUTH)
#define S_AUTH (1u << IMAP_AUTH)
#define S_SEL (1u << IMAP_SELECTED)
#define S_ANY (S_NOAUTH | S_AUTH | S_SEL)
#define S_LOGGED (S_AUTH | S_SEL)

struct imap_cmd_def {
	const char *name;
	unsigned states;
	bool uid; /* also as "UID name" */
	imap_handler *fn;
};

static const struct imap_cmd_def imap_cmds[] = {
    {"CAPABILITY", S_ANY, false, imap_cmd_capability},
    {"NOOP", S_ANY, false, imap_cmd_noop},
    {"LOGOUT", S_ANY, false, imap_cmd_logout},
    {"ID", S_ANY, false, imap_cmd_id},
    {"STARTTLS", S_NOAUTH, false, imap_cmd_starttls},
    {"LOGIN", S_NOAUTH, false, imap_cmd_login},
    {"AUTHENTICATE", S_NOAUTH, false, imap_cmd_authenticate},
    {"ENABLE", S_LOGGED, false, imap_cmd_enable},
    {"NAMESPACE", S_LOGGED, false, imap_cmd_namespace},
    {"SELECT", S_LOGGED, false, imap_cmd_select},
    {"EXAMINE", S_LOGGED, false, imap_cmd_select},
    {"CREATE", S_LOGGED, false, imap_cmd_create},
    {"DELETE", S_LOGGED, false, imap_cmd_delete},
    {"RENAME", S_LOGGED, false, imap_cmd_rename},
    {"SUBSCRIBE", S_LOGGED, false, imap_cmd_subscribe},
    {"UNSUBSCRIBE", S_LOGGED, false, imap_cmd_subscribe},
    {"LIST", S_LOGGED, false, imap_cmd_list},
    {"LSUB", S_LOGGED, false, imap_cmd_list},
    {"STATUS", S_LOGGED, false, imap_cmd_status},
    {"APPEND", S_LOGGED, false, imap_cmd_append},
    {"IDLE", S_LOGGED, false, imap_cmd_idle},
    {"CHECK", S_SEL, false, imap_cmd_check},
    {"CLOSE", S_SEL, false, imap_cmd_close},
    {"UNSELECT", S_SEL, false, imap_cmd_unselect},
    {"EXPUNGE", S_SEL, true, imap_cmd_expunge},
    {"SEARCH", S_SEL, true, imap_cmd_search},
    {"FETCH", S_SEL, true, imap_cmd_fetch},
    {"STORE", S_SEL, true, imap_cmd_store},
    {"COPY", S_SEL, true, imap_cmd_copy},
    {"MOVE", S_SEL, true, imap_cmd_copy},
    {"SORT", S_SEL, true, imap_cmd_sort},
    {"THREAD", S_SEL, true, imap_cmd_thread},
    {"GETQUOTAROOT", S_LOGGED, false, imap_cmd_getquotaroot},
    {"GETQUOTA", S_LOGGED, false, imap_cmd_getquota},
    {"SETQUOTA", S_LOGGED, false, imap_cmd_setquota},
};

void
imap_command(struct imap_session *s, struct imap_cmd *c)
{
	const struct imap_cmd_def *d = NULL;
	for (size_t i = 0; i < sizeof(imap_cmds) / sizeof(*imap_cmds); i++)
		if (strcmp(imap_cmds[i].name, c->name) == 0) {
			d = &imap_cmds[i];
			break;
		}
	if (d == NULL || (c->uid && !d->uid)) {
		imap_bad(s, c, "Unknown command");
		return;
	}
	if (!(d->states & (1u << s->state))) {
		imap_bad(s, c, "%s",
			 s->state == IMAP_NOT_AUTH ? "Log in first"
			 : s->state == IMAP_SELECTED || (d->states & S_SEL)
			     ? "Select a mailbox first"
			     : "Already logged in");
		return;
	}
	/* Arguments follow after one space; commands without any check the
	 * end themselves. */
	if (!imap_at_end(&c->cur) && imap_sp(&c->cur) < 0) {
		imap_bad(s, c, "%s", c->cur.err);
		return;
	}
	d->fn(s, c);
}

/* For commands that take no arguments. */
static bool
imap_no_args(struct imap_session *s, struct imap_cmd *c)
{
	if (imap_at_end(&c->cur))
		return true;
	imap_bad(s, c, "%s takes no arguments", c->name);
	return false;
}

void
imap_cmd_capability(struct imap_session *s, struct imap_cmd *c)
{
	if (!imap_no_args(s, c))
		return;
	char caps[IMAP_CAPS_MAX];
	imap_untagged(s, "CAPABILITY %s", imap_capabilities(s, caps));
	imap_ok(s, c, "Capability completed");
}

void
imap_cmd_noop(struct imap_session *s, struct imap_cmd *c)
{
	if (!imap_no_args(s, c))
		return;
	imap_ok(s, c, "NOOP completed");
}

void
imap_cmd_logout(struct imap_session *s, struct imap_cmd *c)
{
	if (!imap_no_args(s, c))
		return;
	imap_untagged(s, "BYE Logging out");
	s->state = IMAP_LOGOUT;
	imap_ok(s, c, "LOGOUT completed");
	stream_close(s->st, "logout");
}

/* RFC 2971: values of up to 1024 octets, fields of up to 30. */
#define IMAP_ID_VALUE_MAX 1024

/* ID: the client's list is read and logged; ours is our name. */
void
imap_cmd_id(struct imap_session *s, struct imap_cmd *c)
{
	char key[256], val[IMAP_ID_VALUE_MAX + 1];
	bool nil;
	if (!imap_peek_char(&c->cur, '(')) {
		if (imap_nstring(&c->cur, val, sizeof(val), NULL, &nil) < 0 ||
		    !nil || imap_end(&c->cur) < 0) {
			imap_bad(s, c, "ID takes a list or NIL");
			return;
		}
	} else {
		for (int i = 0; !imap_peek_char(&c->cur, ')'); i++) {
			if ((i > 0 && imap_sp(&c->cur) < 0) || i >= 30 ||
			    imap_string(&c->cur, key, sizeof(key), NULL) < 0 ||
			    imap_sp(&c->cur) < 0 ||
			    imap_nstring(&c->cur, val, sizeof(val), NULL,
					 &nil) < 0) {
				imap_bad(s, c, "Invalid ID list");
				return;
			}
			if (strcasecmp(key, "name") == 0 ||
			    strcasecmp(key, "version") == 0)
				log_debug("imap %s: client %s %s", s->id, key,
					  nil ? "NIL" : val);
		}
		if (imap_end(&c->cur) < 0) {
			imap_bad(s, c, "%s", c->cur.err);
			return;
		}
	}
	imap_untagged(s,
		      "ID (\"name\" \"mailnode\" \"vendor\" \"mailswitch\")");
	imap_ok(s, c, "ID completed");
}

void
imap_cmd_namespace(struct imap_session *s, struct imap_cmd *c)
{
	if (!imap_no_args(s, c))
		return;
	imap_untagged(s, "NAMESPACE ((\"\" \".\")) NIL NIL");
	imap_ok(s, c, "NAMESPACE completed");
}

/* ---- IDLE ---- */

static void
imap_idle_poll_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct imap_session *s = t->data;
	(void)loop;
	(void)revents;
	if (s->wait == IMAP_W_IDLE) {
		imap_mailbox_sync(s, true, false);
		imap_uid_idle(s);
	}
}

void
imap_cmd_idle(struct imap_session *s, struct imap_cmd *c)
{
	if (!imap_no_args(s, c))
		return;
	if (s->state == IMAP_SELECTED)
		imap_mailbox_sync(s, true, false);
	s->wait = IMAP_W_IDLE;
	ev_timer_init(&s->idle_poll, imap_idle_poll_cb, IMAP_IDLE_POLL,
		      IMAP_IDLE_POLL);
	s->idle_poll.data = s;
	ev_timer_start(s->mn->loop, &s->idle_poll);
	imap_write(s, "+ idling\r\n", 10);
	imap_uid_idle(s);
}

void
imap_idle_done(struct imap_session *s, const char *line)
{
	struct imap_cmd c = {.tag = s->tag, .name = "IDLE"};
	ev_timer_stop(s->mn->loop, &s->idle_poll);
	s->wait = IMAP_W_COMMAND;
	if (strcasecmp(line, "DONE") != 0) {
		imap_bad(s, &c, "Expected DONE");
		return;
	}
	imap_ok(s, &c, "IDLE terminated");
}
