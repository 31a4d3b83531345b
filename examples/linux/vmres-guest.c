/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vmres-guest: what the Linux guest of `make demo-linux` runs as its /init's
 * last step (a static program; only the kernel's user interfaces are used).
 *
 *  1. Waits for Linux's virtio_pci driver to bind the virtio entropy device
 *     (1af4:1044) and virtio_rng to become the current hwrng; prints where
 *     Linux's PCI core put its BAR0 (the VMM left it unassigned).
 *  2. Prints its view (/proc/iomem, /proc/ioports, each device's resource
 *     file), reads 1 MiB from /dev/hwrng and checks that the device's MSI-X
 *     interrupts counted in /proc/interrupts.
 *  3. A refused move: unbinds the driver, turns memory decode off, writes the
 *     other device's BAR0 address into the virtio device's BAR0 through the
 *     sysfs config file, turns decode on: the register must read back the
 *     old address (the VMM refused), and after rebinding the device works.
 *  4. A move: the same with a free address. Through /dev/mem the device's
 *     registers and MSI-X table answer at the new address and nothing at the
 *     old; a kick of its queue there reaches the VMM's device thread (which
 *     counts kicks by where BAR0 is). Then it removes the device and rescans
 *     the bus: Linux reads the BAR and, as for every BAR a rescan finds that
 *     it has not claimed, assigns it again itself (its lowest free address:
 *     where it first put it), the driver binds again and 1 MiB more is read.
 *  5. Prints its view again (the VMM checks this last one), then ends the run
 *     through the VMM's control port ("vmres.ctl=" on the command line) with
 *     status 0 if every check passed.
 *
 * Output: "vmres-guest: ok   ..." / "vmres-guest: FAIL ..." per check, and
 * the lines linux.c of the demo VMM parses (see there).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define PCI_DEVICES   "/sys/bus/pci/devices"
#define VIRTIO_DRIVER "/sys/bus/pci/drivers/virtio-pci"
#define READ_BYTES    (1u << 20)
#define MOVE_TO	      0xd0000000u /* free in the PCI window below the ECAM reservation */
#define CMD_MEMORY    0x2u

static unsigned int failures;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	printf("vmres-guest: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static bool check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("vmres-guest: %s ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failures += !ok;
	return ok;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	bool ok = fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text);

	if (fd >= 0)
		close(fd);
	return ok;
}

