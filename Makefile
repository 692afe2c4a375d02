# icptrack. Start with: make demo, make test. See README.md.

GO         ?= go
BPF_CLANG  ?= clang-19
BPF_STRIP  ?= llvm-strip-19
BPF_CFLAGS ?= -O2 -g -Wall -Werror
# An execution count, not a duration: a -fuzztime duration races Go 1.26's
# fuzz coordinator at its deadline (go.dev/issue/75804) and fails for nothing.
FUZZTIME   ?= 200000x

export BPF_CLANG BPF_STRIP BPF_CFLAGS

.PHONY: all build generate tools otelcol package image test test-systemd test-receiver test-kernels crossbuild fuzz demo bench lint clean

all: build

build:
	$(GO) build -o bin/icptrack ./cmd/icptrack

RECEIVER := receiver/icptrackreceiver

# Rebuilds the committed generated files: the BPF objects from bpf/ (needs
# clang and llvm-strip: apt-get install clang-19 llvm-19; nothing else
# does), the semantic-convention constants, and the receiver's mdatagen
# output (mdatagen from tools/mdatagen).
generate:
	cd probes && $(GO) generate ./...
	$(GO) generate ./semconv
	cd $(RECEIVER) && $(GO) generate ./...

# The otelcol-icptrack Collector distribution, built with ocb from
# builder-config.yaml into otelcol-icptrack/ and copied to bin/.
OCB_VERSION := v0.165.0
OCB ?= $(shell $(GO) env GOPATH)/bin/builder
otelcol:
	@$(OCB) version 2>/dev/null | grep -q '$(OCB_VERSION)' || $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
	$(OCB) --config builder-config.yaml
	@mkdir -p bin
	cp otelcol-icptrack/otelcol-icptrack bin/otelcol-icptrack

# Debian packages in dist/: icptrack_<version>_<arch>.deb and
# otelcol-icptrack_<version>_<arch>.deb for amd64 and arm64 (README
# "Install"). tools/mkdeb, a module of its own so that nfpm stays out of
# go.mod, builds both binaries static with the version from git describe,
# the man pages and completions from icptrack's commands, and packs them
# as packaging/nfpm/*.yaml say. arm64's Collector takes a few minutes.
package: otelcol
	cd tools/mkdeb && $(GO) build -o ../../bin/mkdeb .
	GO=$(GO) bin/mkdeb -out dist

# Container images of icptrack and otelcol-icptrack, built by
# packaging/mkimage with go-containerregistry, with no container engine:
# static binaries for linux/amd64 and linux/arm64, each image one layer on
# an empty base, one multi-platform index per image. They go to the OCI
# layout dist/oci (oci:dist/oci:icptrack, oci:dist/oci:otelcol-icptrack)
# and to OCI archives dist/<image>.oci.tar named $(IMAGE_REPO)/<image>:<version>
# and :latest, for kind and k3s (README: "Container images"). Every
# timestamp is the commit's (or SOURCE_DATE_EPOCH's): a rebuild of a commit
# has the same digests.
IMAGE_REPO     ?= ghcr.io/icptrack
IMAGE_LICENSES ?= NOASSERTION
image: otelcol
	$(GO) run ./packaging/mkimage -go '$(GO)' -out dist/oci -archives dist -repo '$(IMAGE_REPO)' -licenses '$(IMAGE_LICENSES)'

# Real servers for the end-to-end tests. Jaeger v2 is built from the Go
# module proxy in its own module (tools/jaeger), so that its dependencies
# stay out of icptrack's go.mod; the first build takes a few minutes.
# Prometheus comes from the Debian package (apt-get install prometheus).
tools: bin/jaeger

bin/jaeger: tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && $(GO) build -o ../../bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

# The whole suite. Kernel tests load BPF and need root; with CI=true they
# fail rather than skip when BPF, Jaeger, Prometheus or the Collector
# distribution is unavailable.
test: tools otelcol package image
	$(GO) test -skip '^TestUnitUnderSystemd$$' ./...
	cd tools/mkdeb && $(GO) test ./...
	$(MAKE) test-systemd test-receiver crossbuild fuzz

# The Debian package's service under real systemd: Debian bookworm booted
# under QEMU with systemd as PID 1 (packaging/systemd_test.go) installs
# make package's amd64 package and starts, reloads and stops the unit
# (README "Running as a service"). Needs root, mmdebstrap, e2fsprogs and
# qemu-system-x86; the first run builds the VM's root file system with
# mmdebstrap from deb.debian.org (some 5 minutes, cached in
# ~/.cache/icptrack/rootfs), each run then boots it (some 3 minutes
# under TCG). Run make package first (make test does).
test-systemd:
	$(GO) test -count=1 -v -run '^TestUnitUnderSystemd$$' -timeout 40m ./packaging

