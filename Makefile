# Thin wrapper over Meson for the README's commands. Every target first installs
# what it needs from Debian's packages (as root), then builds.
#
#   make demo    build and run the demo (the main job)
#   make demo-seabios  the demo VMM with SeaBIOS as its guest (installs seabios)
#   make check   build and run every test: plain, ASan+UBSan, TSan (concurrent suite)
#   make bench   build optimised and run the benchmark program

# python3 runs meson and embeds the demo guest; binutils' objcopy flattens it.
BUILD_PKGS := gcc binutils python3 meson ninja-build pkg-config libcmocka-dev \
	liburcu-dev libjansson-dev zlib1g-dev libunicorn-dev
CHECK_PKGS := $(BUILD_PKGS) seabios doxygen

.PHONY: all deps check-deps demo demo-seabios check test asan tsan bench docs coverage fuzz clean

all: deps build/build.ninja
	ninja -C build

deps:
	@tools/deps.sh $(BUILD_PKGS)

check-deps:
	@tools/deps.sh $(CHECK_PKGS)

build/build.ninja:
	meson setup build

build-asan/build.ninja:
	meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false

build-tsan/build.ninja:
	meson setup build-tsan -Db_sanitize=thread -Db_lundef=false

build-release/build.ninja:
	meson setup build-release --buildtype=release -Dtests=false

demo: deps build/build.ninja
	ninja -C build
	./build/examples/vmres-demo

demo-seabios: deps build/build.ninja
	@tools/deps.sh seabios
	ninja -C build
	./build/examples/vmres-demo --firmware=seabios

test: deps build/build.ninja
	ninja -C build
	meson test -C build --print-errorlogs

asan: deps build-asan/build.ninja
	ninja -C build-asan
	meson test -C build-asan --print-errorlogs

tsan: deps build-tsan/build.ninja
	ninja -C build-tsan
	meson test -C build-tsan --print-errorlogs --suite concurrent

check: check-deps
	$(MAKE) --no-print-directory test
	$(MAKE) --no-print-directory asan
	$(MAKE) --no-print-directory tsan
	$(MAKE) --no-print-directory docs

# make fuzz: every libFuzzer target in fuzz/ for FUZZ_SECONDS each (clang, ASan+UBSan),
# starting from its committed corpus; new inputs go to build-fuzz/corpus-<name>.
# fuzz/fuzz_<name>.flags, if present, holds extra libFuzzer flags for that target.
FUZZ_SECONDS ?= 60

build-fuzz/build.ninja:
	@tools/deps.sh clang
	CC=clang meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true \
		-Dc_args=-fsanitize=fuzzer-no-link

fuzz: check-deps build-fuzz/build.ninja
	ninja -C build-fuzz $$(ninja -C build-fuzz -t targets all | grep -o '^fuzz/fuzz_[a-z0-9_]*:' | tr -d :)
	@for f in build-fuzz/fuzz/fuzz_*; do \
		[ -f "$$f" ] && [ -x "$$f" ] || continue; \
		name=$${f##*/fuzz_}; mkdir -p build-fuzz/corpus-$$name; \
		echo "fuzz: $$name for $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) $$(cat fuzz/fuzz_$$name.flags 2>/dev/null) \
			build-fuzz/corpus-$$name fuzz/corpus/$$name || exit 1; \
	done

bench: deps build-release/build.ninja
	ninja -C build-release
	./build-release/bench/vmres-bench
	./build-release/examples/vmres-demo --bench guest-pio

docs: deps
	@tools/deps.sh doxygen
	doxygen docs/Doxyfile
	@echo "docs: build-docs/html/index.html"

build-cov/build.ninja:
	meson setup build-cov -Db_coverage=true --buildtype=debug

coverage: deps build-cov/build.ninja
	@tools/deps.sh gcovr
	find build-cov -name '*.gcda' -delete
	ninja -C build-cov
	meson test -C build-cov --print-errorlogs --timeout-multiplier 10
	gcovr --root . --filter 'src/' --object-directory build-cov --exclude-unreachable-branches \
		--exclude-throw-branches --print-summary --txt build-cov/coverage.txt
	@tail -n 3 build-cov/coverage.txt

clean:
	rm -rf build build-asan build-tsan build-release build-cov build-docs build-fuzz
