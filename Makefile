# Thin wrapper over Meson for the README's commands. Every target first installs
# what it needs from Debian's packages (as root), then builds.
#
#   make demo    build and run the demo (the main job)
#   make demo-seabios  the demo VMM with SeaBIOS as its guest (installs seabios)
#   make demo-linux    Debian's Linux kernel as the guest, with a virtio device
#                (installs the kernel, busybox-static and QEMU; nested where needed)
#   make check   build and run every test: plain (gcc), plain (clang), ASan+UBSan,
#                TSan (concurrent suite), then the API docs
#   make check-clang  the plain suite built with clang (build-clang/)
#   make bench   build optimised, run the benchmarks BENCH_RUNS times (3), print a table
#   make install / make uninstall   PREFIX (/usr/local) with Debian's multiarch
#                libdir, then ldconfig; DESTDIR stages instead (no ldconfig)
#   make install-check  install for real, build and run a consumer with plain
#                pkg-config, uninstall (root)
#   make deb     libvmres0 and libvmres-dev .debs in build-deb/ (dpkg-buildpackage)
#   make deb-check  install those packages, the same consumer check, remove them

# python3 runs meson and embeds the demo guest; binutils' objcopy flattens it.
BUILD_PKGS := gcc binutils python3 meson ninja-build pkg-config libcmocka-dev \
	liburcu-dev libjansson-dev zlib1g-dev libunicorn-dev
# demo-linux: Debian's kernel and busybox for the guest, QEMU to nest in where
# the host's KVM cannot run Linux.
LINUX_PKGS := linux-image-amd64 busybox-static qemu-system-x86 kmod
CHECK_PKGS := $(BUILD_PKGS) clang seabios doxygen $(LINUX_PKGS)

.PHONY: all deps check-deps demo demo-seabios demo-linux check test check-clang asan tsan bench \
	docs coverage fuzz clean \
	install uninstall install-check deb deb-check

# Debian's pkg-config and loader search <prefix>/lib/<multiarch> (x86_64-linux-gnu),
# not the lib64 that meson falls back to without dpkg-dev: every build directory
# is configured with it, so that the install test checks the layout make install
# gives. Expanded when a recipe runs, after deps has installed gcc.
PREFIX ?= /usr/local
MULTIARCH = $(shell gcc -print-multiarch 2>/dev/null)
LIBDIR = lib$(if $(MULTIARCH),/$(MULTIARCH))
SETUP = meson setup --libdir=$(LIBDIR)

all: deps build/build.ninja
	ninja -C build

deps:
	@tools/deps.sh $(BUILD_PKGS)

check-deps:
	@tools/deps.sh $(CHECK_PKGS)

build/build.ninja:
	$(SETUP) build

build-asan/build.ninja:
	$(SETUP) build-asan -Db_sanitize=address,undefined -Db_lundef=false

# The plain build of what ships (the library, its tests, the benchmarks) with
# clang, so that it compiles and passes with both compilers (warnings are errors
# in both), the demo VMM included; its Linux demo (nested, a minute) runs in the
# gcc build only.
build-clang/build.ninja:
	@tools/deps.sh clang
	CC=clang $(SETUP) build-clang

build-tsan/build.ninja:
	$(SETUP) build-tsan -Db_sanitize=thread -Db_lundef=false

build-release/build.ninja:
	$(SETUP) build-release --buildtype=release -Dtests=false --prefix=$(PREFIX)

demo: deps build/build.ninja
	ninja -C build
	./build/examples/vmres-demo

demo-seabios: deps build/build.ninja
	@tools/deps.sh seabios
	ninja -C build
	./build/examples/vmres-demo --firmware=seabios

demo-linux: deps build/build.ninja
	@tools/deps.sh $(LINUX_PKGS)
	ninja -C build
	tools/demo-linux.sh build

test: deps build/build.ninja
	ninja -C build
	meson test -C build --print-errorlogs

check-clang: deps build-clang/build.ninja
	ninja -C build-clang
	meson test -C build-clang --print-errorlogs

asan: deps build-asan/build.ninja
	ninja -C build-asan
	meson test -C build-asan --print-errorlogs

tsan: deps build-tsan/build.ninja
	ninja -C build-tsan
	meson test -C build-tsan --print-errorlogs --suite concurrent

check: check-deps
	$(MAKE) --no-print-directory test
	$(MAKE) --no-print-directory check-clang
	$(MAKE) --no-print-directory asan
	$(MAKE) --no-print-directory tsan
	$(MAKE) --no-print-directory docs

