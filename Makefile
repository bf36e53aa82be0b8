# Top-level entry points. `make test` is the README's test command (and what .ci/run calls
# after installing packages); `make demo-run` audits the committed demo image.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: test lint fixtures docs demo-run bench bench-registry image-check bench-serve
test: fixtures
	$(CARGO) nextest run --workspace --no-fail-fast
	$(CARGO) test --workspace --doc
	$(CARGO) build -q -p audit-cli
	$(MAKE) -C testdata secrets-crosscheck IMGAUDIT=$(CURDIR)/target/debug/imgaudit

fixtures:
	$(MAKE) -C testdata fixtures

# Formatting (rustfmt defaults) and clippy, warnings as errors.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

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

# Load test of `imgaudit serve` (needs wrk and hey): cached-verdict throughput, p50/p99, cold audits.
bench-serve: fixtures
	./benches/serve-load.sh
