// Command cmd regenerates semconv/generated.go and semconv/README.md from
// semconv/registry/ipc.yaml. Run it with go generate ./semconv.
package main

import (
	"log"
	"os"

	"github.com/icptrack/icptrack/semconv/internal/registry"
)

func main() {
	b, err := os.ReadFile("registry/ipc.yaml")
	if err != nil {
		log.Fatal(err)
	}
	f, err := registry.Parse(b)
	if err != nil {
		log.Fatalf("registry/ipc.yaml: %v", err)
	}
	src, err := registry.Generate(f)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("generated.go", src, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("README.md", registry.README(f), 0o644); err != nil {
		log.Fatal(err)
	}
}
