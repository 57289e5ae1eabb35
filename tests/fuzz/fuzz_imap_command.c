/* IMAP commands as a session assembles them (node/imap/imap_parse.c,
 * imap_args.c, imap_search.c): the input is client bytes; each line is
 * checked for a literal marker "{N}" / "{N+}", whose N bytes are taken
 * into the command as the session takes them, and each whole command has
 * its tag, name and UID prefix read, then its arguments by the reader the
 * command's handler uses. */
#include "fuzz.h"

#include "../../node/imap/imap_args.h"
#include "../../node/imap/imap_search.h"

/* Reads the arguments of name as its handler does. */
static void
fuzz_args(const char *name, bool uid, struct imap_cur *c)
{
	static struct imap_args_store store;
	static struct imap_args_copy copy;
	static struct imap_args_fetch fetch;
	static struct imap_seqset set;
	char mbox[IMAP_ARG_MBOX], user[256], pass[256];
	struct imap_args_rename rename;
	struct imap_args_list list;
	struct imap_args_status status;
	struct imap_args_append append;
	struct imap_search *search;
	bool has_set;

	if (!strcmp(name, "SELECT") || !strcmp(name, "EXAMINE") ||
	    !strcmp(name, "DELETE") || !strcmp(name, "SUBSCRIBE") ||
	    !strcmp(name, "UNSUBSCRIBE"))
		(void)imap_args_mailbox(c, false, mbox);
	else if (!strcmp(name, "CREATE"))
		(void)imap_args_mailbox(c, true, mbox);
	else if (!strcmp(name, "RENAME"))
		(void)imap_args_rename(c, &rename);
	else if (!strcmp(name, "LIST") || !strcmp(name, "LSUB"))
		(void)imap_args_list(c, !strcmp(name, "LIST"), &list);
	else if (!strcmp(name, "STATUS"))
		(void)imap_args_status(c, &status);
	else if (!strcmp(name, "APPEND")) {
		/* The message must lie in the command: read it whole, for
		 * ASan to check. */
		if (imap_args_append(c, &append) == 0) {
			static volatile unsigned sum;
			for (size_t i = 0; i < append.len; i++)
				sum = sum + (unsigned char)append.msg[i];
		}
	} else if (!strcmp(name, "STORE"))
		(void)imap_args_store(c, &store);
	else if (!strcmp(name, "COPY") || !strcmp(name, "MOVE"))
		(void)imap_args_copy(c, &copy);
	else if (!strcmp(name, "FETCH")) {
		(void)imap_args_fetch(c, &fetch);
		imap_fetch_free(&fetch.f);
	} else if (!strcmp(name, "EXPUNGE"))
		(void)imap_args_expunge(c, uid, &set, &has_set);
	else if (!strcmp(name, "SEARCH")) {
		unsigned ret;
		if (imap_args_search_return(c, &ret) == 0 &&
		    imap_search_parse(c, &search) == 0)
			imap_search_free(search);
	} else if (!strcmp(name, "LOGIN")) {
		if (imap_astring(c, user, sizeof(user), NULL) == 0 &&
		    imap_sp(c) == 0 &&
		    imap_astring(c, pass, sizeof(pass), NULL) == 0)
			(void)imap_end(c);
	}
}

/* One assembled command. */
static void
fuzz_command(const char *buf, size_t len)
{
	struct imap_cur c;
	char tag[65], name[32];
	bool uid;

	imap_cur_init(&c, buf, len);
	if (imap_command_start(&c, tag, sizeof(tag), name, sizeof(name), &uid) <
	    0)
		return;
	if (!imap_at_end(&c) && imap_sp(&c) < 0)
		return;
	fuzz_args(name, uid, &c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Lines and literals, with a CRLF added per literal marker (3 bytes
	 * at least): under twice the input. */
	char *cmd = malloc(2 * size + 1);
	size_t len = 0, off = 0;
	if (cmd == NULL)
		abort();
	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl ? (size_t)(nl - data - off) : size - off;
		size_t next = off + n + (nl != NULL);
		if (n > 0 && data[off + n - 1] == '\r')
			n--;
		uint64_t lit;
		bool nonsync;
		memcpy(cmd + len, data + off, n);
		len += n;
		int r = imap_literal_suffix(cmd + len - n, n, &lit, &nonsync);
		off = next;
		if (r == 1) {
			/* The session keeps the CRLF, then the literal. */
			size_t take =
			    lit < size - off ? (size_t)lit : size - off;
			memcpy(cmd + len, "\r\n", 2);
			memcpy(cmd + len + 2, data + off, take);
			len += 2 + take;
			off += take;
			if (take == lit && off < size)
				continue; /* the rest of the command */
		}
		/* A whole command: an exact-size copy for ASan. */
		char *exact = fuzz_str((const uint8_t *)cmd, len);
		fuzz_command(exact, len);
		free(exact);
		len = 0;
	}
	free(cmd);
	return 0;
}
