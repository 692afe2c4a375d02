package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"

	"github.com/icptrack/icptrack/semconv"
)

// MetricOutputs say where the standalone agent's metrics go.
type MetricOutputs struct {
	// Prometheus is the address to serve /metrics on; off when empty.
	Prometheus string
	// OTLP, when enabled, receives the metrics every Interval.
	OTLP     OTLPConfig
	Interval time.Duration
	// Attributes are added to icptrack's own Resource
	// (OTEL_RESOURCE_ATTRIBUTES).
	Attributes map[string]string
	// HostName and NoHostName are as in ResourceOptions.
	HostName   string
	NoHostName bool
	Log        *zap.Logger
	// Own, when not nil, learns the addresses the outputs use.
	Own *OwnAddrs
	// Producer, when not nil, adds metrics from outside the SDK's
	// instruments: metrics mode's KernelMetrics.
	Producer sdkmetric.Producer
}

// MaxMetricStreams bounds the attribute sets each instrument keeps; past
// it the SDK folds new ones into an overflow series.
const MaxMetricStreams = 4000

// MeterProvider is the agent's metrics pipeline: the SDK MeterProvider
// the instruments are made on, which lives for the whole run, and the
// outputs that read it (a Prometheus endpoint, an OTLP exporter, or
// both), which a configuration reload replaces (Prepare, Use).
//
// The instruments have one reader, counts, and every output's readers
// take their metrics from it (as a Producer) rather than from instruments
// of their own. That is what lets a reload send the metrics elsewhere
// without a reset: the SDK keeps a cumulative count per reader, so a new
// reader on the instruments, or new instruments, would count again from
// zero, and Prometheus reads a counter that goes down as a restart.
type MeterProvider struct {
	*sdkmetric.MeterProvider
	counts *sdkmetric.ManualReader
	// deltas are what an OTLP exporter that wants deltas was last sent,
	// kept across reloads (delta.go).
	deltas *deltaStreams

	mu  sync.Mutex
	out *PreparedOutputs // the outputs in use
	// retiring are the outputs a reload replaced, shutting down.
	retiring sync.WaitGroup
}

// NewMeterProvider starts the outputs o asks for. With none, metrics are
// still recorded (and cost little) but go nowhere.
func NewMeterProvider(o MetricOutputs) (*MeterProvider, error) {
	m := &MeterProvider{counts: sdkmetric.NewManualReader(), deltas: newDeltaStreams()}
	m.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(m.counts), sdkmetric.WithResource(resource.Empty()),
		sdkmetric.WithCardinalityLimit(MaxMetricStreams), sdkmetric.WithView(m.deltas.view))
	p, err := m.Prepare(o)
	if err != nil {
		_ = m.MeterProvider.Shutdown(context.Background())
		return nil, err
	}
	m.Use(p)
	otel.SetErrorHandler(errorLog(p.log))
	return m, nil
}

// PreparedOutputs are metric outputs made by Prepare: their Prometheus
// listener bound and their OTLP exporter made, but not in use until Use.
// Discard them if they are not used.
type PreparedOutputs struct {
	log      *zap.Logger
	resource *resource.Resource
	interval time.Duration
	producer sdkmetric.Producer
	// prometheus serves /metrics (nil: no Prometheus). It is the running
	// endpoint when the address is the same: it stays bound, and serves
	// from promHandler once these outputs are used.
	prometheus  *promEndpoint
	promHandler http.Handler
	promReader  sdkmetric.Reader
	otlp        sdkmetric.Exporter
	otlpDesc    string
	// provider holds the readers once used; shutting it down exports
	// one last time.
	provider *sdkmetric.MeterProvider
}

// promEndpoint is a Prometheus /metrics server. Its handler can be
// replaced while it serves: a reload that keeps the address keeps the
// listener, so a scrape never finds the port closed.
type promEndpoint struct {
	asked  string // the address as configured
	addr   net.Addr
	own    *OwnAddrs
	ln     net.Listener // bound, until served
	server *http.Server
	served chan error
	// handler serves each scrape; a request holds mu (read) from before
	// it loads handler until it is done, so that taking mu tells when no
	// scrape uses a handler replaced before.
	mu      sync.RWMutex
	handler atomic.Pointer[http.Handler]
}

func (e *promEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	(*e.handler.Load()).ServeHTTP(w, r)
}

