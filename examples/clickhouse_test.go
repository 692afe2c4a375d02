package examples

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The ClickHouse example feeds the icptrack receiver's logs pipeline to the
// clickhouse exporter, and the distribution accepts it: it was built with
// the exporter, and the exporter checks its settings (a malformed
// endpoint is refused, so validate is not passing them unread). No ClickHouse server
// new enough is packaged to run it against (README: Databases).
func TestClickHouseExampleValidates(t *testing.T) {
	const path = "collector/clickhouse.yaml"
	docs := documents(t, path)
	if len(docs) != 1 {
		t.Fatalf("%s has %d documents, want 1", path, len(docs))
	}
	logs, _ := dig(docs[0], "service", "pipelines", "logs").(map[string]any)
	if !slices.Contains(anyStrings(logs["receivers"]), "icptrack") || !slices.Contains(anyStrings(logs["exporters"]), "clickhouse") {
		t.Fatalf("%s: the logs pipeline is %v, want the icptrack receiver into the clickhouse exporter", path, logs)
	}
	bin := otelcolBinary(t)
	if out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput(); err != nil {
		t.Fatalf("otelcol-icptrack validate %s: %v\n%s", path, err, out)
	}
	// The endpoint comes from the environment: a malformed one is refused.
	cmd := exec.Command(bin, "validate", "--config", path)
	cmd.Env = append(os.Environ(), "CLICKHOUSE_ENDPOINT=tcp://[::1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "clickhouse") {
		t.Fatalf("validate accepted the endpoint tcp://[::1 (%v):\n%s", err, out)
	}
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
