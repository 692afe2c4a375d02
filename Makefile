# icptrack. Start with: make demo, make test. See README.md.

GO         ?= go
BPF_CLANG  ?= clang-19
BPF_STRIP  ?= llvm-strip-19
BPF_CFLAGS ?= -O2 -g -Wall -Werror
FUZZTIME   ?= 10s

export BPF_CLANG BPF_STRIP BPF_CFLAGS

.PHONY: all build generate test fuzz demo bench lint clean

all: build

build:
	$(GO) build -o bin/icptrack ./cmd/icptrack

# Rebuilds the committed BPF objects from bpf/. Needs clang and llvm-strip
# (apt-get install clang-19 llvm-19); nothing else does.
generate:
	cd probes && $(GO) generate ./...

# The whole suite. Kernel tests load BPF and need root; with CI=true they
# fail rather than skip when BPF is unavailable.
test:
	$(GO) test ./...
	$(MAKE) fuzz

# Each fuzz target briefly; FUZZTIME=5m for a longer run.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./probes
	$(GO) test -run '^$$' -fuzz '^FuzzParseMountInfo$$' -fuzztime $(FUZZTIME) ./probes
	$(GO) test -run '^$$' -fuzz '^FuzzParseSize$$' -fuzztime $(FUZZTIME) ./internal/config

# Traces the bundled client/server/worker demo (examples/demo). Needs root.
demo: build
	$(GO) build -o bin/demo-client ./examples/demo
	ln -f bin/demo-client bin/demo-server
	ln -f bin/demo-client bin/demo-worker
	bin/icptrack run --events bin/demo-events.jsonl -- bin/demo-client
	@echo
	@echo "The event log is in bin/demo-events.jsonl; its first operations:"
	@head -n 4 bin/demo-events.jsonl

# What icptrack costs the programs it watches (needs root; a few minutes).
# See README.md, "Benchmarks".
bench: build
	$(GO) build -o bin/icptrack-bench ./cmd/icptrack-bench
	bin/icptrack-bench --icptrack bin/icptrack --reps 5

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed: skipped"; fi

clean:
	rm -rf bin