// Prepare makes the outputs o asks for, ready for Use: it binds a new
// Prometheus address (the one already served is kept) and makes the OTLP
// exporter. On an error nothing is left open and nothing changes.
func (m *MeterProvider) Prepare(o MetricOutputs) (*PreparedOutputs, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	attrs := []attribute.KeyValue{
		attribute.String(semconv.AttrServiceName, "icptrack"),
		attribute.String("service.version", Version()),
	}
	if h := o.HostName; h != "" {
		attrs = append(attrs, attribute.String(semconv.AttrHostName, h))
	} else if h, err := os.Hostname(); err == nil && !o.NoHostName {
		attrs = append(attrs, attribute.String(semconv.AttrHostName, h))
	}
	for k, v := range o.Attributes {
		if k != semconv.AttrServiceName {
			attrs = append(attrs, attribute.String(k, v))
		}
	}
	p := &PreparedOutputs{log: o.Log, resource: resource.NewSchemaless(attrs...), interval: o.Interval, producer: o.Producer}
	if o.Prometheus != "" {
		reg := promclient.NewRegistry()
		popts := []otelprom.Option{otelprom.WithRegisterer(reg), otelprom.WithProducer(countsProducer{m.counts})}
		if o.Producer != nil {
			popts = append(popts, otelprom.WithProducer(o.Producer))
		}
		exp, err := otelprom.New(popts...)
		if err != nil {
			return nil, fmt.Errorf("create the Prometheus exporter: %w", err)
		}
		p.promReader = exp
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		p.promHandler = mux
		m.mu.Lock()
		if cur := m.out; cur != nil && cur.prometheus != nil && cur.prometheus.asked == o.Prometheus {
			p.prometheus = cur.prometheus
		}
		m.mu.Unlock()
		if p.prometheus == nil {
			ln, err := net.Listen("tcp", o.Prometheus)
			if err != nil {
				return nil, fmt.Errorf("cannot serve Prometheus metrics on %s: %v: choose a free host:port for --prometheus, such as 127.0.0.1:9464", o.Prometheus, err)
			}
			e := &promEndpoint{asked: o.Prometheus, addr: ln.Addr(), own: o.Own, ln: ln, served: make(chan error, 1)}
			e.server = &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
			p.prometheus = e
		}
	}
	if o.OTLP.Enabled() {
		exp, err := newMetricExporter(o.OTLP, o.Own)
		if err != nil {
			p.Discard()
			return nil, err
		}
		p.otlp, p.otlpDesc = exp, o.OTLP.Describe("metrics")
	}
	return p, nil
}

// countsProducer hands an output's reader what the instruments counted.
type countsProducer struct{ r *sdkmetric.ManualReader }

func (c countsProducer) Produce(ctx context.Context) ([]metricdata.ScopeMetrics, error) {
	var rm metricdata.ResourceMetrics
	if err := c.r.Collect(ctx, &rm); err != nil {
		return nil, err
	}
	return rm.ScopeMetrics, nil
}

// Discard releases outputs Prepare made that are not to be used.
func (p *PreparedOutputs) Discard() {
	// A listener of its own is still bound; the endpoint in use has
	// none left to close.
	if e := p.prometheus; e != nil && e.ln != nil {
		_ = e.ln.Close()
	}
	if p.otlp != nil {
		_ = p.otlp.Shutdown(context.Background())
	}
}

// Close releases outputs Prepare made that are not to be used: Discard,
// for io.Closer.
func (p *PreparedOutputs) Close() error { p.Discard(); return nil }

// Use sends the metrics to p from now on. A new Prometheus address serves
// before the old one closes; the same address swaps what it serves
// between two scrapes. The outputs replaced are shut down in the
// background: the OTLP exporter sends the counts one last time.
func (m *MeterProvider) Use(p *PreparedOutputs) {
	var opts []sdkmetric.Option
	opts = append(opts, sdkmetric.WithResource(p.resource))
	if p.promReader != nil {
		opts = append(opts, sdkmetric.WithReader(p.promReader))
	}
	if p.otlp != nil {
		ropts := []sdkmetric.PeriodicReaderOption{sdkmetric.WithInterval(p.interval), sdkmetric.WithProducer(countsProducer{m.counts})}
		if p.producer != nil {
			ropts = append(ropts, sdkmetric.WithProducer(p.producer))
		}
		exp := p.otlp
		if wantsDelta(exp) {
			exp = deltaExporter{Exporter: exp, streams: m.deltas}
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, ropts...)))
	}
	p.provider = sdkmetric.NewMeterProvider(opts...)
	m.mu.Lock()
	old := m.out
	m.out = p
	m.mu.Unlock()
	if e := p.prometheus; e != nil {
		e.handler.Store(&p.promHandler)
		if e.ln != nil {
			ln := e.ln
			e.ln = nil
			e.own.AddListener(ln.Addr())
			go func() { e.served <- e.server.Serve(ln) }()
			p.log.Info("serving Prometheus metrics", zap.String("url", "http://"+ln.Addr().String()+"/metrics"))
		}
	}
	if p.otlp != nil {
		p.log.Info("sending metrics over OTLP", zap.String("endpoint", p.otlpDesc), zap.Duration("interval", p.interval))
	}
	if old == nil {
		return
	}
	m.retiring.Add(1)
	go func() {
		defer m.retiring.Done()
		ctx, cancel := context.WithTimeout(context.Background(), retireTimeout)
		defer cancel()
		if err := old.shutdown(ctx, p.prometheus); err != nil {
			old.log.Warn("reload: shutting down the replaced metric outputs", zap.Error(err))
		}
	}()
}

