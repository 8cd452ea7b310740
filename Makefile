# The two commands: `make run` and `make test`. Everything else is a helper.
#
# BUILD_TYPE is what ships: the Dockerfile and the Debian package build Release too, so the
# tests run the optimisation level users run.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
CTEST_FLAGS ?=
# ccache (installed by scripts/install-deps.sh) keeps a rebuild of an unchanged tree cheap.
LAUNCHER = $(if $(shell command -v ccache),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

.PHONY: all deps build-deps configure build run test bench sanitize tsan fuzz matrix image deb \
	format clean

all: build

# What building needs; `deps` adds what the tests run (servers, Chromium, podman, clang).
build-deps:
	@scripts/install-deps.sh --build-only

deps:
	@scripts/install-deps.sh

# Always configured again (about a second): BUILD_TYPE and CMAKE_FLAGS are what this run says.
configure: build-deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(LAUNCHER) $(CMAKE_FLAGS) >/dev/null

build: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Builds only the binary, then starts the playground: reconciler + agents on loopback, status
# page URL printed.
run: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target ballast
	$(BUILD_DIR)/ballast validate examples/repo && $(BUILD_DIR)/ballast dev

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600 $(CTEST_FLAGS)

bench: build
	cmake --build $(BUILD_DIR) -j $(JOBS) --target ballast_benchmarks
	scripts/bench.sh $(BUILD_DIR)

# Unit tests under ASan+UBSan.
sanitize: deps
	cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DBALLAST_SANITIZE=address \
	    -DBALLAST_BUILD_BENCH=OFF $(LAUNCHER) >/dev/null
	cmake --build build-sanitize -j $(JOBS)
	cd build-sanitize && ctest --output-on-failure -j $(JOBS) -L unit

# Unit tests, the reconciler's API in-process, the agent with real pods and proxies, and the
# reconciler's end-to-end and fault tests (whose `ballast serve`/`agent` processes are TSAN
# builds too: halt_on_error makes a race in one of them fail its test), under ThreadSanitizer.
TSAN_TESTS = '^(ApiRoutesTest|ApiRouteTable|AuthzTest|AgentTest|ProxyTest|ProbesTest|ReconcilerE2E|FaultsE2E|RolloutLoadE2E)\.'
tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DBALLAST_SANITIZE=thread \
	    -DBALLAST_BUILD_BENCH=OFF $(LAUNCHER) >/dev/null
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS) -L unit
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j $(JOBS) -R $(TSAN_TESTS)

# The libFuzzer targets (fuzz/README.md), FUZZ_SECONDS each (default 60), in build-fuzz.
fuzz: deps
	scripts/fuzz.sh

# Every configuration ({gcc, clang} x {Debug, RelWithDebInfo, Release, asan, tsan}) builds
# warning-free; MATRIX="clang-Release gcc-Debug" picks some.
matrix: deps
	scripts/build-matrix.sh $(MATRIX)

# The container image ballast:VERSION (podman; the base made with debootstrap when absent).
image: deps
	scripts/build-image.sh

# The Debian package ballast_VERSION_amd64.deb in $(BUILD_DIR).
deb: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target ballast ballast_man ballast_changelog
	cd $(BUILD_DIR) && cpack -G DEB

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) build-sanitize build-tsan build-matrix build-fuzz
