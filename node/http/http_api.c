/* The web role's API (DESIGN.md "HTTP API"): one function per route in a
 * static table. Sessions live in Redis (ms:session:TOKEN -> user, a
 * sliding TTL refreshed by GETEX on each use), a login is an attempt of
 * node/auth/auth_login.h (failures counted per client address and per
 * user, delayed, refused past the limit), and mail is read from the user's
 * Maildir with cluster-wide UIDs.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/json.h"
#include "../../common/log.h"
#include "../../common/token.h"
#include "../imap/imap_mime.h"
#include "../queue/queue.h"
#include "../queue/queue_runner.h"
#include "http.h"
#include "http_api.h"
#include "../store/maildir.h"
#include "../mailnode.h"
#include "../store/quota.h"
#include "../store/uid_lease.h"

#define API_SESSION_PREFIX "ms:session:"
#define API_KEY_MAX 512
#define API_READ_CHUNK 65536

/* A route: path exactly, or (uid) the prefix path, a UID, then tail
 * exactly, or (part) the prefix, a UID, tail, then a part number. */
struct api_route {
	const char *path;
	enum { API_EXACT, API_UID, API_PART } match;
	const char *tail;
	enum http_method method;
	bool session; /* runs after the session is found */
	void (*run)(struct http_session *s);
};

static void api_health(struct http_session *s);
static void api_login(struct http_session *s);
static void api_logout(struct http_session *s);
static void api_mailboxes(struct http_session *s);
static void api_messages(struct http_session *s);
static void api_message(struct http_session *s);

static const struct api_route api_routes[] = {
    {"/health", API_EXACT, NULL, HTTP_GET, false, api_health},
    {"/api/login", API_EXACT, NULL, HTTP_POST, false, api_login},
    {"/api/logout", API_EXACT, NULL, HTTP_POST, false, api_logout},
    {"/api/mailboxes", API_EXACT, NULL, HTTP_GET, true, api_mailboxes},
    {"/api/messages", API_EXACT, NULL, HTTP_GET, true, api_messages},
    {"/api/search", API_EXACT, NULL, HTTP_GET, true, api_search},
    {"/api/send", API_EXACT, NULL, HTTP_POST, true, api_send},
    {"/api/messages/", API_UID, "", HTTP_GET, true, api_message},
    {"/api/messages/", API_UID, "", HTTP_DELETE, true, api_delete},
    {"/api/messages/", API_UID, "/flags", HTTP_POST, true, api_flags},
    {"/api/messages/", API_UID, "/move", HTTP_POST, true, api_move},
    {"/api/messages/", API_UID, "/parts", HTTP_GET, true, api_parts},
    {"/api/messages/", API_PART, "/parts/", HTTP_GET, true, api_part},
};
#define API_NROUTES ((int)(sizeof(api_routes) / sizeof(*api_routes)))

void
api_json(struct http_session *s, int status, const char *extra,
	 const struct strbuf *sb)
{
	http_respond(s, status, "application/json", extra, strbuf_str(sb),
		     sb->len);
}

/* ---- sessions ---- */

static void
api_session_found(struct http_session *s, redisReply *reply)
{
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		if (reply)
			log_warn("http %s: session lookup: %s", s->logid,
				 reply->str);
		http_respond_error(s, 503, "session store unavailable");
		return;
	}
	if (reply->type == REDIS_REPLY_NIL) {
		http_respond_error(s, 401, "no such session");
		return;
	}
	if (reply->type != REDIS_REPLY_STRING || reply->len == 0 ||
	    reply->len >= sizeof(s->user) ||
	    memchr(reply->str, '\0', reply->len) != NULL) {
		log_warn("http %s: bad session record", s->logid);
		http_respond_error(s, 401, "no such session");
		return;
	}
	memcpy(s->user, reply->str, reply->len);
	s->user[reply->len] = '\0';
	api_routes[s->route].run(s);
}

