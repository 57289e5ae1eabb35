/* The config document (confjson.h): written as text through a strbuf,
 * read with jansson. Loading checks the whole layout first, so a walk
 * never meets a wrong type. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../common/fdio.h"
#include "confjson.h"

struct confjson {
	json_t *root;
	json_t *domains, *users, *aliases; /* borrowed from root */
	json_t *settings;		   /* borrowed; NULL: none */
};

/* The members a document may have, so a newer export is refused. */
static const char *const confjson_members[] = {
    "format", "version", "generation", "domains",
    "users",  "aliases", "settings",
};

static struct confjson *
confjson_wrap(json_t *root)
{
	struct confjson *doc = calloc(1, sizeof(*doc));

	if (doc == NULL) {
		json_decref(root);
		return NULL;
	}
	doc->root = root;
	doc->domains = json_object_get(root, "domains");
	doc->users = json_object_get(root, "users");
	doc->aliases = json_object_get(root, "aliases");
	doc->settings = json_object_get(root, "settings");
	return doc;
}

#define CONFJSON_MAX (1u << 30) /* a written document's size cap */

/* The sections in the document's order: lists, then the settings'
 * object. */
static const struct {
	const char *name;
	char open, close;
} confjson_sections[] = {
    {"domains", '[', ']'},
    {"users", '[', ']'},
    {"aliases", '[', ']'},
    {"settings", '{', '}'},
};

#define CONFJSON_LAST_SECTION 3

void
confjson_writer_init(struct confjson_writer *w, uint64_t gen)
{
	strbuf_init(&w->sb, CONFJSON_MAX);
	w->section = -1;
	w->first = true;
	strbuf_appendf(&w->sb,
		       "{\"format\": \"%s\", \"version\": %d, "
		       "\"generation\": %" PRIu64 ",",
		       CONFJSON_FORMAT, CONFJSON_VERSION, gen);
}

void
confjson_writer_free(struct confjson_writer *w)
{
	strbuf_free(&w->sb);
}

/* Opens the sections up to section, closing those before (empty ones
 * included). */
static void
confjson_open(struct confjson_writer *w, int section)
{
	while (w->section < section) {
		if (w->section >= 0)
			strbuf_appendf(&w->sb, w->first ? "%c," : "\n %c,",
				       confjson_sections[w->section].close);
		w->section++;
		w->first = true;
		strbuf_appendf(&w->sb, "\n \"%s\": %c",
			       confjson_sections[w->section].name,
			       confjson_sections[w->section].open);
	}
}

/* Starts an entry of section. Returns 0, or -1 when w is past that
 * section or past its cap. */
static int
confjson_entry(struct confjson_writer *w, int section)
{
	if (section < w->section)
		return -1;
	confjson_open(w, section);
	strbuf_appends(&w->sb, w->first ? "\n  " : ",\n  ");
	w->first = false;
	return w->sb.overflow ? -1 : 0;
}

int
confjson_write_domain(struct confjson_writer *w, const char *domain)
{
	if (confjson_entry(w, 0) < 0)
		return -1;
	return strbuf_append_json(&w->sb, domain);
}

int
confjson_write_user(struct confjson_writer *w, const char *address,
		    const char *hash, uint64_t quota)
{
	if (confjson_entry(w, 1) < 0)
		return -1;
	strbuf_appends(&w->sb, "{\"address\": ");
	strbuf_append_json(&w->sb, address);
	strbuf_appends(&w->sb, ", \"password\": ");
	if (hash)
		strbuf_append_json(&w->sb, hash);
	else
		strbuf_appends(&w->sb, "null");
	if (quota)
		strbuf_appendf(&w->sb, ", \"quota\": %" PRIu64, quota);
	return strbuf_appends(&w->sb, "}");
}

