# rgpu: the entry points. See README.md.
#   make setup   install missing Debian build packages (root + apt only)
#   make build   configure and build into build/
#   make test    setup + build + the whole test suite (what CI runs: .ci/run)
#   make demo    setup + build + run tests/e2e/vector_add through a local server
SHELL := /bin/bash
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CTEST_JOBS ?= 2
# Default per-test limit; a test's own TIMEOUT property overrides it.
CTEST_TIMEOUT ?= 300

DEB_PACKAGES := build-essential cmake ninja-build python3 libgtest-dev libcli11-dev \
  nlohmann-json3-dev liblz4-dev libzstd-dev libssl-dev libseccomp-dev clang libclang-rt-14-dev

# Targets run in the order given (setup before build before test); the build
# itself is parallel inside ninja.
.NOTPARALLEL:
.PHONY: all setup build test demo clean

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

# Ends with ctest's summary line ("N% tests passed, M tests failed out of T")
# and ctest's exit status.
test: setup build
	@set -o pipefail; rc=0; \
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(CTEST_JOBS) \
	  --timeout $(CTEST_TIMEOUT) --no-tests=error 2>&1 | tee $(BUILD_DIR)/ctest.log || rc=$$?; \
	echo; \
	grep -E '^[0-9]+% tests passed' $(BUILD_DIR)/ctest.log | tail -n 1 || \
	  echo "ctest: no summary line (see above)"; \
	exit $$rc

demo: setup build
	BUILD_DIR=$(BUILD_DIR) scripts/demo.sh

clean:
	rm -rf $(BUILD_DIR)
