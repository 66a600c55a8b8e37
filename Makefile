# Thin wrapper around meson/ninja. The real build is meson.build.
#   make            configure (once) and build
#   make check      build, then run the unit and integration tests
#   make demo       build, boot a UVM and run a command in it, with timings
#   make bench      run the benchmarks
#   make soak       200 VM cycles, then 4 VMs hot-plugging for 10 minutes: leaks?
#   make setup      install what is missing (Debian 12), fetch the guest kernel
#   make clean      remove the build folder
BUILD ?= build
BOOT_FILES ?= $(BUILD)/tools/bootfiles
MESON ?= meson
NINJA ?= ninja

# "make setup demo" / "make setup check": install first, even under -j.
SETUP_FIRST := $(filter setup,$(MAKECMDGOALS))

.PHONY: all build check demo bench soak setup clean

all: build

$(BUILD)/build.ninja: | $(SETUP_FIRST)
	$(MESON) setup $(BUILD)

build: $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

check: build
	$(MESON) test -C $(BUILD) --print-errorlogs --suite unit --suite integration

demo: build
	$(BUILD)/src/cli/uvmctl run -v --boot-files $(BOOT_FILES) -- \
	    sh -c 'uname -a; cat /proc/cmdline'

bench: build
	$(MESON) test -C $(BUILD) --suite bench --verbose

soak: build
	$(MESON) test -C $(BUILD) --suite soak --verbose

setup:
	scripts/setup.sh

clean:
	rm -rf $(BUILD)
