package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flotilla/flotilla/transport"
)

// parseServer runs `flotilla server ARGS` through urfave/cli in-process,
// with the real server flags, and returns what resolveServerConfig and
// loadServerConfig make of the resulting cli.Context. No server starts.
func parseServer(t *testing.T, args ...string) (resolved serverConfig, loaded serverConfig, loadErr error) {
	t.Helper()
	var resolveErr error
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	app.Command("server").Action = func(c *cli.Context) error {
		resolved, _, resolveErr = resolveServerConfig(c)
		loaded, loadErr = loadServerConfig(c)
		return nil
	}
	if err := app.Run(append([]string{"flotilla", "server"}, args...)); err != nil {
		return resolved, loaded, err
	}
	if resolveErr != nil {
		return resolved, loaded, resolveErr
	}
	return resolved, loaded, loadErr
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flotilla.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfig_Precedence checks default < file < env < flag for a string,
// an int, a duration, a byte size and the join list. It sets env vars, so
// it is not parallel.
func TestConfig_Precedence(t *testing.T) {
	file := writeConfig(t, `
client_addr: 10.0.0.1:4222
max_connections: 100
ping_interval: 30s
max_payload: 2MiB
join: [10.0.0.1:7946, 10.0.0.2:7946]
`)
	type want struct {
		addr    string
		maxConn int
		ping    time.Duration
		payload int
		join    []string
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want want
	}{
		{
			name: "default",
			want: want{transport.DefaultAddr, transport.DefaultMaxConnections, transport.DefaultPingInterval, transport.DefaultMaxPayload, nil},
		},
		{
			name: "file",
			args: []string{"--config", file},
			want: want{"10.0.0.1:4222", 100, 30 * time.Second, 2 << 20, []string{"10.0.0.1:7946", "10.0.0.2:7946"}},
		},
		{
			name: "env over file",
			env: map[string]string{
				"FLOTILLA_CLIENT_ADDR":     "10.0.0.2:4222",
				"FLOTILLA_MAX_CONNECTIONS": "200",
				"FLOTILLA_PING_INTERVAL":   "45s",
				"FLOTILLA_MAX_PAYLOAD":     "3MB",
				"FLOTILLA_JOIN":            "10.0.0.3:7946,10.0.0.4:7946",
			},
			args: []string{"--config", file},
			want: want{"10.0.0.2:4222", 200, 45 * time.Second, 3_000_000, []string{"10.0.0.3:7946", "10.0.0.4:7946"}},
		},
		{
			name: "flag over env over file",
			env: map[string]string{
				"FLOTILLA_CLIENT_ADDR":     "10.0.0.2:4222",
				"FLOTILLA_MAX_CONNECTIONS": "200",
				"FLOTILLA_PING_INTERVAL":   "45s",
				"FLOTILLA_MAX_PAYLOAD":     "3MB",
				"FLOTILLA_JOIN":            "10.0.0.3:7946",
			},
			args: []string{"--config", file,
				"--client-addr", "10.0.0.3:4222", "--max-connections", "300", "--ping-interval", "1m",
				"--max-payload", "4096", "--join", "10.0.0.5:7946", "--join", "10.0.0.6:7946"},
			want: want{"10.0.0.3:4222", 300, time.Minute, 4096, []string{"10.0.0.5:7946", "10.0.0.6:7946"}},
		},
		{
			name: "env without file",
			env:  map[string]string{"FLOTILLA_MAX_CONNECTIONS": "7"},
			want: want{transport.DefaultAddr, 7, transport.DefaultPingInterval, transport.DefaultMaxPayload, nil},
		},
		{
			name: "file value kept where only other keys are overridden",
			args: []string{"--config", file, "--max-connections", "5"},
			want: want{"10.0.0.1:4222", 5, 30 * time.Second, 2 << 20, []string{"10.0.0.1:7946", "10.0.0.2:7946"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, _, err := parseServer(t, tc.args...)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			mustEqual(t, "client addr", cfg.Transport.Addr, tc.want.addr)
			mustEqual(t, "max connections", cfg.Transport.MaxConnections, tc.want.maxConn)
			mustEqual(t, "ping interval", cfg.Transport.PingInterval, tc.want.ping)
			mustEqual(t, "max payload", cfg.Transport.MaxPayload, tc.want.payload)
			if !slices.Equal(cfg.Cluster.Join, tc.want.join) {
				t.Fatalf("join = %q, want %q", cfg.Cluster.Join, tc.want.join)
			}
		})
	}
}

func TestConfig_Defaults(t *testing.T) {
	t.Parallel()
	_, cfg, err := parseServer(t)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	mustEqual(t, "node id", cfg.NodeID, host)
	mustEqual(t, "server name", cfg.Transport.ServerName, host)
	mustEqual(t, "data dir", cfg.DataDir, "./data")
	mustEqual(t, "http addr", cfg.HTTPAddr, "127.0.0.1:8222")
	mustEqual(t, "cluster addr", cfg.Cluster.ClusterAddr, "127.0.0.1:6222")
	mustEqual(t, "gossip addr", cfg.Cluster.GossipAddr, "127.0.0.1:7946")
	mustEqual(t, "bootstrap expect", cfg.Cluster.BootstrapExpect, 1)
	mustEqual(t, "log level", cfg.LogLevel, "info")
	mustEqual(t, "log format", cfg.LogFormat, "json")
	mustEqual(t, "shutdown grace", cfg.ShutdownGrace, 10*time.Second)
	want := transport.DefaultConfig()
	want.ServerName = host
	want.JetStream = true // every node serves the JetStream API
	got := cfg.Transport
	if got != want {
		t.Fatalf("transport config = %+v\nwant %+v", got, want)
	}
}

func TestConfig_FileAllTypes(t *testing.T) {
	t.Parallel()
	file := writeConfig(t, `
node_id: n1
data_dir: /var/lib/flotilla
http_addr: 0.0.0.0:8223
advertise_client_addr: flotilla-1.example:4222
max_control_line: 8KiB
max_pending: 128MB
rate_limit_msgs: 1500.5
rate_limit_bytes: "10 MiB"
user: alice
password: 1234
log_level: debug
log_format: console
shutdown_grace: 1m30s
join: ""
`)
	_, cfg, err := parseServer(t, "--config", file)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "node id", cfg.NodeID, "n1")
	mustEqual(t, "data dir", cfg.DataDir, "/var/lib/flotilla")
	mustEqual(t, "http addr", cfg.HTTPAddr, "0.0.0.0:8223")
	mustEqual(t, "advertise client addr", cfg.Transport.AdvertiseAddr, "flotilla-1.example:4222")
	mustEqual(t, "max control line", cfg.Transport.MaxControlLine, 8192)
	mustEqual(t, "max pending", cfg.Transport.MaxPending, 128_000_000)
	mustEqual(t, "rate limit msgs", cfg.Transport.RateLimitMsgs, 1500.5)
	mustEqual(t, "rate limit bytes", cfg.Transport.RateLimitBytes, float64(10<<20))
	mustEqual(t, "user", cfg.Transport.Username, "alice")
	mustEqual(t, "password (an int in YAML)", cfg.Transport.Password, "1234")
	mustEqual(t, "log level", cfg.LogLevel, "debug")
	mustEqual(t, "log format", cfg.LogFormat, "console")
	mustEqual(t, "shutdown grace", cfg.ShutdownGrace, 90*time.Second)
	if len(cfg.Cluster.Join) != 0 {
		t.Fatalf("join = %q, want empty", cfg.Cluster.Join)
	}
}

// TestConfig_Errors checks that every rejected setting is named in the
// error, together with where it came from.
func TestConfig_Errors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		file string // config file body; "" for none
		args []string
		want []string // substrings of the error
	}{
		{name: "unknown key", file: "max_payloadd: 5\n",
			want: []string{`flotilla.yaml: unknown key "max_payloadd"`, `did you mean "max_payload"`}},
		{name: "unknown key config", file: "config: other.yaml\n", want: []string{`unknown key "config"`}},
		{name: "duplicate key", file: "max_payload: 5\nmax_payload: 6\n", want: []string{`duplicate key "max_payload"`}},
		{name: "not a mapping", file: "- a\n- b\n", want: []string{"want a mapping"}},
		{name: "yaml syntax", file: "max_payload: [\n", want: []string{"flotilla.yaml: yaml:"}},
		{name: "int wrong type", file: "max_connections: lots\n",
			want: []string{`key "max_connections" (line 1): want an integer, got "lots"`}},
		{name: "byte size wrong type", file: "max_payload: abc\n", want: []string{`key "max_payload"`, `got "abc"`}},
		{name: "byte size negative", file: "max_payload: -1\n", want: []string{`key "max_payload"`}},
		{name: "duration wrong type", file: "ping_interval: 10\n", want: []string{`key "ping_interval"`, "want a duration"}},
		{name: "string is a list", file: "client_addr: [a, b]\n", want: []string{`key "client_addr"`, "got a list"}},
		{name: "string is null", file: "client_addr:\n", want: []string{`key "client_addr"`, "null"}},
		{name: "float wrong type", file: "rate_limit_msgs: fast\n", want: []string{`key "rate_limit_msgs"`, "want a number"}},
		{name: "join is a mapping", file: "join: {a: b}\n", want: []string{`key "join"`, "got a mapping"}},
		{name: "max_payload 0 in file", file: "max_payload: 0\n",
			want: []string{"flotilla.yaml: invalid max_payload 0"}},
		{name: "max_payload 0 flag", args: []string{"--max-payload", "0"},
			want: []string{"invalid max_payload 0", "--max-payload or FLOTILLA_MAX_PAYLOAD"}},
		{name: "max_pending below max_payload", args: []string{"--max-pending", "1KiB"}, want: []string{"invalid max_pending"}},
		{name: "bad byte size flag", args: []string{"--max-payload", "1XB"}, want: []string{"max-payload", "want a byte count"}},
		{name: "client addr", file: "client_addr: nowhere\n", want: []string{"flotilla.yaml: invalid client_addr"}},
		{name: "http addr", args: []string{"--http-addr", "localhost"}, want: []string{`invalid http_addr "localhost"`}},
		{name: "cluster addr", args: []string{"--cluster-addr", "a:b"}, want: []string{"invalid cluster_addr"}},
		{name: "gossip addr", file: "gossip_addr: 1.2.3.4\n", want: []string{"flotilla.yaml: invalid gossip_addr"}},
		{name: "advertise port 0", args: []string{"--advertise-http-addr", "h:0"}, want: []string{"invalid advertise_http_addr", "port 0"}},
		{name: "advertise gossip", args: []string{"--advertise-gossip-addr", "h"}, want: []string{"invalid advertise_gossip_addr"}},
		{name: "log level", args: []string{"--log-level", "verbose"}, want: []string{`invalid log_level "verbose"`}},
		{name: "log format", file: "log_format: xml\n", want: []string{`flotilla.yaml: invalid log_format "xml"`}},
		{name: "node id", args: []string{"--node-id", "a b"}, want: []string{`invalid node_id "a b"`}},
		{name: "shutdown grace", args: []string{"--shutdown-grace", "0s"}, want: []string{"invalid shutdown_grace"}},
		{name: "bootstrap expect 0", args: []string{"--bootstrap-expect", "0"}, want: []string{"invalid bootstrap_expect 0"}},
		{name: "user without password", args: []string{"--user", "alice"}, want: []string{"invalid user"}},
		{name: "rate limit NaN", args: []string{"--rate-limit-msgs", "NaN"}, want: []string{"invalid rate_limit_msgs"}},
		{name: "missing file", args: []string{"--config", "/nonexistent/flotilla.yaml"},
			want: []string{"config /nonexistent/flotilla.yaml: no such file"}},
		{name: "join not host:port", args: []string{"--join", "somewhere"}, want: []string{`invalid join "somewhere"`}},
		{name: "reap after negative", args: []string{"--reap-after", "-1s"}, want: []string{"invalid reap_after"}},
		{name: "forward hold timeout zero", args: []string{"--forward-hold-timeout", "0s"}, want: []string{"invalid forward_hold_timeout"}},
		{name: "unknown raft log store", args: []string{"--raft-log-store", "leveldb"}, want: []string{"invalid raft_log_store"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeConfig(t, tc.file)}, args...)
			}
			_, _, err := parseServer(t, args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				mustContain(t, "error", err.Error(), w)
			}
		})
	}
}

