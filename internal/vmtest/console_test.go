package vmtest

import (
	"strings"
	"testing"
)

func feed(transcript string) *Console {
	c := &Console{}
	for _, line := range strings.SplitAfter(transcript, "\n") {
		c.Line(line)
	}
	return c
}

func TestConsoleReadsTheMarkersInitPrints(t *testing.T) {
	c := feed("[    0.000000] Linux version 6.1.0-57-cloud-amd64\r\n" +
		KernelLine("6.1.0-57-cloud-amd64", "x86_64") + "\r\n" +
		"=== RUN   TestDecodeOpRecord\r\n--- FAIL: TestDecodeOpRecord (0.01s)\r\nFAIL\r\n\r\n" +
		ExitLine(1) + "\r\n[    2.702824] reboot: Power down\r\n")
	if c.Release != "6.1.0-57-cloud-amd64" || c.Machine != "x86_64" {
		t.Errorf("kernel: %q %q", c.Release, c.Machine)
	}
	if !c.Exited || c.ExitCode != 1 {
		t.Errorf("exit: %v %d, want true 1", c.Exited, c.ExitCode)
	}
	if err := c.Err("the VM stopped"); err != nil {
		t.Errorf("an exit line was seen, yet Err says %v", err)
	}
}

func TestConsoleFindsAMarkerAfterAKernelMessage(t *testing.T) {
	// A printk can land on the console in the middle of init's line.
	c := feed("[    3.1] random: crng init done" + ExitLine(0) + "\n")
	if !c.Exited || c.ExitCode != 0 {
		t.Fatalf("exit: %v %d, want true 0", c.Exited, c.ExitCode)
	}
}

func TestConsoleKeepsTheFirstExitLine(t *testing.T) {
	c := feed(ExitLine(3) + "\n" + ExitLine(0) + "\n")
	if c.ExitCode != 3 {
		t.Fatalf("exit %d, want the first one, 3", c.ExitCode)
	}
}

func TestConsoleIgnoresAMalformedExitLine(t *testing.T) {
	c := feed("VMTEST-EXIT: \nVMTEST-EXIT: x1\n")
	if c.Exited {
		t.Fatalf("took a malformed line as exit %d", c.ExitCode)
	}
}

func TestConsoleSaysWhyAVMEndedWithoutAnExitLine(t *testing.T) {
	for _, tc := range []struct {
		name, transcript, want string
	}{
		{"no boot", "qemu: could not load kernel\n", "the kernel did not boot"},
		{"hung", KernelLine("6.1.0-57-cloud-arm64", "aarch64") + "\n=== RUN   TestPipe\n", "the tests did not finish"},
		{"panic", KernelLine("6.1.0-57-cloud-amd64", "x86_64") + "\n[ 9.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000200\n",
			"Kernel panic - not syncing: Attempted to kill init!"},
		{"lockup", KernelLine("6.1.0-57-cloud-amd64", "x86_64") + "\n[ 76.5] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [probes.test:96]\n" +
			"[ 76.6] Kernel panic - not syncing: softlockup: hung tasks\n",
			"BUG: soft lockup - CPU#0 stuck for 22s! [probes.test:96]"},
	} {
		err := feed(tc.transcript).Err("timed out after 1m")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "timed out after 1m") {
			t.Errorf("%s: %v, want it to say how (timed out) and %q", tc.name, err, tc.want)
		}
	}
}
