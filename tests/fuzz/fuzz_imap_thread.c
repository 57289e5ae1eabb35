/* THREAD and SORT's keys (node/imap/imap_thread.c, imap_sort.c): the
 * input is messages' header values as a client's mail may carry them,
 * NUL-separated in threes (Message-ID, References, Subject), threaded
 * by both algorithms; each answer's parentheses must balance and every
 * message appear once. */
#include "fuzz.h"

#include "../../common/strbuf.h"
#include "../../node/imap/imap_sort.h"

#define FUZZ_THREAD_MSGS 64

/* Balanced parentheses and each number 1..n exactly once. */
static void
fuzz_check(const char *t, size_t n)
{
	int depth = 0;
	bool seen[FUZZ_THREAD_MSGS + 1] = {false};
	size_t count = 0;
	for (const char *p = t; *p; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && --depth < 0)
			abort();
		else if (*p >= '0' && *p <= '9') {
			unsigned long v = strtoul(p, (char **)&p, 10);
			p--;
			if (v == 0 || v > n || seen[v])
				abort();
			seen[v] = true;
			count++;
		}
	}
	if (depth != 0 || count != n)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_sort_msg *m = calloc(FUZZ_THREAD_MSGS, sizeof(*m));
	size_t n = 0;
	char *id, *refs, *subj;
	if (m == NULL)
		abort();
	while (n < FUZZ_THREAD_MSGS && (id = fuzz_next(&data, &size))) {
		refs = fuzz_next(&data, &size);
		subj = fuzz_next(&data, &size);
		char base[IMAP_SORT_STR_MAX], mbox[IMAP_SORT_STR_MAX];
		m[n].seq = m[n].uid = (uint32_t)(n + 1);
		m[n].date = (time_t)(n % 7);
		m[n].msgid = id;
		m[n].refs = refs;
		imap_base_subject(subj ? subj : "", base, sizeof(base),
				  &m[n].refwd);
		m[n].subject = strdup(base);
		imap_first_mailbox(subj ? subj : "", mbox, sizeof(mbox));
		free(subj);
		n++;
	}
	for (int a = 0; a < 2; a++) {
		struct strbuf sb;
		strbuf_init(&sb, 1 << 20);
		if (imap_thread(m, n,
				a ? IMAP_THREAD_REFERENCES
				  : IMAP_THREAD_ORDEREDSUBJECT,
				false, &sb) == 0)
			fuzz_check(strbuf_str(&sb), n);
		strbuf_free(&sb);
	}
	imap_sort_msgs_free(m, n);
	return 0;
}
