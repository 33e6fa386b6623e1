package serve

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series, on a registry of its own (no
// globals, so tests can run several servers in one process).
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	wsConns   prometheus.Gauge
	wsFrames  *prometheus.CounterVec
	runs      *prometheus.CounterVec
	runsLive  prometheus.Gauge
	llmTime   *prometheus.HistogramVec
	llmTokens *prometheus.CounterVec
	storeTime *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mozaiks_http_requests_total",
			Help: "HTTP requests by route, method and status code."}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mozaiks_http_request_duration_seconds",
			Help: "HTTP request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mozaiks_errors_total",
			Help: "Errors reported to clients, by code."}, []string{"code"}),
		wsConns: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mozaiks_ws_connections",
			Help: "Open chat WebSocket connections."}),
		wsFrames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mozaiks_ws_frames_total",
			Help: "WebSocket frames by direction."}, []string{"direction"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mozaiks_runs_total",
			Help: "Finished workflow runs by status."}, []string{"status"}),
		runsLive: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mozaiks_runs_active",
			Help: "Workflow runs in progress."}),
		llmTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mozaiks_llm_call_duration_seconds",
			Help: "LLM call latency by model.", Buckets: []float64{.1, .25, .5, 1, 2, 5, 10, 30, 60}}, []string{"model"}),
		llmTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mozaiks_llm_tokens_total",
			Help: "LLM tokens by model and kind (prompt, completion)."}, []string{"model", "kind"}),
		storeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mozaiks_store_op_duration_seconds",
			Help: "Store operation latency by operation.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}, []string{"op"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.errors, m.wsConns, m.wsFrames, m.runs, m.runsLive, m.llmTime, m.llmTokens, m.storeTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
