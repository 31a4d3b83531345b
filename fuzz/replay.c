/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Feed every regular file of the directories (or the files) named on the command
 * line to LLVMFuzzerTestOneInput(), once each, in name order: the regression test
 * that replays a fuzz target's corpus in every build, without clang or libFuzzer.
 * Linked with any fuzz target; a crash, a sanitizer report or a leak fails the
 * run as it would under libFuzzer. Exits 0 after the last input, 1 on a usage or
 * I/O error, and 77 (skipped) if a directory holds no input at all.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Read the whole of @p path into a malloc'd buffer. */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	bool ok = true;

	if (!f)
		return -1;
	while (ok) {
		if (len == cap) {
			uint8_t *p = realloc(buf, cap ? 2 * cap : 4096);

			ok = p != NULL;
			if (!ok)
				break;
			buf = p;
			cap = cap ? 2 * cap : 4096;
		}
		size_t n = fread(buf + len, 1, cap - len, f);

		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f))
		ok = false;
	fclose(f);
	if (!ok) {
		free(buf);
		errno = errno ? errno : EIO;
		return -1;
	}
	*data = buf;
	*size = len;
	return 0;
}

static int run_file(const char *path)
{
	uint8_t *data;
	size_t size;

	errno = 0;
	if (read_file(path, &data, &size)) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	printf("replay: %s (%zu bytes)\n", path, size);
	fflush(stdout);
	/* A copy of exactly @p size bytes, so ASan sees any read past the end. */
	uint8_t *exact = malloc(size ? size : 1);

	if (!exact) {
		free(data);
		return -1;
	}
	memcpy(exact, data, size);
	free(data);
	LLVMFuzzerTestOneInput(exact, size);
	free(exact);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every regular file of @p dir; returns the number run, or -1. */
static long run_dir(const char *dir)
{
	struct dirent *ent;
	char **names = NULL;
	size_t n = 0, cap = 0;
	long done = 0;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((ent = readdir(d)) != NULL) {
		if (ent->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **p = realloc(names, (cap ? 2 * cap : 16) * sizeof(*names));

			if (!p)
				break;
			names = p;
			cap = cap ? 2 * cap : 16;
		}
		if (asprintf(&names[n], "%s/%s", dir, ent->d_name) < 0)
			break;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		struct stat st;

		if (done >= 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
			done = run_file(names[i]) ? -1 : done + 1;
		free(names[i]);
	}
	free(names);
	return done;
}

int main(int argc, char **argv)
{
	long total = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		long n;

		if (stat(argv[i], &st)) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) ? -1 : 1;
		if (n < 0)
			return 1;
		total += n;
	}
	if (total == 0) {
		printf("replay: no input found\n");
		return 77;
	}
	printf("replay: %ld inputs, no crash\n", total);
	return 0;
}