static unsigned long read_hex_file(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long v = 0;

	if (f) {
		if (fscanf(f, "%lx", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

/* The first PCI device with these IDs: its address ("0000:00:02.0") in @bdf. */
static bool find_device(unsigned int vendor, unsigned int device, char bdf[32])
{
	DIR *d = opendir(PCI_DEVICES);
	struct dirent *e;
	bool found = false;

	while (d && !found && (e = readdir(d))) {
		char path[300];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/vendor", e->d_name);
		if (read_hex_file(path) != vendor)
			continue;
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/device", e->d_name);
		if (read_hex_file(path) != device)
			continue;
		snprintf(bdf, 32, "%.31s", e->d_name);
		found = true;
	}
	if (d)
		closedir(d);
	return found;
}

/* BAR @bar's start and end from the device's resource file (0 if unassigned). */
static uint64_t resource_start(const char *bdf, unsigned int bar, uint64_t *end)
{
	char path[128];
	FILE *f;
	uint64_t s = 0, e = 0, flags;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/resource", bdf);
	f = fopen(path, "r");
	for (unsigned int i = 0; f && i <= bar; i++)
		if (fscanf(f, "%" SCNx64 " %" SCNx64 " %" SCNx64, &s, &e, &flags) != 3)
			s = e = 0;
	if (f)
		fclose(f);
	if (end)
		*end = e;
	return s;
}

static bool config_rw(const char *bdf, bool write, unsigned int off, unsigned int size,
		      uint32_t *val)
{
	char path[128];
	int fd;
	bool ok;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/config", bdf);
	fd = open(path, write ? O_WRONLY : O_RDONLY);
	if (fd < 0)
		return false;
	ok = write ? pwrite(fd, val, size, off) == (ssize_t)size
		   : pread(fd, val, size, off) == (ssize_t)size;
	close(fd);
	return ok;
}

static uint32_t config_read(const char *bdf, unsigned int off, unsigned int size)
{
	uint32_t v = 0;

	config_rw(bdf, false, off, size, &v);
	return v;
}

static void config_write(const char *bdf, unsigned int off, unsigned int size, uint32_t v)
{
	config_rw(bdf, true, off, size, &v);
}

/* The driver bound to @bdf and virtio_rng the current hwrng, within 20 s. */
static bool wait_bound(const char *bdf)
{
	char path[128], link[256], cur[64];

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver", bdf);
	for (int i = 0; i < 2000; i++) {
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		FILE *f;

		if (n > 0) {
			link[n] = '\0';
			f = fopen("/sys/class/misc/hw_random/rng_current", "r");
			cur[0] = '\0';
			if (f) {
				if (!fgets(cur, sizeof(cur), f))
					cur[0] = '\0';
				fclose(f);
			}
			if (strstr(link, "virtio-pci") && !strncmp(cur, "virtio_rng", 10))
				return true;
		}
		usleep(10000);
	}
	return false;
}

static void dump_file(const char *path, const char *tag)
{
	FILE *f = fopen(path, "r");
	char line[256];

	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		printf("vmres-guest: %s %s\n", tag, line);
	}
	if (f)
		fclose(f);
}

static void dump(const char *phase)
{
	DIR *d = opendir(PCI_DEVICES);
	struct dirent *e;

	say("dump %s begin", phase);
	dump_file("/proc/iomem", "iomem");
	dump_file("/proc/ioports", "ioports");
	while (d && (e = readdir(d))) {
		char path[300], line[128];
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), PCI_DEVICES "/%s/resource", e->d_name);
		f = fopen(path, "r");
		for (unsigned int i = 0; f && i < 6 && fgets(line, sizeof(line), f); i++) {
			line[strcspn(line, "\n")] = '\0';
			printf("vmres-guest: resource %s %u %s\n", e->d_name, i, line);
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	say("dump %s end", phase);
}

/* Interrupts counted on the lines whose name has "virtio", all CPUs. */
static uint64_t virtio_interrupts(const char *phase)
{
	FILE *f = fopen("/proc/interrupts", "r");
	char line[512];
	uint64_t total = 0;

	while (f && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':'), *end;
		uint64_t sum = 0;

		if (!p || !strstr(line, "virtio"))
			continue;
		for (p++;; p = end) {
			uint64_t v = strtoull(p, &end, 10);

			if (end == p)
				break;
			sum += v;
		}
		line[strcspn(line, "\n")] = '\0';
		say("irq %s %" PRIu64 " on %s", phase, sum, strrchr(line, ' ') + 1);
		total += sum;
	}
	if (f)
		fclose(f);
	return total;
}

/* Read @want bytes from /dev/hwrng; the bytes read. */
static uint64_t read_hwrng(const char *phase, uint64_t want)
{
	static unsigned char buf[65536];
	int fd = open("/dev/hwrng", O_RDONLY);
	uint64_t got = 0;
	double t0 = now_s();

	while (fd >= 0 && got < want) {
		size_t n = want - got < sizeof(buf) ? (size_t)(want - got) : sizeof(buf);
		ssize_t r = read(fd, buf, n);

		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			break;
		}
		got += (uint64_t)r;
	}
	if (fd >= 0)
		close(fd);
	say("hwrng %s %" PRIu64 " bytes in %.0f ms", phase, got, (now_s() - t0) * 1e3);
	return got;
}

/* A 32-bit read of physical address @addr through /dev/mem (allowed for
 * ranges no driver has claimed); all ones if it cannot be read. */
static uint32_t phys_read32(uint64_t addr)
{
	int fd = open("/dev/mem", O_RDONLY | O_SYNC);
	uint32_t v = UINT32_MAX;
	void *p;

	if (fd < 0)
		return v;
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, (off_t)(addr & ~0xfffull));
	if (p != MAP_FAILED) {
		v = *(volatile uint32_t *)((char *)p + (addr & 0xfff));
		munmap(p, 4096);
	}
	close(fd);
	return v;
}

/* A 16-bit write at physical address @addr through /dev/mem; false if the
 * page cannot be mapped. */
static bool phys_write16(uint64_t addr, uint16_t v)
{
	int fd = open("/dev/mem", O_RDWR | O_SYNC);
	void *p;

	if (fd < 0)
		return false;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)(addr & ~0xfffull));
	close(fd);
	if (p == MAP_FAILED)
		return false;
	*(volatile uint16_t *)((char *)p + (addr & 0xfff)) = v;
	munmap(p, 4096);
	return true;
}

/* Unbind, decode off, BAR0 := @addr, decode on; what BAR0 reads back. */
static uint32_t guest_move(const char *bdf, uint32_t addr)
{
	uint32_t cmd = config_read(bdf, 4, 2);

	write_file(VIRTIO_DRIVER "/unbind", bdf);
	config_write(bdf, 4, 2, cmd & ~CMD_MEMORY);
	config_write(bdf, 0x10, 4, addr);
	config_write(bdf, 4, 2, cmd | CMD_MEMORY);
	return config_read(bdf, 0x10, 4) & ~0xfu;
}

