package probes

// The BPF object is built from bpf/ by bpf2go and committed (ipc_*_bpfel.go
// and .o), so that go build, go get and ocb need no clang. Run make generate
// after changing bpf/.
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc ${BPF_CLANG} -strip ${BPF_STRIP} -cflags ${BPF_CFLAGS} -target amd64,arm64 -type op_record -type name_record -type delivery_record -type proc_record -type ipc_extra -type proc_change -type mechanism -type op_type -type record_kind -type op_flag -type syscall_class -type stat_index -type agg_key -type agg_value ipc ../bpf/icptrack.bpf.c -- -I../bpf/headers
