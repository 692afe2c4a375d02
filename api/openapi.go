package api

import (
	_ "embed"
	"net/http"
)

// openapiJSON describes the API; a test checks real answers against it.
//
//go:embed openapi.json
var openapiJSON []byte

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openapiJSON)
}
