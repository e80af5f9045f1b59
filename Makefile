# The front door. CMake does the building; these targets are the commands a person types.
PREFIX ?= /usr/local
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
DEPS = cmake pkg-config gcc make libopenblas-dev zlib1g-dev libcjson-dev libcmocka-dev dataset-fashion-mnist
TEST_DEPS = $(DEPS) python3 python3-numpy python3-torch
BENCH_DEPS = $(TEST_DEPS) time

.PHONY: all demo check test asan bench deps test-deps bench-deps install uninstall clean

all: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DNABLA_WERROR=ON -DCMAKE_INSTALL_PREFIX=$(PREFIX)

deps:
	@scripts/install-deps.sh $(DEPS)

test-deps:
	@scripts/install-deps.sh $(TEST_DEPS)

bench-deps:
	@scripts/install-deps.sh $(BENCH_DEPS)

demo: deps all
	$(BUILD)/nabla train --epochs 10 --out runs/demo

# Everything CI runs: warnings as errors, all tests, then the unit and CLI tests again with
# every binary under ASan+UBSan (not the install test: a sanitized library needs sanitized users).
check: test-deps all
	cd $(BUILD) && ctest --output-on-failure -j 2
	$(MAKE) asan

test: all
	cd $(BUILD) && ctest --output-on-failure -j 2

asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DNABLA_WERROR=ON -DNABLA_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j 2 -E cli_test_install

# nabla against PyTorch, side by side; writes bench/RESULTS.md (see bench/README.md).
# Not part of `check`: timing is not a test. Example: make bench BENCH_ARGS="--runs 1"
bench: bench-deps all
	python3 bench/run.py --nabla $(BUILD)/nabla $(BENCH_ARGS)

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

uninstall:
	@if [ -f $(BUILD)/install_manifest.txt ]; then xargs rm -f < $(BUILD)/install_manifest.txt; fi

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
