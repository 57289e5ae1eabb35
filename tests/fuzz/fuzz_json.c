/* The HTTP API's JSON bodies (common/json.c): one flat object of
 * strings. */
#include "fuzz.h"

#include "../../common/json.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_str(data, size);
	char *store = malloc(size + 1);
	struct json_flat o;
	const char *why;
	if (store == NULL)
		abort();
	if (json_flat_parse(text, size, &o, store, size + 1, &why) == 0) {
		for (int i = 0; i < o.n; i++)
			if (json_flat_get(&o, o.m[i].name) == NULL)
				abort(); /* a parsed member cannot be found */
	}
	free(text);
	free(store);
	return 0;
}
