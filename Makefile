# Thin wrapper around meson/ninja. The real build is meson.build.
#   make            configure (once) and build
#   make check      build, then run the unit and integration tests
#   make demo       build, boot a UVM and run a command in it, with timings (the first time,
#                   while the tailored kernel builds, on Debian's kernel: scripts/demo.sh)
#   make bench      run the benchmarks
#   make soak       200 VM cycles, then 4 VMs hot-plugging for 10 minutes: leaks?
#   make fuzz       build the fuzz targets (clang, build-fuzz) and run each for FUZZ_SECONDS
#                   (default 300; FUZZ_TARGETS="qmp agent-host" for some only)
#   make setup      install what is missing (Debian 12), fetch the guest kernel
#   make clean      remove the build folders
BUILD ?= build
MESON ?= meson
NINJA ?= ninja
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_TARGETS ?=

# "make setup demo" / "make setup check": install first, even under -j.
SETUP_FIRST := $(filter setup,$(MAKECMDGOALS))

.PHONY: all build check demo bench soak fuzz setup clean

all: build

$(BUILD)/build.ninja: | $(SETUP_FIRST)
	$(MESON) setup $(BUILD)

build: $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

check: build
	$(MESON) test -C $(BUILD) --print-errorlogs --suite unit --suite integration

demo: $(BUILD)/build.ninja
	scripts/demo.sh $(BUILD)

bench: build
	$(MESON) test -C $(BUILD) --suite bench --verbose

soak: build
	$(MESON) test -C $(BUILD) --suite soak --verbose

fuzz: | $(SETUP_FIRST)
	tests/fuzz/run.sh --build $(FUZZ_BUILD) --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

setup:
	scripts/setup.sh

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD) $(FUZZ_BUILD)-cov
