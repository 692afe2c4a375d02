package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/icptrack/icptrack/store"
)

// storeKeyFlags are how verify and query are given a store's keys.
type storeKeyFlags struct {
	keyring  string
	identity string
}

func (f *storeKeyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.keyring, "keyring", "",
		"the keyring the store was encrypted with (default: $CREDENTIALS_DIRECTORY/"+store.CredentialName+" when there is one)")
	cmd.Flags().StringVar(&f.identity, "identity", "",
		"an age identity file (age-keygen's) that opens the keys the keyring keeps only wrapped for its recipients")
}

// load reads the keyring, if any, and unwraps what the identity opens.
// Every problem is a usage error: a key that cannot be used.
func (f *storeKeyFlags) load() (*store.Keyring, error) {
	path := store.ResolveKeyFile(f.keyring)
	if path == "" {
		if f.identity != "" {
			return nil, usageError("--identity opens keys of a keyring: give --keyring FILE too")
		}
		return nil, nil
	}
	kr, err := store.LoadKeyring(path)
	if err != nil {
		return nil, keyError(err)
	}
	if f.identity != "" {
		ids, err := store.LoadIdentities(f.identity)
		if err != nil {
			return nil, keyError(err)
		}
		if err := kr.Unwrap(ids); err != nil {
			return nil, keyError(err)
		}
	}
	return kr, nil
}

type verifyFlags struct {
	storeKeyFlags
	verifyKey  string
	checkpoint string
	json       bool
}

func newVerifyCommand() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify DIR [--verify-key K] [--keyring FILE] [--checkpoint FILE] [--json]",
		Short: "Check that a store (--store) is as it was written: nothing changed, removed or reordered",
		Long: `verify checks a store written with --store, at up to three levels:
  - always, the hash chain: a changed byte, a removed, swapped or cut block, a removed or
    reordered segment;
  - with --verify-key (printed by icptrack keys new --store), the seals: a chain rewritten
    by someone without the seal key, a seal made with a later epoch's key;
  - with the keyring, every block's GCM tag.
With --checkpoint FILE, the checkpoints sent off the host must all still be in the store,
which is what catches the newest segments removed.

It prints a line per segment, PASS or the first bad block, then which levels it checked.
Exit status: 0 all passed, 1 something was found, 2 a usage or key error.`,
		Example: `  icptrack verify /var/lib/icptrack/store
  icptrack verify /var/lib/icptrack/store --verify-key @/media/usb/icptrack.vk --keyring /etc/icptrack/keyring
  icptrack verify /var/lib/icptrack/store --checkpoint /var/log/remote/icptrack.log --json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("verify needs the store's directory: icptrack verify DIR")
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error { return runVerify(&f, args[0], os.Stdout) },
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.verifyKey, "verify-key", "", "the verification key keys new printed (icptrack-vk1-…), or @FILE to read it from FILE")
	cmd.Flags().StringVar(&f.checkpoint, "checkpoint", "", "a file with the checkpoints the store sent off the host (any lines holding them: syslog, exported log records)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the report as one JSON object")
	return cmd
}

func runVerify(f *verifyFlags, dir string, stdout io.Writer) error {
	var o store.VerifyOptions
	if f.verifyKey != "" {
		text := f.verifyKey
		if path, ok := strings.CutPrefix(text, "@"); ok {
			b, err := os.ReadFile(path)
			if err != nil {
				return keyError(fmt.Errorf("--verify-key: %v", err))
			}
			text = string(b)
		}
		vk, err := store.ParseVerifyKey(text)
		if err != nil {
			return keyError(fmt.Errorf("--verify-key: %v", err))
		}
		o.VerifyKey = vk
	}
	kr, err := f.load()
	if err != nil {
		return err
	}
	o.Keyring = kr
	if f.checkpoint != "" {
		if o.Checkpoints, err = store.ReadCheckpoints(f.checkpoint); err != nil {
			return usageError("--checkpoint: %v", err)
		}
	}
	r, err := store.Verify(dir, o)
	var ke *store.KeyError
	switch {
	case errors.As(err, &ke):
		return keyError(err)
	case err != nil:
		return usageError("%v", err)
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(r); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
	} else {
		printVerifyReport(stdout, r)
	}
	if !r.OK {
		return &exitError{code: exitFailure, err: fmt.Errorf("verify %s: %s failed", dir, failedCount(r))}
	}
	return nil
}

func failedCount(r *store.Report) string {
	segs := 0
	for _, s := range r.Segments {
		if !s.OK() {
			segs++
		}
	}
	var parts []string
	if segs > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d segments", segs, len(r.Segments)))
	}
	if n := r.Failed - segs; n > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d checkpoints", n, len(r.Checkpoints)))
	}
	return strings.Join(parts, " and ")
}

func printVerifyReport(w io.Writer, r *store.Report) {
	for _, s := range r.Segments {
		if s.OK() {
			fmt.Fprintf(w, "%s  PASS  %s\n", s.File, segmentSummary(&s))
		} else {
			where := "the segment"
			if s.Block >= 0 {
				where = fmt.Sprintf("block %d at offset %d", s.Block, s.Offset)
			} else if s.Offset == 0 {
				where = "the header"
			}
			fmt.Fprintf(w, "%s  FAIL  %s: %s: %s\n", s.File, s.Status, where, s.Detail)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "    %s\n", n)
		}
	}
	for _, c := range r.Checkpoints {
		what := "PASS"
		if c.Status != store.StatusPass {
			what = c.Status + ": " + c.Detail
			if c.Status != "expired" {
				what = "FAIL  " + what
			}
		}
		fmt.Fprintf(w, "checkpoint of record %d (segment %d, block %d)  %s\n", c.Checkpoint.Seq, c.Checkpoint.Segment, c.Checkpoint.Block, what)
	}
	verdict := "all PASS"
	if !r.OK {
		verdict = failedCount(r) + " FAILED"
	}
	fmt.Fprintf(w, "%s, %s, %s: %s; checked: %s", plural(len(r.Segments), "segment"), plural(int(r.Records), "record"), bytesText(r.Bytes), verdict, levelNames(r.Levels))
	if len(r.Unchecked) > 0 {
		fmt.Fprintf(w, "; not checked: %s", strings.Join(r.Unchecked, ", "))
	}
	fmt.Fprintln(w)
}

func levelNames(levels []string) string {
	names := map[string]string{"chain": "the chain", "seals": "the seals (verification key)", "encryption": "every GCM tag (keyring)"}
	out := make([]string, len(levels))
	for i, l := range levels {
		out[i] = names[l]
	}
	return strings.Join(out, ", ")
}

func segmentSummary(s *store.SegmentResult) string {
	var parts []string
	switch s.Records {
	case 0:
		parts = append(parts, "no records")
	case 1:
		parts = append(parts, fmt.Sprintf("1 record (%d)", s.FirstSeq))
	default:
		parts = append(parts, fmt.Sprintf("%d records (%d–%d)", s.Records, s.FirstSeq, s.LastSeq))
	}
	if !s.From.IsZero() {
		parts = append(parts, s.From.UTC().Format(time.DateTime)+" to "+s.To.UTC().Format("15:04:05 UTC"))
	}
	switch s.Seals {
	case 0:
	case 1:
		parts = append(parts, "1 seal")
	default:
		parts = append(parts, fmt.Sprintf("%d seals", s.Seals))
	}
	if s.Closed {
		parts = append(parts, "closed")
	}
	return strings.Join(parts, ", ")
}

// bytesText is a byte count as people read it: 512 B, 4.2 MB.
func bytesText(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
