// Package semconv holds icptrack's semantic conventions for IPC: the
// registry (registry/ipc.yaml) and the constants made from it.
package semconv

//go:generate go run ./internal/registry/cmd