// TestConfig_ClusterFlagsAccepted: the cluster settings reach cluster.Config.
func TestConfig_ClusterFlagsAccepted(t *testing.T) {
	t.Parallel()
	_, cfg, err := parseServer(t,
		"--cluster-addr", "0.0.0.0:6222", "--gossip-addr", ":7946",
		"--advertise-cluster-addr", "10.1.1.1:6222", "--advertise-gossip-addr", "10.1.1.1:7946",
		"--advertise-client-addr", "10.1.1.1:4222", "--advertise-http-addr", "[fd00::1]:8222",
		"--bootstrap-expect", "3", "--join", "10.1.1.2:7946,10.1.1.3:7946", "--reap-after", "10m")
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "cluster addr", cfg.Cluster.ClusterAddr, "0.0.0.0:6222")
	mustEqual(t, "gossip addr", cfg.Cluster.GossipAddr, ":7946")
	mustEqual(t, "advertise cluster", cfg.Cluster.AdvertiseClusterAddr, "10.1.1.1:6222")
	mustEqual(t, "advertise gossip", cfg.Cluster.AdvertiseGossipAddr, "10.1.1.1:7946")
	mustEqual(t, "bootstrap expect", cfg.Cluster.BootstrapExpect, 3)
	mustEqual(t, "join", len(cfg.Cluster.Join), 2)
	mustEqual(t, "reap after", cfg.Cluster.ReapAfter, 10*time.Minute)
	mustEqual(t, "advertise client", cfg.Transport.AdvertiseAddr, "10.1.1.1:4222")
	mustEqual(t, "advertise http", cfg.AdvertiseHTTPAddr, "[fd00::1]:8222")
}

