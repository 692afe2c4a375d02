//go:build gendocs

package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/icptrack/icptrack/exporter"
)

// Built with -tags gendocs, icptrack has one more command, gendocs, which
// writes its man pages and shell completions for the Debian packages
// (tools/mkdeb). The icptrack that ships has neither it nor cobra/doc.
func init() { extraCommands = append(extraCommands, newGendocsCommand) }

func newGendocsCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "gendocs DIR",
		Short:  "Write the man pages (DIR/man1/*.1.gz) and shell completions (DIR/completions/)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return gendocs(cmd.Root(), args[0])
		},
	}
}

func gendocs(root *cobra.Command, dir string) error {
	man, comp := filepath.Join(dir, "man1"), filepath.Join(dir, "completions")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	root.DisableAutoGenTag = true
	// The date comes from SOURCE_DATE_EPOCH when it is set (cobra/doc).
	header := &doc.GenManHeader{Title: "ICPTRACK", Section: "1", Source: "icptrack " + exporter.Version(), Manual: "icptrack manual"}
	if err := doc.GenManTree(root, header, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	pages, err := filepath.Glob(filepath.Join(man, "*.1"))
	if err != nil {
		return err
	}
	for _, p := range pages {
		if err := gzipFile(p); err != nil {
			return err
		}
	}
	var bash, zsh, fish bytes.Buffer
	if err := root.GenBashCompletionV2(&bash, true); err != nil {
		return err
	}
	if err := root.GenZshCompletion(&zsh); err != nil {
		return err
	}
	if err := root.GenFishCompletion(&fish, true); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"icptrack.bash": bash.Bytes(), "_icptrack": zsh.Bytes(), "icptrack.fish": fish.Bytes()} {
		if err := os.WriteFile(filepath.Join(comp, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gzipFile replaces path with path.gz, with no name or time in the
// header, so that the same page compresses to the same bytes (Debian
// policy's gzip -9n).
func gzipFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(path+".gz", out.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Remove(path)
}
