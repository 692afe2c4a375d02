package main

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // icptrack compresses, like OTel's exporters
)

// otlpSink is a real OTLP/gRPC receiver, in the harness: it decodes what
// icptrack exports, counts it, and throws it away.
type otlpSink struct {
	addr   string
	srv    *grpc.Server
	spans  atomic.Int64
	points atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("OTLP sink: %w", err)
	}
	s := &otlpSink{addr: lis.Addr().String(), srv: grpc.NewServer(grpc.MaxRecvMsgSize(256 << 20))}
	ptraceotlp.RegisterGRPCServer(s.srv, traceSink{s: s})
	pmetricotlp.RegisterGRPCServer(s.srv, metricSink{s: s})
	go func() { _ = s.srv.Serve(lis) }()
	return s, nil
}

func (s *otlpSink) stop() { s.srv.Stop() }

// take returns the spans and metric data points received since the last
// call, and starts counting again.
func (s *otlpSink) take() (spans, points int64) {
	return s.spans.Swap(0), s.points.Swap(0)
}

type traceSink struct {
	*ptraceotlp.UnimplementedGRPCServer
	s *otlpSink
}

func (t traceSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	t.s.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

type metricSink struct {
	*pmetricotlp.UnimplementedGRPCServer
	s *otlpSink
}

func (m metricSink) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	m.s.points.Add(int64(req.Metrics().DataPointCount()))
	return pmetricotlp.NewExportResponse(), nil
}