int
confjson_write_alias(struct confjson_writer *w, const char *address,
		     const char *const *targets, size_t ntargets)
{
	if (confjson_entry(w, 2) < 0)
		return -1;
	strbuf_appends(&w->sb, "{\"address\": ");
	strbuf_append_json(&w->sb, address);
	strbuf_appends(&w->sb, ", \"targets\": [");
	for (size_t i = 0; i < ntargets; i++) {
		if (i)
			strbuf_appends(&w->sb, ", ");
		strbuf_append_json(&w->sb, targets[i]);
	}
	return strbuf_appends(&w->sb, "]}");
}

int
confjson_write_setting(struct confjson_writer *w, const char *key,
		       const char *value)
{
	if (confjson_entry(w, 3) < 0)
		return -1;
	strbuf_append_json(&w->sb, key);
	strbuf_appends(&w->sb, ": ");
	return strbuf_append_json(&w->sb, value);
}

int
confjson_writer_save(struct confjson_writer *w, const char *path)
{
	confjson_open(w, CONFJSON_LAST_SECTION);
	strbuf_appendf(&w->sb, w->first ? "%c}\n" : "\n %c}\n",
		       confjson_sections[CONFJSON_LAST_SECTION].close);
	if (w->sb.overflow) {
		errno = EFBIG;
		return -1;
	}
	if (path == NULL || strcmp(path, "-") == 0)
		return fd_write_all(1, w->sb.buf, w->sb.len);
	return fd_replace_file(path, w->sb.buf, w->sb.len);
}

void
confjson_free(struct confjson *doc)
{
	if (doc == NULL)
		return;
	json_decref(doc->root);
	free(doc);
}

static bool
confjson_domain_ok(json_t *e)
{
	return json_is_string(e);
}

static bool
confjson_user_ok(json_t *e)
{
	json_t *pw = json_object_get(e, "password");
	json_t *q = json_object_get(e, "quota");

	return json_is_string(json_object_get(e, "address")) &&
	       (json_is_string(pw) || json_is_null(pw)) &&
	       (q == NULL ||
		(json_is_integer(q) && json_integer_value(q) > 0)) &&
	       json_object_size(e) == (q ? 3u : 2u);
}

static bool
confjson_alias_ok(json_t *e)
{
	json_t *t = json_object_get(e, "targets"), *te;
	size_t k;

	if (!json_is_string(json_object_get(e, "address")) ||
	    !json_is_array(t) || json_array_size(t) == 0 ||
	    json_object_size(e) != 2)
		return false;
	json_array_foreach(t, k, te)
	{
		if (!json_is_string(te))
			return false;
	}
	return true;
}

/* The document's lists: each an array whose every element passes ok. */
static const struct confjson_list {
	const char *name;
	bool (*ok)(json_t *e);
	const char *shape; /* for the error */
} confjson_lists[] = {
    {"domains", confjson_domain_ok, "a string"},
    {"users", confjson_user_ok,
     "{\"address\": string, \"password\": string or null[, "
     "\"quota\": bytes > 0]}"},
    {"aliases", confjson_alias_ok,
     "{\"address\": string, \"targets\": [string, ...]}"},
};