/* Finds the request's session, refreshing its TTL, then runs the route. */
static void
api_session_then_run(struct http_session *s)
{
	char key[API_KEY_MAX], ttl[16];
	if (s->rq.token[0] == '\0') {
		http_respond_error(s, 401, "login required");
		return;
	}
	snprintf(s->token, sizeof(s->token), "%s", s->rq.token);
	snprintf(key, sizeof(key), API_SESSION_PREFIX "%s", s->token);
	snprintf(ttl, sizeof(ttl), "%d", HTTP_SESSION_TTL);
	const char *argv[] = {"GETEX", key, "EX", ttl};
	size_t argvlen[] = {5, strlen(key), 2, strlen(ttl)};
	if (http_redis(s, api_session_found, 4, argv, argvlen) < 0)
		http_respond_error(s, 503, "session store unavailable");
}

/* A UID at s: 1 to 2^32-1, decimal, no sign, up to the next '/' or the
 * end (*end, NULL: not wanted). Returns 0 if bad. */
static uint32_t
api_parse_uid_at(const char *s, const char **end)
{
	uint64_t v = 0;
	size_t n = 0;
	for (; *s && *s != '/'; s++, n++) {
		if (!isdigit((unsigned char)*s) || n >= 10)
			return 0;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (end)
		*end = s;
	return n > 0 && v <= UINT32_MAX ? (uint32_t)v : 0;
}

uint32_t
api_path_uid(const struct http_session *s)
{
	return api_parse_uid_at(s->rq.path + strlen("/api/messages/"), NULL);
}

const char *
api_path_part(const struct http_session *s)
{
	const char *end;
	api_parse_uid_at(s->rq.path + strlen("/api/messages/"), &end);
	return end + strlen("/parts/");
}

/* A part number: digits and single dots, "1" or "2.1". */
static bool
api_part_ok(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > 64 || p[0] == '.' || p[n - 1] == '.' ||
	    strstr(p, "..") != NULL)
		return false;
	return strspn(p, "0123456789.") == n;
}

static bool
api_route_match(const struct api_route *r, const char *path)
{
	size_t n = strlen(r->path);
	const char *end;
	if (r->match == API_EXACT)
		return strcmp(path, r->path) == 0;
	if (strncmp(path, r->path, n) != 0 ||
	    api_parse_uid_at(path + n, &end) == 0)
		return false;
	if (r->match == API_UID)
		return strcmp(end, r->tail) == 0;
	return strncmp(end, r->tail, strlen(r->tail)) == 0 &&
	       api_part_ok(end + strlen(r->tail));
}

static const char *
api_method_name(enum http_method m)
{
	switch (m) {
	case HTTP_GET:
		return "GET, HEAD";
	case HTTP_POST:
		return "POST";
	case HTTP_DELETE:
		return "DELETE";
	default:
		return "";
	}
}

/* Origin names this very server: "http://HOST" or "https://HOST" with
 * HOST the request's Host field. */
static bool
api_same_origin(const struct http_request *rq)
{
	static const char *const schemes[] = {"http://", "https://"};
	if (rq->host[0] == '\0')
		return false;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes); i++) {
		size_t n = strlen(schemes[i]);
		if (strncasecmp(rq->origin, schemes[i], n) == 0 &&
		    strcasecmp(rq->origin + n, rq->host) == 0)
			return true;
	}
	return false;
}

/* Cross-site request forgery: a request that changes state (any method
 * but GET and HEAD) must be one a browser sends across sites only after
 * a CORS preflight, which this server never grants: with a JSON body
 * (Content-Type: application/json), or with an Origin naming this
 * server. An Origin naming another site is refused (403), a request
 * without Origin and without JSON too (415), whatever the route and
 * whether or not a cookie came with it. Returns true when the request
 * may run; else it is answered. */
