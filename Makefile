# Guichet developer entry points. CI runs .ci/run, which uses these targets.

# Share one target dir across clones (kept outside the work tree).
CARGO_TARGET_DIR ?= $(HOME)/.cache/guichet-target
export CARGO_TARGET_DIR

.PHONY: all bootstrap run test check conformance

all: check test

bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	cargo run -- serve

# Uses cargo-nextest when installed, plain cargo test otherwise.
test: bootstrap
	@if cargo nextest --version >/dev/null 2>&1; then \
		echo "cargo nextest run --no-fail-fast"; cargo nextest run --no-fail-fast; \
	else \
		echo "cargo test --no-fail-fast"; cargo test --no-fail-fast; \
	fi

check: bootstrap
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

conformance: bootstrap
	bash conformance/run
