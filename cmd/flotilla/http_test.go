package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flotilla/flotilla/metrics"
)

func newTestHTTP(t *testing.T, ready *readiness) *httptest.Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics.New(reg)
	h := newHTTPHandler(httpDeps{
		registry: reg,
		ready:    ready,
		varz:     func() any { return map[string]int{"subscriptions": 3} },
		nodeID:   "n1",
		serverID: "SID",
		started:  time.Now().Add(-time.Minute),
		log:      zap.NewNop(),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTP_Readiness(t *testing.T) {
	t.Parallel()
	ready := newReadiness("starting")
	srv := newTestHTTP(t, ready)

	for _, path := range []string{"/readyz", "/ready"} {
		code, body := httpGet(t, srv.URL+path)
		mustEqual(t, path+" status while starting", code, http.StatusServiceUnavailable)
		var got map[string]string
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "status", got["status"], "unavailable")
		mustEqual(t, "reason", got["reason"], "starting")
	}
	ready.ready()
	for _, path := range []string{"/readyz", "/ready"} {
		code, body := httpGet(t, srv.URL+path)
		mustEqual(t, path+" status when ready", code, http.StatusOK)
		mustContain(t, path, body, `"status": "ready"`)
	}
	ready.fail("shutting down")
	code, body := httpGet(t, srv.URL+"/readyz")
	mustEqual(t, "status while shutting down", code, http.StatusServiceUnavailable)
	mustContain(t, "body", body, "shutting down")

	// Liveness does not care.
	for _, path := range []string{"/healthz", "/health"} {
		code, body := httpGet(t, srv.URL+path)
		mustEqual(t, path+" status", code, http.StatusOK)
		mustContain(t, path, body, `"status": "ok"`)
	}
}

func TestHTTP_MetricsVarsPprof(t *testing.T) {
	t.Parallel()
	srv := newTestHTTP(t, newReadiness("starting"))

	code, body := httpGet(t, srv.URL+"/metrics")
	mustEqual(t, "/metrics status", code, http.StatusOK)
	mustContain(t, "/metrics", body, "flotilla_transport_connections ")
	mustContain(t, "/metrics", body, "go_goroutines")

	code, body = httpGet(t, srv.URL+"/debug/vars")
	mustEqual(t, "/debug/vars status", code, http.StatusOK)
	var vars struct {
		NodeID        string         `json:"node_id"`
		ServerID      string         `json:"server_id"`
		Uptime        string         `json:"uptime"`
		UptimeSeconds float64        `json:"uptime_seconds"`
		Transport     map[string]int `json:"transport"`
	}
	if err := json.Unmarshal([]byte(body), &vars); err != nil {
		t.Fatalf("/debug/vars is not JSON: %v\n%s", err, body)
	}
	mustEqual(t, "node_id", vars.NodeID, "n1")
	mustEqual(t, "server_id", vars.ServerID, "SID")
	mustEqual(t, "transport.subscriptions", vars.Transport["subscriptions"], 3)
	if vars.UptimeSeconds < 59 || vars.Uptime == "" {
		t.Fatalf("uptime %q %v", vars.Uptime, vars.UptimeSeconds)
	}

	code, body = httpGet(t, srv.URL+"/debug/pprof/")
	mustEqual(t, "/debug/pprof/ status", code, http.StatusOK)
	mustContain(t, "/debug/pprof/", body, "goroutine")
	code, _ = httpGet(t, srv.URL+"/debug/pprof/goroutine?debug=1")
	mustEqual(t, "/debug/pprof/goroutine status", code, http.StatusOK)
	code, _ = httpGet(t, srv.URL+"/debug/pprof/cmdline")
	mustEqual(t, "/debug/pprof/cmdline status", code, http.StatusOK)

	code, _ = httpGet(t, srv.URL+"/nope")
	mustEqual(t, "unknown path status", code, http.StatusNotFound)
	resp, err := http.Post(srv.URL+"/healthz", "text/plain", strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mustEqual(t, "POST /healthz status", resp.StatusCode, http.StatusMethodNotAllowed)
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	ready := newReadiness("starting")
	srv := newTestHTTP(t, ready)
	addr := strings.TrimPrefix(srv.URL, "http://")

	code, _, stderr := runCmd(t, t.Context(), "", "healthcheck", "--http-addr", addr)
	mustEqual(t, "exit status while starting", code, 1)
	mustContain(t, "stderr", stderr, "not ready: 503")

	ready.ready()
	code, stdout, stderr := runCmd(t, t.Context(), "", "healthcheck", "--http-addr", addr)
	mustEqual(t, "exit status when ready: "+stderr, code, 0)
	mustEqual(t, "stdout", stdout, "ready\n")
	code, _, _ = runCmd(t, t.Context(), "", "healthcheck", "--http-addr", srv.URL+"/")
	mustEqual(t, "exit status with a URL", code, 0)

	srv.Close()
	code, _, stderr = runCmd(t, t.Context(), "", "healthcheck", "--http-addr", addr, "--timeout", "500ms")
	mustEqual(t, "exit status when down", code, 1)
	mustContain(t, "stderr", stderr, "healthcheck:")
}

func TestReadyzURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"127.0.0.1:8222":        "http://127.0.0.1:8222/readyz",
		"0.0.0.0:8222":          "http://127.0.0.1:8222/readyz",
		":8222":                 "http://127.0.0.1:8222/readyz",
		"[::]:8222":             "http://[::1]:8222/readyz",
		"node1:8222":            "http://node1:8222/readyz",
		"http://node1:8222/":    "http://node1:8222/readyz",
		"https://n.example:443": "https://n.example:443/readyz",
	} {
		if got := readyzURL(in); got != want {
			t.Errorf("readyzURL(%q) = %q, want %q", in, got, want)
		}
	}
}
