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

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/probes"
)

// versionReport is what icptrack version prints, and its --json form.
type versionReport struct {
	Version   string        `json:"version"`
	Commit    string        `json:"commit"`
	Modified  bool          `json:"modified"`
	Go        string        `json:"go"`
	Platform  string        `json:"platform"`
	BPFObject string        `json:"bpf_object"`
	Kernel    kernelSupport `json:"kernel"`
}

// kernelSupport is icptrack check's report in short.
type kernelSupport struct {
	Release string `json:"release"`
	// Checked is false when nothing could be loaded (Error says why):
	// then Available says nothing about the kernel.
	Checked    bool     `json:"checked"`
	Available  int      `json:"available"`
	Mechanisms int      `json:"mechanisms"`
	Off        []string `json:"off,omitempty"`
	Error      string   `json:"error,omitempty"`
	Summary    string   `json:"summary"`
}

func newVersionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print icptrack's version, commit, Go version, BPF object and what this kernel supports",
		Long: "Prints the version, the commit it was built from, the Go version, the id of the BPF object built in\n" +
			"(the first 12 hex digits of its SHA-256), and icptrack check's verdict on this kernel in one line.\n" +
			"Without root (or CAP_BPF and CAP_PERFMON) the kernel cannot be checked, and the line says so.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			r := newVersionReport(runCheck(probes.DefaultConfig()))
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return r.print(os.Stdout)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the same as one JSON object")
	return cmd
}

func newVersionReport(check checkReport) versionReport {
	commit, modified := exporter.Commit()
	ok, off := check.available()
	return versionReport{
		Version:   exporter.Version(),
		Commit:    commit,
		Modified:  modified,
		Go:        runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		BPFObject: probes.ObjectID(),
		Kernel: kernelSupport{
			Release:    check.Kernel,
			Checked:    check.Error == "",
			Available:  ok,
			Mechanisms: len(check.Mechanisms),
			Off:        off,
			Error:      check.Error,
			Summary:    check.summary(),
		},
	}
}

func (r versionReport) print(w io.Writer) error {
	commit := r.Commit
	switch {
	case commit == "":
		commit = "unknown (built without git)"
	case r.Modified:
		commit += " (modified)"
	}
	fmt.Fprintf(w, "icptrack %s\n", r.Version)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "commit\t%s\n", commit)
	fmt.Fprintf(tw, "go\t%s %s\n", r.Go, r.Platform)
	fmt.Fprintf(tw, "bpf object\t%s\n", r.BPFObject)
	fmt.Fprintf(tw, "kernel\t%s\n", strings.TrimPrefix(r.Kernel.Summary, "kernel "))
	return tw.Flush()
}
