package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/flotilla/flotilla/cluster"
)

// readiness is what /readyz reports. A node starts not ready ("starting"),
// becomes ready once the client listener serves, and fails readiness again
// the moment shutdown starts, before anything else stops, so that load
// balancers drain it first. While the lifecycle says ready, the cluster
// check must pass too: a known Raft leader and the state machine caught up
// to the commit index this node last heard of (DESIGN.md §7).
type readiness struct {
	reason  atomic.Pointer[string] // nil when the lifecycle allows ready
	cluster func() (bool, string)  // nil: no cluster check
}

func newReadiness(reason string) *readiness {
	r := &readiness{}
	r.fail(reason)
	return r
}

func (r *readiness) ready()             { r.reason.Store(nil) }
func (r *readiness) fail(reason string) { r.reason.Store(&reason) }

// state reports whether the node is ready and, if not, why.
func (r *readiness) state() (bool, string) {
	if p := r.reason.Load(); p != nil {
		return false, *p
	}
	if r.cluster != nil {
		return r.cluster()
	}
	return true, ""
}

// httpDeps is what the http listener serves.
type httpDeps struct {
	registry *prometheus.Registry // the node's own registry, never the global one
	ready    *readiness
	varz     func() any   // transport diagnostics, JSON-serialisable
	cluster  clusterAdmin // nil without a cluster node
	// faults is set only with --unsafe-fault-injection; nil means the
	// /debug/faults endpoints do not exist (404).
	faults   *cluster.Faults
	nodeID   string
	serverID string
	started  time.Time
	log      *zap.Logger
}

// newHTTPHandler returns the http listener's mux: metrics, liveness,
// readiness, diagnostics and pprof, all registered explicitly on a private
// mux (never http.DefaultServeMux, so nothing else leaks onto it).
func newHTTPHandler(d httpDeps) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{
		ErrorLog:      stdLog(d.log),
		ErrorHandling: promhttp.ContinueOnError,
	}))

	// Liveness never depends on anything but the process answering.
	health := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
	mux.HandleFunc("GET /healthz", health)
	mux.HandleFunc("GET /health", health)

	ready := func(w http.ResponseWriter, _ *http.Request) {
		if ok, reason := d.ready.state(); !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
	mux.HandleFunc("GET /readyz", ready)
	mux.HandleFunc("GET /ready", ready)

	mux.HandleFunc("GET /debug/vars", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, debugVars(d))
	})
	if d.cluster != nil {
		registerClusterHandlers(mux, d.cluster)
	}
	if d.faults != nil {
		registerFaultHandlers(mux, d.faults, d.log)
	}

	// pprof.Index serves the named profiles (heap, goroutine, ...) under
	// /debug/pprof/; the others need their own handlers.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// debugVars is the node-level fields plus transport's Varz under
// "transport" (scripts/cli-smoke.sh reads transport.subscriptions). Later
// subsystems (cluster, broker) get their own keys beside it.
func debugVars(d httpDeps) map[string]any {
	uptime := time.Since(d.started)
	vars := map[string]any{
		"node_id":        d.nodeID,
		"server_id":      d.serverID,
		"version":        version,
		"go_version":     runtime.Version(),
		"start":          d.started.UTC().Format(time.RFC3339Nano),
		"uptime":         uptime.Round(time.Second).String(),
		"uptime_seconds": uptime.Seconds(),
	}
	if d.varz != nil {
		vars["transport"] = d.varz()
	}
	if d.cluster != nil {
		vars["cluster"] = d.cluster.Status()
	}
	return vars
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

// stdLog adapts log for net/http and promhttp, whose messages are errors
// an operator may want to see (accept failures, broken scrapes).
func stdLog(log *zap.Logger) *stdlog.Logger {
	l, err := zap.NewStdLogAt(log, zapcore.WarnLevel)
	if err != nil {
		return zap.NewStdLog(log) // only for invalid levels
	}
	return l
}

// httpListener is the bound http listener and its server.
type httpListener struct {
	ln   net.Listener
	srv  *http.Server
	done chan error // receives Serve's result once
}

// listenHTTP binds addr (port 0 allowed) so that bind errors are startup
// errors and the bound address is known before serving starts.
func listenHTTP(addr string, h http.Handler, log *zap.Logger) (*httpListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen http: %w", err)
	}
	return &httpListener{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			// No WriteTimeout: /debug/pprof/profile streams for ?seconds=N.
			ErrorLog: stdLog(log),
		},
		done: make(chan error, 1),
	}, nil
}

// Addr is the bound address.
func (h *httpListener) Addr() net.Addr { return h.ln.Addr() }

// serve runs the server in the background; done reports an unexpected
// failure (nil after shutdown).
func (h *httpListener) serve() {
	go func() {
		err := h.srv.Serve(h.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		h.done <- err
	}()
}

// shutdown stops the listener, waits for in-flight requests until ctx is
// done, then closes whatever is left.
func (h *httpListener) shutdown(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	_ = h.ln.Close() // in case serve never ran; harmless otherwise
	if err != nil {
		_ = h.srv.Close()
	}
	return err
}
