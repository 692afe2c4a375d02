// Package registry reads icptrack's semantic-convention registry (YAML, in
// OpenTelemetry's registry syntax) and writes the Go constants and the
// README that go with it.
package registry

import (
	"bytes"
	"fmt"
	"go/format"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is the registry file's structure: the parts icptrack uses.
type File struct {
	Groups []Group `yaml:"groups"`
}

type Group struct {
	ID          string      `yaml:"id"`
	Type        string      `yaml:"type"`
	DisplayName string      `yaml:"display_name"`
	Brief       string      `yaml:"brief"`
	Note        string      `yaml:"note"`
	Name        string      `yaml:"name"`
	SpanKind    string      `yaml:"span_kind"`
	Stability   string      `yaml:"stability"`
	MetricName  string      `yaml:"metric_name"`
	Instrument  string      `yaml:"instrument"`
	Unit        string      `yaml:"unit"`
	Attributes  []Attribute `yaml:"attributes"`
}

type Attribute struct {
	ID               string    `yaml:"id"`
	Ref              string    `yaml:"ref"`
	Type             yaml.Node `yaml:"type"`
	Stability        string    `yaml:"stability"`
	Brief            string    `yaml:"brief"`
	Note             string    `yaml:"note"`
	Examples         yaml.Node `yaml:"examples"`
	RequirementLevel yaml.Node `yaml:"requirement_level"`
}

type member struct {
	ID    string `yaml:"id"`
	Value string `yaml:"value"`
	Brief string `yaml:"brief"`
}

// Parse reads a registry file.
func Parse(b []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	return &f, nil
}

func (a *Attribute) members() []member {
	if a.Type.Kind != yaml.MappingNode {
		return nil
	}
	var t struct {
		Members []member `yaml:"members"`
	}
	_ = a.Type.Decode(&t)
	return t.Members
}

func (a *Attribute) typeName() string {
	if a.Type.Kind == yaml.ScalarNode {
		return a.Type.Value
	}
	if len(a.members()) > 0 {
		return "enum"
	}
	return ""
}

func (a *Attribute) requirement() string {
	switch a.RequirementLevel.Kind {
	case yaml.ScalarNode:
		return a.RequirementLevel.Value
	case yaml.MappingNode:
		if len(a.RequirementLevel.Content) == 2 {
			return strings.ReplaceAll(a.RequirementLevel.Content[0].Value, "_", " ") + ": " + a.RequirementLevel.Content[1].Value
		}
	}
	return ""
}

func (a *Attribute) examples() string {
	var xs []string
	switch a.Examples.Kind {
	case yaml.SequenceNode:
		for _, n := range a.Examples.Content {
			xs = append(xs, "`"+n.Value+"`")
		}
	case yaml.ScalarNode:
		xs = append(xs, "`"+a.Examples.Value+"`")
	}
	return strings.Join(xs, ", ")
}

// initialisms are written in capitals in Go names.
var initialisms = map[string]string{"ipc": "IPC", "pid": "PID", "tid": "TID", "id": "ID", "io": "IO", "mq": "MQ",
	"shm": "Shm", "sysv": "SysV", "posix": "POSIX", "tcp": "TCP", "udp": "UDP"}

func goName(id string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(id, func(r rune) bool { return r == '.' || r == '_' }) {
		if s, ok := initialisms[part]; ok {
			b.WriteString(s)
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

// Generate writes the Go constants for a registry.
func Generate(f *File) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated from registry/ipc.yaml by internal/registry; DO NOT EDIT.\n\npackage semconv\n\n")
	var refs []string
	for _, g := range f.Groups {
		for _, a := range g.Attributes {
			switch {
			case a.ID != "":
				fmt.Fprintf(&b, "// Attr%s: %s\n", goName(a.ID), oneLine(a.Brief))
				fmt.Fprintf(&b, "const Attr%s = %q\n\n", goName(a.ID), a.ID)
				if ms := a.members(); len(ms) > 0 {
					b.WriteString("const (\n")
					for _, m := range ms {
						fmt.Fprintf(&b, "\t// %s%s: %s\n\t%s%s = %q\n", goName(a.ID), goName(m.ID), oneLine(m.Brief), goName(a.ID), goName(m.ID), m.Value)
					}
					b.WriteString(")\n\n")
				}
			case a.Ref != "" && g.Type == "attribute_group":
				refs = append(refs, a.Ref)
			}
		}
		switch g.Type {
		case "metric":
			n := goName(g.MetricName)
			fmt.Fprintf(&b, "// Metric%s: %s\nconst (\n\tMetric%s = %q\n\tMetric%sUnit = %q\n\tMetric%sDescription = %q\n)\n\n",
				n, oneLine(g.Brief), n, g.MetricName, n, g.Unit, n, oneLine(g.Brief))
		case "event":
			fmt.Fprintf(&b, "// Event%s: %s\nconst Event%s = %q\n\n", goName(g.Name), oneLine(g.Brief), goName(g.Name), g.Name)
		}
	}
	sort.Strings(refs)
	b.WriteString("// OpenTelemetry attributes icptrack reuses as they are.\nconst (\n")
	for _, r := range refs {
		fmt.Fprintf(&b, "\tAttr%s = %q\n", goName(r), r)
	}
	b.WriteString(")\n")
	return format.Source(b.Bytes())
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// README writes the tables a dashboard author reads.
func README(f *File) []byte {
	var b bytes.Buffer
	b.WriteString("# icptrack's semantic conventions\n\n")
	b.WriteString("Generated from [`registry/ipc.yaml`](registry/ipc.yaml) (OpenTelemetry registry syntax) by `go generate ./semconv`; the Go constants are in `generated.go`. icptrack reuses OpenTelemetry's attributes wherever they fit and adds `ipc.*` for what they lack.\n\n")
	b.WriteString("## Attributes\n\n| attribute | type | brief | examples | requirement |\n|---|---|---|---|---|\n")
	for _, g := range f.Groups {
		if g.Type != "attribute_group" && g.Type != "event" {
			continue
		}
		for _, a := range g.Attributes {
			if a.ID == "" {
				continue
			}
			brief := oneLine(a.Brief)
			if ms := a.members(); len(ms) > 0 {
				var vs []string
				for _, m := range ms {
					vs = append(vs, "`"+m.Value+"`")
				}
				brief += " One of " + strings.Join(vs, ", ") + "."
			}
			if a.Note != "" {
				brief += " " + oneLine(a.Note)
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", a.ID, a.typeName(), brief, a.examples(), a.requirement())
		}
	}
	b.WriteString("\nReused from OpenTelemetry: ")
	var refs []string
	for _, g := range f.Groups {
		if g.Type == "attribute_group" {
			for _, a := range g.Attributes {
				if a.Ref != "" {
					refs = append(refs, "`"+a.Ref+"`")
				}
			}
		}
	}
	b.WriteString(strings.Join(refs, ", ") + ". Resources carry `service.name` (the executable's name unless configured), `process.*`, `host.name` and `container.id`.\n\n")
	b.WriteString("## Spans\n\n")
	for _, g := range f.Groups {
		if g.Type == "span" {
			fmt.Fprintf(&b, "%s\n\nAttributes: ", oneLine(g.Brief))
			var as []string
			for _, a := range g.Attributes {
				as = append(as, "`"+a.Ref+"`")
			}
			b.WriteString(strings.Join(as, ", ") + ".\n\n")
		}
		if g.Type == "event" {
			fmt.Fprintf(&b, "Span event `%s`: %s\n\n", g.Name, oneLine(g.Brief))
		}
	}
	b.WriteString("## Metrics\n\nIn Prometheus the names become `ipc_io_bytes_total`, `ipc_operation_duration_seconds`, and so on. No metric carries a pid or a channel id, so their cardinality stays bounded.\n\n| metric | instrument | unit | brief | attributes |\n|---|---|---|---|---|\n")
	for _, g := range f.Groups {
		if g.Type != "metric" {
			continue
		}
		var as []string
		for _, a := range g.Attributes {
			as = append(as, "`"+a.Ref+"`")
		}
		brief := oneLine(g.Brief)
		if g.Note != "" {
			brief += " " + oneLine(g.Note)
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s |\n", g.MetricName, g.Instrument, g.Unit, brief, strings.Join(as, ", "))
	}
	return b.Bytes()
}
