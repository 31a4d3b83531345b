/* The README's example VMM, compiled against the installed library found only
 * through `pkg-config --cflags --libs vmres`: it must compile, link and run. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vmres/vmres.h>

static uint64_t regs[512];

static uint64_t nic_read(void *opaque, unsigned int range, uint64_t off, uint64_t addr,
			 unsigned int size)
{
	(void)opaque, (void)range, (void)addr, (void)size;
	return regs[off / 8];
}

static void nic_write(void *opaque, unsigned int range, uint64_t off, uint64_t addr,
		      unsigned int size, uint64_t val)
{
	(void)opaque, (void)range, (void)addr, (void)size;
	regs[off / 8] = val;
}

/* README example starts here. */
int main(void)
{
	struct vmres_sysalloc *sa;
	struct vmres_devmgr *m;
	struct vmres_request req[2] = {
		{.kind = VMRES_RES_ADDR,
		 .pool = "mmio32",
		 .u.addr = {.space = VMRES_SPACE_MMIO, .req = VMRES_ADDR_REQ_INIT}},
		{.kind = VMRES_RES_MSI, .pool = "gsi-msi", .u.msi = {.count = 2, .any = true}},
	};
	struct vmres_devmgr_register_opts o = VMRES_DEVMGR_REGISTER_OPTS_INIT;
	struct vmres_resource res[3];
	struct vmres_device nic = VMRES_DEVICE_INIT;
	size_t n;
	uint32_t id;
	uint64_t val = 0xfeed;

	req[0].u.addr.req.size = req[0].u.addr.req.align = 0x1000;
	o.reqs = req, o.n_reqs = 2; /* allocated for nic.owner as it registers */
	nic.name = "nic0", nic.read = nic_read, nic.write = nic_write, nic.owner = 42;
	if (vmres_sysalloc_new_x86_64(&sa) || vmres_devmgr_new(sa, &m) ||
	    vmres_devmgr_register_ex(m, &nic, &o, &id, res, 3, &n, NULL))
		return 1;
	vmres_devmgr_thread_register(); /* once per vCPU thread */
	/* What a vCPU loop does with KVM_EXIT_MMIO: */
	vmres_devmgr_mmio(m, res[0].u.addr.base + 8, 8, true, (uint8_t *)&val);
	vmres_devmgr_dump(m, stdout);
	/* README example ends here. */
	vmres_devmgr_thread_unregister();
	vmres_devmgr_free(m);
	vmres_sysalloc_free(sa);
	return regs[1] == 0xfeed ? 0 : 1;
}
