package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestServer_HTTPEndpoints starts the real server in-process and checks
// every http endpoint, then stops it the way SIGTERM does.
func TestServer_HTTPEndpoints(t *testing.T) {
	t.Parallel()
	s := startTestServer(t)
	base := "http://" + s.httpAddr

	code, body := httpGet(t, base+"/healthz")
	mustEqual(t, "/healthz", code, http.StatusOK)
	mustContain(t, "/healthz", body, `"ok"`)
	code, _ = httpGet(t, base+"/health")
	mustEqual(t, "/health", code, http.StatusOK)
	code, body = httpGet(t, base+"/readyz")
	mustEqual(t, "/readyz", code, http.StatusOK)
	mustContain(t, "/readyz", body, `"ready"`)
	code, _ = httpGet(t, base+"/ready")
	mustEqual(t, "/ready", code, http.StatusOK)

	// A connected client shows up in metrics and vars.
	nc, err := nats.Connect(s.url(), nats.Name("endpoint-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("vars.test"); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	code, body = httpGet(t, base+"/metrics")
	mustEqual(t, "/metrics", code, http.StatusOK)
	mustContain(t, "/metrics", body, "flotilla_transport_connections 1")

	code, body = httpGet(t, base+"/debug/vars")
	mustEqual(t, "/debug/vars", code, http.StatusOK)
	var vars struct {
		NodeID    string `json:"node_id"`
		ServerID  string `json:"server_id"`
		Uptime    string `json:"uptime"`
		Transport struct {
			ServerID      string `json:"server_id"`
			ServerName    string `json:"server_name"`
			ClientAddr    string `json:"client_addr"`
			Connections   int    `json:"connections"`
			Subscriptions int    `json:"subscriptions"`
		} `json:"transport"`
	}
	if err := json.Unmarshal([]byte(body), &vars); err != nil {
		t.Fatalf("/debug/vars: %v\n%s", err, body)
	}
	mustEqual(t, "node_id", vars.NodeID, "test-node")
	mustEqual(t, "server_id", vars.ServerID, s.serverID)
	mustEqual(t, "transport.server_id", vars.Transport.ServerID, s.serverID)
	mustEqual(t, "transport.server_name", vars.Transport.ServerName, "test-node")
	mustEqual(t, "transport.client_addr", vars.Transport.ClientAddr, s.clientAddr)
	mustEqual(t, "transport.connections", vars.Transport.Connections, 1)
	mustEqual(t, "transport.subscriptions", vars.Transport.Subscriptions, 1)

	code, _ = httpGet(t, base+"/debug/pprof/heap?debug=1")
	mustEqual(t, "/debug/pprof/heap", code, http.StatusOK)

	// The client learns the node id and server id from INFO.
	mustEqual(t, "INFO server_id", nc.ConnectedServerId(), s.serverID)
	mustEqual(t, "INFO server_name", nc.ConnectedServerName(), "test-node")

	mustEqual(t, "exit status", s.stop(t), 0)
	logs := s.logs.String()
	for _, msg := range []string{"listening for nats clients", "shutdown started", "server stopped"} {
		if _, ok := logLine(logs, msg); !ok {
			t.Errorf("no %q log line", msg)
		}
	}
	started, _ := logLine(logs, "server started")
	mustEqual(t, "node_id field", started["node_id"], any("test-node"))
	mustEqual(t, "data_dir field", started["data_dir"], any(s.dataDir))
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("http listener still answers after exit")
	}
}

// TestServer_ServerIDPersists runs two servers, one after the other, on
// the same data dir.
func TestServer_ServerIDPersists(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	first := startTestServer(t, "--data-dir", dir)
	mustEqual(t, "first exit status", first.stop(t), 0)
	if _, ok := logLine(first.logs.String(), "server id created"); !ok {
		t.Fatalf("first start did not create a server id:\n%s", first.logs)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, serverIDFile))
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "server_id file", strings.TrimSpace(string(onDisk)), first.serverID)

	second := startTestServer(t, "--data-dir", dir)
	mustEqual(t, "second server id", second.serverID, first.serverID)
	if _, ok := logLine(second.logs.String(), "server id created"); ok {
		t.Fatal("second start created a new server id")
	}
	nc, err := nats.Connect(second.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	mustEqual(t, "INFO server_id", nc.ConnectedServerId(), first.serverID)
}

func TestServer_StartupErrors(t *testing.T) {
	t.Parallel()
	s := startTestServer(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"client port in use", []string{"--client-addr", s.clientAddr}, "start client listener"},
		{"http port in use", []string{"--http-addr", s.httpAddr}, "listen http"},
		{"config error", []string{"--max-payload", "0"}, "invalid max_payload"},
		{"cluster port in use", []string{"--cluster-addr", s.clientAddr}, "listen cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"server", "--data-dir", t.TempDir(),
				"--client-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
				"--cluster-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"}, tc.args...)
			code, _, stderr := runCmd(t, t.Context(), "", args...)
			mustEqual(t, "exit status", code, 1)
			mustContain(t, "stderr", stderr, tc.want)
		})
	}
}

func TestServer_ConsoleLogs(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"flotilla", "server", "--log-format", "console", "--node-id", "console-node",
			"--data-dir", t.TempDir(), "--client-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--cluster-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"}, os.Stdout, &logs)
	}()
	eventuallyContains(t, &logs, "server started")
	cancel()
	mustEqual(t, "exit status", <-done, 0)
	mustContain(t, "console logs", logs.String(), "INFO")
	mustContain(t, "console logs", logs.String(), `"node_id": "console-node"`)
}
