package differential

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla/flotilla/internal/testutil"
)

// A script is a sequence of raw client writes on one or more named
// connections. Each step's server output is appended to one transcript,
// which is what the two servers must agree on.
type script struct {
	name  string
	cfg   serverConfig
	steps []step
	// knownDiff, when set, says why Flotilla still differs from nats-server
	// here. The script runs anyway; a difference is logged instead of
	// failing, and a script that has stopped differing fails so the marker
	// gets removed.
	knownDiff string
	// unordered compares each step's deliveries as a set. One message
	// matching several subscriptions of the same connection is delivered
	// once per subscription, and the protocol leaves the order of those
	// copies open: nats-server's follows its sublist's internal layout
	// (partly map order), so only per-subscription order is a contract.
	unordered bool
}

// waitMode is how a step collects the server's answer.
type waitMode int

const (
	// waitPong appends "PING\r\n" to the write and reads until the PONG
	// answering it, or until the server closes the connection. PONGs
	// answer PINGs in order, so that PONG comes after everything the
	// step's own bytes caused, and after deliveries caused by earlier
	// steps on other connections.
	waitPong waitMode = iota
	// waitNone only writes; the answer is read by a later step on the same
	// connection (for ops split across writes).
	waitNone
	// waitClose reads until the server closes the connection, for scripts
	// driven by a server timer (auth timeout, stale connection) where a
	// PING would change what is being tested.
	waitClose
)

// step writes send on connection conn (dialled on first use) and collects
// the answer as wait says.
type step struct {
	conn string
	send string
	wait waitMode
}

// on is a waitPong step, the common case.
func on(conn, send string) step { return step{conn: conn, send: send} }

// partial is a waitNone step. Its bytes must not contain a PING: the PONG
// count a later step waits for only covers that step's own bytes.
func partial(conn, send string) step { return step{conn: conn, send: send, wait: waitNone} }

// untilClosed is a waitClose step.
func untilClosed(conn, send string) step { return step{conn: conn, send: send, wait: waitClose} }

// Pseudo-lines recorded in transcripts.
const (
	lineClosed  = "<closed>"  // the server closed the connection (EOF or reset)
	lineTimeout = "<timeout>" // nothing more arrived before the failure bound
)

// stepTimeout bounds one step's reads. It is a failure bound, never a
// synchronisation point: a correct server ends every step with a PONG or a
// close long before it.
func stepTimeout() time.Duration { return testutil.Scale(2 * time.Second) }

// rawConn is a bare TCP client connection used by a script.
type rawConn struct {
	name   string
	nc     net.Conn
	r      *bufio.Reader
	infos  int  // INFO lines seen; only the first is compared
	closed bool // the server closed it; later steps skip it
}

// runScript plays sc against the server at addr and returns the transcript.
func runScript(t *testing.T, addr string, sc script) []string {
	t.Helper()
	conns := make(map[string]*rawConn)
	var out []string
	for i, st := range sc.steps {
		c, ok := conns[st.conn]
		if !ok {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			t.Cleanup(func() { _ = nc.Close() })
			c = &rawConn{name: st.conn, nc: nc, r: bufio.NewReader(nc)}
			conns[st.conn] = c
			// The first line is INFO on both servers; read it now so each
			// step's output starts with what that step caused.
			out = append(out, fmt.Sprintf("== dial %s", c.name))
			out = append(out, c.collect(collectOpts{lines: 1})...)
		}
		out = append(out, fmt.Sprintf("== step %d %s> %s", i, c.name, abbrev(st.send)))
		if c.closed {
			out = append(out, c.name+": <already closed>")
			continue
		}
		data := st.send
		if st.wait == waitPong {
			data += "PING\r\n"
		}
		if _, err := c.nc.Write([]byte(data)); err != nil {
			// The server may have closed between steps; the read below
			// records that.
			out = append(out, c.name+": <write error>")
		}
		var got []string
		switch st.wait {
		case waitPong:
			got = c.collect(collectOpts{pongs: countPings(st.send) + 1})
		case waitClose:
			got = c.collect(collectOpts{})
		}
		if sc.unordered {
			sortDeliveries(got)
		}
		out = append(out, got...)
	}
	return out
}

// collectOpts says when collect stops besides on close and on timeout;
// the zero value reads until the server closes the connection.
type collectOpts struct {
	lines int // stop after this many recorded entries (0: no limit)
	pongs int // stop after this many PONGs (0: no limit)
}

