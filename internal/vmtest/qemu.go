package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
)

// qemuArch is how QEMU runs one architecture.
type qemuArch struct {
	binary  string   // qemu-system-*
	pkg     string   // the Debian package that has it
	machine []string // -machine and -cpu
	console string   // the serial console's device name in the guest
}

var qemuArches = map[string]qemuArch{
	"amd64": {
		binary:  "qemu-system-x86_64",
		pkg:     "qemu-system-x86",
		machine: []string{"-machine", "q35", "-cpu", "max"},
		console: "ttyS0",
	},
	"arm64": {
		binary: "qemu-system-aarch64",
		pkg:    "qemu-system-arm",
		// pauth-impdef: TCG computes pointer authentication codes with
		// the architected QARMA cipher unless told to use a cheap one
		// of its own, which the guest cannot tell apart.
		machine: []string{"-machine", "virt", "-cpu", "max,pauth-impdef=on"},
		console: "ttyAMA0",
	},
}

// VM is one boot of a kernel with an initramfs.
type VM struct {
	Kernel    Kernel
	Vmlinuz   string
	Initramfs string
	CPUs      int
	MemoryMiB int
	// Disks are raw disk images, attached as virtio disks in order
	// (vda, vdb, ...). QEMU writes what the VM changes to temporary
	// files, never to them: a cached image serves every boot.
	Disks []string
	// Boot is what the kernel command line says to start; empty, the
	// initramfs's /init. A RootFS is booted with its BootArgs.
	Boot string
}

// QEMU finds the QEMU binary for arch, or says which package has it.
func QEMU(arch string) (string, error) {
	qa, ok := qemuArches[arch]
	if !ok {
		return "", fmt.Errorf("no QEMU set-up for %s", arch)
	}
	path, err := exec.LookPath(qa.binary)
	if err != nil {
		return "", fmt.Errorf("%s not found: apt-get install %s", qa.binary, qa.pkg)
	}
	return path, nil
}

// command is the QEMU command line that boots vm. The VM has no devices
// but the serial console and vm's disks: no network card, no display.
func (vm VM) command() (*exec.Cmd, error) {
	path, err := QEMU(vm.Kernel.Arch)
	if err != nil {
		return nil, err
	}
	qa := qemuArches[vm.Kernel.Arch]
	args := append([]string{
		"-nodefaults", "-no-user-config", "-display", "none",
		"-serial", "stdio", "-no-reboot",
		"-accel", accel(vm.Kernel.Arch),
	}, qa.machine...)
	for _, disk := range vm.Disks {
		args = append(args, "-drive", "file="+disk+",format=raw,if=virtio,snapshot=on")
	}
	boot := vm.Boot
	if boot == "" {
		boot = "rdinit=/init"
	}
	args = append(args,
		"-smp", strconv.Itoa(vm.CPUs), "-m", strconv.Itoa(vm.MemoryMiB),
		"-kernel", vm.Vmlinuz, "-initrd", vm.Initramfs,
		// panic=-1 reboots at once on a kernel panic (init dying is
		// one), and -no-reboot turns that into QEMU exiting.
		// softlockup_panic: a CPU stuck in the kernel for over 20 s
		// does not come back, and the panic prints where it was stuck
		// and ends the VM, where waiting would take the whole timeout.
		"-append", "console="+qa.console+" "+boot+" panic=-1 softlockup_panic=1 quiet",
	)
	return exec.Command(path, args...), nil
}

// accel is KVM when the guest is the host's architecture and /dev/kvm can
// be opened, else TCG (emulation, some ten times slower).
func accel(arch string) string {
	if arch == runtime.GOARCH {
		if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
			f.Close()
			return "kvm"
		}
	}
	return "tcg"
}