static void end_run(int status)
{
	FILE *f = fopen("/proc/cmdline", "r");
	char line[1024] = "", *p;
	unsigned long port = 0;

	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
	}
	p = strstr(line, "vmres.ctl=");
	if (p)
		port = strtoul(p + 10, NULL, 0);
	say("done, %u failed check(s)", failures);
	tcdrain(STDOUT_FILENO); /* all of it on the console before the VM stops */
	if (!port || ioperm(port, 4, 1) < 0) {
		say("no control port to end the run (%s)", strerror(errno));
		return;
	}
	outl((uint32_t)status, (unsigned short)port);
}

int main(void)
{
	char bdf[32], stub[32], path[96];
	uint64_t irq0, irq1, irq2, old, stub_addr, end, kept;
	uint32_t back;
	FILE *up = fopen("/proc/uptime", "r");
	double uptime = 0;

	if (up) {
		if (fscanf(up, "%lf", &uptime) != 1)
			uptime = 0;
		fclose(up);
	}
	say("init %.2f", uptime);
	if (!check(find_device(0x1af4, 0x1044, bdf) && find_device(0x1af4, 0x10f0, stub),
		   "the virtio entropy device and the stub are on the bus") ||
	    !check(wait_bound(bdf), "virtio-pci bound %s, virtio_rng is the current hwrng", bdf)) {
		end_run(1);
		return 1;
	}
	old = resource_start(bdf, 0, &end);
	stub_addr = resource_start(stub, 0, NULL);
	check(old != 0, "Linux assigned BAR0 of %s: [0x%" PRIx64 "-0x%" PRIx64 "]", bdf, old,
	      end);
	dump("boot");
	irq0 = virtio_interrupts("boot");
	check(read_hwrng("boot", READ_BYTES) == READ_BYTES, "read 1 MiB from /dev/hwrng");
	irq1 = virtio_interrupts("read");
	check(irq1 > irq0, "its MSI-X interrupts counted (%" PRIu64 " more)", irq1 - irq0);

	back = guest_move(bdf, (uint32_t)stub_addr);
	check(back == old, "moving BAR0 onto the stub's 0x%" PRIx64 " refused: BAR0 reads 0x%x",
	      stub_addr, back);
	write_file(VIRTIO_DRIVER "/bind", bdf);
	check(wait_bound(bdf) && read_hwrng("refused", 65536) == 65536,
	      "rebound at its old address, 64 KiB read");

	back = guest_move(bdf, MOVE_TO);
	check(back == MOVE_TO, "BAR0 moved to 0x%x while unbound (reads 0x%x)", MOVE_TO, back);
	/* the device at the new address: common configuration (num_queues in the
	 * high half of the dword at 0x10) and MSI-X table (entry 0's vector
	 * control at 0x300c); all ones where it was */
	check(phys_read32(MOVE_TO + 0x10) >> 16 == 1 && phys_read32(MOVE_TO + 0x300c) <= 1 &&
		      phys_read32(old + 0x10) == UINT32_MAX,
	      "the device answers at 0x%x (common configuration, MSI-X table), nothing at 0x%" PRIx64,
	      MOVE_TO, old);
	/* queue 0's notify register at the new address: the VMM counts the kick
	 * where BAR0 is (its ioeventfd followed the BAR) */
	if (check(phys_write16(MOVE_TO + 0x2000, 0), "kicked queue 0 at 0x%x", MOVE_TO + 0x2000))
		say("kick 0x%x", MOVE_TO);
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/remove", bdf);
	write_file(path, "1");
	snprintf(path, sizeof(path), PCI_DEVICES "/%s", bdf);
	check(access(path, F_OK) != 0, "%s removed", bdf);
	write_file("/sys/bus/pci/rescan", "1");
	check(find_device(0x1af4, 0x1044, bdf) && wait_bound(bdf),
	      "rescan found it, virtio-pci bound it again");
	/* Linux reads BAR0 as it is (0xd0000000) and then assigns every BAR it
	 * has not claimed, as at boot: the device moves again, where Linux wants */
	kept = resource_start(bdf, 0, &end);
	check(kept != 0 && (config_read(bdf, 0x10, 4) & ~0xfu) == kept,
	      "after the rescan Linux has BAR0 at [0x%" PRIx64 "-0x%" PRIx64 "]%s", kept, end,
	      kept == MOVE_TO ? " (where it was moved)" : " (its PCI core assigned it again)");
	irq1 = virtio_interrupts("moved");
	check(read_hwrng("moved", READ_BYTES) == READ_BYTES,
	      "read 1 MiB from /dev/hwrng after the move");
	irq2 = virtio_interrupts("end");
	check(irq2 > irq1, "its MSI-X interrupts counted after the move (%" PRIu64 " more)",
	      irq2 - irq1);
	dump("end");
	end_run(failures ? 1 : 0);
	return failures ? 1 : 0;
}
