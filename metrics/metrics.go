package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every Flotilla metric name.
const Namespace = "flotilla"

// Metrics groups the collectors of one node.
type Metrics struct {
	// Registry is the node's registry; /metrics serves it.
	Registry  *prometheus.Registry
	Transport *Transport
	Cluster   *Cluster
}

// New registers every Flotilla collector, plus the Go runtime and process
// collectors, on reg and returns them.
func New(reg *prometheus.Registry) *Metrics {
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: Namespace}),
	)
	return &Metrics{Registry: reg, Transport: newTransport(reg), Cluster: NewCluster(reg)}
}

// Error reasons used as the "reason" label of Transport.Errors. The set is
// fixed so the label stays bounded.
const (
	ReasonParse = "parse" // malformed protocol input
	ReasonLimit = "limit" // a configured limit was exceeded
	ReasonWrite = "write" // writing to a client failed or timed out
	ReasonAuth  = "auth"  // authentication failed or timed out
	ReasonStale = "stale" // the client stopped answering PINGs
)

// Transport holds the NATS client protocol collectors.
type Transport struct {
	Connections      prometheus.Gauge
	ConnectionsTotal prometheus.Counter
	Subscriptions    prometheus.Gauge
	MsgsIn           prometheus.Counter
	MsgsOut          prometheus.Counter
	BytesIn          prometheus.Counter
	BytesOut         prometheus.Counter
	SlowConsumers    prometheus.Counter
	Errors           *prometheus.CounterVec
}

// counter registers a flotilla_<subsystem>_<name> counter on reg.
func counter(reg prometheus.Registerer, subsystem, name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help})
	reg.MustRegister(c)
	return c
}

// gauge registers a flotilla_<subsystem>_<name> gauge on reg.
func gauge(reg prometheus.Registerer, subsystem, name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: subsystem, Name: name, Help: help})
	reg.MustRegister(g)
	return g
}

func newTransport(reg prometheus.Registerer) *Transport {
	f := func(name, help string) prometheus.Counter { return counter(reg, "transport", name, help) }
	g := func(name, help string) prometheus.Gauge { return gauge(reg, "transport", name, help) }
	t := &Transport{
		Connections:      g("connections", "Client connections currently open."),
		ConnectionsTotal: f("connections_total", "Client connections accepted since start."),
		Subscriptions:    g("subscriptions", "Client subscriptions currently registered."),
		MsgsIn:           f("messages_in_total", "Messages published by clients (PUB and HPUB)."),
		MsgsOut:          f("messages_out_total", "Messages delivered to clients (MSG and HMSG)."),
		BytesIn:          f("bytes_in_total", "Header and payload bytes published by clients."),
		BytesOut:         f("bytes_out_total", "Header and payload bytes delivered to clients."),
		SlowConsumers:    f("slow_consumers_total", "Clients disconnected because they could not keep up with their deliveries."),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "transport", Name: "errors_total",
			Help: "Client protocol errors by reason (parse, limit, write, auth, stale).",
		}, []string{"reason"}),
	}
	reg.MustRegister(t.Errors)
	for _, r := range []string{ReasonParse, ReasonLimit, ReasonWrite, ReasonAuth, ReasonStale} {
		t.Errors.WithLabelValues(r) // expose every reason at 0 from the start
	}
	return t
}
