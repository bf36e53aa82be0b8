# Top-level entry points. `make test` is the README's test command (and what .ci/run calls
# after installing packages); `make demo-run` audits the committed demo image.
SHELL := /bin/bash
CARGO ?= cargo
# Where cargo builds (honours CARGO_TARGET_DIR, as cargo does).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

.PHONY: test lint fixtures harbor-fuzz docs demo-run bench bench-registry image-check bench-serve bench-store fuzz-seed \
	fuzz-build fuzz-smoke fuzz-run
test: fixtures
	$(CARGO) nextest run --workspace --no-fail-fast
	# The kept fuzzer inputs (testdata/fuzz-regressions/) through their targets.
	$(CARGO) nextest run -p audit-core -p audit-server \
	  --features audit-core/fuzzing,audit-server/fuzzing fuzz_regressions
	$(CARGO) test --workspace --doc
	$(CARGO) build -q -p audit-cli
	$(MAKE) -C testdata secrets-crosscheck IMGAUDIT=$(TARGET_DIR)/debug/imgaudit
	$(MAKE) fuzz-smoke
	$(MAKE) harbor-fuzz

fixtures:
	$(MAKE) -C testdata fixtures

# The Harbor adapter's HTTP API fuzzed from its OpenAPI document (schemathesis; .ci/run
# installs it): a bounded number of examples per operation, no 5xx, no crash.
SCHEMATHESIS ?= schemathesis
harbor-fuzz:
	$(CARGO) build -q -p audit-cli
	testdata/harbor/schemathesis.sh $(TARGET_DIR)/debug/imgaudit $(SCHEMATHESIS) 100

# cargo-fuzz targets (fuzz/). cargo-fuzz passes nightly-only codegen flags (-Zsanitizer,
# sanitizer coverage); RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. No sanitizer:
# audit-core forbids unsafe code, and ASan would halve the executions per second.
FUZZ = RUSTC_BOOTSTRAP=1 $(CARGO) fuzz
FUZZ_FLAGS = --sanitizer none
# libFuzzer options of every run: a unit slower than 10 s is a hang, 2 GiB RSS a leak.
FUZZ_OPTS = -timeout=10 -rss_limit_mb=2048
FUZZ_SMOKE_SECS ?= 20

# Seed fuzz/corpus/<target>/ from the fixtures (fuzz/seed.py).
fuzz-seed: fixtures
	python3 fuzz/seed.py

fuzz-build:
	$(FUZZ) build $(FUZZ_FLAGS)

# A short bounded run of every target from its seed corpus (CI): a crash, a hang or a leak
# fails. `make fuzz-run TARGET=layers SECS=1800` is the long run.
fuzz-smoke: fuzz-seed fuzz-build
	mkdir -p fuzz/artifacts
	for t in $$($(FUZZ) list); do \
	  log=fuzz/artifacts/smoke-$$t.log; \
	  if $(FUZZ) run $(FUZZ_FLAGS) $$t fuzz/corpus/$$t -- $(FUZZ_OPTS) -dict=fuzz/dict/$$t.dict \
	      -max_total_time=$(FUZZ_SMOKE_SECS) -print_final_stats=1 >$$log 2>&1; then \
	    grep -E '^#[0-9]+[[:space:]]+DONE' $$log | sed "s/^/$$t: /"; \
	  else \
	    tail -n 80 $$log; echo "fuzz-smoke: target $$t failed (log: $$log)" >&2; exit 1; \
	  fi; \
	done

SECS ?= 1800
fuzz-run: fuzz-seed fuzz-build
	nice -n 19 $(FUZZ) run $(FUZZ_FLAGS) $(TARGET) fuzz/corpus/$(TARGET) -- $(FUZZ_OPTS) \
	  -dict=fuzz/dict/$(TARGET).dict -max_total_time=$(SECS) -print_final_stats=1

# Formatting (rustfmt defaults) and clippy, warnings as errors.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace

# Regenerate docs/rules/ from the rule registry (a test fails when they are stale).
docs:
	$(CARGO) run -q -p audit-cli -- rules --markdown docs/rules

demo-run:
	$(CARGO) run -q --release -p audit-cli -- testdata/demo

bench:
	$(MAKE) -C testdata large
	./benches/compare.sh testdata/out/images/large
	./benches/compare.sh testdata/out/images/large-zstd

# Registry audit vs skopeo download vs trivy SBOM, from a local registry (issue #3).
bench-registry:
	$(MAKE) -C testdata large
	./benches/registry-compare.sh

# The admission webhook image, built offline from deploy/Dockerfile with buildah (root) and
# checked with `imgaudit --profile static`: nothing above low (issue #5).
image-check:
	./deploy/build-image.sh

# The layer store and sweeps (issue 9): cold vs warm audit of the large image from the disk
# store and from a local registry, a 24-reference registry sweep cold and warm, and two webhook
# replicas sharing Redis (needs hyperfine, wrk, redis-server, umoci).
bench-store: fixtures
	$(MAKE) -C testdata large
	./benches/store-compare.sh testdata/out/images/large
	./benches/sweep.sh
	./benches/serve-share.sh

# Load test of `imgaudit serve` (needs wrk and hey): cached-verdict throughput, p50/p99, cold audits.
bench-serve: fixtures
	./benches/serve-load.sh
