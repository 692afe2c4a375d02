// Package jaegerprometheus holds the Jaeger, Prometheus and Grafana
// example; its test checks the files against what icptrack serves.
package jaegerprometheus

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/icptrack/icptrack/semconv"
)

// prometheusNames are the series the agent's /metrics endpoint serves for
// the semantic conventions' metrics (the Prometheus exporter turns dots
// into underscores, adds the unit and _total to counters).
func prometheusNames() map[string]bool {
	base := func(n string) string { return strings.ReplaceAll(n, ".", "_") }
	names := map[string]bool{}
	for _, h := range []string{base(semconv.MetricIPCOperationDuration) + "_seconds"} {
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			names[h+s] = true
		}
	}
	for _, c := range []string{semconv.MetricIPCSentMessages, semconv.MetricIPCReceivedMessages, semconv.MetricIcptrackEventsProcessed, semconv.MetricIcptrackEventsDropped} {
		names[base(c)+"_total"] = true
	}
	names[base(semconv.MetricIPCIO)+"_bytes_total"] = true
	names[base(semconv.MetricIPCChannelBacklog)] = true
	names[base(semconv.MetricIPCShmAttachments)] = true
	return names
}

func TestDashboardUsesOnlyMetricsIcptrackServes(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	served := prometheusNames()
	metric := regexp.MustCompile(`\b(ipc|icptrack)_[a-z_]+`)
	exprs := 0
	check := func(where, expr string) {
		for _, m := range metric.FindAllString(expr, -1) {
			if !served[m] && !strings.HasPrefix(m, "ipc_mechanism") && !strings.HasPrefix(m, "ipc_direction") &&
				!strings.HasPrefix(m, "ipc_drop_reason") && !strings.HasPrefix(m, "ipc_operation_type") {
				t.Errorf("%s: %s is not a series icptrack serves", where, m)
			}
		}
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			check(p.Title, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		b, _ := json.Marshal(v.Query)
		check("a template variable", string(b))
	}
	if exprs < 9 {
		t.Errorf("%d queries in the dashboard, want a panel per metric", exprs)
	}
	for name := range served {
		if !strings.Contains(string(b), strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")) {
			t.Errorf("no panel shows %s", name)
		}
	}
}

func TestPrometheusConfigIsValid(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed: apt-get install prometheus")
		}
		t.Skip("promtool is not installed")
	}
	if out, err := exec.Command(promtool, "check", "config", "prometheus.yml").CombinedOutput(); err != nil {
		t.Errorf("promtool check config prometheus.yml: %v\n%s", err, out)
	}
}