static bool
api_csrf_ok(struct http_session *s)
{
	const struct http_request *rq = &s->rq;
	if (rq->method == HTTP_GET || rq->method == HTTP_HEAD)
		return true;
	if (rq->has_origin) {
		if (api_same_origin(rq))
			return true;
		log_warn("http %s: %s %s from %s: foreign Origin refused",
			 s->logid, rq->method_name, rq->path, s->peerhost);
		http_respond_error(s, 403, "cross-origin request refused");
		return false;
	}
	if (rq->has_content_type && rq->json_body)
		return true;
	http_respond_error(s, 415, "application/json expected");
	return false;
}

void
http_api_dispatch(struct http_session *s)
{
	const char *path = s->rq.path;
	bool path_known = false;
	char allow[64] = "Allow: ";
	if (http_assets_serve(s))
		return;
	for (int i = 0; i < API_NROUTES; i++) {
		const struct api_route *r = &api_routes[i];
		if (!api_route_match(r, path))
			continue;
		bool ok = s->rq.method == r->method ||
			  (r->method == HTTP_GET && s->rq.method == HTTP_HEAD);
		if (!ok) {
			snprintf(allow + strlen(allow),
				 sizeof(allow) - strlen(allow), "%s%s",
				 path_known ? ", " : "",
				 api_method_name(r->method));
			path_known = true;
			continue;
		}
		if (!api_csrf_ok(s))
			return;
		s->route = i;
		if (r->session)
			api_session_then_run(s);
		else
			r->run(s);
		return;
	}
	if (!path_known) {
		http_respond_error(s, 404, "not found");
		return;
	}
	struct strbuf sb;
	strbuf_init(&sb, 256);
	strbuf_appends(&sb, "{\"error\":\"method not allowed\"}");
	strcat(allow, "\r\n");
	api_json(s, 405, allow, &sb);
	strbuf_free(&sb);
}

/* ---- GET /health ---- */

static void
api_health(struct http_session *s)
{
	struct mailnode *mn = s->mn;
	bool loaded = directory_loaded(mn->dir);
	bool redis_ok = redis_up(mn->redis) && !directory_stale(mn->dir);
	/* The store's verdict comes from its own thread (store_check.h),
	 * once a second, never from the request: /health stays cheap. */
	bool store_ok = store_check_ok(mn->store_check);
	const char *status = "ok";
	int code = 200;
	if (!loaded && !redis_ok) {
		status = "down"; /* no users known to serve */
		code = 503;
	} else if (!loaded || !redis_ok || !store_ok)
		status = "degraded";
	struct strbuf sb;
	strbuf_init(&sb, 4096);
	strbuf_appendf(&sb, "{\"status\":\"%s\",\"node\":", status);
	strbuf_append_json(&sb, mn->cfg->name);
	size_t qdepth;
	long long qoldest;
	queue_stats(mn->queue, &qdepth, &qoldest);
	/* "config": "stale" while the cache may be behind the truth or
	 * Redis behind the cache (directory.h), with the generation held. */
	strbuf_appendf(&sb,
		       ",\"redis\":\"%s\",\"store\":\"%s\","
		       "\"directory\":\"%s\",\"config\":\"%s\","
		       "\"config_gen\":%" PRIu64 ",\"spool\":%zu,"
		       "\"queue\":{\"depth\":%zu,\"oldest_s\":%lld",
		       redis_ok ? "up" : "down", store_ok ? "ok" : "unwritable",
		       loaded ? "loaded" : "empty", redis_ok ? "ok" : "stale",
		       directory_generation(mn->dir), spool_pending(mn->spool),
		       qdepth, qoldest);
	if (mn->runner) { /* this node's deliveries since it started */
		struct queue_runner_stats rs;
		queue_runner_stats(mn->runner, &rs);
		strbuf_appendf(&sb,
			       ",\"sent\":%lu,\"deferred\":%lu,"
			       "\"bounced\":%lu",
			       rs.sent, rs.deferred, rs.failed);
	}
	strbuf_appends(&sb, "}}");
	api_json(s, code, code == 503 ? "Retry-After: 5\r\n" : NULL, &sb);
	strbuf_free(&sb);
}

