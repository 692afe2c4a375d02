// Package icptrackreceiver is the icptrack receiver for the OpenTelemetry
// Collector: it traces inter-process communication on the host with eBPF
// and emits spans, metrics and log records, with the same capture,
// correlation and mapping code as the standalone icptrack agent.
package icptrackreceiver

//go:generate go tool -modfile=../../tools/mdatagen/go.mod mdatagen metadata.yaml
