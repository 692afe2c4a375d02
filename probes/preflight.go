package probes

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Capability bits (linux/capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38
	capBPF      = 39
)

// ErrPermission and ErrNoBTF are what Open returns, wrapped with advice,
// when icptrack cannot run here.
var (
	ErrPermission = errors.New("not permitted to load eBPF programs")
	ErrNoBTF      = errors.New("the kernel has no BTF")
)

// kernelBTF is where the kernel publishes its type information.
var kernelBTF = "/sys/kernel/btf/vmlinux"

// preflight checks what loading will need, so that the user gets advice
// instead of a verifier log.
func preflight() error {
	if err := checkCapabilities("/proc/self/status"); err != nil {
		return err
	}
	if _, err := os.Stat(kernelBTF); err != nil {
		return fmt.Errorf("%w: %s is missing; icptrack needs a kernel built with CONFIG_DEBUG_INFO_BTF=y "+
			"(most distributions ship one since 2021: Debian 11, Ubuntu 20.10, RHEL 8.2 and later)", ErrNoBTF, kernelBTF)
	}
	return nil
}

func checkCapabilities(status string) error {
	caps, err := effectiveCaps(status)
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	has := func(c uint) bool { return caps&(1<<c) != 0 }
	if has(capSysAdmin) || (has(capBPF) && has(capPerfmon)) {
		return nil
	}
	return fmt.Errorf("%w: run icptrack as root (sudo), or grant it CAP_BPF and CAP_PERFMON "+
		"(sudo setcap cap_bpf,cap_perfmon+ep %s)", ErrPermission, executable())
}

func effectiveCaps(status string) (uint64, error) {
	f, err := os.Open(status)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapEff line in %s", status)
}

func executable() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "icptrack"
}
