#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# make demo-linux, and the demo-linux test: Debian's Linux kernel boots in the
# demo VMM (vmres-demo --linux, examples/vmm/linux.h) with an initramfs made
# here from Debian's busybox-static, the kernel's virtio modules and
# vmres-guest (examples/linux/).
#
#   tools/demo-linux.sh [BUILD_DIR]    (default: build)
#
# Where this host's /dev/kvm is hardware-assisted the demo runs directly.
# Otherwise (a PVM-flavoured KVM, or no /dev/kvm) it runs nested: QEMU's
# software CPU (TCG, an EPYC with SVM and nested paging) boots the same kernel
# with a first-level initramfs holding busybox, the kvm and kvm-amd modules,
# vmres-demo with its libraries, and the guest's kernel and initramfs; its
# kvm-amd gives vmres-demo a hardware-style /dev/kvm.
#
# Exit: vmres-demo's status (0 success, 1 failure), 77 with a reason when
# neither way can run here.
set -eu

build=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
out=$build/demo-linux
demo=$build/examples/vmres-demo
# A nested run takes about 35 s on an idle 2-core machine and up to 90 s on a
# busy one; the limit is per attempt (below).
timeout_s=${DEMO_LINUX_TIMEOUT:-180}

skip() {
	echo "demo-linux: skipped: $*"
	exit 77
}

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || skip "no kernel in /boot (Debian's linux-image-amd64)"
kver=${kernel#/boot/vmlinuz-}
[ -d "/lib/modules/$kver" ] || skip "no modules for $kver"
[ -x /bin/busybox ] || skip "no /bin/busybox (Debian's busybox-static)"
[ -x "$demo" ] || skip "$demo not built"
[ -r "$kernel" ] || skip "$kernel is not readable"
mkdir -p "$out"

# Module files of $* and what they depend on, dependencies first.
modules() {
	local m deps
	for m in "$@"; do
		deps=$(modinfo -k "$kver" -F depends "$m" | tr ',' ' ')
		[ -z "$deps" ] || modules $deps
		echo "$m"
	done
}
module_entries() {
	for m in $(modules "$@" | awk '!seen[$0]++'); do
		echo "lib/modules/$m.ko=$(modinfo -k "$kver" -n "$m")"
	done
}

# The guest's initramfs.
${CC:-cc} -static -O2 -Wall -Wextra -Werror -o "$out/vmres-guest" "$src/examples/linux/vmres-guest.c"
# shellcheck disable=SC2046
python3 "$src/tools/mkinitramfs.py" "$out/guest.cpio" \
	"init=$src/examples/linux/init" bin/busybox=/bin/busybox \
	"bin/vmres-guest=$out/vmres-guest" \
	$(module_entries virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
		virtio-rng)
echo "demo-linux: guest: $kernel, initramfs $out/guest.cpio ($(($(stat -c %s "$out/guest.cpio") / 1024)) KiB)"

args="--vcpus=2 --timeout=$((timeout_s - 30))"
if [ -c /dev/kvm ] && [ ! -e /sys/module/kvm_pvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
	echo "demo-linux: running directly on this host's KVM (hardware-assisted)"
	exec "$demo" --linux="$kernel" --initrd="$out/guest.cpio" $args
fi
if [ -e /sys/module/kvm_pvm ]; then
	why="this host's KVM is PVM (no hardware virtualization)"
elif [ -c /dev/kvm ]; then
	why="this host's CPU shows no vmx/svm"
else
	why="this host has no /dev/kvm"
fi
command -v qemu-system-x86_64 >/dev/null || skip "$why, and no qemu-system-x86_64 to nest in"
echo "demo-linux: $why: running nested, in QEMU (TCG, -cpu EPYC,+svm,+npt) with $kver and kvm-amd"

# The first-level initramfs: the demo VMM and its libraries, KVM, the guest.
modules kvm-amd | awk '!seen[$0]++' >"$out/nested-modules"
echo "--linux=/guest/vmlinuz --initrd=/guest/initrd.cpio $args" >"$out/nested-args"
libs=$(ldd "$demo" | awk '$2 == "=>" && $3 ~ /^\// { print "lib/vmres/" substr($3, match($3, /[^\/]*$/)) "=" $3 }')
interp=$(ldd "$demo" | awk '$1 ~ /^\/.*ld-linux/ { print $1 }')
# shellcheck disable=SC2046,SC2086
python3 "$src/tools/mkinitramfs.py" "$out/nested.cpio" \
	"init=$src/examples/linux/init-nested" bin/busybox=/bin/busybox \
	"bin/vmres-demo=$demo" $libs "${interp#/}=$(readlink -f "$interp")" \
	"lib/modules/order=$out/nested-modules" "etc/vmres-demo-args=$out/nested-args" \
	$(module_entries kvm-amd) "guest/vmlinuz=$kernel" "guest/initrd.cpio=$out/guest.cpio"

# QEMU's warnings (CPU features TCG leaves out) go to a file; the console to
# stdout and the log, which says how vmres-demo ended.
#
# The emulated CPU's nested virtualization (SVM under TCG) is not flawless.
# On this machine kind, about one nested run in three fails in one of two ways:
# - the first-level kernel reports "soft lockup" on a CPU running one of
#   vmres-demo's vCPU threads inside KVM_RUN, and nothing prints again;
# - the inner guest stops in the middle of its /dev/hwrng reads: its last
#   request was answered (every kick counted, every MSI-X message sent) but it
#   makes no other, or it stops with a triple fault and no kernel message.
#   vmres-demo then exits 3 (no progress for 30 s, or a triple fault).
# Such a run says nothing about vmres and is repeated, at most twice; if all
# three fail so, the test is skipped (77) with that reason. A run that ends in
# vmres-demo's own verdict (its checks, the guest's checks) is final.
attempt=1
while :; do
	timeout "$timeout_s" qemu-system-x86_64 -nodefaults -display none -serial stdio \
		-no-reboot -accel tcg,thread=multi -cpu EPYC,+svm,+npt -smp 2 -m 1536 \
		-kernel "$kernel" -initrd "$out/nested.cpio" \
		-append "console=ttyS0 quiet panic=-1 mitigations=off" \
		</dev/null >"$out/nested.log" 2>"$out/qemu.err" &
	qemu=$!
	tail -n +1 -f --pid=$qemu "$out/nested.log" &
	tailer=$!
	while kill -0 $qemu 2>/dev/null; do
		if grep -q "BUG: soft lockup" "$out/nested.log"; then
			kill $qemu 2>/dev/null || true
			break
		fi
		sleep 1
	done
	wait $qemu || true
	wait $tailer 2>/dev/null || true
	status=$(sed -n 's/^vmres-nested: vmres-demo exit status \([0-9]*\).*/\1/p' "$out/nested.log" | tail -n 1)
	if grep -q "BUG: soft lockup" "$out/nested.log"; then
		why="the first-level kernel reported a soft lockup in a vCPU thread"
	elif [ -z "$status" ]; then
		why="the first-level guest did not report within ${timeout_s} s"
		grep -v "TCG doesn't support" "$out/qemu.err" || true
	elif [ "$status" = 3 ]; then
		why="the inner guest stopped on its own (see vmres-demo's line above)"
	else
		exit "$status"
	fi
	echo "demo-linux: attempt $attempt: $why"
	[ "$attempt" -lt 3 ] || skip "the emulated CPU's nested virtualization failed three runs in a row"
	attempt=$((attempt + 1))
	echo "demo-linux: attempt $attempt (the nested CPU's fault, not vmres's: see tools/demo-linux.sh)"
done