/* ---- POST /api/login ---- */

static void
api_lowercase(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static void
api_login_stored(struct http_session *s, redisReply *reply)
{
	if (reply == NULL || reply->type != REDIS_REPLY_STATUS ||
	    strcmp(reply->str, "OK") != 0) {
		http_respond_error(s, 503, "session store unavailable");
		return;
	}
	char extra[256];
	struct strbuf sb;
	snprintf(extra, sizeof(extra),
		 "Set-Cookie: session=%s; HttpOnly; SameSite=Strict; "
		 "Path=/%s\r\n",
		 s->token, stream_is_tls(s->st) ? "; Secure" : "");
	strbuf_init(&sb, 256);
	strbuf_appendf(&sb, "{\"token\":\"%s\"}", s->token);
	log_info("http %s: login %s from %s", s->logid, s->user, s->peerhost);
	api_json(s, 200, extra, &sb);
	strbuf_free(&sb);
}

/* Too many failures from the client's address: 429 until retry_s. */
static void
api_login_refused(struct http_session *s, long retry_s)
{
	char extra[64];
	struct strbuf sb;

	snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n", retry_s);
	strbuf_init(&sb, 256);
	strbuf_appends(&sb, "{\"error\":\"too many failed logins\"}");
	api_json(s, 429, extra, &sb);
	strbuf_free(&sb);
}

/* The login attempt is over (auth_login.h): a session, or why not. */
static void
api_login_verified(void *arg, enum auth_login_result res, const char *user,
		   long retry_s)
{
	struct http_session *s = arg;
	char key[API_KEY_MAX], ttl[16];

	(void)user; /* s->user */
	s->auth_job = 0;
	mailnode_login_counted(s->mn, ROLE_HTTP, res);
	switch (res) {
	case AUTH_LOGIN_OK:
		break;
	case AUTH_LOGIN_FAILED:
		log_warn("http %s: login %s from %s: bad credentials", s->logid,
			 s->user, s->peerhost);
		http_respond_error(s, 401, "bad credentials");
		return;
	case AUTH_LOGIN_REFUSED:
		api_login_refused(s, retry_s);
		return;
	case AUTH_LOGIN_BUSY:
		http_respond_error(s, 503, "authentication busy, try again");
		return;
	}
	if (token_hex(s->token, HTTP_TOKEN_HEX) < 0) {
		log_err("http %s: getrandom: %s", s->logid, strerror(errno));
		http_respond_error(s, 500, "internal error");
		return;
	}
	snprintf(key, sizeof(key), API_SESSION_PREFIX "%s", s->token);
	snprintf(ttl, sizeof(ttl), "%d", HTTP_SESSION_TTL);
	const char *argv[] = {"SET", key, s->user, "EX", ttl};
	size_t argvlen[] = {3, strlen(key), strlen(s->user), 2, strlen(ttl)};
	if (http_redis(s, api_login_stored, 5, argv, argvlen) < 0)
		http_respond_error(s, 503, "session store unavailable");
}

/* Takes user and password out of the JSON body, then wipes it. Returns 0
 * or -1 (answered). */
static int
api_login_body(struct http_session *s)
{
	struct json_flat o;
	const char *why, *user, *password;
	int rc = -1;
	char *store = malloc(s->bodylen + 1);
	if (store == NULL) {
		http_respond_error(s, 503, "out of memory");
		goto out;
	}
	if (json_flat_parse(s->body, s->bodylen, &o, store, s->bodylen + 1,
			    &why) < 0) {
		char msg[128];
		snprintf(msg, sizeof(msg), "bad JSON: %s", why);
		http_respond_error(s, 400, msg);
		goto out;
	}
	user = json_flat_get(&o, "user");
	password = json_flat_get(&o, "password");
	if (user == NULL || password == NULL || user[0] == '\0' ||
	    strlen(user) >= sizeof(s->user) ||
	    strlen(password) >= sizeof(s->password)) {
		http_respond_error(s, 400,
				   "\"user\" and \"password\" expected");
		goto out;
	}
	snprintf(s->user, sizeof(s->user), "%s", user);
	api_lowercase(s->user);
	snprintf(s->password, sizeof(s->password), "%s", password);
	rc = 0;
out:
	if (store) {
		explicit_bzero(store, s->bodylen + 1);
		free(store);
	}
	explicit_bzero(s->body, s->bodylen);
	return rc;
}

static void
api_login(struct http_session *s)
{
	if (s->rq.has_content_type && !s->rq.json_body) {
		http_respond_error(s, 415, "application/json expected");
		return;
	}
	if (s->bodylen == 0) {
		http_respond_error(s, 400, "a JSON body is expected");
		return;
	}
	if (api_login_body(s) < 0)
		return;
	if (!directory_loaded(s->mn->dir)) {
		explicit_bzero(s->password, sizeof(s->password));
		http_respond_error(s, 503, "directory not loaded yet");
		return;
	}
	s->auth_job =
	    auth_login_start(s->mn->login, s->mn->dir, stream_peer(s->st),
			     s->user, s->password, api_login_verified, s);
	explicit_bzero(s->password, sizeof(s->password));
	if (s->auth_job == 0)
		http_respond_error(s, 503, "out of memory");
}

/* ---- POST /api/logout ---- */

static void
api_logout_done(struct http_session *s, redisReply *reply)
{
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
		http_respond_error(s, 503, "session store unavailable");
		return;
	}
	if (reply->integer == 0) {
		http_respond_error(s, 401, "no such session");
		return;
	}
	struct strbuf sb;
	strbuf_init(&sb, 256);
	strbuf_appends(&sb, "{\"status\":\"logged out\"}");
	api_json(s, 200,
		 "Set-Cookie: session=; HttpOnly; SameSite=Strict; Path=/; "
		 "Max-Age=0\r\n",
		 &sb);
	strbuf_free(&sb);
}

