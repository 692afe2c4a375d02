package exporter

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// SenderStats count what a TraceSender did with the spans it was given.
type SenderStats struct {
	SentSpans uint64
	// DroppedSpans were lost: the queue was full, the backend refused
	// them for good, or retrying took longer than allowed.
	DroppedSpans uint64
	// Retries are export attempts repeated after a failure.
	Retries uint64
	// FailedExports are export attempts that failed.
	FailedExports uint64
}

// TraceSender ships span batches over OTLP from a goroutine of its own.
// Send never blocks: a batch that finds the queue full is dropped and
// counted, so a slow or dead backend cannot stall capture.
type TraceSender struct {
	cfg    OTLPConfig
	target *otlpTarget
	client traceClient
	log    *zap.Logger

	mu     sync.Mutex // guards closed against Send racing Shutdown
	closed bool
	queue  chan spanPayload
	// stopping is closed when Shutdown starts: batches still queued get
	// one attempt each, and none is retried.
	stopping chan struct{}
	// abort is cancelled when Shutdown's deadline passes.
	abort  context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// bufs are request buffers sent and done with, for the next batches
	// (Buffer): a batch is hundreds of kilobytes, and allocating each
	// afresh made the garbage collector a tenth of the span path.
	bufs chan []byte

	sent, dropped, retries, failed atomic.Uint64
	lastWarn                       atomic.Int64 // unix ns
}

// spanPayload is a batch of spans to send: pdata, or an
// ExportTraceServiceRequest already encoded (NewEncodedSpans).
type spanPayload struct {
	td    ptrace.Traces
	body  []byte
	spans int
}

func pdataPayload(td ptrace.Traces) spanPayload { return spanPayload{td: td, spans: td.SpanCount()} }

// encoded is the request's protobuf encoding.
func (p spanPayload) encoded() ([]byte, error) {
	if p.body != nil {
		return p.body, nil
	}
	return ptraceotlp.NewExportRequestFromTraces(p.td).MarshalProto()
}

// traceClient sends one request; its errors say whether to retry.
type traceClient interface {
	export(ctx context.Context, p spanPayload) (rejected int64, err error)
	close() error
}

// retryable wraps an error worth retrying, after at least wait.
type retryable struct {
	err  error
	wait time.Duration
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// NewTraceSender starts a sender to cfg's traces endpoint. log may be nil;
// own, when not nil, learns the sender's connections.
func NewTraceSender(cfg OTLPConfig, log *zap.Logger, own *OwnAddrs) (*TraceSender, error) {
	cfg = cfg.orDefaults()
	t, err := cfg.target("traces")
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	var c traceClient
	if t.protocol == ProtocolGRPC {
		c, err = newGRPCTraceClient(t, own)
	} else {
		c = newHTTPTraceClient(t, own)
	}
	if err != nil {
		return nil, err
	}
	s := &TraceSender{
		cfg: cfg, target: t, client: c, log: log,
		queue:    make(chan spanPayload, cfg.QueueSize),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		bufs:     make(chan []byte, 4),
	}
	s.abort, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// Endpoint is where the sender sends, for messages.
func (s *TraceSender) Endpoint() string {
	return s.target.url.String() + " (" + s.target.protocol + ")"
}

// Send queues a batch; it never blocks.
func (s *TraceSender) Send(td ptrace.Traces) { s.send(pdataPayload(td)) }

// SendEncoded queues a batch of spans already encoded as an OTLP
// ExportTraceServiceRequest (NewEncodedSpans's sink); it never blocks.
func (s *TraceSender) SendEncoded(body []byte, spans int) {
	s.send(spanPayload{body: body, spans: spans})
}

// Buffer returns an empty buffer of at least n bytes for SendEncoded's
// body, reusing one already sent when it can; safe from any goroutine.
func (s *TraceSender) Buffer(n int) []byte {
	select {
	case b := <-s.bufs:
		if cap(b) >= n {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, n)
}

// recycle keeps a sent body for Buffer.
func (s *TraceSender) recycle(p spanPayload) {
	if p.body == nil {
		return
	}
	select {
	case s.bufs <- p.body[:0]:
	default:
	}
}

func (s *TraceSender) send(p spanPayload) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.dropped.Add(uint64(p.spans))
		return
	}
	select {
	case s.queue <- p:
	default:
		s.dropped.Add(uint64(p.spans))
		s.warn("the OTLP export queue is full: spans dropped", zap.Int("spans", p.spans))
	}
}

// sendWait queues a batch, waiting for room: benchmarks use it to
// measure how fast batches can go out.
func (s *TraceSender) sendWait(p spanPayload) {
	s.queue <- p
}

// QueueFill is how full the export queue is, from 0 to 1; safe from any
// goroutine. The span cap (SpanOptions.QueueFill) reads it to sample
// more while the backend falls behind, rather than drop.
func (s *TraceSender) QueueFill() float64 {
	return float64(len(s.queue)) / float64(cap(s.queue))
}

// Stats returns the counters so far; safe from any goroutine.
func (s *TraceSender) Stats() SenderStats {
	return SenderStats{SentSpans: s.sent.Load(), DroppedSpans: s.dropped.Load(), Retries: s.retries.Load(), FailedExports: s.failed.Load()}
}

// Shutdown sends what is queued, one attempt per batch without further
// retries, until ctx is done; what fails or is left then is dropped and
// counted.
func (s *TraceSender) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	close(s.stopping)
	s.mu.Unlock()
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done
		err = fmt.Errorf("OTLP export did not finish before shutdown: %w", ctx.Err())
	}
	s.cancel()
	return errors.Join(err, s.client.close())
}

