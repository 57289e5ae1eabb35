/* IMAP's side of the UID lease (uid_lease.h): a command that finds mail
 * waiting for UIDs, or that gives UIDs itself, waits for the mailbox's
 * lease with the session's input held, and runs again from the start (the
 * command is still whole in s->cmd) once it is settled. */
#include <string.h>

#include "../../common/log.h"
#include "imap.h"
#include "../store/uid_lease.h"

/* Holds input while the lease is being taken. */
static void
imap_uid_hold(struct imap_session *s)
{
	s->uid_wait = s->wait;
	imap_hold(s);
}

/* Back to what input waited for, unless the command held it again. */
static void
imap_uid_resume(struct imap_session *s)
{
	if (s->state == IMAP_LOGOUT || s->wait == IMAP_W_BUSY)
		return;
	stream_resume(s->st);
}

static void
imap_uid_give_back(struct imap_session *s)
{
	uid_lease_done(s->uid);
	s->uid = NULL;
	s->uid_ctr = NULL;
	s->uid_box[0] = '\0';
}

static struct uid_lease *
imap_uid_take(struct imap_session *s, const char *mailbox, size_t n,
	      uid_lease_cb cb)
{
	snprintf(s->uid_box, sizeof(s->uid_box), "%s", mailbox);
	s->uid = uid_lease_take(s->mn, s->user, mailbox, n, cb, s);
	if (s->uid)
		imap_uid_hold(s);
	return s->uid;
}

/* The selected mailbox's lease, taken before a command: UIDs, told, then
 * the command. */
static void
imap_uid_gate_cb(struct uid_lease *u, struct maildir_counter *ctr, void *arg)
{
	struct imap_session *s = arg;
	(void)u;
	stream_batch_begin(s->st);
	imap_mailbox_assign(s, ctr, false);
	imap_uid_give_back(s);
	s->wait = s->uid_wait;
	s->uid_rerun = true;
	imap_dispatch(s);
	stream_batch_end(s->st);
	imap_uid_resume(s);
}

bool
imap_uid_gate(struct imap_session *s)
{
	if (s->state != IMAP_SELECTED || s->uid || !imap_mailbox_waiting(s))
		return false;
	size_t n = s->box.pending ? s->box.pending : 1;
	return imap_uid_take(s, s->box.name, n, imap_uid_gate_cb) != NULL;
}

/* A handler's lease: settled, the command runs again and finds it. */
static void
imap_uid_need_cb(struct uid_lease *u, struct maildir_counter *ctr, void *arg)
{
	struct imap_session *s = arg;
	(void)u;
	s->uid_ctr = ctr;
	s->wait = s->uid_wait;
	s->uid_rerun = true;
	stream_batch_begin(s->st);
	imap_dispatch(s);
	stream_batch_end(s->st);
	imap_uid_resume(s);
}

struct maildir_counter *
imap_uid_need(struct imap_session *s, const char *mailbox, size_t n)
{
	if (s->uid && s->uid_ctr && strcmp(s->uid_box, mailbox) == 0)
		return s->uid_ctr;
	if (s->uid) {
		/* One lease per command: a second mailbox goes on under its
		 * flock alone. */
		log_warn("imap %s: %s while holding the UID lease of %s", s->id,
			 mailbox, s->uid_box);
		memset(&s->uid_alone, 0, sizeof(s->uid_alone));
		return &s->uid_alone;
	}
	if (imap_uid_take(s, mailbox, n, imap_uid_need_cb) == NULL) {
		memset(&s->uid_alone, 0, sizeof(s->uid_alone));
		return &s->uid_alone; /* out of memory: the flock alone */
	}
	return NULL;
}

bool
imap_uid_waiting(const struct imap_session *s)
{
	return s->uid != NULL && s->uid_ctr == NULL;
}

void
imap_uid_end(struct imap_session *s)
{
	imap_uid_give_back(s);
}

static void
imap_uid_idle_cb(struct uid_lease *u, struct maildir_counter *ctr, void *arg)
{
	struct imap_session *s = arg;
	(void)u;
	stream_batch_begin(s->st);
	imap_mailbox_assign(s, ctr, true);
	stream_batch_end(s->st);
	imap_uid_give_back(s);
	s->wait = s->uid_wait;
	imap_uid_resume(s);
}

void
imap_uid_idle(struct imap_session *s)
{
	if (s->state != IMAP_SELECTED || s->uid || s->box.pending == 0)
		return;
	imap_uid_take(s, s->box.name, s->box.pending, imap_uid_idle_cb);
}