// collect reads what the server sends and returns it as transcript
// entries, each prefixed with the connection name: every control line
// verbatim (quoted, so CR, LF, tabs and trailing spaces are visible), MSG
// and HMSG bodies as a separate "body" entry read by their declared size,
// and the pseudo-lines <closed> and <timeout>.
func (c *rawConn) collect(o collectOpts) []string {
	_ = c.nc.SetReadDeadline(time.Now().Add(stepTimeout()))
	var out []string
	add := func(s string) { out = append(out, c.name+": "+s) }
	pongs := 0
	for {
		line, err := c.r.ReadString('\n')
		if line != "" {
			switch {
			case strings.HasPrefix(line, "INFO "):
				// nats-server 2.15 sends a second INFO (connect_info,
				// remote_account) after the first PONG; Flotilla does not.
				// It is optional (reference §1.1 step 5), so only the
				// first INFO of a connection is compared.
				if c.infos++; c.infos == 1 {
					add(normaliseInfo(line))
				}
			default:
				add(strconv.Quote(line))
			}
			if line == "PONG\r\n" {
				pongs++
			}
			if err == nil && (strings.HasPrefix(line, "MSG ") || strings.HasPrefix(line, "HMSG ")) {
				if body, berr := c.readBody(line); body != "" || berr != nil {
					add("body " + body)
					err = berr
				}
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				add(lineTimeout)
				return out
			}
			// EOF or connection reset: the server closed the connection.
			c.closed = true
			add(lineClosed)
			return out
		}
		if o.lines > 0 && len(out) >= o.lines {
			return out
		}
		if o.pongs > 0 && pongs >= o.pongs {
			return out
		}
	}
}

// readBody reads the body of a MSG/HMSG whose control line is line: the
// size is the last field, and the body is followed by CRLF. It returns the
// quoted body (including the CRLF actually read), or "" when the size is
// not a number (the control line alone is then compared).
func (c *rawConn) readBody(line string) (string, error) {
	f := strings.Fields(line)
	n, err := strconv.Atoi(f[len(f)-1])
	if err != nil || n < 0 {
		return "", nil
	}
	buf := make([]byte, n+2)
	k, err := io.ReadFull(c.r, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return strconv.Quote(string(buf[:k])), err
}

// sortDeliveries sorts, in place, each run of consecutive deliveries (a
// MSG/HMSG entry with its body entry) in one step's entries, leaving every
// other entry where it is.
func sortDeliveries(entries []string) {
	isMsg := func(e string) bool {
		_, rest, _ := strings.Cut(e, ": ")
		return strings.HasPrefix(rest, `"MSG `) || strings.HasPrefix(rest, `"HMSG `)
	}
	isBody := func(e string) bool {
		_, rest, _ := strings.Cut(e, ": ")
		return strings.HasPrefix(rest, "body ")
	}
	for i := 0; i < len(entries); {
		if !isMsg(entries[i]) {
			i++
			continue
		}
		// Collect the run as units of (control line, body).
		var units [][]string
		j := i
		for j < len(entries) && isMsg(entries[j]) {
			u := []string{entries[j]}
			if j+1 < len(entries) && isBody(entries[j+1]) {
				u = append(u, entries[j+1])
			}
			units = append(units, u)
			j += len(u)
		}
		slices.SortStableFunc(units, func(a, b []string) int {
			return strings.Compare(strings.Join(a, "\n"), strings.Join(b, "\n"))
		})
		k := i
		for _, u := range units {
			k += copy(entries[k:], u)
		}
		i = j
	}
}

// normaliseInfo keeps only the INFO fields both servers must agree on:
// proto, headers, max_payload, and whether auth is required (absent means
// false). Identity, version, address and feature fields (server_id,
// server_name, version, go, git_commit, host, port, client_id, client_ip,
// nonce, xkey, jetstream, connect_urls, api_lvl, ...) legitimately differ.
func normaliseInfo(line string) string {
	raw := strings.TrimPrefix(line, "INFO ")
	if !strings.HasSuffix(raw, "\r\n") {
		return "INFO without CRLF: " + strconv.Quote(line)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(strings.TrimSpace(raw))))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return "INFO with invalid JSON: " + strconv.Quote(line)
	}
	return fmt.Sprintf("INFO {proto:%v headers:%v max_payload:%v auth_required:%v}",
		m["proto"], m["headers"], m["max_payload"], m["auth_required"] == true)
}

// countPings counts the PING lines (any case) in what a step sends; the
// step waits for that many PONGs plus the one for its own trailing PING.
// Scripts must not use "PING" as a payload line.
func countPings(send string) int {
	n := 0
	for l := range strings.SplitSeq(send, "\n") {
		if strings.EqualFold(strings.TrimRight(l, "\r"), "PING") {
			n++
		}
	}
	return n
}

// abbrev quotes what a step sends for the transcript, shortened so an
// over-long control line does not flood the diff.
func abbrev(s string) string {
	const max = 80
	if len(s) > max {
		return strconv.Quote(s[:max]) + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

// lineDiff renders a longest-common-subsequence diff of two transcripts:
// "  " lines are common, "- " only in want (nats-server), "+ " only in got
// (Flotilla).
func lineDiff(want, got []string) string {
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	b.WriteString("--- nats-server (oracle)\n+++ flotilla\n")
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			b.WriteString("  " + want[i] + "\n")
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			b.WriteString("- " + want[i] + "\n")
			i++
		default:
			b.WriteString("+ " + got[j] + "\n")
			j++
		}
	}
	return b.String()
}
