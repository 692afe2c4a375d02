package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/probes"
)

// checkReport is what icptrack check finds, and its --json form.
type checkReport struct {
	Kernel       string            `json:"kernel"`
	Arch         string            `json:"arch"`
	BTF          bool              `json:"btf"`
	Capabilities []string          `json:"capabilities"`
	Lockdown     string            `json:"lockdown"`
	Features     []probes.Feature  `json:"features"`
	Mechanisms   []mechanismReport `json:"mechanisms"`
	Error        string            `json:"error,omitempty"` // what stopped every mechanism
	OK           bool              `json:"ok"`
}

type mechanismReport struct {
	Mechanism string   `json:"mechanism"`
	Status    string   `json:"status"` // ok or unavailable
	Hooks     []string `json:"hooks,omitempty"`
	Reason    string   `json:"reason,omitempty"`
}

func newCheckCommand() *cobra.Command {
	var mechanisms, mode string
	var payload int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Say what this kernel offers: which mechanisms icptrack can trace here, and why not",
		Long: "Loads and attaches every BPF program icptrack would use, tracing nothing, and prints one row per\n" +
			"mechanism (ok, or unavailable with the reason), with the kernel, BTF, capabilities, lockdown and the\n" +
			"BPF features icptrack uses or could use. Exits 0 when every mechanism is available, 1 otherwise.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := probes.DefaultConfig()
			var err error
			if cfg.Mechanisms, err = flow.ParseMechanisms(mechanisms); err != nil {
				return usageError("--mechanisms: %v", err)
			}
			if payload < 0 || payload > probes.MaxPayloadBytes {
				return usageError("--payload %d is out of range: use 0 (off) to %d bytes", payload, probes.MaxPayloadBytes)
			}
			cfg.PayloadBytes = payload
			switch mode {
			case modeEvents:
			case modeMetrics:
				cfg.MetricsOnly = true
			default:
				return usageError("--mode %q is not a mode: use events or metrics", mode)
			}
			r := runCheck(cfg)
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else if err := r.print(os.Stdout); err != nil {
				return err
			}
			if !r.OK {
				return &exitError{code: exitFailure}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&mechanisms, "mechanisms", "all", "mechanisms to check: "+strings.Join(flow.MechanismNames(), ", "))
	fs.IntVar(&payload, "payload", 0, "check the programs as --payload N would load them")
	fs.StringVar(&mode, "mode", modeEvents, "check the programs of this mode: events or metrics")
	fs.BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	return cmd
}

func runCheck(cfg probes.Config) checkReport {
	r := checkReport{
		Kernel:       probes.KernelRelease(),
		Arch:         runtime.GOARCH,
		BTF:          probes.HaveBTF(),
		Capabilities: probes.Capabilities(),
		Lockdown:     probes.Lockdown(),
		Features:     probes.KernelFeatures(),
	}
	sts, err := probes.Check(cfg)
	if err != nil {
		r.Error = err.Error()
		for _, m := range cfg.Mechanisms.List() {
			r.Mechanisms = append(r.Mechanisms, mechanismReport{Mechanism: m.String(), Status: "unavailable", Reason: r.Error})
		}
		return r
	}
	r.OK = true
	for _, st := range sts {
		m := mechanismReport{Mechanism: st.Mechanism.String(), Status: "ok", Hooks: st.Hooks}
		if st.Err != nil {
			m.Status, m.Reason, r.OK = "unavailable", st.Err.Error(), false
		}
		r.Mechanisms = append(r.Mechanisms, m)
	}
	return r
}

// available is how many of the mechanisms checked are ok, and the names
// of those that are not.
func (r checkReport) available() (ok int, off []string) {
	for _, m := range r.Mechanisms {
		if m.Status == "ok" {
			ok++
		} else {
			off = append(off, m.Mechanism)
		}
	}
	return ok, off
}

// summary is the report in one line, for icptrack version: "kernel
// 6.18.44 (amd64): all 13 mechanisms", "kernel 6.1.0 (arm64): 11 of 13
// mechanisms; off: tcp, udp (icptrack check says why)", or why nothing
// could be checked.
func (r checkReport) summary() string {
	head := fmt.Sprintf("kernel %s (%s): ", r.Kernel, r.Arch)
	if r.Error != "" {
		return head + "could not check: " + r.Error
	}
	ok, off := r.available()
	if len(off) == 0 {
		return head + fmt.Sprintf("all %d mechanisms", ok)
	}
	return head + fmt.Sprintf("%d of %d mechanisms; off: %s (icptrack check says why)", ok, len(r.Mechanisms), strings.Join(off, ", "))
}

func (r checkReport) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	caps := strings.Join(r.Capabilities, " ")
	if caps == "" {
		caps = "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN: run as root, or grant CAP_BPF and CAP_PERFMON"
	}
	fmt.Fprintf(tw, "kernel\t%s (%s)\n", r.Kernel, r.Arch)
	fmt.Fprintf(tw, "BTF\t%s\n", yes(r.BTF))
	fmt.Fprintf(tw, "capabilities\t%s\n", caps)
	fmt.Fprintf(tw, "lockdown\t%s\n", r.Lockdown)
	for _, f := range r.Features {
		v := "yes"
		if !f.Available {
			v = "no: " + f.Reason
		}
		fmt.Fprintf(tw, "%s\t%s\n", f.Name, v)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "MECHANISM\tSTATUS")
	for _, m := range r.Mechanisms {
		if m.Status == "ok" {
			fmt.Fprintf(tw, "%s\tok (%s)\n", m.Mechanism, strings.Join(m.Hooks, ", "))
		} else {
			fmt.Fprintf(tw, "%s\tunavailable: %s\n", m.Mechanism, m.Reason)
		}
	}
	return tw.Flush()
}
