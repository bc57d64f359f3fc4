# SPDX-License-Identifier: GPL-2.0
# vigil: top-level entry points. Two commands matter for a newcomer:
#   make demo    set up what is missing, boot the VM with swtpm, show vigil at work
#   make check   set up what is missing, run every test suite
.DEFAULT_GOAL := build

BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 300

.PHONY: all deps build kmod check unit host-test vm-test vm-node demo bench fuzz lint package clean help

all: build kmod

help:
	@echo "make deps      install missing Debian packages (scripts/deps)"
	@echo "make build     user space, BPF objects and tests (CMake, into $(BUILD_DIR)/)"
	@echo "make kmod      vigil.ko for Debian's 6.12 VM kernel (KDIR=... for another)"
	@echo "make check     deps + build + unit + host BPF + VM tests; ends in 'N passed, N failed'"
	@echo "make vm-node   a Debian 12 node VM: DKMS, systemd, vigild, a reboot (scripts/vm-node)"
	@echo "make demo      boot the VM with the module and swtpm: baselines, alerts, verdicts, attacks"
	@echo "make bench     benchmarks (figures go to docs/benchmarks.md by hand)"
	@echo "make fuzz      libFuzzer+ASan/UBSan on the parsers, FUZZ_SECONDS per target (default 300)"
	@echo "make lint      W=1, sparse and checkpatch on the module"
	@echo "make package   Debian packages vigil and vigil-dkms into $(BUILD_DIR)/packages/"
	@echo "make clean     remove build products (keeps the downloaded VM kernel cache)"

deps:
	@scripts/deps

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j$(JOBS)

# Without KDIR: Debian's 6.12 cloud kernel headers, fetched into the cache.
kmod:
	@if [ -n "$(KDIR)" ]; then \
		$(MAKE) -C kmod KDIR=$(KDIR); \
	else \
		eval "$$(scripts/vm-kernel)" && $(MAKE) -C kmod KDIR=$$VM_KDIR; \
	fi

check:
	@scripts/check

unit: build
	ctest --test-dir $(BUILD_DIR) -LE host-bpf --output-on-failure

host-test: build
	ctest --test-dir $(BUILD_DIR) -L host-bpf --output-on-failure

vm-test: build
	scripts/vm-test

vm-node: build
	scripts/vm-node --build $(BUILD_DIR)

demo:
	@scripts/demo

bench:
	@scripts/bench

fuzz:
	@BUILD_DIR=$(BUILD_DIR) scripts/fuzz --seconds $(FUZZ_SECONDS)

lint:
	@scripts/deps --lint
	@scripts/lint

# vigil and vigil-dkms .debs in $(BUILD_DIR)/packages/ (built from a copy of the tree).
package:
	@BUILD_DIR=$(BUILD_DIR) JOBS=$(JOBS) scripts/package

clean:
	rm -rf $(BUILD_DIR)/CMakeCache.txt $(BUILD_DIR)/CMakeFiles
	find $(BUILD_DIR) -mindepth 1 -maxdepth 1 ! -name vm-cache -exec rm -rf {} + 2>/dev/null || true
	-$(MAKE) -C kmod clean KDIR=$$(scripts/vm-kernel | sed -n 's/^VM_KDIR=//p') >/dev/null 2>&1
