package api

import (
	"net/http"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// aggregator is a placeholder until the graph lands (step 3).
type aggregator struct{}

func newAggregator(time.Duration, func() time.Time) *aggregator { return &aggregator{} }
func (a *aggregator) offer(*flow.Operation)                     {}
func (a *aggregator) close()                                    {}

func notYet(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotImplemented, errorBody{Error: "not built yet"})
}

func (s *Server) graphNow(w http.ResponseWriter, r *http.Request)    { notYet(w, r) }
func (s *Server) graphStream(w http.ResponseWriter, r *http.Request) { notYet(w, r) }
func (s *Server) channel(w http.ResponseWriter, r *http.Request)     { notYet(w, r) }
func (s *Server) process(w http.ResponseWriter, r *http.Request)     { notYet(w, r) }
func (s *Server) openapi(w http.ResponseWriter, r *http.Request)     { notYet(w, r) }