# The probes' kernel tests inside other kernels: Debian bookworm's newest
# 6.1 cloud kernels for amd64 and arm64 (from apt, cached in
# ~/.cache/icptrack/kernels), booted under QEMU with the test binary in an
# initramfs (internal/vmtest). Needs qemu-system-x86 and qemu-system-arm,
# and for arm64's kernel dpkg --add-architecture arm64 && apt-get update.
# KERNEL_TESTS is go test -run's regexp for what runs inside the VMs;
# KERNEL_TIMEOUT bounds each VM. arm64's 6.1 cannot see loopback TCP and
# UDP (no socket tracepoints, no trampolines: README), so their tests are
# skipped there, and only there. Both kernels run even when the first fails.
# One vCPU: under TCG, kernel text patched on one emulated CPU while
# another runs it (a tracepoint's static key and static call flip at
# every attach) locked amd64 up in syscall_trace_enter; with one vCPU the
# whole suite runs, and faster.
KERNEL_TESTS   ?= .
KERNEL_TIMEOUT ?= 20m
KERNEL_CPUS    ?= 1
ARM64_SKIP     ?= TestLoopbackTCP|TestLoopbackUDP
test-kernels:
	$(GO) build -o bin/kernelmatrix ./internal/vmtest/cmd/kernelmatrix
	@rc=0; \
	bin/kernelmatrix -go '$(GO)' -kernels amd64-6.1 -cpus $(KERNEL_CPUS) -retry -run '$(KERNEL_TESTS)' -timeout '$(KERNEL_TIMEOUT)' || rc=1; \
	bin/kernelmatrix -go '$(GO)' -kernels arm64-6.1 -cpus $(KERNEL_CPUS) -retry -run '$(KERNEL_TESTS)' -skip '$(ARM64_SKIP)' -timeout '$(KERNEL_TIMEOUT)' || rc=1; \
	exit $$rc

# The receiver is a module of its own.
test-receiver:
	cd $(RECEIVER) && $(GO) vet ./... && $(GO) test ./...

# The receiver (and so a distribution with it) must build where it cannot
# run: there its factory says so.
crossbuild:
	cd $(RECEIVER) && GOOS=darwin $(GO) build ./... && GOOS=windows $(GO) build ./...

# Each fuzz target briefly; FUZZTIME=10m (or 5000000x) for a longer run.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./probes
	$(GO) test -run '^$$' -fuzz '^FuzzParseMountInfo$$' -fuzztime $(FUZZTIME) ./probes
	$(GO) test -run '^$$' -fuzz '^FuzzParseSize$$' -fuzztime $(FUZZTIME) ./internal/config
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/config
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) ./capture
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./filter
	$(GO) test -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime $(FUZZTIME) ./exporter/syslog
	$(GO) test -run '^$$' -fuzz '^FuzzSegment$$' -fuzztime $(FUZZTIME) ./store
	$(GO) test -run '^$$' -fuzz '^FuzzParseAuthorization$$' -fuzztime $(FUZZTIME) ./api/auth
	$(GO) test -run '^$$' -fuzz '^FuzzQueryParameters$$' -fuzztime $(FUZZTIME) ./api

# Traces the bundled client/server/worker demo (examples/demo). Needs root.
demo: build
	$(GO) build -o bin/demo-client ./examples/demo
	ln -f bin/demo-client bin/demo-server
	ln -f bin/demo-client bin/demo-worker
	bin/icptrack run --events bin/demo-events.jsonl -- bin/demo-client
	@echo
	@echo "The event log is in bin/demo-events.jsonl; its first operations:"
	@head -n 4 bin/demo-events.jsonl
	@echo
	@echo "To see each request as one trace in Jaeger and the metrics in Prometheus"
	@echo "(examples/jaeger-prometheus/README.md):"
	@echo "  sudo bin/icptrack run --otlp-endpoint http://localhost:4317 --otlp-signals traces \\"
	@echo "       --prometheus 127.0.0.1:9464 -- bin/demo-client --requests 100 --interval 100ms"

# What icptrack costs the programs it watches (needs root; about 13 minutes,
# on a quiet machine; the pgbench workload needs postgresql-15, or
# BENCH_FLAGS=--skip=pgbench). See BENCHMARKS.md. The tables go to standard
# output, every sample to docs/bench-results.json, the plot to
# docs/benchmarks.png. A quick check:
# make bench BENCH_FLAGS="--scale 0.05 --reps 1 --sustain 2s".
# The filter's evaluation cost per operation comes first (issue 13's
# target: at most 100 ns and no allocation for its first example), then
# the store's (issue 14's targets: at most 1 µs of CPU per operation
# written with encryption, cpu-ns/op of BenchmarkSink; verify at 200 MB/s
# or more; over ten million operations, a 1% time range in under 1 s and
# a pid in under 5 s). The store of ten million operations is made once,
# in about a minute, and kept under $TMPDIR for the next run.
BENCH_FLAGS ?=
bench: build
	$(GO) test -run XXX -bench . -benchmem ./filter
	$(GO) test -run XXX -bench 'Sink|WriterAppend|Encode' -benchmem ./store
	$(GO) test -run XXX -bench 'Verify|Query10M' -benchtime 3x -timeout 30m ./store
	$(GO) test -run XXX -bench 'Operations10M|Graph' -benchmem -benchtime 3x -timeout 30m ./api
	$(GO) test -run XXX -bench 'SinkAdd' -benchmem ./api
	$(GO) build -o bin/icptrack-bench ./cmd/icptrack-bench
	@mkdir -p docs
	bin/icptrack-bench --icptrack bin/icptrack --reps 5 --json docs/bench-results.json --plot docs/benchmarks.png $(BENCH_FLAGS)

# staticcheck is installed from the Go module proxy when it is missing or
# another version: a linter that skips itself checks nothing.
STATICCHECK_VERSION := v0.8.2
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...
	cd $(RECEIVER) && $(GO) vet ./...
	@$(STATICCHECK) -version 2>/dev/null | grep -q '$(STATICCHECK_VERSION:v%=%)' || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...
	cd $(RECEIVER) && $(STATICCHECK) ./...

clean:
	rm -rf bin otelcol-icptrack dist