func (s *TraceSender) run() {
	defer close(s.done)
	for p := range s.queue {
		if s.abort.Err() != nil {
			s.dropped.Add(uint64(p.spans))
			continue
		}
		s.export(p)
		s.recycle(p)
	}
}

// export sends one batch, retrying with exponential backoff what the
// OTLP specification says to retry.
func (s *TraceSender) export(p spanPayload) {
	n := uint64(p.spans)
	b := &backoff.ExponentialBackOff{
		InitialInterval:     250 * time.Millisecond,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          backoff.DefaultMultiplier,
		MaxInterval:         10 * time.Second,
	}
	b.Reset()
	deadline := time.Now().Add(s.cfg.RetryMaxElapsed)
	for {
		ctx, cancel := context.WithTimeout(s.abort, s.cfg.Timeout)
		rejected, err := s.client.export(ctx, p)
		cancel()
		if err == nil {
			if rejected > 0 {
				s.dropped.Add(uint64(rejected))
				s.warn("the OTLP backend rejected spans", zap.Int64("spans", rejected))
			}
			s.sent.Add(n - min(n, uint64(rejected)))
			return
		}
		s.failed.Add(1)
		var r *retryable
		if !errors.As(err, &r) {
			s.dropped.Add(n)
			s.warn("the OTLP backend refused a batch: spans dropped", zap.Error(err), zap.Uint64("spans", n))
			return
		}
		wait := max(b.NextBackOff(), r.wait)
		select {
		case <-s.stopping:
			s.dropped.Add(n)
			s.warn("OTLP export failed while shutting down: spans dropped", zap.Error(err), zap.Uint64("spans", n))
			return
		default:
		}
		if time.Now().Add(wait).After(deadline) {
			s.dropped.Add(n)
			s.warn("OTLP export kept failing: spans dropped", zap.Error(err), zap.Uint64("spans", n), zap.Duration("retried_for", s.cfg.RetryMaxElapsed))
			return
		}
		s.warn("OTLP export failed: retrying", zap.Error(err), zap.Duration("in", wait))
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-s.stopping:
			timer.Stop()
		case <-s.abort.Done():
			timer.Stop()
			s.dropped.Add(n)
			return
		}
		s.retries.Add(1)
	}
}

// warn logs at most once every ten seconds: a dead backend must not flood
// the terminal. The counters keep the full tally.
func (s *TraceSender) warn(msg string, fields ...zap.Field) {
	now, last := time.Now().UnixNano(), s.lastWarn.Load()
	if now-last >= int64(10*time.Second) && s.lastWarn.CompareAndSwap(last, now) {
		s.log.Warn(msg, append(fields, zap.String("endpoint", s.Endpoint()))...)
	} else {
		s.log.Debug(msg, fields...)
	}
}

// grpcTraceClient exports over OTLP/gRPC. Requests go out as the bytes
// they already are (rawCodec), not through generated message types.
type grpcTraceClient struct {
	conn *grpc.ClientConn
	md   metadata.MD
	opts []grpc.CallOption
}

