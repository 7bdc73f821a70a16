package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/cluster"
	"github.com/flotilla/flotilla/internal/testutil"
)

// httpPost posts body to url and returns the status code and body.
func httpPost(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// blockedState decodes a faults endpoint's answer.
func blockedState(t *testing.T, body string) map[string]string {
	t.Helper()
	var st faultsState
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("not a faults state: %v\n%s", err, body)
	}
	if st.Blocked == nil {
		t.Fatalf("no blocked map in %s", body)
	}
	return st.Blocked
}

func mustBlocked(t *testing.T, what, body string, want map[string]string) {
	t.Helper()
	got := blockedState(t, body)
	if len(got) != len(want) {
		t.Fatalf("%s: blocked = %v, want %v", what, got, want)
	}
	for a, d := range want {
		if got[a] != d {
			t.Fatalf("%s: blocked = %v, want %v", what, got, want)
		}
	}
}

// assertNoFaultEndpoints checks that none of the fault paths exist.
func assertNoFaultEndpoints(t *testing.T, base string) {
	t.Helper()
	code, _ := httpGet(t, base+"/debug/faults")
	mustEqual(t, "GET /debug/faults", code, http.StatusNotFound)
	code, _ = httpPost(t, base+"/debug/faults/block", `{"addrs":["127.0.0.1:1"]}`)
	mustEqual(t, "POST /debug/faults/block", code, http.StatusNotFound)
	code, _ = httpPost(t, base+"/debug/faults/heal", `{}`)
	mustEqual(t, "POST /debug/faults/heal", code, http.StatusNotFound)
}

func TestFaultsHTTP_AbsentWithoutFlag(t *testing.T) {
	t.Parallel()
	s := startTestServer(t)
	assertNoFaultEndpoints(t, "http://"+s.httpAddr)
	if _, ok := logLine(s.logs.String(), "unsafe fault injection enabled"); ok {
		t.Fatal("fault injection warning without the flag")
	}
}

// TestFaultsHTTP_EnvAndConfigCannotEnable: neither FLOTILLA_* nor the
// config file turns it on. It sets an env var, so it is not parallel.
func TestFaultsHTTP_EnvAndConfigCannotEnable(t *testing.T) {
	t.Setenv("FLOTILLA_UNSAFE_FAULT_INJECTION", "true")
	_, cfg, err := parseServer(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UnsafeFaultInjection {
		t.Fatal("the env var enabled fault injection")
	}
	s := startTestServer(t)
	assertNoFaultEndpoints(t, "http://"+s.httpAddr)
	started, _ := logLine(s.logs.String(), "server started")
	mustEqual(t, "unsafe_fault_injection field", started["unsafe_fault_injection"], any(false))

	for _, body := range []string{"unsafe_fault_injection: true\n", "unsafe_fault_injection: false\n"} {
		_, _, err = parseServer(t, "--config", writeConfig(t, body))
		if err == nil {
			t.Fatalf("config %q accepted", body)
		}
		mustContain(t, "error", err.Error(), `key "unsafe_fault_injection" (line 1) can only be given on the command line, as --unsafe-fault-injection`)
	}
}

func TestFaultsHTTP_RequiresLoopback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--client-addr", "0.0.0.0:4222"}, `invalid client_addr "0.0.0.0:4222"`},
		{[]string{"--http-addr", "[::]:8222"}, `invalid http_addr "[::]:8222"`},
		{[]string{"--http-addr", ":8222"}, `invalid http_addr ":8222"`},
		{[]string{"--cluster-addr", "10.0.0.1:6222"}, `invalid cluster_addr "10.0.0.1:6222"`},
		{[]string{"--gossip-addr", "localhost:7946"}, `invalid gossip_addr "localhost:7946"`},
		{[]string{"--advertise-cluster-addr", "10.0.0.1:6222"}, `invalid advertise_cluster_addr "10.0.0.1:6222"`},
		{[]string{"--advertise-client-addr", "node1:4222"}, `invalid advertise_client_addr "node1:4222"`},
		{[]string{"--join", "127.0.0.1:7946,10.0.0.2:7946"}, `invalid join "10.0.0.2:7946"`},
	}
	for _, tc := range cases {
		_, _, err := parseServer(t, append([]string{"--unsafe-fault-injection"}, tc.args...)...)
		if err == nil {
			t.Errorf("%v: accepted", tc.args)
			continue
		}
		if !errors.Is(err, errNotLoopback) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %q, want %q and errNotLoopback", tc.args, err, tc.want)
		}
		// The same addresses without the flag are fine.
		if _, _, err := parseServer(t, tc.args...); err != nil {
			t.Errorf("%v without the flag: %v", tc.args, err)
		}
	}
	// Loopback everywhere, IPv4 and IPv6, is accepted.
	_, cfg, err := parseServer(t, "--unsafe-fault-injection", "--client-addr", "127.0.0.2:0", "--http-addr", "[::1]:0",
		"--advertise-gossip-addr", "127.0.0.1:7946", "--join", "127.0.0.1:7947")
	if err != nil || !cfg.UnsafeFaultInjection {
		t.Fatalf("loopback config: %v, enabled %v", err, cfg.UnsafeFaultInjection)
	}

	// The real command refuses to start, naming the setting.
	code, _, stderr := runCmd(t, t.Context(), "", "server", "--unsafe-fault-injection", "--data-dir", t.TempDir(),
		"--client-addr", "0.0.0.0:0", "--http-addr", "127.0.0.1:0", "--cluster-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0")
	mustEqual(t, "exit status", code, 1)
	mustContain(t, "stderr", stderr, `invalid client_addr "0.0.0.0:0": must be a loopback IP address`)
	mustContain(t, "stderr", stderr, "(from --client-addr or FLOTILLA_CLIENT_ADDR)")
}

