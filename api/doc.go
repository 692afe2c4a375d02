// Package api serves what icptrack captured over HTTP: the operations, a
// live stream of them, a graph of who talks to whom, and the capture's
// status, described by openapi.json (served at /api/v1/openapi.json), and
// the live view's page (api/ui), guarded by api/auth.
//
// The server answers from a store when one is open, else from a bounded
// in-memory window of recent operations. It is an exporter.Sink: the
// pipeline hands it every operation, and it never makes the pipeline wait
// on a client.
package api
