package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla/flotilla/internal/testutil"
)

// TestBinary runs the real binary, because signals and exit statuses are
// process-level behaviour. It builds it once for its parallel subtests.
func TestBinary(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	for name, f := range map[string]func(*testing.T, string){
		"SIGTERM_LameDuck":                      testSIGTERMLameDuck,
		"GraceExpires":                          testGraceExpires,
		"ReadinessFailsFirst_SecondSignalExits": testReadinessFailsFirstSecondSignalExits,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, bin)
		})
	}
}

func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "flotilla")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serverProc is a `flotilla server` child process.
type serverProc struct {
	cmd        *exec.Cmd
	logs       *syncBuffer
	clientAddr string
	httpAddr   string
	exited     chan struct{}
	waitErr    error
}

func startServerProc(t *testing.T, bin string, args ...string) *serverProc {
	t.Helper()
	p := &serverProc{logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"server", "--node-id", "proc-node", "--data-dir", t.TempDir(),
		"--client-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--cluster-addr", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		select {
		case <-p.exited:
			t.Fatalf("server exited during startup: %v\n%s", p.waitErr, p.logs)
		default:
		}
		line, ok := logLine(p.logs.String(), "server started")
		if !ok {
			return errors.New("not started yet")
		}
		p.clientAddr, _ = line["client_addr"].(string)
		p.httpAddr, _ = line["http_addr"].(string)
		return nil
	})
	return p
}

func (p *serverProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// waitExit returns the exit status, failing if the process takes longer
// than within.
func (p *serverProc) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("server did not exit within %v; logs:\n%s", within, p.logs)
		return -1
	}
}

func testSIGTERMLameDuck(t *testing.T, bin string) {
	p := startServerProc(t, bin, "--shutdown-grace", "5s")

	// readyzDuringLDM records what /readyz said once the client heard the
	// lame-duck INFO: it must never be 200 again (503, or the listener is
	// already gone).
	readyzDuringLDM := make(chan string, 1)
	nc, err := nats.Connect("nats://"+p.clientAddr,
		nats.LameDuckModeHandler(func(*nats.Conn) {
			resp, err := http.Get("http://" + p.httpAddr + "/readyz")
			if err != nil {
				readyzDuringLDM <- "unreachable"
				return
			}
			resp.Body.Close()
			readyzDuringLDM <- resp.Status
		}),
		nats.ReconnectWait(time.Hour)) // stay quiet after the server is gone
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("ldm.test"); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, p.httpAddr)

	began := time.Now()
	p.signal(t, syscall.SIGTERM)
	select {
	case status := <-readyzDuringLDM:
		if strings.HasPrefix(status, "200") {
			t.Fatalf("/readyz answered %s after the lame-duck INFO", status)
		}
	case <-time.After(testutil.Scale(5 * time.Second)):
		t.Fatalf("client never got the lame-duck INFO; logs:\n%s", p.logs)
	}
	mustEqual(t, "exit status", p.waitExit(t, testutil.Scale(5*time.Second)), 0)
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("shutdown took %v, grace is 5s", took)
	}
	line, ok := logLine(p.logs.String(), "shutdown started")
	if !ok || line["signal"] != "terminated" {
		t.Fatalf("shutdown log line %v; logs:\n%s", line, p.logs)
	}
	if _, ok := logLine(p.logs.String(), "server stopped"); !ok {
		t.Fatalf("no server stopped line; logs:\n%s", p.logs)
	}
}

// stickClient connects a raw client that subscribes to subject and then
// never reads, and publishes until the server holds output for it that it
// cannot write: the situation a graceful shutdown cannot finish by itself.
func stickClient(t *testing.T, p *serverProc, subject string) {
	t.Helper()
	raw, err := net.Dial("tcp", p.clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	r := bufio.NewReader(raw)
	if _, err := r.ReadString('\n'); err != nil { // INFO
		t.Fatal(err)
	}
	if _, err := raw.Write([]byte(`CONNECT {"verbose":false,"name":"stuck"}` + "\r\nSUB " + subject + " 1\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "PONG\r\n" {
			break // the subscription is registered; from now on, never read
		}
	}

	pub, err := nats.Connect("nats://" + p.clientAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	payload := make([]byte, 1<<20)
	testutil.Eventually(t, 20*time.Second, func() error {
		if err := pub.Publish(subject, payload); err != nil {
			return err
		}
		if err := pub.Flush(); err != nil {
			return err
		}
		_, body := httpGet(t, "http://"+p.httpAddr+"/debug/vars")
		var vars struct {
			Transport struct {
				Conns []struct {
					ClientName   string `json:"client_name"`
					PendingBytes int    `json:"pending_bytes"`
				} `json:"conns"`
			} `json:"transport"`
		}
		if err := json.Unmarshal([]byte(body), &vars); err != nil {
			return err
		}
		for _, c := range vars.Transport.Conns {
			// Pending output is also there for a moment on a healthy
			// connection; 8 MiB is more than loopback socket buffers take
			// from a client that does not read.
			if c.ClientName == "stuck" && c.PendingBytes >= 8<<20 {
				return nil
			}
		}
		return errors.New("stuck client does not have 8 MiB pending yet")
	})
}

// testGraceExpires: with a client that never reads, shutdown
// force-closes it when --shutdown-grace runs out and still exits 0.
func testGraceExpires(t *testing.T, bin string) {
	p := startServerProc(t, bin, "--shutdown-grace", "1s", "--write-deadline", "1m")
	stickClient(t, p, "stuck.big")

	began := time.Now()
	p.signal(t, syscall.SIGTERM)
	mustEqual(t, "exit status", p.waitExit(t, testutil.Scale(5*time.Second)), 0)
	// The grace period bounds the whole shutdown; allow some slack for
	// signal delivery and process exit on a loaded machine.
	if took := time.Since(began); took > time.Second+testutil.Scale(2*time.Second) {
		t.Fatalf("shutdown took %v with a 1s grace period; logs:\n%s", took, p.logs)
	}
	// Normally the client listener's force-close is logged; on a starved
	// machine the last-resort timer may win the race instead. Both warn.
	logs := p.logs.String()
	_, forced := logLine(logs, "shutdown grace period expired, client connections force-closed")
	_, timedOut := logLine(logs, "shutdown did not finish within the grace period, exiting")
	if !forced && !timedOut {
		t.Fatalf("no grace-expired warning; logs:\n%s", logs)
	}
}

// testReadinessFailsFirstSecondSignalExits: while a shutdown is
// draining, /readyz is 503 and /healthz still 200; a second SIGTERM ends
// the process at once with status 1.
func testReadinessFailsFirstSecondSignalExits(t *testing.T, bin string) {
	p := startServerProc(t, bin, "--shutdown-grace", "1m", "--write-deadline", "1m")
	stickClient(t, p, "stuck.big")

	p.signal(t, syscall.SIGTERM)
	base := "http://" + p.httpAddr
	testutil.Eventually(t, 5*time.Second, func() error {
		code, body := httpGet(t, base+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
			return errorf("/readyz = %d %s", code, body)
		}
		return nil
	})
	code, _ := httpGet(t, base+"/healthz")
	mustEqual(t, "/healthz while draining", code, http.StatusOK)

	began := time.Now()
	p.signal(t, syscall.SIGTERM)
	mustEqual(t, "exit status after second signal", p.waitExit(t, testutil.Scale(5*time.Second)), 1)
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("second signal took %v to exit", took)
	}
	if _, ok := logLine(p.logs.String(), "second signal received, exiting without finishing shutdown"); !ok {
		t.Fatalf("no second-signal line; logs:\n%s", p.logs)
	}
}
