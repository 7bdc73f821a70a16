package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flotilla/flotilla/internal/testutil"
)

// startSub runs `flotilla sub ARGS` in the background and waits until it
// reports its subscription (after which the server has registered it).
func startSub(t *testing.T, ctx context.Context, args ...string) (stdout *syncBuffer, done <-chan int) {
	t.Helper()
	var out, errOut syncBuffer
	ch := make(chan int, 1)
	app := newApp(strings.NewReader(""), &out, &errOut)
	go func() { ch <- runApp(ctx, app, append([]string{"flotilla", "sub"}, args...)) }()
	testutil.Eventually(t, 10*time.Second, func() error {
		select {
		case code := <-ch:
			t.Fatalf("sub exited with %d: %s", code, errOut.String())
		default:
		}
		if !strings.Contains(errOut.String(), "subscribed to") {
			return errorf("sub not subscribed yet: %q", errOut.String())
		}
		return nil
	})
	return &out, ch
}

func waitExit(t *testing.T, done <-chan int) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("command did not exit")
		return -1
	}
}

func TestClient_PubSub(t *testing.T) {
	t.Parallel()
	s := startTestServer(t)
	ctx := t.Context()

	out, done := startSub(t, ctx, "-s", s.url(), "--count", "3", "cli.*")

	code, _, stderr := runCmd(t, ctx, "", "pub", "-s", s.url(), "cli.one", "hello one")
	mustEqual(t, "pub exit status: "+stderr, code, 0)
	mustContain(t, "pub stderr", stderr, `published 1 message(s) of 9 bytes to "cli.one"`)

	code, _, stderr = runCmd(t, ctx, "", "pub", "-s", s.url(), "-H", "X-Trace:abc", "-H", "X-List: a,b",
		"--reply", "my.inbox", "cli.two", "hello two")
	mustEqual(t, "pub with headers exit status: "+stderr, code, 0)

	// DATA from stdin when omitted.
	code, _, stderr = runCmd(t, ctx, "from stdin", "pub", "-s", s.url(), "cli.three")
	mustEqual(t, "pub from stdin exit status: "+stderr, code, 0)

	mustEqual(t, "sub exit status", waitExit(t, done), 0)
	want := "[#1] cli.one\nhello one\n" +
		"[#2] cli.two my.inbox\nX-List: a,b\nX-Trace: abc\n\nhello two\n" +
		"[#3] cli.three\nfrom stdin\n"
	mustEqual(t, "sub output", out.String(), want)
}

func TestClient_PubCountAndQueue(t *testing.T) {
	t.Parallel()
	s := startTestServer(t)
	ctx := t.Context()

	out, done := startSub(t, ctx, "-s", s.url(), "--queue", "workers", "--count", "5", "jobs")
	code, _, stderr := runCmd(t, ctx, "", "pub", "-s", s.url(), "--count", "5", "jobs", "job")
	mustEqual(t, "pub exit status: "+stderr, code, 0)
	mustEqual(t, "sub exit status", waitExit(t, done), 0)
	mustEqual(t, "messages received", strings.Count(out.String(), "\njob\n"), 5)
	mustContain(t, "sub output", out.String(), "[#5] jobs\n")
}

// TestClient_SubInterrupted: cancelling sub's context (what SIGINT does)
// ends it with status 0.
func TestClient_SubInterrupted(t *testing.T) {
	t.Parallel()
	s := startTestServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	_, done := startSub(t, ctx, "-s", s.url(), "forever")
	cancel()
	mustEqual(t, "sub exit status", waitExit(t, done), 0)
}

func TestClient_Req(t *testing.T) {
	t.Parallel()
	s := startTestServer(t)
	ctx := t.Context()

	nc, err := nats.Connect(s.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("svc.echo", func(m *nats.Msg) {
		reply := nats.NewMsg(m.Reply)
		reply.Header.Set("X-Seen", m.Header.Get("X-Req"))
		reply.Data = append([]byte("echo: "), m.Data...)
		_ = m.RespondMsg(reply)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.SubscribeSync("svc.silent"); err != nil { // never answers
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCmd(t, ctx, "", "req", "-s", s.url(), "-H", "X-Req:42", "svc.echo", "ping")
	mustEqual(t, "req exit status: "+stderr, code, 0)
	mustEqual(t, "req output", stdout, "X-Seen: 42\n\necho: ping\n")

	code, stdout, stderr = runCmd(t, ctx, "", "req", "-s", s.url(), "svc.nobody", "ping")
	mustEqual(t, "no responders exit status", code, 1)
	mustEqual(t, "no responders stdout", stdout, "")
	mustContain(t, "no responders stderr", stderr, `no responders on "svc.nobody"`)

	code, _, stderr = runCmd(t, ctx, "", "req", "-s", s.url(), "--timeout", "200ms", "svc.silent", "ping")
	mustEqual(t, "timeout exit status", code, 1)
	mustContain(t, "timeout stderr", stderr, `request on "svc.silent": no reply within 200ms`)
}

func TestClient_Errors(t *testing.T) {
	t.Parallel()
	s := startTestServer(t, "--max-payload", "1KiB")
	ctx := t.Context()
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{name: "payload over max_payload", args: []string{"pub", "-s", s.url(), "big", strings.Repeat("x", 2048)},
			want: "maximum payload exceeded"},
		{name: "invalid subject", args: []string{"pub", "-s", s.url(), "bad subject", "x"}, want: `publish to "bad subject"`},
		{name: "no server", args: []string{"pub", "-s", "nats://127.0.0.1:1", "--timeout", "500ms", "a", "b"},
			want: "connect to nats://127.0.0.1:1"},
		{name: "password redacted", args: []string{"req", "-s", "nats://u:secret@127.0.0.1:1", "a"}, want: "u:xxxxx@"},
		{name: "pub without subject", args: []string{"pub"}, want: "want SUBJECT [DATA], got 0"},
		{name: "sub too many args", args: []string{"sub", "a", "b"}, want: "want SUBJECT, got 2"},
		{name: "bad header", args: []string{"pub", "-H", "nocolon", "a", "b"}, want: "want KEY:VALUE"},
		{name: "count 0", args: []string{"pub", "--count", "0", "a", "b"}, want: "--count must be at least 1"},
		{name: "unknown flag", args: []string{"pub", "--nope", "a"}, want: "flag provided but not defined"},
		{name: "unknown command", args: []string{"publish"}, want: `unknown command "publish"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runCmd(t, ctx, tc.stdin, tc.args...)
			mustEqual(t, "exit status", code, 1)
			mustContain(t, "stderr", stderr, tc.want)
			if strings.Contains(stderr, "secret") {
				t.Fatalf("password printed: %s", stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		code, stdout, _ := runCmd(t, t.Context(), "", args...)
		mustEqual(t, "exit status", code, 0)
		mustContain(t, "stdout", stdout, "flotilla dev go1.")
	}
	code, stdout, _ := runCmd(t, t.Context(), "")
	mustEqual(t, "bare flotilla exit status", code, 0)
	mustContain(t, "help", stdout, "server")
	code, stdout, _ = runCmd(t, t.Context(), "", "help", "server")
	mustEqual(t, "help server exit status", code, 0)
	mustContain(t, "help server", stdout, "--bootstrap-expect")
}
