/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guest entry. The VMM starts every vCPU in 32-bit protected mode with flat
 * segments at the image's first byte. Each loads our own GDT (so that interrupt
 * delivery finds real descriptors on both backends) and takes the stack of its
 * local APIC id. CPU 0 clears .bss and calls guest_main(), which ends the run
 * with a port write; the others wait (without touching memory that the clearing
 * could hit: their stacks are in .bss) until CPU 0 says go, then call
 * guest_ap_main(id).
 */
#define LAPIC_ID_REG	0xfee00020
#define STACK_SHIFT	14		/* 16 KiB per CPU */
#define MAX_CPUS	8

	.code32
	.section .text.start, "ax"
	.globl _start
_start:
	cli
	lgdt	gdt_desc
	ljmp	$0x08, $1f
1:	movw	$0x10, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	cld
	movl	LAPIC_ID_REG, %ebx
	shrl	$24, %ebx
	cmpl	$MAX_CPUS, %ebx
	jae	3f
	movl	%ebx, %ecx
	shll	$STACK_SHIFT, %ecx
	movl	$stacks_top, %esp
	subl	%ecx, %esp
	testl	%ebx, %ebx
	jnz	4f
	movl	$__bss_start, %edi
	movl	$__bss_end, %ecx
	subl	%edi, %ecx
	xorl	%eax, %eax
	rep stosb
	movl	$1, bss_ready
	call	guest_main
	jmp	3f
4:	pause
	cmpl	$0, bss_ready
	je	4b
	pushl	%ebx
	call	guest_ap_main
3:	cli
	hlt
	jmp	3b

/* Exception stubs 0..31: push a dummy error code where the CPU pushes none, then
 * the vector, so that guest_exception() sees one frame layout. */
	.text
.macro EXC_NOERR n
	.globl exc_\n
exc_\n:
	pushl	$0
	pushl	$\n
	jmp	exc_common
.endm
.macro EXC_ERR n
	.globl exc_\n
exc_\n:
	pushl	$\n
	jmp	exc_common
.endm
	EXC_NOERR 0
	EXC_NOERR 1
	EXC_NOERR 2
	EXC_NOERR 3
	EXC_NOERR 4
	EXC_NOERR 5
	EXC_NOERR 6
	EXC_NOERR 7
	EXC_ERR 8
	EXC_NOERR 9
	EXC_ERR 10
	EXC_ERR 11
	EXC_ERR 12
	EXC_ERR 13
	EXC_ERR 14
	EXC_NOERR 15
	EXC_NOERR 16
	EXC_ERR 17
	EXC_NOERR 18
	EXC_NOERR 19
	EXC_NOERR 20
	EXC_ERR 21
	EXC_NOERR 22
	EXC_NOERR 23
	EXC_NOERR 24
	EXC_NOERR 25
	EXC_NOERR 26
	EXC_NOERR 27
	EXC_NOERR 28
	EXC_ERR 29
	EXC_ERR 30
	EXC_NOERR 31

exc_common:
	pushl	%esp		/* pointer to {vector, error, eip, cs, eflags} */
	call	guest_exception	/* does not return: it ends the run */
3:	cli
	hlt
	jmp	3b

/*
 * The interrupt handlers (MSI, MSI-X vector 0, 1): save what C may clobber,
 * count (guest_irq(source)), EOI, return. They return without iret: a maskable
 * interrupt only arrives with IF=1, from ring 0 and our one code segment, so
 * "restore the flags with IF off, sti, ret" is the same return; and some KVM
 * implementations (PVM, which virtualizes without VMX/SVM and runs here in
 * nested setups) cannot emulate a protected-mode iret. sti holds interrupts off
 * until after the ret, so frames do not pile up.
 *
 * Stack after popal: eip, cs, eflags. Rearranged to: eflags & ~IF, eip.
 */
	.macro IRQ_ENTRY name, source
	.globl \name
\name:
	pushal
	cld
	pushl	$\source
	call	guest_irq
	addl	$4, %esp
	popal
	pushl	%eax		/* eax, eip, cs, eflags */
	movl	12(%esp), %eax
	andl	$~0x200, %eax
	movl	%eax, 8(%esp)	/* eax, eip, eflags', eflags */
	movl	4(%esp), %eax
	movl	%eax, 12(%esp)	/* eax, eip, eflags', eip */
	popl	%eax
	addl	$4, %esp	/* eflags', eip */
	popfl
	sti
	ret
	.endm

	IRQ_ENTRY msi_entry, 0
	IRQ_ENTRY msix0_entry, 1
	IRQ_ENTRY msix1_entry, 2

	.section .rodata
	.align 4
	.globl exc_table
exc_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.long	exc_\n
	.endr

	.align 8
gdt:
	.quad	0x0000000000000000	/* null */
	.quad	0x00cf9b000000ffff	/* 0x08: code, base 0, limit 4 GiB, 32-bit */
	.quad	0x00cf93000000ffff	/* 0x10: data, base 0, limit 4 GiB */
gdt_end:
gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt

	.data
	.align 4
bss_ready:
	.long	0

	.section .bss
	.align 16
	.space	(MAX_CPUS << STACK_SHIFT)
stacks_top:

	.section .note.GNU-stack, "", @progbits
