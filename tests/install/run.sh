#!/bin/sh
# Install vmres into a temporary root, then build and run a consumer program found
# only through `pkg-config --cflags --libs vmres`, and check that the shared
# library exports exactly the functions the public headers declare.
#   run.sh SOURCE_ROOT BUILD_ROOT
set -eu
src=$1
build=$2
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
pcdir=$(dirname "$(find "$dest" -name vmres.pc | head -n 1)")
[ -n "$pcdir" ] || { echo "install: vmres.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$dest"

flags=$(pkg-config --cflags --libs vmres)
cc -std=c11 -Wall -Wextra -Werror -o "$dest/consumer" "$src/tests/install/consumer.c" $flags
libdir=$(dirname "$(find "$dest" -name "libvmres.so.0" | head -n 1)")
LD_LIBRARY_PATH="$libdir" "$dest/consumer"

# Versioned SONAME.
so=$(find "$dest" -name 'libvmres.so.*.*' | head -n 1)
soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
case "$soname" in
libvmres.so.[0-9]*) ;;
*) echo "install: unexpected SONAME '$soname'"; exit 1 ;;
esac
[ -f "$(dirname "$so")/libvmres.a" ] || { echo "install: static library missing"; exit 1; }

# Exported symbols == functions declared in the public headers (static inline
# helpers excluded: they are not symbols).
nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u >"$dest/exported"
for h in "$src"/include/vmres/*.h; do
	# Preprocess (drops comments), one declaration per line, skip static inline.
	cc -E -P -I"$src/include" "$h" | tr '\n' ' ' | sed 's/;/;\n/g; s/}/}\n/g' | grep -v 'static inline' |
		grep -oE '\bvmres_[a-z0-9_]+[[:space:]]*\(' | sed 's/[[:space:]]*($//'
done | sort -u >"$dest/declared"
if ! diff -u "$dest/declared" "$dest/exported" >"$dest/diff"; then
	echo "install: exported symbols differ from the public headers' declarations:"
	grep "^[-+][^-+]" "$dest/diff"
	exit 1
fi
echo "install: $(wc -l <"$dest/exported") symbols exported, all declared; SONAME $soname; consumer ran"
