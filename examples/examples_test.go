// Package examples holds icptrack's example configurations; its test
// checks every one of them.
package examples

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// yamlFiles are every YAML file under examples/.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// documents parses each YAML document of a file.
func documents(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// collectorConfigs are the Collector configurations in examples/: the
// files with a service section, and those inside Kubernetes ConfigMaps
// (written out to dir).
func collectorConfigs(t *testing.T, dir string) map[string]string {
	t.Helper()
	configs := map[string]string{}
	for _, f := range yamlFiles(t) {
		for i, doc := range documents(t, f) {
			if _, ok := doc["service"]; ok {
				configs[f] = f
			}
			kind, _ := doc["kind"].(string)
			if _, ok := doc["apiVersion"]; ok {
				meta, _ := doc["metadata"].(map[string]any)
				if kind == "" || meta == nil || meta["name"] == nil {
					t.Errorf("%s, document %d: a Kubernetes object needs kind and metadata.name", f, i+1)
				}
			}
			if kind != "ConfigMap" {
				continue
			}
			data, _ := doc["data"].(map[string]any)
			for key, v := range data {
				text, _ := v.(string)
				var inner map[string]any
				if err := yaml.Unmarshal([]byte(text), &inner); err != nil {
					t.Errorf("%s: ConfigMap key %s is not YAML: %v", f, key, err)
					continue
				}
				if _, ok := inner["service"]; !ok {
					continue
				}
				out := filepath.Join(dir, strings.NewReplacer("/", "_").Replace(f)+"."+key)
				if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				configs[f+" ("+key+")"] = out
			}
		}
	}
	return configs
}

func TestEveryExampleParses(t *testing.T) {
	files := yamlFiles(t)
	if len(files) < 6 {
		t.Fatalf("found %d YAML files under examples/", len(files))
	}
	for _, f := range files {
		if len(documents(t, f)) == 0 {
			t.Errorf("%s has no document", f)
		}
	}
}

// otelcolBinary is the distribution make otelcol builds.
func otelcolBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("ICPTRACK_OTELCOL")
	if bin == "" {
		bin, _ = filepath.Abs("../bin/otelcol-icptrack")
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: run make otelcol", bin)
		}
		t.Skipf("%s is missing: run make otelcol", bin)
	}
	return bin
}

func TestCollectorConfigsValidate(t *testing.T) {
	bin := otelcolBinary(t)
	configs := collectorConfigs(t, t.TempDir())
	if len(configs) < 4 {
		t.Fatalf("found %d Collector configurations, want the two files and the two ConfigMaps", len(configs))
	}
	for name, path := range configs {
		if out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput(); err != nil {
			t.Errorf("otelcol-icptrack validate %s: %v\n%s", name, err, out)
		}
	}
}
