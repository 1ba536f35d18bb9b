/* SPDX-License-Identifier: MIT */
/*
 * jtool: JSON helper for the integration scripts, on jansson.
 *
 *	jtool get FILE PATH	print the value at PATH (a.b.0.c); strings raw,
 *				other values as compact JSON; exit 1 if absent
 *	jtool make ARG...	print an object built from key=text,
 *				key=@file (file contents) and key:=json
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

static char *
slurp(const char *path, size_t *len)
{
	FILE	*f = fopen(path, "rb");
	char	*buf = NULL;
	long	 n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "jtool: cannot read %s\n", path);
		exit(2);
	}
	buf[n] = '\0';
	*len = (size_t)n;
	fclose(f);
	return buf;
}

static int
get(const char *file, const char *path)
{
	json_error_t	 err;
	json_t		*root = json_load_file(file, JSON_DECODE_ANY, &err);
	json_t		*v = root;
	char		*p = strdup(path), *save = NULL, *seg, *out;
	int		 rv = 0;

	if (v == NULL) {
		free(p);
		fprintf(stderr, "jtool: %s: %s\n", file, err.text);
		return 2;
	}
	for (seg = strtok_r(p, ".", &save); seg != NULL && v != NULL;
	    seg = strtok_r(NULL, ".", &save)) {
		if (json_is_array(v))
			v = json_array_get(v, strtoul(seg, NULL, 10));
		else
			v = json_object_get(v, seg);
	}
	if (v == NULL)
		rv = 1;
	else if (json_is_string(v))
		fwrite(json_string_value(v), 1, json_string_length(v), stdout);
	else {
		out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		fputs(out, stdout);
		free(out);
	}
	if (rv == 0)
		putchar('\n');
	json_decref(root);
	free(p);
	return rv;
}

static int
make(int argc, char *argv[])
{
	json_t	*o = json_object();
	int	 i;

	for (i = 0; i < argc; i++) {
		char		*eq = strchr(argv[i], '='), *key, *buf;
		json_error_t	 err;
		json_t		*v;
		size_t		 len;

		if (eq == NULL) {
			fprintf(stderr, "jtool: bad argument %s\n", argv[i]);
			return 2;
		}
		if (eq > argv[i] && eq[-1] == ':') {
			key = strndup(argv[i], (size_t)(eq - 1 - argv[i]));
			v = json_loads(eq + 1, JSON_DECODE_ANY, &err);
		} else if (eq[1] == '@') {
			key = strndup(argv[i], (size_t)(eq - argv[i]));
			buf = slurp(eq + 2, &len);
			v = json_stringn(buf, len);
			free(buf);
		} else {
			key = strndup(argv[i], (size_t)(eq - argv[i]));
			v = json_string(eq + 1);
		}
		if (v == NULL) {
			fprintf(stderr, "jtool: bad value in %s\n", argv[i]);
			return 2;
		}
		json_object_set_new(o, key, v);
		free(key);
	}
	i = json_dumpf(o, stdout, JSON_COMPACT) == 0 ? 0 : 2;
	json_decref(o);
	return i;
}

int
main(int argc, char *argv[])
{
	if (argc == 4 && strcmp(argv[1], "get") == 0)
		return get(argv[2], argv[3]);
	if (argc >= 2 && strcmp(argv[1], "make") == 0)
		return make(argc - 2, argv + 2);
	fprintf(stderr, "usage: jtool get FILE PATH | jtool make K=V|K=@FILE|K:=JSON...\n");
	return 2;
}
