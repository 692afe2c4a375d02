module github.com/icptrack/icptrack

go 1.26.8

require (
	github.com/DataDog/sketches-go v1.4.8
	github.com/cilium/ebpf v0.22.0
	github.com/hashicorp/golang-lru/v2 v2.0.7
	github.com/spf13/cobra v1.10.2
	github.com/spf13/pflag v1.0.10
	golang.org/x/sys v0.43.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)
