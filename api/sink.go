package api

import (
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

var _ exporter.CountingSink = (*Server)(nil)

// Name is "api".
func (s *Server) Name() string { return "api" }

// Add keeps op in the window (encoded) and offers it to the graph and to
// the streams' clients, each of which copies what it keeps: op is the
// pipeline's, used again after Add. None of them makes Add wait: each
// has a bounded queue, and what does not fit is counted as missed.
func (s *Server) Add(op *flow.Operation) {
	s.live.add(op)
	s.graph.offer(op)
	s.streams.offer(op)
}

// Tick hands the graph what waited in its batch: the pipeline ticks at
// least every 100ms.
func (s *Server) Tick(time.Time) { s.graph.handOn() }

// Stats counts for the summary, the self-metrics and status: every
// operation goes into the window (Written); Dropped are those the live
// graph missed because its goroutine fell behind (its queue was full),
// and Lagging those queued for it. A stream client that falls behind is
// told what it missed, on its own stream.
func (s *Server) Stats() exporter.SinkStats {
	offered, added := s.graph.offered.Load(), s.graph.added.Load()
	return exporter.SinkStats{Written: s.live.added(), Dropped: s.graph.missed.Load(), Lagging: offered - min(added, offered)}
}

// Flush has nothing to write.
func (s *Server) Flush() error { return nil }

// Close ends the streams, the graph's goroutine and Serve.
func (s *Server) Close() error {
	s.streams.close()
	s.graph.close()
	s.shutdown()
	return nil
}