# make fuzz: every libFuzzer target in fuzz/ for FUZZ_SECONDS each (clang, ASan+UBSan),
# starting from its committed corpus; new inputs go to build-fuzz/corpus-<name>.
# fuzz/fuzz_<name>.flags, if present, holds extra libFuzzer flags for that target.
FUZZ_SECONDS ?= 60

# clang's sanitizer and libFuzzer runtimes are a separate package
# (libclang-rt-<major>-dev); without it meson only says "can not compile programs".
# llvm-<major> holds llvm-symbolizer, which the runtime calls to name the frames
# of a crash's stack trace (addresses only without it, "invalid path to external
# symbolizer"); clang only recommends it (via llvm-<major>-dev), and deps.sh
# installs no recommends.
build-fuzz/build.ninja:
	@tools/deps.sh clang
	@v=$$(clang -dumpversion | cut -d. -f1) && tools/deps.sh libclang-rt-$$v-dev llvm-$$v
	CC=clang $(SETUP) build-fuzz -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true \
		-Dc_args=-fsanitize=fuzzer-no-link

fuzz: deps build-fuzz/build.ninja
	ninja -C build-fuzz $$(ninja -C build-fuzz -t targets all | grep -o '^fuzz/fuzz_[a-z0-9_]*:' | tr -d :)
	@for f in build-fuzz/fuzz/fuzz_*; do \
		[ -f "$$f" ] && [ -x "$$f" ] || continue; \
		name=$${f##*/fuzz_}; mkdir -p build-fuzz/corpus-$$name; \
		echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) $$(cat fuzz/fuzz_$$name.flags 2>/dev/null) \
			build-fuzz/corpus-$$name fuzz/corpus/$$name || exit 1; \
	done

# make bench: the benchmark program and the demo's guest-pio, BENCH_RUNS times in
# turn, their raw lines, then a table against bench/targets (bench/WORKLOADS.md).
BENCH_RUNS ?= 3

bench: deps build-release/build.ninja
	ninja -C build-release
	BENCH_RUNS=$(BENCH_RUNS) bench/run.sh build-release

# The optimised library (the one make bench measures), installed.
install: deps build-release/build.ninja
	meson configure build-release -Dprefix=$(PREFIX) -Dlibdir=$(LIBDIR)
	ninja -C build-release
	meson install -C build-release --no-rebuild $(if $(DESTDIR),--destdir "$(DESTDIR)")
	@if [ -z "$(DESTDIR)" ]; then ldconfig; echo "install: $(PREFIX)/$(LIBDIR), ldconfig run"; fi

# Removes exactly what the last make install wrote (meson's install log).
uninstall:
	@[ -f build-release/meson-logs/install-log.txt ] || \
		{ echo "uninstall: no install log in build-release: nothing installed from here"; exit 1; }
	ninja -C build-release uninstall
	@if [ -z "$(DESTDIR)" ]; then ldconfig; fi

install-check: install
	@rc=0; tests/install/run.sh --installed . $(PREFIX) || rc=$$?; \
		$(MAKE) --no-print-directory uninstall; exit $$rc

# From a copy of the tracked and new files, so that dpkg-buildpackage writes its
# .debs, .changes and debian/ scratch files under build-deb/, not beside the tree.
DEB_PKGS := build-essential dpkg-dev debhelper meson ninja-build pkg-config python3 \
	liburcu-dev libjansson-dev zlib1g-dev

deb:
	@tools/deps.sh $(DEB_PKGS)
	rm -rf build-deb && mkdir -p build-deb/vmres
	git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C build-deb/vmres
	cd build-deb/vmres && dpkg-buildpackage -us -uc -b
	@ls build-deb/*.deb

deb-check: deb
	apt-get install -y -qq ./build-deb/libvmres0_*.deb ./build-deb/libvmres-dev_*.deb
	@rc=0; tests/install/run.sh --installed . /usr || rc=$$?; \
		apt-get remove -y -qq libvmres-dev libvmres0; exit $$rc

docs: deps
	@tools/deps.sh doxygen
	doxygen docs/Doxyfile
	@echo "docs: build-docs/html/index.html"

build-cov/build.ninja:
	$(SETUP) build-cov -Db_coverage=true --buildtype=debug

coverage: deps build-cov/build.ninja
	@tools/deps.sh gcovr
	find build-cov -name '*.gcda' -delete
	ninja -C build-cov
	meson test -C build-cov --print-errorlogs --timeout-multiplier 10
	gcovr --root . --filter 'src/' --object-directory build-cov --exclude-unreachable-branches \
		--exclude-throw-branches --print-summary --txt build-cov/coverage.txt
	@tail -n 3 build-cov/coverage.txt

clean:
	rm -rf build build-clang build-asan build-tsan build-release build-cov build-docs build-fuzz build-deb
