package exporter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
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

// MeterProvider is the agent's metrics pipeline: an SDK MeterProvider with
// a Prometheus endpoint, an OTLP exporter, or both.
type MeterProvider struct {
	*sdkmetric.MeterProvider
	server *http.Server
	addr   net.Addr
	served chan error
}

// NewMeterProvider starts the outputs o asks for. With none, metrics are
// still recorded (and cost little) but go nowhere.
func NewMeterProvider(o MetricOutputs) (*MeterProvider, error) {
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
	opts := []sdkmetric.Option{
		sdkmetric.WithResource(resource.NewSchemaless(attrs...)),
		sdkmetric.WithCardinalityLimit(MaxMetricStreams),
	}
	mp := &MeterProvider{}
	if o.Prometheus != "" {
		reg := promclient.NewRegistry()
		popts := []otelprom.Option{otelprom.WithRegisterer(reg)}
		if o.Producer != nil {
			popts = append(popts, otelprom.WithProducer(o.Producer))
		}
		exp, err := otelprom.New(popts...)
		if err != nil {
			return nil, fmt.Errorf("create the Prometheus exporter: %w", err)
		}
		ln, err := net.Listen("tcp", o.Prometheus)
		if err != nil {
			return nil, fmt.Errorf("cannot serve Prometheus metrics on %s: %v: choose a free host:port for --prometheus, such as 127.0.0.1:9464", o.Prometheus, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mp.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		mp.addr = ln.Addr()
		o.Own.AddListener(ln.Addr())
		mp.served = make(chan error, 1)
		go func() { mp.served <- mp.server.Serve(ln) }()
		opts = append(opts, sdkmetric.WithReader(exp))
		o.Log.Info("serving Prometheus metrics", zap.String("url", "http://"+ln.Addr().String()+"/metrics"))
	}
	if o.OTLP.Enabled() {
		exp, err := newMetricExporter(o.OTLP, o.Own)
		if err != nil {
			mp.closeServer()
			return nil, err
		}
		ropts := []sdkmetric.PeriodicReaderOption{sdkmetric.WithInterval(o.Interval)}
		if o.Producer != nil {
			ropts = append(ropts, sdkmetric.WithProducer(o.Producer))
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, ropts...)))
		o.Log.Info("sending metrics over OTLP", zap.String("endpoint", o.OTLP.Describe("metrics")), zap.Duration("interval", o.Interval))
	}
	mp.MeterProvider = sdkmetric.NewMeterProvider(opts...)
	otel.SetErrorHandler(errorLog(o.Log))
	return mp, nil
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
func (m *MeterProvider) PrometheusAddr() net.Addr { return m.addr }

// Shutdown collects and exports one last time, then stops the outputs.
func (m *MeterProvider) Shutdown(ctx context.Context) error {
	err := m.MeterProvider.Shutdown(ctx)
	return errors.Join(err, m.closeServer())
}

func (m *MeterProvider) closeServer() error {
	if m.server == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := m.server.Shutdown(ctx)
	if e := <-m.served; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	m.server = nil
	return err
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
