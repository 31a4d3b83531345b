#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# make bench: run the benchmark program and the demo's guest-pio workload
# BENCH_RUNS times (default 3), one after the other so that both see the same
# host, print their raw lines as they come, then the table of bench/table.py
# (lowest, median, target, spread). Raw lines are kept in BUILD/bench-lines.txt.
#
#   bench/run.sh [BUILD]      BUILD: the release build directory (build-release)
set -euo pipefail

build=${1:-build-release}
runs=${BENCH_RUNS:-3}
here=$(dirname "$0")
lines=$build/bench-lines.txt

case $runs in '' | *[!0-9]* | 0) echo "bench: BENCH_RUNS must be a positive number" >&2; exit 2 ;; esac
: >"$lines"
for i in $(seq 1 "$runs"); do
	echo "make bench: run $i of $runs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	"$build/bench/vmres-bench" | tee -a "$lines"
	# 77: no vCPU backend can run here; the demo says why on stderr.
	rc=0
	"$build/examples/vmres-demo" --bench guest-pio | tee -a "$lines" || rc=$?
	[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || exit "$rc"
done
echo
echo "make bench: $runs runs on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$here/table.py" "$here/targets" "$lines"