static void
api_logout(struct http_session *s)
{
	char key[API_KEY_MAX];
	if (s->rq.token[0] == '\0') {
		http_respond_error(s, 401, "login required");
		return;
	}
	snprintf(key, sizeof(key), API_SESSION_PREFIX "%s", s->rq.token);
	const char *argv[] = {"DEL", key};
	size_t argvlen[] = {3, strlen(key)};
	if (http_redis(s, api_logout_done, 2, argv, argvlen) < 0)
		http_respond_error(s, 503, "session store unavailable");
}

/* ---- mail ---- */

/* The user's Maildir. Returns 0, or -1 (answered). */
int
api_user_dir(struct http_session *s, char *out, size_t len)
{
	if (store_user_dir(&s->mn->store, s->user, out, len, false) < 0) {
		log_err("http %s: Maildir of %s: %s", s->logid, s->user,
			strerror(errno));
		http_respond_error(s, 500, "no mailbox for this user");
		return -1;
	}
	return 0;
}

int
api_folder_ensure(struct http_session *s, const char *name)
{
	char userdir[API_PATH_MAX];
	if (store_user_dir(&s->mn->store, s->user, userdir, sizeof(userdir),
			   true) < 0 ||
	    (maildir_folder_create(userdir, name) < 0 && errno != EEXIST)) {
		log_err("http %s: folder %s of %s: %s", s->logid, name, s->user,
			strerror(errno));
		http_respond_error(s, 503, "store unavailable");
		return -1;
	}
	return 0;
}

/* The Maildir of the request's ?mailbox= (INBOX when absent). Returns 0,
 * or -1 (answered). */
