/* A main() for the fuzz targets where libFuzzer is not at hand (gcc):
 * runs LLVMFuzzerTestOneInput once on each file named, or on each file
 * of each directory named, so the checked-in corpora, regression inputs
 * included, run in every build. Exits non-zero if a path cannot be
 * read; a crash is the target's own abort. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Runs the target on one file. Returns 0 or -1. */
static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;
	int rc = -1;

	if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0)
		goto fail;
	if ((buf = malloc(n > 0 ? (size_t)n : 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n)
		goto fail;
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	rc = 0;
fail:
	if (rc < 0)
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
	free(buf);
	if (f)
		fclose(f);
	return rc;
}

int
main(int argc, char **argv)
{
	int bad = 0, runs = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			bad |= replay_file(argv[i]) < 0;
			runs++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		char path[PATH_MAX];
		if (d == NULL) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
				strerror(errno));
			bad = 1;
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i],
				 de->d_name);
			bad |= replay_file(path) < 0;
			runs++;
		}
		closedir(d);
	}
	printf("replay: %d inputs\n", runs);
	return bad;
}
