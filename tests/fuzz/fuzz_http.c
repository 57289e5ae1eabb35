/* HTTP/1.1 request heads (node/http/http_parse.c): the input is cut into
 * lines at LF as the stream would (CR before it removed, crlf said) and
 * fed line by line; then the query of the target is searched. */
#include "fuzz.h"

#include "../../node/http/http.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_request rq;
	char out[256];
	size_t off = 0;

	http_request_reset(&rq);
	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - data - off) : size - off;
		bool crlf = len > 0 && data[off + len - 1] == '\r';
		bool toolong = len > HTTP_LINE_MAX;
		char *line = fuzz_str(data + off, len - crlf);
		enum http_parse_result r = http_parse_line(
		    &rq, line, toolong ? HTTP_LINE_MAX : len - crlf, crlf,
		    toolong);
		free(line);
		off += len + (nl != NULL);
		if (r == HTTP_PARSE_END) {
			(void)http_request_keepalive(&rq);
			if (rq.status == 0 && rq.query != NULL) {
				(void)http_query_get(rq.query, "q", out,
						     sizeof(out));
				(void)http_query_get(rq.query, "limit", out,
						     sizeof(out));
			}
			(void)http_status_text(rq.status);
			http_request_reset(&rq);
		}
	}
	return 0;
}