func TestFaultsHTTP_Endpoints(t *testing.T) {
	t.Parallel()
	s := startTestServer(t, "--unsafe-fault-injection")
	base := "http://" + s.httpAddr
	warn, ok := logLine(s.logs.String(), "unsafe fault injection enabled")
	if !ok || warn["level"] != "error" {
		t.Fatalf("no loud warning (error level) in the logs: %v\n%s", warn, s.logs)
	}
	started, _ := logLine(s.logs.String(), "server started")
	mustEqual(t, "unsafe_fault_injection field", started["unsafe_fault_injection"], any(true))

	code, body := httpGet(t, base+"/debug/faults")
	mustEqual(t, "GET status", code, http.StatusOK)
	mustBlocked(t, "initial", body, map[string]string{})

	code, body = httpPost(t, base+"/debug/faults/block", `{"addrs":["127.0.0.1:7101","127.0.0.1:7201"],"direction":"out"}`)
	mustEqual(t, "block status: "+body, code, http.StatusOK)
	mustBlocked(t, "block out", body, map[string]string{"127.0.0.1:7101": "out", "127.0.0.1:7201": "out"})
	code, body = httpPost(t, base+"/debug/faults/block", `{"addrs":["127.0.0.1:7101"],"direction":"in"}`)
	mustEqual(t, "block status: "+body, code, http.StatusOK)
	mustBlocked(t, "block in", body, map[string]string{"127.0.0.1:7101": "both", "127.0.0.1:7201": "out"})
	code, body = httpPost(t, base+"/debug/faults/block", `{"addrs":["[::1]:7301"]}`)
	mustEqual(t, "block status: "+body, code, http.StatusOK)
	code, body = httpGet(t, base+"/debug/faults")
	mustEqual(t, "GET status", code, http.StatusOK)
	mustBlocked(t, "GET", body, map[string]string{"127.0.0.1:7101": "both", "127.0.0.1:7201": "out", "[::1]:7301": "both"})

	for _, bad := range []struct{ path, body, want string }{
		{"block", `not json`, "body:"},
		{"block", ``, "at least one peer address"},
		{"block", `{}`, "at least one peer address"},
		{"block", `{"addrs":["127.0.0.1:1"],"direction":"sideways"}`, `direction "sideways"`},
		{"block", `{"addrs":["nohost"]}`, `"nohost" is not a host:port`},
		{"block", `{"addr":["127.0.0.1:1"]}`, `unknown field "addr"`},
		{"block", `{"addrs":["127.0.0.1:1"]} {}`, "single JSON object"},
		{"block", `{"addrs":"127.0.0.1:1"}`, "body:"},
		{"heal", `{"direction":"in"}`, "direction"},
		{"heal", `[1]`, "body:"},
	} {
		code, body := httpPost(t, base+"/debug/faults/"+bad.path, bad.body)
		if code != http.StatusBadRequest {
			t.Errorf("%s %q: status %d, want 400", bad.path, bad.body, code)
			continue
		}
		var e map[string]string
		if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e["error"], bad.want) {
			t.Errorf("%s %q: body %s, want an error containing %q", bad.path, bad.body, body, bad.want)
		}
	}
	code, _ = httpGet(t, base+"/debug/faults/block")
	mustEqual(t, "GET /debug/faults/block", code, http.StatusMethodNotAllowed)

	code, body = httpPost(t, base+"/debug/faults/heal", `{"addrs":["127.0.0.1:7101","[0:0::1]:7301"]}`)
	mustEqual(t, "heal status: "+body, code, http.StatusOK)
	mustBlocked(t, "partial heal", body, map[string]string{"127.0.0.1:7201": "out"})
	code, body = httpPost(t, base+"/debug/faults/heal", `{}`)
	mustEqual(t, "heal status: "+body, code, http.StatusOK)
	mustBlocked(t, "heal all", body, map[string]string{})
	for _, msg := range []string{"fault injected", "faults healed"} {
		if _, ok := logLine(s.logs.String(), msg); !ok {
			t.Errorf("no %q log line", msg)
		}
	}
}

