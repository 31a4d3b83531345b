/* A program that knows vmres only through pkg-config: it must compile, link and run
 * against the installed headers and shared library. */
#include <stdio.h>
#include <string.h>

#include <vmres/vmres.h>

int main(void)
{
	if (strcmp(vmres_version(), "") == 0)
		return 1;
	printf("consumer: vmres %s, ENOSPC = \"%s\"\n", vmres_version(),
	       vmres_strerror(VMRES_ENOSPC));
	return 0;
}
