# secirc — thin wrapper over CMake/ctest. Every target first installs missing
# Debian packages (scripts/deps), then configures and builds.
#   make run    build, then run the demo (scripts/demo)
#   make test   build + every test, then the same under ASan+UBSan
#   make bench  benchmarks -> docs/BENCHMARKS.md
#   make fuzz   libFuzzer targets, each for FUZZ_SECONDS (default 30)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
CTEST_FLAGS ?= --output-on-failure -j$(JOBS)

.PHONY: all build run test test-release test-asan bench fuzz clean

all: build

build:
	@scripts/deps build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

run: build
	scripts/demo $(BUILD)

test: test-release test-asan

test-release:
	@scripts/deps test
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest $(CTEST_FLAGS)

test-asan:
	@scripts/deps test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSECIRC_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest $(CTEST_FLAGS)

bench:
	@scripts/deps bench
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS) --target secirc secircd benches
	scripts/bench $(BUILD)

fuzz:
	@scripts/deps fuzz
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSECIRC_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzzers
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
