/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Error strings and version: the one module every other module uses. */
#include <vmres/common.h>

#include <stddef.h>

struct error_text {
	const char *name;
	const char *text;
};

/* Indexed by -err, so adding a code means adding one line here. */
static const struct error_text error_texts[] = {
	[0] = {"VMRES_OK", "success"},
	[-VMRES_EINVAL] = {"VMRES_EINVAL", "invalid argument"},
	[-VMRES_ENOMEM] = {"VMRES_ENOMEM", "out of memory"},
	[-VMRES_ESIZE] = {"VMRES_ESIZE", "size or count is zero"},
	[-VMRES_EOVERFLOW] = {"VMRES_EOVERFLOW", "range overflows the address space"},
	[-VMRES_EALIGN] = {"VMRES_EALIGN", "alignment or count is not a power of two"},
	[-VMRES_EMISALIGNED] = {"VMRES_EMISALIGNED", "address is not aligned"},
	[-VMRES_ERANGE] = {"VMRES_ERANGE", "outside the managed space"},
	[-VMRES_ENOSPC] = {"VMRES_ENOSPC", "no free room for the request"},
	[-VMRES_EOVERLAP] = {"VMRES_EOVERLAP", "overlaps an existing allocation"},
	[-VMRES_ENOENT] = {"VMRES_ENOENT", "not allocated or not registered"},
	[-VMRES_EPOOL] = {"VMRES_EPOOL", "no such pool"},
	[-VMRES_EKIND] = {"VMRES_EKIND", "pool does not hold that kind of resource"},
	[-VMRES_EOWNER] = {"VMRES_EOWNER", "resource belongs to another owner"},
	[-VMRES_EEXIST] = {"VMRES_EEXIST", "already exists"},
	[-VMRES_EDEVICE] = {"VMRES_EDEVICE", "no such device"},
	[-VMRES_EPARENT] = {"VMRES_EPARENT", "bad parent device"},
	[-VMRES_ESTATE] = {"VMRES_ESTATE", "not allowed in the current state"},
	[-VMRES_ESYS] = {"VMRES_ESYS", "system call failed"},
	[-VMRES_ETRUNC] = {"VMRES_ETRUNC", "input is truncated"},
	[-VMRES_EMAGIC] = {"VMRES_EMAGIC", "bad magic"},
	[-VMRES_EVERSION] = {"VMRES_EVERSION", "unsupported format version"},
	[-VMRES_ECHECKSUM] = {"VMRES_ECHECKSUM", "checksum mismatch"},
	[-VMRES_ECORRUPT] = {"VMRES_ECORRUPT", "inconsistent input"},
	[-VMRES_ENOTSUP] = {"VMRES_ENOTSUP", "operation not supported"},
	[-VMRES_EFULL] = {"VMRES_EFULL", "table is full"},
	[-VMRES_EACCESS] = {"VMRES_EACCESS", "unsupported access size"},
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

const char *vmres_errname(int err)
{
	const struct error_text *e = lookup(err);

	return e ? e->name : "VMRES_E?";
}

const char *vmres_version(void)
{
	return VMRES_VERSION_STRING;
}
