/* SPDX-License-Identifier: MIT */
/*
 * Replays a seed corpus through a fuzz target without libFuzzer, so that the
 * same targets build with any compiler and run under `make check`: every
 * regular file of the directory given as argv[1] is read and handed to
 * LLVMFuzzerTestOneInput once.  A crash or a sanitizer report fails the test;
 * an empty or missing corpus fails it too, so that a broken path cannot pass.
 */
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
	FILE		*f;
	struct stat	 st;
	uint8_t		*buf;
	size_t		 len;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		fclose(f);
		return -1;
	}
	/* An exact-size heap copy, so ASan sees reads past the input. */
	len = (size_t)st.st_size;
	if ((buf = malloc(len > 0 ? len : 1)) == NULL ||
	    fread(buf, 1, len, f) != len) {
		fprintf(stderr, "%s: short read\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[4096];
	struct stat	 st;
	unsigned	 n = 0;
	int		 rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s corpus-dir\n", argv[0]);
		return 2;
	}
	if ((d = opendir(argv[1])) == NULL) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", argv[1],
		    de->d_name) >= sizeof(path))
			continue;
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(path) != 0)
			rc = 1;
		n++;
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "%s: no inputs\n", argv[1]);
		return 1;
	}
	printf("%s: %u inputs replayed\n", argv[1], n);
	return rc;
}