int
api_mailbox_dir(struct http_session *s, char *name, size_t namelen, char *out,
		size_t len)
{
	char userdir[API_PATH_MAX];
	int r = http_query_get(s->rq.query, "mailbox", name, namelen);
	if (r < 0) {
		http_respond_error(s, 400, "bad mailbox parameter");
		return -1;
	}
	if (r == 0)
		snprintf(name, namelen, "INBOX");
	if (api_user_dir(s, userdir, sizeof(userdir)) < 0)
		return -1;
	if (maildir_mailbox_path(userdir, name, out, len) < 0) {
		http_respond_error(s, 400, "bad mailbox name");
		return -1;
	}
	return 0;
}

void
api_uid_cb(struct uid_lease *u, struct maildir_counter *ctr, void *arg)
{
	struct http_session *s = arg;
	/* The route may take another mailbox's lease (a move's target)
	 * while it runs under this one: s->uid is free for it. */
	s->uid = NULL;
	s->uid_ctr = ctr;
	stream_batch_begin(s->st);
	api_routes[s->route].run(s);
	stream_batch_end(s->st);
	s->uid_ctr = NULL;
	uid_lease_done(u);
	http_route_done(s);
}

struct maildir_counter *
api_lease_of(struct http_session *s, const char *mailbox)
{
	if (s->uid_ctr == NULL ||
	    strcmp(maildir_mailbox_canon(mailbox), s->uid_mailbox) != 0)
		return NULL;
	return s->uid_ctr;
}

struct uid_lease *
api_lease_take(struct http_session *s, const char *mailbox, size_t n)
{
	snprintf(s->uid_mailbox, sizeof(s->uid_mailbox), "%s",
		 maildir_mailbox_canon(mailbox));
	s->uid = uid_lease_take(s->mn, s->user, mailbox, n, api_uid_cb, s);
	return s->uid;
}

/* Scans dir (mailbox name); a missing INBOX is an empty one. Mail waiting
 * for UIDs gets them under the mailbox's lease: the route runs again once
 * that is settled. Returns 0, 1 (put off), or -1 (answered). */
int
api_scan(struct http_session *s, const char *dir, const char *name,
	 struct maildir_list *l)
{
	bool inbox = strcasecmp(name, "INBOX") == 0;
	struct maildir_counter *ctr = api_lease_of(s, name);
	int rc = ctr ? maildir_assign(dir, ctr, l) : maildir_scan(dir, l);
	if (rc == 0 && ctr == NULL && l->pending > 0) {
		api_lease_take(s, name, l->pending);
		maildir_list_free(l);
		if (s->uid)
			return 1;
		errno = ENOMEM;
		rc = -1;
	}
	if (rc == 0)
		return 0;
	if (errno == ENOENT && inbox)
		return 0;
	if (errno == ENOENT) {
		http_respond_error(s, 404, "no such mailbox");
		return -1;
	}
	log_err("http %s: scan %s: %s", s->logid, dir, strerror(errno));
	http_respond_error(s, 503, "store unavailable");
	return -1;
}

/* quota is the user's, the same for every mailbox (IMAP's one quota
 * root): ,"quota":{"used":BYTES,"limit":BYTES}, null for a limit of none
 * or a usage unknown (store/quota.h). */
static void
api_mailbox_entry(struct strbuf *sb, const char *name,
		  const struct maildir_list *l, const char *quota)
{
	strbuf_appends(sb, sb->len > 1 ? ",{\"name\":" : "{\"name\":");
	strbuf_append_json(sb, name);
	/* mail waiting for UIDs counts, new and unseen, without a lease */
	strbuf_appendf(sb, ",\"messages\":%zu,\"unseen\":%zu%s}",
		       l->n + l->pending, maildir_unseen(l) + l->pending,
		       quota);
}

