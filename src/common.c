/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Error strings, version and name checks: what every other module uses. */
#include "common_int.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <vmres/common.h>

struct error_text {
	const char *name;
	const char *text;
};

/* Indexed by -err, so adding a code means adding one line here. */
static const struct error_text error_texts[] = {
	[0] = {"VMRES_OK", "success"},
	[-VMRES_EINVAL] = {"VMRES_EINVAL",
			   "invalid argument: a NULL pointer, a struct not set up with its _INIT "
			   "macro, or a name that is too long or not text (vmres_error_detail() "
			   "says which)"},
	[-VMRES_ENOMEM] = {"VMRES_ENOMEM", "out of memory"},
	[-VMRES_ESIZE] = {"VMRES_ESIZE", "size or count is zero: ask for at least one"},
	[-VMRES_EOVERFLOW] = {"VMRES_EOVERFLOW",
			      "range overflows the address space: lower the base or the size"},
	[-VMRES_EALIGN] = {"VMRES_EALIGN", "alignment or count is not a power of two: round it up"},
	[-VMRES_EMISALIGNED] = {"VMRES_EMISALIGNED", "address is not a multiple of the alignment"},
	[-VMRES_ERANGE] = {"VMRES_ERANGE", "outside the managed space or the pool's window"},
	[-VMRES_ENOSPC] = {"VMRES_ENOSPC",
			   "no free room for the request: free something or use a larger pool"},
	[-VMRES_EOVERLAP] = {"VMRES_EOVERLAP", "overlaps an existing allocation"},
	[-VMRES_ENOENT] = {"VMRES_ENOENT", "not allocated or not registered"},
	[-VMRES_EPOOL] = {"VMRES_EPOOL", "no pool of that name: see the dump for the pools"},
	[-VMRES_EKIND] = {"VMRES_EKIND", "pool does not hold that kind of resource"},
	[-VMRES_EOWNER] = {"VMRES_EOWNER", "resource belongs to another owner"},
	[-VMRES_EEXIST] = {"VMRES_EEXIST", "already exists"},
	[-VMRES_EDEVICE] = {"VMRES_EDEVICE", "no device with that instance id"},
	[-VMRES_EPARENT] =
		{"VMRES_EPARENT",
		 "unknown parent, or a parent that still has children: remove them first"},
	[-VMRES_ESTATE] = {"VMRES_ESTATE",
			   "not allowed in the object's current state (vmres_error_detail() may "
			   "say why)"},
	[-VMRES_ESYS] = {"VMRES_ESYS", "system call failed: errno says why"},
	[-VMRES_ETRUNC] = {"VMRES_ETRUNC", "input is truncated"},
	[-VMRES_EMAGIC] = {"VMRES_EMAGIC", "bad magic: not a vmres snapshot"},
	[-VMRES_EVERSION] = {"VMRES_EVERSION",
			     "unsupported format version: written by a newer vmres"},
	[-VMRES_ECHECKSUM] = {"VMRES_ECHECKSUM", "checksum mismatch: the input was damaged"},
	[-VMRES_ECORRUPT] = {"VMRES_ECORRUPT", "inconsistent input"},
	[-VMRES_ENOTSUP] = {"VMRES_ENOTSUP", "operation not supported by this object"},
	[-VMRES_EFULL] = {"VMRES_EFULL",
			  "a table or the caller's output array is full (vmres_error_detail() "
			  "gives the size needed)"},
	[-VMRES_EACCESS] = {"VMRES_EACCESS", "unsupported access size: use 1, 2, 4 or 8 bytes"},
};

static const struct error_text *lookup(int err)
{
	if (err > 0 || err < VMRES_ERRNO_MIN)
		return NULL;
	return &error_texts[-err];
}

const char *vmres_strerror(int err)
{
	const struct error_text *e = lookup(err);

	return e ? e->text : "unknown error";
}

/* The calling thread's last recorded detail (vmres__fail()). */
static __thread struct {
	int err;
	char text[224];
} detail;

int vmres__fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail.text, sizeof(detail.text), fmt, ap);
	va_end(ap);
	detail.err = err;
	return err;
}

const char *vmres_error_detail(int err)
{
	return err < 0 && detail.err == err ? detail.text : vmres_strerror(err);
}

int vmres__name_check(const char *what, const char *s, size_t max)
{
	if (!s)
		return vmres__fail(VMRES_EINVAL, "%s is NULL", what);
	if (vmres__name_valid(s, max))
		return 0;
	if (strnlen(s, max) == max)
		return vmres__fail(
			VMRES_EINVAL,
			"%s too long: \"%.*s...\" has %zu bytes or more, the maximum is %zu; "
			"shorten it",
			what, (int)(max < 16 ? max : 16), s, max, max - 1);
	return vmres__fail(VMRES_EINVAL,
			   "%s is not text: use valid UTF-8 without control characters", what);
}

const char *vmres_errname(int err)
{
	const struct error_text *e = lookup(err);

	return e ? e->name : "VMRES_E?";
}

const char *vmres_version(void)
{
	return VMRES_VERSION_STRING;
}

/* The length of the UTF-8 sequence that lead byte @p c starts (2 to 4) and the
 * code point bits it carries, or 0 for a byte that cannot start one (a
 * continuation byte, 0xc0 and 0xc1, which only start overlong forms, and 0xf5 to
 * 0xff, which start code points above U+10FFFF). */
static unsigned int utf8_lead(unsigned char c, uint32_t *bits)
{
	if (c >= 0xc2 && c <= 0xdf) {
		*bits = c & 0x1f;
		return 2;
	}
	if (c >= 0xe0 && c <= 0xef) {
		*bits = c & 0x0f;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		*bits = c & 0x07;
		return 4;
	}
	return 0;
}

bool vmres__name_valid(const char *s, size_t max)
{
	static const uint32_t min_of_len[5] = {0, 0, 0x80, 0x800, 0x10000};
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < max) {
		unsigned char c = p[i];
		unsigned int n;
		uint32_t cp;

		if (c == '\0')
			return true;
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		n = utf8_lead(c, &cp);
		if (n == 0)
			return false;
		/* A NUL is not a continuation byte: nothing past it is read. */
		for (unsigned int k = 1; k < n; k++) {
			if (i + k >= max || (p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min_of_len[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n;
	}
	return false;
}

struct json_text {
	char *buf;
	size_t len, cap; /* cap > len: room for the NUL */
	bool failed;
};

static int json_text_put(const char *piece, size_t size, void *data)
{
	struct json_text *t = data;
	size_t cap = t->cap ? t->cap : 256;
	char *buf;

	if (t->failed)
		return -1;
	if (size < t->cap - t->len) {
		memcpy(t->buf + t->len, piece, size);
		t->len += size;
		return 0;
	}
	while (cap - t->len <= size && cap <= SIZE_MAX / 2)
		cap *= 2;
	buf = cap - t->len > size ? realloc(t->buf, cap) : NULL;
	if (!buf) {
		t->failed = true;
		return -1;
	}
	t->buf = buf;
	t->cap = cap;
	memcpy(t->buf + t->len, piece, size);
	t->len += size;
	return 0;
}

char *vmres__json_dumps(const struct json_t *root, size_t flags)
{
	struct json_text t = {NULL, 0, 0, false};

	if (json_dump_callback(root, json_text_put, &t, flags) || t.failed || !t.buf) {
		free(t.buf);
		return NULL;
	}
	t.buf[t.len] = '\0';
	return t.buf;
}
