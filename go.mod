module github.com/icptrack/icptrack

go 1.26.8

require (
	github.com/cilium/ebpf v0.22.0
	github.com/hashicorp/golang-lru/v2 v2.0.7
	golang.org/x/sys v0.43.0
)
