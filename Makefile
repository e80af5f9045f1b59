# The front door. CMake does the building; these targets are the commands a person types.
PREFIX ?= /usr/local
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
NOMPI_BUILD ?= build-nompi
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = safetensors idx csv
JOBS ?= $(shell nproc)
DEPS = cmake pkg-config gcc make libopenblas-dev zlib1g-dev libcjson-dev libcmocka-dev dataset-fashion-mnist
TEST_DEPS = $(DEPS) python3 python3-numpy python3-torch clang chromium python3-pil libopenmpi-dev openmpi-bin valgrind strace python3-optuna
BENCH_DEPS = $(TEST_DEPS) time python3-sklearn

.PHONY: all configure demo check test asan without-mpi fuzz fuzz-short bench bench-conv bench-tune bench-mpi bench-tabular deps test-deps bench-deps install uninstall clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

# $(BUILD) is configured once, and again when it was configured without MPI (NABLA_MPI=AUTO
# found none) and an MPI compiler is there now: `make demo` configures before `make check`
# installs libopenmpi-dev, and a build directory keeps what its first configure found. CMake
# searches again for what its cache holds as NOTFOUND, so configuring again finds it.
configure:
	@if [ ! -f $(BUILD)/CMakeCache.txt ]; then \
	  cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DNABLA_WERROR=ON \
	    -DCMAKE_INSTALL_PREFIX=$(PREFIX); \
	elif grep -qx 'NABLA_MPI:STRING=AUTO' $(BUILD)/CMakeCache.txt && \
	     grep -q '^MPI_C_COMPILER:FILEPATH=.*NOTFOUND$$' $(BUILD)/CMakeCache.txt && \
	     command -v mpicc >/dev/null; then \
	  echo "$(BUILD) was configured without MPI (none was found then), and mpicc is here now: configuring it again"; \
	  cmake -S . -B $(BUILD); \
	fi

deps:
	@scripts/install-deps.sh $(DEPS)

test-deps:
	@scripts/install-deps.sh $(TEST_DEPS)

bench-deps:
	@scripts/install-deps.sh $(BENCH_DEPS)

# The packages first, then the build (in this order even under make -j).
demo: deps
	$(MAKE) all
	$(BUILD)/nabla train --epochs 10 --out runs/demo

# Everything CI runs: warnings as errors, all tests, then the unit and CLI tests again with
# every binary under ASan+UBSan (not the install test: a sanitized library needs sanitized users),
# the program built without MPI, then a few seconds of fuzzing per input reader.
# The test packages (MPI among them) are installed before $(BUILD) is configured or built.
check: test-deps
	$(MAKE) all
	cd $(BUILD) && ctest --output-on-failure -j 2
	$(MAKE) asan
	$(MAKE) without-mpi
	$(MAKE) fuzz-short

test: all
	cd $(BUILD) && ctest --output-on-failure -j 2

# The statistical comparison with Optuna (tpe_optuna) runs once, in the release build: its time
# is Optuna's, and test_tpe checks the C code under the sanitizers. -O1, as AddressSanitizer's
# documentation advises: the same checks, and the sanitized suite about 15% faster than at -O0.
asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" \
	  -DNABLA_WERROR=ON -DNABLA_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j 2 -E 'cli_test_install|tpe_optuna'

# The program built with NABLA_MPI=OFF, as where MPI is not installed: it trains as usual, and
# refuses to run as one of several ranks, saying so (test_mpi.sh checks either build; its
# `nabla --version` says NABLA_MPI=OFF, which is how test_mpi.sh knows MPI was left out on
# purpose, and is not missing from a build that should have it).
without-mpi:
	cmake -S . -B $(NOMPI_BUILD) -DCMAKE_BUILD_TYPE=Release -DNABLA_WERROR=ON -DNABLA_MPI=OFF \
	  -DNABLA_TESTS=OFF
	cmake --build $(NOMPI_BUILD) -j $(JOBS) --target nabla
	cd tests/cli && bash test_mpi.sh $(abspath $(NOMPI_BUILD))/nabla

# libFuzzer on each input reader for FUZZ_SECONDS seconds (fuzz/README.md), built with clang in
# $(FUZZ_BUILD). Each run works on a scratch copy of fuzz/corpus/<target> and
# fuzz/regressions/<target> in $(FUZZ_BUILD)/runs/<target>, where crashes land too: nothing is
# written back into fuzz/. Example: make fuzz FUZZ_SECONDS=600 FUZZ_TARGETS=csv
fuzz:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DNABLA_TESTS=OFF -DNABLA_FUZZ=ON
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
	  run=$(FUZZ_BUILD)/runs/$$t; rm -rf $$run; mkdir -p $$run/corpus $$run/crashes; \
	  cp fuzz/corpus/$$t/* $$run/corpus/; \
	  if ls fuzz/regressions/$$t/* >/dev/null 2>&1; then cp fuzz/regressions/$$t/* $$run/corpus/; fi; \
	  echo "== fuzz_$$t, $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz_$$t $$run/corpus -dict=fuzz/$$t.dict -max_total_time=$(FUZZ_SECONDS) \
	    -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
	    -artifact_prefix=$$run/crashes/ $(FUZZ_ARGS) \
	    || { echo "fuzz_$$t failed: the input is in $$run/crashes/" >&2; exit 1; }; \
	done

fuzz-short:
	$(MAKE) fuzz FUZZ_SECONDS=5

# nabla against PyTorch, side by side; writes bench/RESULTS.md (see bench/README.md).
# Not part of `check`: timing is not a test. Example: make bench BENCH_ARGS="--runs 1"
bench: bench-deps all
	python3 bench/run.py --nabla $(BUILD)/nabla $(BENCH_ARGS)

# The conv2d op alone against PyTorch's on the reference CNN's two convolutions, forward and
# backward, with the sgemm ceiling; writes bench/CONV_RESULTS.md. Example:
# make bench-conv BENCH_CONV_ARGS="--rounds 5"
bench-conv: test-deps all
	/usr/bin/python3 bench/conv_bench.py --build $(BUILD) $(BENCH_CONV_ARGS)

# nabla tune (random and TPE) against Optuna (random and TPE samplers driving nabla train) with
# the same budget, at 24 and 64 trials, 10 seeds (about 45 minutes; 5 seeds do not separate the
# samplers: their medians move by more than the gap between them); writes bench/TUNE_RESULTS.md.
# Example: make bench-tune BENCH_TUNE_ARGS="--repeats 3 --trials 24"
bench-tune: bench-deps all
	/usr/bin/python3 bench/tune_compare.py --nabla $(BUILD)/nabla $(BENCH_TUNE_ARGS)

# nabla against scikit-learn's MLPs on scikit-learn's bundled data sets (classification,
# regression, multi-label), the same splits; writes bench/TABULAR_RESULTS.md.
bench-tabular: bench-deps all
	/usr/bin/python3 bench/tabular.py --nabla $(BUILD)/nabla $(BENCH_TABULAR_ARGS)

# 1 and 2 MPI ranks side by side, the time in the sums, and the same step on paper for 8 and
# 64 machines; writes bench/MPI_RESULTS.md.
bench-mpi: bench-deps all
	/usr/bin/python3 bench/mpi_scaling.py --nabla $(BUILD)/nabla $(BENCH_MPI_ARGS)
	/usr/bin/python3 bench/mpi_drift.py --nabla $(BUILD)/nabla $(BENCH_DRIFT_ARGS)

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

uninstall:
	@if [ -f $(BUILD)/install_manifest.txt ]; then xargs rm -f < $(BUILD)/install_manifest.txt; fi

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(NOMPI_BUILD)
