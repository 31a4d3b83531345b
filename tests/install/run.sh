#!/bin/sh
# The install as a Debian user meets it: files under <prefix>/lib/<multiarch>
# (where Debian's pkg-config and loader look), a consumer program built with
# plain `pkg-config --cflags --libs vmres` and run with no PKG_CONFIG_PATH or
# LD_LIBRARY_PATH (README.md's example, extracted), a versioned SONAME, and exactly the declared functions
# exported, each in a version node of src/libvmres.map.
#
#   run.sh SOURCE_ROOT BUILD_ROOT   (meson test, make check) installs the build
#       with DESTDIR into a throwaway directory, checks that it lands at
#       usr/local/lib/<multiarch>, then mounts that tree at /usr/local in a
#       private mount namespace (unshare) with its own loader cache, so that the
#       system is never touched. Exit 77 (skipped) where namespaces are refused.
#   run.sh --installed SOURCE_ROOT PREFIX   (make install-check) checks what
#       `make install` put under PREFIX, for real.
set -eu
mode=image
if [ "$1" = "--installed" ]; then
	mode=installed
	shift
fi
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

multiarch=$(cc -print-multiarch 2>/dev/null || true)
[ -n "$multiarch" ] || multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || true)
[ -n "$multiarch" ] || { echo "install: no multiarch triplet (not a Debian-like system)"; exit 77; }

if [ "$mode" = installed ]; then
	prefix=$2
	root=""
else
	build=$2
	prefix=/usr/local
	root=$tmp/root
	meson install -C "$build" --destdir "$root" --no-rebuild --quiet >/dev/null
fi
libdir=$root$prefix/lib/$multiarch

# Where Debian looks: nothing under lib64 or plain lib.
for f in "$libdir/pkgconfig/vmres.pc" "$libdir/libvmres.so.0" "$libdir/libvmres.so" \
	"$libdir/libvmres.a" "$root$prefix/include/vmres/vmres.h"; do
	[ -e "$f" ] && continue
	echo "install: $f is missing; the files went to:"
	find "${root:-$prefix}" -name 'libvmres*' -o -name vmres.pc | sed 's/^/  /'
	echo "  (configure with --libdir=lib/$multiarch, as the Makefile does)"
	exit 1
done

# Versioned SONAME.
so=$(find "$libdir" -maxdepth 1 -name 'libvmres.so.*.*' | head -n 1)
soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
[ "$soname" = libvmres.so.0 ] || { echo "install: unexpected SONAME '$soname'"; exit 1; }

# Exported symbols == functions declared in the public headers (static inline
# helpers excluded: they are not symbols), each in a VMRES_* version node.
nm -D --defined-only "$so" | awk '$3 ~ /^vmres/ || $2 != "A" {print $2, $3}' >"$tmp/nm"
if awk '$1 != "T" || $2 !~ /@@?VMRES_[0-9.]+$/' "$tmp/nm" | grep .; then
	echo "install: exported symbols above are not functions in a VMRES_* node"
	exit 1
fi
sed 's/.* //; s/@.*//' "$tmp/nm" | sort -u >"$tmp/exported"
for h in "$src"/include/vmres/*.h; do
	# Preprocess (drops comments), one declaration per line, skip static inline.
	cc -E -P -I"$src/include" "$h" | tr '\n' ' ' | sed 's/;/;\n/g; s/}/}\n/g' | grep -v 'static inline' |
		grep -oE '\bvmres_[a-z0-9_]+[[:space:]]*\(' | sed 's/[[:space:]]*($//'
done | sort -u >"$tmp/declared"
if ! diff -u "$tmp/declared" "$tmp/exported" >"$tmp/diff"; then
	echo "install: exported symbols differ from the public headers' declarations"
	echo "  (- declared, not exported: add it to the newest node of src/libvmres.map):"
	grep "^[-+][^-+]" "$tmp/diff"
	exit 1
fi

# Built and run as a user would: plain pkg-config, plain loader.
# The consumer is README.md's example: the fenced block after the
# "vmres-example" marker, so that the README cannot drift from what compiles.
awk '/<!-- vmres-example/ {m = 1; next} m && /^```c$/ {in_c = 1; next}
	in_c && /^```$/ {exit} in_c {print}' "$src/README.md" >"$tmp/consumer.c"
grep -q '^int main' "$tmp/consumer.c" ||
	{ echo "install: no example after <!-- vmres-example --> in README.md"; exit 1; }
cat >"$tmp/consume.sh" <<'EOF'
set -eu
cd "$1"
cc -std=c11 -Wall -Wextra -Werror -o consumer consumer.c $(pkg-config --cflags --libs vmres)
./consumer >consumer.out
readlink -f "$(ldd ./consumer | awk '/libvmres/ {print $3}')"
EOF
clean_env="env -u PKG_CONFIG_PATH -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR -u LD_LIBRARY_PATH"
if [ "$mode" = installed ]; then
	$clean_env sh "$tmp/consume.sh" "$tmp" >"$tmp/loaded"
else
	# The image at /usr/local, and a loader cache that lists it, for this
	# namespace only (unshare makes its mounts private).
	if ! unshare -m true 2>/dev/null; then
		cc -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer" "$tmp/consumer.c" \
			-I"$root$prefix/include" -L"$libdir" -lvmres
		LD_LIBRARY_PATH="$libdir" "$tmp/consumer" >/dev/null
		echo "install: layout, symbols and the README example checked; plain" \
			"pkg-config skipped: no mount namespace (unshare -m refused)"
		exit 77
	fi
	mkdir "$tmp/ldcache"
	$clean_env unshare -m sh -c '
		set -eu
		tmp=$1
		mount --bind "$tmp/root/usr/local" /usr/local
		[ -d /var/cache/ldconfig ] && mount --bind "$tmp/ldcache" /var/cache/ldconfig
		ldconfig -C "$tmp/ld.so.cache"
		mount --bind "$tmp/ld.so.cache" /etc/ld.so.cache
		sh "$tmp/consume.sh" "$tmp"' sh "$tmp" >"$tmp/loaded"
fi
# The path the loader resolved (merged /usr: /lib is /usr/lib), as it is
# outside the namespace.
loaded=$(cat "$tmp/loaded")
want=$(readlink -f "$libdir/libvmres.so.0")
want=${want#"$root"}
[ "$loaded" = "$want" ] ||
	{ echo "install: the consumer loaded '$loaded', not $want"; exit 1; }
echo "install: $(wc -l <"$tmp/exported") symbols exported, all declared, in" \
	"$(sed 's/.*@@*//' "$tmp/nm" | sort -u | tr '\n' ' ')nodes; SONAME $soname;" \
	"consumer built with plain pkg-config, ran against $loaded"