// retireTimeout bounds the last export of outputs a reload replaced.
const retireTimeout = 5 * time.Second

// shutdown exports one last time and stops p's outputs; its Prometheus
// endpoint is closed unless next (the outputs in use) serves on it.
func (p *PreparedOutputs) shutdown(ctx context.Context, next *promEndpoint) error {
	if e := p.prometheus; e != nil && e == next {
		e.scrapesDone()
	}
	var err error
	if p.provider != nil {
		err = p.provider.Shutdown(ctx)
	}
	if e := p.prometheus; e != nil && e != next {
		err = errors.Join(err, e.close())
	}
	return err
}

// scrapesDone waits for the scrapes that started before the handler was
// last replaced.
func (e *promEndpoint) scrapesDone() {
	e.mu.Lock()
	//lint:ignore SA2001 an empty critical section: a barrier that no scrape holds
	e.mu.Unlock()
}

// close stops serving, after the scrapes under way, and lets go of the
// port, which is no longer icptrack's own.
func (e *promEndpoint) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if e.ln != nil { // never served
		return e.ln.Close()
	}
	err := e.server.Shutdown(ctx)
	if e := <-e.served; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	e.own.RemoveListener(e.addr)
	return err
}

// errorLog logs the OpenTelemetry SDK's errors (a metrics export that
// failed) at most every 30 seconds; a backend that is down keeps failing.
func errorLog(log *zap.Logger) otel.ErrorHandlerFunc {
	var last atomic.Int64
	return func(err error) {
		now, prev := time.Now().UnixNano(), last.Load()
		if now-prev < int64(30*time.Second) || !last.CompareAndSwap(prev, now) {
			log.Debug("OpenTelemetry SDK", zap.Error(err))
			return
		}
		msg := "OpenTelemetry SDK"
		if strings.Contains(err.Error(), "404") {
			msg = "the OTLP backend does not take metrics (Jaeger does not): send only traces with --otlp-signals traces"
		}
		log.Warn(msg, zap.Error(err))
	}
}

// PrometheusAddr is the address /metrics is served on, or nil.
func (m *MeterProvider) PrometheusAddr() net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.out == nil || m.out.prometheus == nil {
		return nil
	}
	return m.out.prometheus.addr
}

// Shutdown collects and exports one last time, then stops the outputs
// and the instruments.
func (m *MeterProvider) Shutdown(ctx context.Context) error {
	m.retiring.Wait()
	m.mu.Lock()
	out := m.out
	m.mu.Unlock()
	var err error
	if out != nil {
		err = out.shutdown(ctx, nil)
	}
	return errors.Join(err, m.MeterProvider.Shutdown(ctx))
}

func newMetricExporter(c OTLPConfig, own *OwnAddrs) (sdkmetric.Exporter, error) {
	t, err := c.target("metrics")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if t.protocol == ProtocolGRPC {
		opts := []otlpmetricgrpc.Option{otlpmetricgrpc.WithEndpoint(t.url.Host), otlpmetricgrpc.WithTimeout(t.config.Timeout),
			otlpmetricgrpc.WithDialOption(grpcDialOptions(t, own)...)}
		if t.tls == nil {
			opts = append(opts, otlpmetricgrpc.WithInsecure())
		} else {
			opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(t.tls)))
		}
		if len(t.config.Headers) > 0 {
			opts = append(opts, otlpmetricgrpc.WithHeaders(t.config.Headers))
		}
		if t.config.Compression == "gzip" {
			opts = append(opts, otlpmetricgrpc.WithCompressor("gzip"))
		}
		return otlpmetricgrpc.New(ctx, opts...)
	}
	opts := []otlpmetrichttp.Option{
		otlpmetrichttp.WithEndpoint(t.url.Host), otlpmetrichttp.WithURLPath(t.url.Path),
		otlpmetrichttp.WithTimeout(t.config.Timeout), otlpmetrichttp.WithHTTPClient(httpClient(t, own)),
	}
	if t.tls == nil {
		opts = append(opts, otlpmetrichttp.WithInsecure())
	}
	if len(t.config.Headers) > 0 {
		opts = append(opts, otlpmetrichttp.WithHeaders(t.config.Headers))
	}
	if t.config.Compression == "gzip" {
		opts = append(opts, otlpmetrichttp.WithCompression(otlpmetrichttp.GzipCompression))
	}
	return otlpmetrichttp.New(ctx, opts...)
}
