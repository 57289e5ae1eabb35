/* The inside of the API, shared by its route files: http_api.c (routes,
 * sessions, login, listings, the raw message), http_api_mail.c (flags,
 * move, delete, parts, search) and http_api_send.c (POST /api/send). Not
 * for other modules: they use http.h. */
#ifndef NODE_HTTP_API_H
#define NODE_HTTP_API_H

#include <stdint.h>

#include "../../common/strbuf.h"
#include "../store/maildir.h"
#include "http.h"

#define API_PATH_MAX 4096

/* Routes (each answers, or waits on Redis or a UID lease). */
void api_search(struct http_session *s);
void api_send(struct http_session *s);
void api_delete(struct http_session *s);
void api_flags(struct http_session *s);
void api_move(struct http_session *s);
void api_parts(struct http_session *s);
void api_part(struct http_session *s);

/* http_api.c's helpers */
void api_json(struct http_session *s, int status, const char *extra,
	      const struct strbuf *sb);
/* The UID of /api/messages/UID..., and the part number after
 * /api/messages/UID/parts/ (the route checked both). */
uint32_t api_path_uid(const struct http_session *s);
const char *api_path_part(const struct http_session *s);
/* The user's Maildir. Returns 0, or -1 (answered). */
int api_user_dir(struct http_session *s, char *out, size_t len);
/* Makes the user's Maildir and its folder name when they are missing
 * (Trash, Sent). Returns 0, or -1 (answered). */
int api_folder_ensure(struct http_session *s, const char *name);
/* The Maildir of the request's ?mailbox= (INBOX when absent), its name
 * in name. Returns 0, or -1 (answered). */
int api_mailbox_dir(struct http_session *s, char *name, size_t namelen,
		    char *out, size_t len);
/* Scans dir (mailbox name), giving UIDs to what waits under the
 * mailbox's lease (then the route runs again with s->uid_ctr set).
 * Returns 0, 1 (put off), or -1 (answered). */
int api_scan(struct http_session *s, const char *dir, const char *name,
	     struct maildir_list *l);
/* A lease came (uid_lease.h): runs the route again with s->uid_ctr. */
void api_uid_cb(struct uid_lease *u, struct maildir_counter *ctr, void *arg);
/* Takes mailbox's UID lease for n messages; the route runs again once it
 * is held, with api_lease_of(s, mailbox) its counter. Returns the lease
 * (also in s->uid), NULL when out of memory. */
struct uid_lease *api_lease_take(struct http_session *s, const char *mailbox,
				 size_t n);
/* The counter of mailbox's lease when the route runs under it, or NULL. */
struct maildir_counter *api_lease_of(struct http_session *s,
				     const char *mailbox);
/* Which messages a listing shows: true to list m of dir. */
typedef bool (*api_list_filter)(struct http_session *s, const char *dir,
				const struct maildir_msg *m, void *arg);
/* Answers the request's mailbox as a JSON array of
 * {"uid":..,"from":..,"subject":..,"date":..,"size":..,"flags":[..]},
 * every message when keep is NULL, else those keep(.., arg) takes. */
void api_message_list(struct http_session *s, api_list_filter keep,
		      void *arg);
/* Answers 200 with the file fd (size bytes) as message/rfc822. */
void api_send_file(struct http_session *s, int fd, size_t size);
/* Maildir info letters as a JSON array of IMAP flag names and keywords
 * (named by kw, or when kw is NULL by dir's dovecot-keywords, read when
 * a keyword letter is there). */
void api_flags_json(struct strbuf *sb, const char *dir, const char *flags,
		    const struct maildir_keywords *kw);

#endif
