// Command kernelmatrix runs a package's tests inside other Linux kernels
// under QEMU: make test-kernels. For each kernel it builds the test binary
// for the kernel's architecture, fetches the newest Debian kernel of the
// series with apt, boots it with the binary in an initramfs, and reports
// the binary's exit status. It prints every VM's console and a summary,
// and exits non-zero when any kernel failed.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/icptrack/icptrack/internal/vmtest"
)

func main() {
	kernelList := flag.String("kernels", vmtest.DefaultKernels, "comma-separated kernels to run in")
	runRE := flag.String("run", ".", "which tests run inside the VMs (go test -run)")
	skipRE := flag.String("skip", "", "which tests do not (go test -skip): those of mechanisms a kernel cannot serve")
	// The whole probes package takes about 6 minutes under TCG: 20
	// leaves room for a slow machine, and two hung kernels still leave
	// CI inside its 90 minutes.
	timeout := flag.Duration("timeout", 20*time.Minute, "per kernel: boot, tests and power-off")
	pkg := flag.String("pkg", "./probes", "the package whose tests run")
	cacheDir := flag.String("cache", defaultCache(), "where fetched kernels are kept")
	outDir := flag.String("out", "bin/vmtest", "where binaries and initramfs images go")
	goCmd := flag.String("go", envOr("GO", "go"), "the go command")
	cpus := flag.Int("cpus", 2, "virtual CPUs per VM")
	retry := flag.Bool("retry", false, "run the tests that failed once more in a new VM, and report them as flaky if they pass")
	memory := flag.Int("memory", 2048, "memory per VM, MiB")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := matrix{retry: *retry, runRE: *runRE, skipRE: *skipRE, timeout: *timeout, cacheDir: *cacheDir, cpus: *cpus, memory: *memory}
	if err := m.prepare(ctx, *kernelList, *goCmd, *pkg, *outDir); err != nil {
		fmt.Fprintf(os.Stderr, "kernelmatrix: %v\n", err)
		os.Exit(2)
	}
	results := m.runAll(ctx)
	if failed := summarize(os.Stdout, results); failed > 0 {
		os.Exit(1)
	}
}

type matrix struct {
	runRE    string
	skipRE   string
	timeout  time.Duration
	cacheDir string
	cpus     int
	memory   int

	kernels    []vmtest.Kernel
	initramfss map[string]string    // per architecture
	binaries   map[string][2]string // per architecture: init and test binary, for a retry's initramfs
	retry      bool
}

// prepare checks QEMU is there and builds one initramfs per architecture.
func (m *matrix) prepare(ctx context.Context, kernelList, goCmd, pkg, outDir string) error {
	kernels, err := vmtest.ParseKernels(kernelList)
	if err != nil {
		return err
	}
	m.kernels = kernels
	for _, k := range kernels {
		if _, err := vmtest.QEMU(k.Arch); err != nil {
			return err
		}
	}
	root, err := vmtest.ModRoot(goCmd)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(outDir) {
		outDir = filepath.Join(root, outDir)
	}
	b := vmtest.Build{Go: goCmd, ModRoot: root, Package: pkg, OutDir: outDir}
	m.initramfss = map[string]string{}
	m.binaries = map[string][2]string{}
	for _, k := range kernels {
		if m.initramfss[k.Arch] != "" {
			continue
		}
		start := time.Now()
		initPath, testPath, err := b.Binaries(ctx, k.Arch)
		if err != nil {
			return err
		}
		job := vmtest.Job{Binary: "/" + filepath.Base(testPath), Args: m.testArgs()}
		path := filepath.Join(outDir, k.Arch, "initramfs.gz")
		if err := vmtest.WriteInitramfs(path, initPath, testPath, job); err != nil {
			return err
		}
		fmt.Printf("built %s for %s in %s\n", path, k.Arch, time.Since(start).Round(100*time.Millisecond))
		m.initramfss[k.Arch] = path
		m.binaries[k.Arch] = [2]string{initPath, testPath}
	}
	return nil
}

// testArgs run the tests verbosely, so the log shows which ran, and stop
// them early enough that Go's own timeout, which names the test that hung
// and prints every goroutine, fires before the VM's.
func (m *matrix) testArgs() []string {
	inner := m.timeout - 2*time.Minute
	if inner < m.timeout/2 {
		inner = m.timeout / 2
	}
	args := []string{"-test.v", "-test.run=" + m.runRE, "-test.timeout=" + inner.String()}
	if m.skipRE != "" {
		args = append(args, "-test.skip="+m.skipRE)
	}
	return args
}

