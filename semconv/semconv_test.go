package semconv

import (
	"bytes"
	"os"
	"testing"

	"github.com/icptrack/icptrack/semconv/internal/registry"
)

// The Go constants and the README are made from the YAML: a test fails when
// either was not regenerated after the YAML changed (go generate ./semconv),
// or was edited by hand.
func TestGeneratedFilesMatchTheRegistry(t *testing.T) {
	b, err := os.ReadFile("registry/ipc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f, err := registry.Parse(b)
	if err != nil {
		t.Fatalf("registry/ipc.yaml: %v", err)
	}
	src, err := registry.Generate(f)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string][]byte{"generated.go": src, "README.md": registry.README(f)} {
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s does not match registry/ipc.yaml: run go generate ./semconv", file)
		}
	}
}

// A few constants the exporters depend on, spelled as OpenTelemetry and
// Prometheus users expect.
func TestConstantsUsersSee(t *testing.T) {
	for got, want := range map[string]string{
		AttrIPCMechanism:               "ipc.mechanism",
		AttrIPCPeerProcessPID:          "ipc.peer.process.pid",
		IPCMechanismPOSIXMQ:            "posix_mq",
		MetricIPCIO:                    "ipc.io",
		MetricIPCIOUnit:                "By",
		MetricIPCOperationDurationUnit: "s",
		AttrMessagingDestinationName:   "messaging.destination.name",
		EventIPCPayload:                "ipc.payload",
		MetricIcptrackEventsDropped:    "icptrack.events.dropped",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
}
