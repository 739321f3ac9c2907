# rgpu: the entry points. See README.md.
#   make setup   install missing Debian build packages (root + apt only)
#   make build   configure and build into build/
#   make test    setup + build + the whole test suite (what CI runs: .ci/run):
#                test-unit, then test-asan, then fuzz; fails if any fails
#   make test-unit  the suite on build/ only (the quick pass while developing)
#   make test-asan  the suite again, built with ASan + UBSan in build-asan/
#   make fuzz    every libFuzzer harness for FUZZ_SECONDS (fuzz/run_all.sh)
#   make demo    setup + build + run tests/e2e/vector_add through a local server
SHELL := /bin/bash
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CTEST_JOBS ?= 2
# Default per-test limit; a test's own TIMEOUT property overrides it.
CTEST_TIMEOUT ?= 300
# Sanitizer pass: its own build directory (gcc, -DRGPU_SANITIZE=ON). Tests
# whose subject is scale or speed, not memory safety, are left to test-unit.
ASAN_BUILD_DIR ?= build-asan
ASAN_EXCLUDE ?= ^(load_test|bench_smoke|bench_test)$$
# Fuzzing pass: seconds per harness (10 harnesses; run_all.sh caps the
# total at 300 s) in its own clang build directory.
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 25
# 0 skips a pass of `make test` (CI runs all three).
TEST_ASAN ?= 1
TEST_FUZZ ?= 1

DEB_PACKAGES := build-essential cmake ninja-build python3 libgtest-dev libcli11-dev \
  nlohmann-json3-dev liblz4-dev libzstd-dev libssl-dev libseccomp-dev clang libclang-rt-14-dev

# Targets run in the order given (setup before build before test); the build
# itself is parallel inside ninja.
.NOTPARALLEL:
.PHONY: all setup build test test-unit test-asan fuzz demo clean

all: build

# Idempotent: installs only what dpkg says is missing, and runs apt-get update
# only then. Skips (and says so) where there is no apt or we are not root, as
# on GPU hosts, whose image is not ours.
setup:
	@if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "setup: no apt-get/dpkg here: skipping package installation (needed: $(DEB_PACKAGES))"; \
	  exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "setup: all build packages are installed"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "setup: not root: skipping installation of:$$missing"; exit 0; \
	fi; \
	echo "setup: installing:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q && apt-get install -y -q --no-install-recommends $$missing

build:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$(JOBS)

# Runs the three passes even when one fails, then prints one line per pass
# (the ctest summary lines, the fuzz verdict) and exits non-zero if any
# failed.
test: setup build
	@rc=0; \
	$(MAKE) --no-print-directory test-unit || rc=1; \
	if [ "$(TEST_ASAN)" != 0 ]; then $(MAKE) --no-print-directory test-asan || rc=1; fi; \
	if [ "$(TEST_FUZZ)" != 0 ]; then $(MAKE) --no-print-directory fuzz || rc=1; fi; \
	echo; echo "== summary"; \
	for d in $(BUILD_DIR) $(ASAN_BUILD_DIR); do \
	  [ -f $$d/ctest.log ] && [ "$$d" = $(BUILD_DIR) -o "$(TEST_ASAN)" != 0 ] && \
	    echo "$$d: $$(grep -E '^[0-9]+% tests passed' $$d/ctest.log | tail -n 1)"; \
	done; \
	if [ "$(TEST_FUZZ)" != 0 ]; then echo "fuzz: $$(tail -n 1 $(FUZZ_BUILD_DIR)/fuzz.log 2>/dev/null)"; fi; \
	exit $$rc

# Ends with ctest's summary line ("N% tests passed, M tests failed out of T")
# and ctest's exit status.
test-unit: setup build
	@set -o pipefail; rc=0; \
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(CTEST_JOBS) \
	  --timeout $(CTEST_TIMEOUT) --no-tests=error 2>&1 | tee $(BUILD_DIR)/ctest.log || rc=$$?; \
	echo; \
	grep -E '^[0-9]+% tests passed' $(BUILD_DIR)/ctest.log | tail -n 1 || \
	  echo "ctest: no summary line (see above)"; \
	exit $$rc

# ASan + UBSan: any report fails the pass. Reports go to files
# (log_path), not stderr: a worker's stderr is its client's device-output
# pipe, where a report would be lost. rgpu's own processes check for leaks;
# the nvcc test programs get the ASan runtime preloaded (RGPU_ASAN_PRELOAD,
# tests/support/process.cc) and no leak check (cudart's allocations are not
# ours).
test-asan: setup
	cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DRGPU_SANITIZE=ON
	cmake --build $(ASAN_BUILD_DIR) -j$(JOBS)
	@set -o pipefail; rc=0; reports=$(abspath $(ASAN_BUILD_DIR))/sanitizer-reports; \
	rm -rf $$reports; mkdir -p $$reports; \
	export RGPU_ASAN_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)"; \
	export ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=0:log_path=$$reports/asan; \
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$$reports/ubsan; \
	ctest --test-dir $(ASAN_BUILD_DIR) --output-on-failure -j$(CTEST_JOBS) \
	  --timeout $(CTEST_TIMEOUT) --no-tests=error -E '$(ASAN_EXCLUDE)' 2>&1 | \
	  tee $(ASAN_BUILD_DIR)/ctest.log || rc=$$?; \
	if [ -n "$$(ls -A $$reports)" ]; then \
	  echo; echo "== sanitizer reports (every process writes to $$reports, whatever its stderr):"; \
	  for f in $$reports/*; do echo "-- $$f"; head -n 60 $$f; done; rc=1; \
	fi; \
	echo; \
	grep -E '^[0-9]+% tests passed' $(ASAN_BUILD_DIR)/ctest.log | tail -n 1 || \
	  echo "ctest (asan): no summary line (see above)"; \
	exit $$rc

# libFuzzer + ASan/UBSan harnesses (fuzz/README.md); fails on any crash,
# leak, UB, timeout or out-of-memory.
fuzz: setup
	@set -o pipefail; mkdir -p $(FUZZ_BUILD_DIR); \
	RGPU_FUZZ_BUILD=$(abspath $(FUZZ_BUILD_DIR)) RGPU_FUZZ_JOBS=$(JOBS) fuzz/run_all.sh $(FUZZ_SECONDS) 2>&1 | \
	  tee $(FUZZ_BUILD_DIR)/fuzz.log

demo: setup build
	BUILD_DIR=$(BUILD_DIR) scripts/demo.sh

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(FUZZ_BUILD_DIR)
