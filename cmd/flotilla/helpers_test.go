package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla/flotilla/internal/testutil"
)

// syncBuffer is a bytes.Buffer safe for one writer goroutine (the logger,
// a command) and a polling reader (the test).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logLine finds the first JSON log line whose msg is msg.
func logLine(logs, msg string) (map[string]any, bool) {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			return m, true
		}
	}
	return nil, false
}

// testServer is a `flotilla server` running in-process through run().
type testServer struct {
	clientAddr string // bound, from the "server started" log line
	httpAddr   string
	serverID   string
	dataDir    string
	logs       *syncBuffer
	cancel     context.CancelFunc
	done       chan int // receives run's exit status
}

// url is the nats:// URL of the client listener.
func (s *testServer) url() string { return "nats://" + s.clientAddr }

// stop cancels the server's context (what SIGTERM does) and returns run's
// exit status.
func (s *testServer) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // later stops (t.Cleanup) see it too
		return code
	case <-time.After(testutil.Scale(15 * time.Second)):
		t.Fatalf("server did not exit after its context was cancelled; logs:\n%s", s.logs)
		return -1
	}
}

// startTestServer runs `flotilla server` with random ports and a temp data
// dir (unless args set --data-dir) and waits for its "server started" log
// line, which carries the bound addresses. It is stopped in t.Cleanup.
func startTestServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	dataDir := t.TempDir()
	full := []string{"flotilla", "server",
		"--node-id", "test-node",
		"--data-dir", dataDir,
		"--client-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0",
		"--cluster-addr", "127.0.0.1:0",
		"--gossip-addr", "127.0.0.1:0",
		"--shutdown-grace", "5s",
		"--log-level", "debug",
	}
	for i, a := range args {
		if a == "--data-dir" && i+1 < len(args) {
			dataDir = args[i+1]
		}
	}
	full = append(full, args...) // later flags win
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{dataDir: dataDir, logs: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- run(ctx, full, io.Discard, s.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-s.done:
			s.done <- code
		case <-time.After(testutil.Scale(15 * time.Second)):
			t.Errorf("server did not stop; logs:\n%s", s.logs)
		}
	})

	testutil.Eventually(t, 10*time.Second, func() error {
		select {
		case code := <-s.done:
			s.done <- code
			t.Fatalf("server exited with status %d during startup; logs:\n%s", code, s.logs)
		default:
		}
		line, ok := logLine(s.logs.String(), "server started")
		if !ok {
			return errors.New(`no "server started" log line yet`)
		}
		s.clientAddr, _ = line["client_addr"].(string)
		s.httpAddr, _ = line["http_addr"].(string)
		s.serverID, _ = line["server_id"].(string)
		return nil
	})
	waitReady(t, s.httpAddr)
	return s
}

// waitReady polls /readyz until it answers 200: a single node elects
// itself Raft leader shortly after it starts.
func waitReady(t *testing.T, httpAddr string) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, func() error {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz = %d", resp.StatusCode)
		}
		return nil
	})
}

// runCmd runs one flotilla command line in-process with stdin and returns
// its exit status, stdout and stderr.
func runCmd(t *testing.T, ctx context.Context, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncBuffer
	app := newApp(strings.NewReader(stdin), &out, &errOut)
	code := runApp(ctx, app, append([]string{"flotilla"}, args...))
	return code, out.String(), errOut.String()
}

// httpGet fetches url and returns the status code and body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func mustEqual[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func mustContain(t *testing.T, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Fatalf("%s does not contain %q:\n%s", what, sub, s)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// eventuallyContains waits until buf contains sub.
func eventuallyContains(t *testing.T, buf *syncBuffer, sub string) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(buf.String(), sub) {
			return fmt.Errorf("no %q yet in:\n%s", sub, buf)
		}
		return nil
	})
}