/* Checks the layout; on a fault says which member in err. */
static int
confjson_check(json_t *root, char *err, size_t errlen)
{
	const char *key, *s;
	json_t *v, *e;
	size_t i;

	if (!json_is_object(root)) {
		snprintf(err, errlen, "not a JSON object");
		return -1;
	}
	json_object_foreach(root, key, v)
	{
		bool known = false;
		for (i = 0;
		     i < sizeof(confjson_members) / sizeof(confjson_members[0]);
		     i++)
			known = known || strcmp(key, confjson_members[i]) == 0;
		if (!known) {
			snprintf(err, errlen,
				 "unknown member \"%s\" (written by a newer "
				 "mailctl?)",
				 key);
			return -1;
		}
	}
	s = json_string_value(json_object_get(root, "format"));
	if (s == NULL || strcmp(s, CONFJSON_FORMAT) != 0) {
		snprintf(err, errlen, "\"format\" is not \"%s\"",
			 CONFJSON_FORMAT);
		return -1;
	}
	v = json_object_get(root, "version");
	if (!json_is_integer(v) || json_integer_value(v) != CONFJSON_VERSION) {
		snprintf(err, errlen, "\"version\" is not %d",
			 CONFJSON_VERSION);
		return -1;
	}
	v = json_object_get(root, "generation");
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(err, errlen,
			 "\"generation\" is not a whole number >= 0");
		return -1;
	}
	v = json_object_get(root, "settings"); /* optional: older documents */
	if (v && !json_is_object(v)) {
		snprintf(err, errlen, "\"settings\" is not an object");
		return -1;
	}
	json_object_foreach(v, key, e)
	{
		if (!json_is_string(e)) {
			snprintf(err, errlen, "settings.%s is not a string",
				 key);
			return -1;
		}
	}
	for (i = 0; i < sizeof(confjson_lists) / sizeof(confjson_lists[0]);
	     i++) {
		const struct confjson_list *l = &confjson_lists[i];
		size_t k;
		v = json_object_get(root, l->name);
		if (!json_is_array(v)) {
			snprintf(err, errlen, "\"%s\" is not an array",
				 l->name);
			return -1;
		}
		json_array_foreach(v, k, e)
		{
			if (!l->ok(e)) {
				snprintf(err, errlen, "%s[%zu] is not %s",
					 l->name, k, l->shape);
				return -1;
			}
		}
	}
	return 0;
}

struct confjson *
confjson_load(const char *path, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;
	char why[200];

	if (strcmp(path, "-") == 0)
		root = json_loadf(stdin, JSON_REJECT_DUPLICATES, &je);
	else
		root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		if (je.line > 0)
			snprintf(err, errlen, "%s:%d: %s", path, je.line,
				 je.text);
		else
			snprintf(err, errlen, "%s: %s", path, je.text);
		return NULL;
	}
	if (confjson_check(root, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		json_decref(root);
		return NULL;
	}
	return confjson_wrap(root);
}

uint64_t
confjson_generation(const struct confjson *doc)
{
	return (uint64_t)json_integer_value(
	    json_object_get(doc->root, "generation"));
}

static int
confjson_walk_alias(json_t *a, const struct confjson_visitor *v, void *arg)
{
	json_t *t = json_object_get(a, "targets"), *te;
	size_t n = json_array_size(t), k;
	const char **targets = calloc(n, sizeof(*targets));
	int rc;

	if (targets == NULL)
		return -1;
	json_array_foreach(t, k, te)
	{
		targets[k] = json_string_value(te);
	}
	rc = v->alias(arg, json_string_value(json_object_get(a, "address")),
		      targets, n);
	free(targets);
	return rc;
}

int
confjson_walk(const struct confjson *doc, const struct confjson_visitor *v,
	      void *arg)
{
	json_t *e;
	size_t i;
	int rc;

	json_array_foreach(doc->domains, i, e)
	{
		if ((rc = v->domain(arg, json_string_value(e))) != 0)
			return rc;
	}
	json_array_foreach(doc->users, i, e)
	{
		json_t *pw = json_object_get(e, "password");
		json_t *q = json_object_get(e, "quota");
		rc = v->user(arg,
			     json_string_value(json_object_get(e, "address")),
			     json_is_string(pw) ? json_string_value(pw) : NULL,
			     q ? (uint64_t)json_integer_value(q) : 0);
		if (rc != 0)
			return rc;
	}
	json_array_foreach(doc->aliases, i, e)
	{
		if ((rc = confjson_walk_alias(e, v, arg)) != 0)
			return rc;
	}
	const char *key;
	json_object_foreach(doc->settings, key, e)
	{
		if (v->setting &&
		    (rc = v->setting(arg, key, json_string_value(e))) != 0)
			return rc;
	}
	return 0;
}