// TestServerFlags_Contract pins the flag names DESIGN.md §3 and the docs
// promise, and that each reads FLOTILLA_<NAME>.
func TestServerFlags_Contract(t *testing.T) {
	t.Parallel()
	want := []string{
		"node-id", "data-dir", "client-addr", "http-addr", "cluster-addr", "gossip-addr", "join",
		"bootstrap-expect", "advertise-client-addr", "advertise-cluster-addr", "advertise-gossip-addr",
		"advertise-http-addr", "config", "log-level", "log-format",
		"max-payload", "max-control-line", "max-connections", "max-subscriptions", "max-pending",
		"auth-timeout", "ping-interval", "max-pings-out", "write-deadline", "rate-limit-msgs",
		"rate-limit-bytes", "user", "password", "auth-token", "shutdown-grace",
	}
	env := map[string]string{}
	for _, f := range serverFlags() {
		ef, ok := f.(interface{ GetEnvVars() []string })
		if !ok {
			t.Fatalf("flag %s has no env vars", f.Names()[0])
		}
		vars := ef.GetEnvVars()
		if flagOnly[f.Names()[0]] {
			if len(vars) != 0 {
				t.Fatalf("command-line-only flag %s reads env vars %q", f.Names()[0], vars)
			}
			continue
		}
		if len(vars) != 1 {
			t.Fatalf("flag %s env vars = %q, want one", f.Names()[0], vars)
		}
		env[f.Names()[0]] = vars[0]
	}
	for _, name := range want {
		got, ok := env[name]
		if !ok {
			t.Errorf("missing flag --%s", name)
			continue
		}
		wantEnv := "FLOTILLA_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if got != wantEnv {
			t.Errorf("--%s reads %s, want %s", name, got, wantEnv)
		}
	}
}