// exportMethod is OTLP's trace service method.
const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// rawCodec sends and receives gRPC messages as their encoded bytes
// (*[]byte), under the name of the proto codec they are.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec cannot send %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec cannot receive %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func newGRPCTraceClient(t *otlpTarget, own *OwnAddrs) (*grpcTraceClient, error) {
	conn, err := grpc.NewClient(t.url.Host, grpcDialOptions(t, own)...)
	if err != nil {
		return nil, fmt.Errorf("OTLP/gRPC client for %s: %w", t.url.Host, err)
	}
	c := &grpcTraceClient{conn: conn, md: metadata.New(t.config.Headers), opts: []grpc.CallOption{grpc.ForceCodec(rawCodec{})}}
	if t.config.Compression == "gzip" {
		c.opts = append(c.opts, grpc.UseCompressor(grpcgzip.Name))
	}
	return c, nil
}

// grpcDialOptions are the transport options for target t.
func grpcDialOptions(t *otlpTarget, own *OwnAddrs) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if t.tls != nil {
		creds = credentials.NewTLS(t.tls)
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return own.DialContext(ctx, "tcp", addr)
		}),
	}
}

// httpClient is the HTTP client for target t.
func httpClient(t *otlpTarget, own *OwnAddrs) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = t.tls
	tr.DialContext = own.DialContext
	return &http.Client{Transport: tr, Timeout: t.config.Timeout}
}

func (c *grpcTraceClient) export(ctx context.Context, p spanPayload) (int64, error) {
	body, err := p.encoded()
	if err != nil {
		return 0, fmt.Errorf("encode spans: %w", err)
	}
	if len(c.md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, c.md)
	}
	var out []byte
	if err := c.conn.Invoke(ctx, exportMethod, &body, &out, c.opts...); err != nil {
		return 0, grpcError(err)
	}
	return rejectedSpans(out), nil
}

// rejectedSpans reads an ExportTraceServiceResponse's partial success;
// a response that does not decode rejected nothing it could say.
func rejectedSpans(data []byte) int64 {
	if len(data) == 0 {
		return 0
	}
	r := ptraceotlp.NewExportResponse()
	if r.UnmarshalProto(data) != nil {
		return 0
	}
	return r.PartialSuccess().RejectedSpans()
}

func (c *grpcTraceClient) close() error { return c.conn.Close() }

// grpcError marks the status codes OTLP says to retry.
func grpcError(err error) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss:
		return &retryable{err: err, wait: retryDelay(st)}
	case codes.ResourceExhausted:
		// Retried only when the server says when to.
		if d := retryDelay(st); d > 0 {
			return &retryable{err: err, wait: d}
		}
	}
	return err
}

func retryDelay(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.RetryDelay != nil {
			return ri.RetryDelay.AsDuration()
		}
	}
	return 0
}

// httpTraceClient exports over OTLP/HTTP with protobuf bodies.
type httpTraceClient struct {
	url     string
	client  *http.Client
	headers map[string]string
	gzip    bool
	buf     bytes.Buffer
}

func newHTTPTraceClient(t *otlpTarget, own *OwnAddrs) *httpTraceClient {
	return &httpTraceClient{
		url:     t.url.String(),
		client:  httpClient(t, own),
		headers: t.config.Headers,
		gzip:    t.config.Compression == "gzip",
	}
}

func (c *httpTraceClient) export(ctx context.Context, p spanPayload) (int64, error) {
	body, err := p.encoded()
	if err != nil {
		return 0, fmt.Errorf("encode spans: %w", err)
	}
	if c.gzip {
		c.buf.Reset()
		zw := gzip.NewWriter(&c.buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = c.buf.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if c.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, &retryable{err: err}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 == 2 {
		return rejectedSpans(data), nil
	}
	err = fmt.Errorf("OTLP/HTTP %s: %s", c.url, resp.Status)
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		var wait time.Duration
		if secs, e := strconv.Atoi(resp.Header.Get("Retry-After")); e == nil && secs > 0 {
			wait = time.Duration(secs) * time.Second
		}
		return 0, &retryable{err: err, wait: wait}
	}
	return 0, err
}

func (c *httpTraceClient) close() error {
	c.client.CloseIdleConnections()
	return nil
}