/* The user's quota as api_mailbox_entry shows it, into out. */
static void
api_quota_json(struct http_session *s, const char *userdir, char *out,
	       size_t len)
{
	uint64_t limit = directory_quota(s->mn->dir, s->user);
	struct quota_usage u;
	char used[24] = "null", lim[24] = "null";

	if (quota_get(userdir, limit, &u) == 0)
		snprintf(used, sizeof(used), "%" PRIu64, u.bytes);
	else
		log_warn("http %s: quota of %s: %s", s->logid, s->user,
			 strerror(errno));
	if (limit)
		snprintf(lim, sizeof(lim), "%" PRIu64, limit);
	snprintf(out, len, ",\"quota\":{\"used\":%s,\"limit\":%s}", used, lim);
}

static void
api_mailboxes(struct http_session *s)
{
	char userdir[API_PATH_MAX], dir[API_PATH_MAX], quota[96];
	char(*folders)[MAILDIR_MBOX_MAX + 1] = NULL;
	size_t nfolders = 0;
	struct maildir_list l;
	struct strbuf sb;
	strbuf_init(&sb, HTTP_LIST_MAX);
	if (api_user_dir(s, userdir, sizeof(userdir)) < 0)
		goto out;
	if (maildir_scan(userdir, &l) < 0 && errno != ENOENT) {
		log_err("http %s: scan %s: %s", s->logid, userdir,
			strerror(errno));
		http_respond_error(s, 503, "store unavailable");
		goto out;
	}
	api_quota_json(s, userdir, quota, sizeof(quota));
	strbuf_appends(&sb, "[");
	api_mailbox_entry(&sb, "INBOX", &l, quota);
	maildir_list_free(&l);
	if (maildir_folders(userdir, &folders, &nfolders) < 0) {
		http_respond_error(s, 503, "store unavailable");
		goto out;
	}
	for (size_t i = 0; i < nfolders; i++) {
		if (maildir_mailbox_path(userdir, folders[i], dir,
					 sizeof(dir)) < 0 ||
		    maildir_scan(dir, &l) < 0)
			continue; /* gone meanwhile, or not ours */
		api_mailbox_entry(&sb, folders[i], &l, quota);
		maildir_list_free(&l);
	}
	if (strbuf_appends(&sb, "]") < 0 || sb.overflow) {
		http_respond_error(s, 500, "answer too large");
		goto out;
	}
	api_json(s, 200, NULL, &sb);
out:
	free(folders);
	strbuf_free(&sb);
}

void
api_flags_json(struct strbuf *sb, const char *dir, const char *flags,
	       const struct maildir_keywords *kw)
{
	struct maildir_keywords own;
	static const struct {
		char letter;
		const char *name;
	} map[] = {
	    {'S', "\\\\Seen"},	  {'R', "\\\\Answered"}, {'F', "\\\\Flagged"},
	    {'T', "\\\\Deleted"}, {'D', "\\\\Draft"},
	};
	bool first = true;
	strbuf_appends(sb, "[");
	for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++) {
		if (strchr(flags, map[i].letter) == NULL)
			continue;
		strbuf_appendf(sb, "%s\"%s\"", first ? "" : ",", map[i].name);
		first = false;
	}
	for (const char *p = flags; *p; p++) {
		if (*p < 'a' || *p > 'z')
			continue;
		if (kw == NULL) { /* read once, when a keyword is there */
			if (maildir_keywords_read(dir, &own) < 0)
				memset(&own, 0, sizeof(own)); /* unnamed */
			kw = &own;
		}
		if (!kw->name[*p - 'a'][0])
			continue;
		strbuf_appends(sb, first ? "" : ",");
		strbuf_append_json(sb, kw->name[*p - 'a']);
		first = false;
	}
	strbuf_appends(sb, "]");
}

/* One message of a listing, after a comma unless first; its keywords
 * named by kw (dir's, read once per listing). */