func (m *matrix) runAll(ctx context.Context) []vmtest.Result {
	var results []vmtest.Result
	for _, k := range m.kernels {
		say := func(format string, args ...any) {
			fmt.Printf("[%s] %s\n", k.Name, fmt.Sprintf(format, args...))
		}
		if ctx.Err() != nil {
			results = append(results, vmtest.Result{Kernel: k.Name, Err: fmt.Errorf("not run: interrupted")})
			continue
		}
		img, err := vmtest.FetchKernel(ctx, k, m.cacheDir, say)
		if err != nil {
			say("%v", err)
			results = append(results, vmtest.Result{Kernel: k.Name, Err: err})
			continue
		}
		say("=== %s %s (%s), tests %q, skipping %q", img.Package, img.Version, img.Vmlinuz, m.runRE, m.skipRE)
		vm := vmtest.VM{Kernel: k, Vmlinuz: img.Vmlinuz, Initramfs: m.initramfss[k.Arch], CPUs: m.cpus, MemoryMiB: m.memory}
		var console bytes.Buffer
		res := vmtest.Run(ctx, vm, m.timeout, io.MultiWriter(os.Stdout, &console))
		say("=== %s after %s", verdict(res), res.Duration.Round(100*time.Millisecond))
		if m.retry && !res.Passed() && ctx.Err() == nil {
			res = m.rerun(ctx, vm, res, failedTests(console.String()), say)
		}
		results = append(results, res)
	}
	return results
}

// summarize prints the table and the final count, and returns how many
// kernels failed.
func summarize(out io.Writer, results []vmtest.Result) (failed int) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KERNEL\tUNAME -R\tRESULT\tBOOT\tTOTAL")
	for _, r := range results {
		if !r.Passed() {
			failed++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Kernel, orDash(r.Release), verdict(r), dur(r.Boot), dur(r.Duration))
	}
	tw.Flush()
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(out, "%s: %v\n", r.Kernel, r.Err)
		}
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", len(results)-failed, failed)
	return failed
}

func verdict(r vmtest.Result) string {
	switch {
	case r.Err != nil:
		return "FAIL (no exit status)"
	case r.ExitCode != 0:
		return fmt.Sprintf("FAIL (exit %d)", r.ExitCode)
	}
	return "pass"
}

func dur(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(100 * time.Millisecond).String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func defaultCache() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "icptrack", "kernels")
	}
	return filepath.Join("bin", "kernels")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// failedTests are the top-level tests a go test -v log says failed.
func failedTests(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if i := strings.Index(line, "] --- FAIL: "); i >= 0 {
			name, _, _ := strings.Cut(line[i+len("] --- FAIL: "):], " ")
			out = append(out, name)
		}
	}
	return out
}

// rerun runs the tests that failed once more, in a fresh VM, and says so
// loudly: a test that passes then is flaky on that kernel, which is a
// defect to fix, but not one that should hide whether the rest works.
// A VM that died (a kernel panic or lockup, a timeout) runs everything
// again. A test that fails twice fails the kernel.
func (m *matrix) rerun(ctx context.Context, vm vmtest.VM, first vmtest.Result, failed []string, say func(string, ...any)) vmtest.Result {
	what := strings.Join(failed, " ")
	if first.Err != nil || len(failed) == 0 {
		say("=== RETRY everything once, in a new VM: the first ended with %v", orExit(first))
		what = "the whole run (" + orExit(first) + ")"
	} else {
		say("=== RETRY once, in a new VM: %s", what)
		re := "^(" + strings.Join(failed, "|") + ")$"
		args := []string{"-test.v", "-test.run=" + re, "-test.timeout=" + (m.timeout / 2).String()}
		bins := m.binaries[vm.Kernel.Arch]
		path := strings.TrimSuffix(vm.Initramfs, ".gz") + "-retry.gz"
		if err := vmtest.WriteInitramfs(path, bins[0], bins[1], vmtest.Job{Binary: "/" + filepath.Base(bins[1]), Args: args}); err != nil {
			return vmtest.Result{Kernel: vm.Kernel.Name, Err: err}
		}
		vm.Initramfs = path
	}
	res := vmtest.Run(ctx, vm, m.timeout, os.Stdout)
	if res.Passed() {
		say("=== FLAKY on %s: %s failed, then passed on the retry", vm.Kernel.Name, what)
	} else {
		say("=== failed again on the retry: %s", what)
	}
	return res
}

func orExit(r vmtest.Result) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return fmt.Sprintf("exit %d", r.ExitCode)
}