// clusterStatus reads a node's /cluster/status.
func clusterStatus(httpAddr string) (cluster.Status, error) {
	resp, err := http.Get("http://" + httpAddr + "/cluster/status")
	if err != nil {
		return cluster.Status{}, err
	}
	defer resp.Body.Close()
	var st cluster.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return cluster.Status{}, err
	}
	return st, nil
}

func readyzCode(httpAddr string) int {
	resp, err := http.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestFaultsHTTP_PartitionsTwoRealNodes runs two real servers with the
// flag, cuts them apart over http (cluster and gossip addresses, both
// directions, on both nodes), sees Raft lose its quorum and gossip suspect
// the peer, then heals and sees the cluster ready again.
func TestFaultsHTTP_PartitionsTwoRealNodes(t *testing.T) {
	t.Parallel()
	s1 := startTestServer(t, "--unsafe-fault-injection", "--node-id", "f1")
	st1, err := clusterStatus(s1.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	var gossip1 string
	for _, m := range st1.Members {
		if m.ID == "f1" {
			gossip1 = m.Gossip
		}
	}
	s2 := startTestServer(t, "--unsafe-fault-injection", "--node-id", "f2", "--join", gossip1)
	// Both are voters once s2 is ready (the leader added it).
	var addrs = map[string][]string{}
	testutil.Eventually(t, 15*time.Second, func() error {
		st, err := clusterStatus(s1.httpAddr)
		if err != nil {
			return err
		}
		if len(st.Servers) != 2 {
			return fmt.Errorf("raft configuration %v", st.Servers)
		}
		for _, m := range st.Members {
			addrs[m.ID] = []string{m.Cluster, m.Gossip}
		}
		return nil
	})
	block := func(s *testServer, peer string) {
		b, _ := json.Marshal(faultsRequest{Addrs: addrs[peer], Direction: "both"})
		code, body := httpPost(t, "http://"+s.httpAddr+"/debug/faults/block", string(b))
		mustEqual(t, "block: "+body, code, http.StatusOK)
	}
	block(s1, "f2")
	block(s2, "f1")

	testutil.Eventually(t, 15*time.Second, func() error {
		for _, s := range []*testServer{s1, s2} {
			if code := readyzCode(s.httpAddr); code != http.StatusServiceUnavailable {
				return fmt.Errorf("%s /readyz = %d while partitioned", s.httpAddr, code)
			}
		}
		st, err := clusterStatus(s1.httpAddr)
		if err != nil {
			return err
		}
		for _, m := range st.Members {
			if m.ID == "f2" && m.Status == cluster.StatusAlive {
				return errors.New("f1's gossip still sees f2 alive")
			}
		}
		return nil
	})

	for _, s := range []*testServer{s1, s2} {
		code, body := httpPost(t, "http://"+s.httpAddr+"/debug/faults/heal", `{}`)
		mustEqual(t, "heal: "+body, code, http.StatusOK)
	}
	waitReady(t, s1.httpAddr)
	waitReady(t, s2.httpAddr)
}
