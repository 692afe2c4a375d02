# icptrack: make demo, make test. See README.md.

GO        ?= go
BPF_CLANG ?= clang-19
BPF_STRIP ?= llvm-strip-19
BPF_CFLAGS ?= -O2 -g -Wall -Werror

export BPF_CLANG BPF_STRIP BPF_CFLAGS

.PHONY: all build generate test demo lint bench clean

all: build

build:
	$(GO) build -o bin/icptrack ./cmd/icptrack

# Needs clang and llvm-strip (apt-get install clang-19 llvm-19). The output
# is committed: nothing else needs clang.
generate:
	cd probes && $(GO) generate ./...

test:
	$(GO) test ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1)
	$(GO) vet ./...

clean:
	rm -rf bin