static void
api_message_entry(struct strbuf *sb, const char *dir,
		  const struct maildir_msg *m,
		  const struct maildir_keywords *kw, bool first)
{
	struct maildir_msg at = *m; /* its name may have moved on */
	struct maildir_headers h;
	memset(&h, 0, sizeof(h));
	int fd = maildir_open(dir, &at);
	if (fd >= 0) {
		maildir_read_headers(fd, &h);
		close(fd);
	}
	char v[MAILDIR_HDR_MAX * 2];
	strbuf_appendf(sb, "%s{\"uid\":%" PRIu32 ",\"from\":", first ? "" : ",",
		       m->uid);
	imap_mime_decode_words(h.from, v, sizeof(v)); /* RFC 2047 */
	strbuf_append_json(sb, v);
	strbuf_appends(sb, ",\"subject\":");
	imap_mime_decode_words(h.subject, v, sizeof(v));
	strbuf_append_json(sb, v);
	strbuf_appends(sb, ",\"date\":");
	strbuf_append_json(sb, h.date);
	strbuf_appendf(sb, ",\"size\":%" PRIu64 ",\"flags\":", m->size);
	api_flags_json(sb, dir, m->flags, kw);
	strbuf_appends(sb, "}");
}

void
api_message_list(struct http_session *s, api_list_filter keep, void *arg)
{
	char name[MAILDIR_MBOX_MAX + 8], dir[API_PATH_MAX];
	struct maildir_list l;
	struct maildir_keywords kw;
	struct strbuf sb;
	if (api_mailbox_dir(s, name, sizeof(name), dir, sizeof(dir)) < 0)
		return;
	if (api_scan(s, dir, name, &l) != 0)
		return;
	if (maildir_keywords_read(dir, &kw) < 0)
		memset(&kw, 0, sizeof(kw)); /* flags without names then */
	strbuf_init(&sb, HTTP_LIST_MAX);
	strbuf_appends(&sb, "[");
	bool first = true;
	for (size_t i = 0; i < l.n; i++) {
		if (keep != NULL && !keep(s, dir, &l.msg[i], arg))
			continue;
		api_message_entry(&sb, dir, &l.msg[i], &kw, first);
		first = false;
	}
	if (strbuf_appends(&sb, "]") < 0 || sb.overflow)
		http_respond_error(s, 500, "answer too large");
	else
		api_json(s, 200, NULL, &sb);
	strbuf_free(&sb);
	maildir_list_free(&l);
}

static void
api_messages(struct http_session *s)
{
	api_message_list(s, NULL, NULL);
}

/* Sends the file as it is stored. Once the head is out its length is
 * promised: a short read ends the connection instead. */
void
api_send_file(struct http_session *s, int fd, size_t size)
{
	char *buf = malloc(API_READ_CHUNK);
	if (buf == NULL) {
		http_respond_error(s, 503, "out of memory");
		return;
	}
	http_response_head(s, 200, "message/rfc822", NULL, size);
	size_t sent = 0;
	while (sent < size && !s->head_only) {
		size_t want =
		    size - sent < API_READ_CHUNK ? size - sent : API_READ_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_err("http %s: message shrank while sent", s->logid);
			s->close_after = true;
			stream_close(s->st, "message read failed");
			break;
		}
		http_response_body(s, buf, (size_t)n);
		sent += (size_t)n;
	}
	free(buf);
	http_response_end(s);
}

static void
api_message(struct http_session *s)
{
	char name[MAILDIR_MBOX_MAX + 8], dir[API_PATH_MAX];
	struct maildir_list l;
	struct maildir_msg m;
	uint32_t uid = api_path_uid(s);
	if (api_mailbox_dir(s, name, sizeof(name), dir, sizeof(dir)) < 0)
		return;
	if (api_scan(s, dir, name, &l) != 0)
		return;
	const struct maildir_msg *found = maildir_find(&l, uid);
	if (found)
		m = *found;
	maildir_list_free(&l);
	if (found == NULL) {
		http_respond_error(s, 404, "no such message");
		return;
	}
	/* A flag change elsewhere may rename it meanwhile: followed. */
	int fd = maildir_open(dir, &m);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		http_respond_error(s, 404, "no such message");
		return;
	}
	api_send_file(s, fd, (size_t)st.st_size);
	close(fd);
}
