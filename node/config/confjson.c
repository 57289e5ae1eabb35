/* The config document (confjson.h) over jansson. Loading checks the whole
 * layout first, so a walk never meets a wrong type. */
#include <errno.h>
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
};

/* The members a document may have, so a newer export is refused. */
static const char *const confjson_members[] = {
    "format", "version", "generation", "domains", "users", "aliases",
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
	return doc;
}

struct confjson *
confjson_new(uint64_t gen)
{
	json_t *root = json_pack("{s:s, s:i, s:I, s:[], s:[], s:[]}", "format",
				 CONFJSON_FORMAT, "version", CONFJSON_VERSION,
				 "generation", (json_int_t)gen, "domains",
				 "users", "aliases");

	return root ? confjson_wrap(root) : NULL;
}

void
confjson_free(struct confjson *doc)
{
	if (doc == NULL)
		return;
	json_decref(doc->root);
	free(doc);
}

int
confjson_add_domain(struct confjson *doc, const char *domain)
{
	return json_array_append_new(doc->domains, json_string(domain));
}

int
confjson_add_user(struct confjson *doc, const char *address, const char *hash)
{
	json_t *u = json_pack("{s:s, s:o}", "address", address, "password",
			      hash ? json_string(hash) : json_null());

	return u ? json_array_append_new(doc->users, u) : -1;
}

int
confjson_add_alias(struct confjson *doc, const char *address,
		   char *const *targets, size_t ntargets)
{
	json_t *t = json_array(), *a;

	if (t == NULL)
		return -1;
	for (size_t i = 0; i < ntargets; i++)
		if (json_array_append_new(t, json_string(targets[i])) < 0) {
			json_decref(t);
			return -1;
		}
	a = json_pack("{s:s, s:o}", "address", address, "targets", t);
	return a ? json_array_append_new(doc->aliases, a) : -1;
}

int
confjson_save(const struct confjson *doc, const char *path)
{
	char *text = json_dumps(doc->root, JSON_INDENT(1));
	size_t len;
	int rc;

	if (text == NULL) {
		errno = ENOMEM;
		return -1;
	}
	len = strlen(text);
	text[len++] = '\n'; /* over its NUL: the byte is ours */
	if (path == NULL || strcmp(path, "-") == 0)
		rc = fd_write_all(1, text, len);
	else
		rc = fd_replace_file(path, text, len, 0600);
	free(text);
	return rc;
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

	return json_is_string(json_object_get(e, "address")) &&
	       (json_is_string(pw) || json_is_null(pw)) &&
	       json_object_size(e) == 2;
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
     "{\"address\": string, \"password\": string or null}"},
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
		rc = v->user(arg,
			     json_string_value(json_object_get(e, "address")),
			     json_is_string(pw) ? json_string_value(pw) : NULL);
		if (rc != 0)
			return rc;
	}
	json_array_foreach(doc->aliases, i, e)
	{
		if ((rc = confjson_walk_alias(e, v, arg)) != 0)
			return rc;
	}
	return 0;
}
