// Package store keeps captured operations in append-only segment files:
// framing into blocks, encryption (AES-256-GCM with per-segment keys),
// the hash chain that makes removal, reordering and changes visible
// without a key, forward-secure seals, checkpoints, verification, and the
// per-block index that lets a query skip what cannot match.
//
// The byte layout is described in the README ("The store", "Segment
// format"); format.go is its one implementation. The package knows
// nothing of HTTP: the API serves queries through Reader.Query.
package store
