package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcBackend runs every node as a local flotilla process on 127.0.0.1,
// each in its own process group, with ports below the kernel's ephemeral
// range and data in a temp dir. Partitions use the nodes' fault-injection
// endpoints (--unsafe-fault-injection, contract A), so any single link can
// be cut in either direction.
type ProcBackend struct {
	bin   string
	dir   string
	nodes []*procNode
	// extra server flags for every node (tests may add some).
	extra []string
	spawn *spawner

	crashMu sync.Mutex
	crashes []string
}

// procNode is one node's addresses and, while it runs, its process.
type procNode struct {
	name                          string
	data, logPath                 string
	client, http, cluster, gossip string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited
	// sent is the last SIGTERM or SIGKILL the harness sent to the
	// running process: it tells an expected exit from a crash.
	sent syscall.Signal
}

var _ Backend = (*ProcBackend)(nil)

// NewProcBackend prepares (but does not start) n nodes of bin under dir.
func NewProcBackend(bin, dir string, n int, extra ...string) (*ProcBackend, error) {
	b := &ProcBackend{bin: bin, dir: dir, extra: extra, spawn: newSpawner()}
	ports, err := freePorts(4 * n)
	if err != nil {
		return nil, err
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		addr := func(k int) string { return "127.0.0.1:" + strconv.Itoa(ports[4*i+k]) }
		b.nodes = append(b.nodes, &procNode{
			name: name, data: filepath.Join(dir, name), logPath: filepath.Join(dir, name+".log"),
			client: addr(0), http: addr(1), cluster: addr(2), gossip: addr(3),
		})
	}
	return b, nil
}

// Name implements Backend.
func (b *ProcBackend) Name() string { return "process" }

// Capabilities implements Backend: single links can be cut.
func (b *ProcBackend) Capabilities() Capabilities { return Capabilities{LinkFaults: true} }

// Nodes implements Backend.
func (b *ProcBackend) Nodes() []string {
	out := make([]string, len(b.nodes))
	for i, n := range b.nodes {
		out[i] = n.name
	}
	return out
}

func (b *ProcBackend) node(name string) *procNode {
	for _, n := range b.nodes {
		if n.name == name {
			return n
		}
	}
	panic("chaos: unknown node " + name)
}

// ClientURL implements Backend.
func (b *ProcBackend) ClientURL(node string) string { return "nats://" + b.node(node).client }

// HTTPURL implements Backend.
func (b *ProcBackend) HTTPURL(node string) string { return "http://" + b.node(node).http }

// Start implements Backend.
func (b *ProcBackend) Start(ctx context.Context) error {
	for _, n := range b.nodes {
		if err := os.MkdirAll(n.data, 0o755); err != nil {
			return fmt.Errorf("start %s: %w", n.name, err)
		}
		if err := b.startNode(n); err != nil {
			return err
		}
	}
	return nil
}

// args is a node's command line: every node runs the same one except for
// its name and ports, as scripts/cluster.sh does.
func (b *ProcBackend) args(n *procNode) []string {
	var join []string
	for _, o := range b.nodes {
		join = append(join, o.gossip)
	}
	args := []string{"server",
		"--node-id", n.name, "--data-dir", n.data,
		"--client-addr", n.client, "--http-addr", n.http,
		"--cluster-addr", n.cluster, "--gossip-addr", n.gossip,
		"--join", strings.Join(join, ","), "--bootstrap-expect", strconv.Itoa(len(b.nodes)),
		"--shutdown-grace", "5s",
		"--unsafe-fault-injection",
	}
	return append(args, b.extra...)
}

// startNode starts n's process. Its output is appended to n's log file. The
// process gets its own process group (so signals reach it alone and a
// terminal's ^C does not) and dies with the harness (Pdeathsig), so a
// crashed or timed-out test leaves no node behind.
func (b *ProcBackend) startNode(n *procNode) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return fmt.Errorf("start %s: already running", n.name)
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	fmt.Fprintf(logf, "%s%s at %s\n", startMarker, n.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(b.bin, b.args(n)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.spawn.start(cmd); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.sent = cmd, done, 0
	go func() {
		_ = cmd.Wait()
		logf.Close()
		n.mu.Lock()
		sent := n.sent
		n.mu.Unlock()
		b.noteExit(n, sent, cmd.ProcessState)
		close(done)
	}()
	return nil
}

// noteExit records a crash unless the exit is one the harness caused: a
// SIGKILL, or a clean exit after SIGTERM.
func (b *ProcBackend) noteExit(n *procNode, sent syscall.Signal, st *os.ProcessState) {
	var what string
	switch {
	case sent == syscall.SIGKILL:
		return
	case sent == syscall.SIGTERM && st.Success():
		return
	case sent == syscall.SIGTERM:
		what = fmt.Sprintf("%s exited with %v on a graceful stop", n.name, st)
	default:
		what = fmt.Sprintf("%s exited by itself (%v)", n.name, st)
	}
	log, _ := os.ReadFile(n.logPath)
	b.crashMu.Lock()
	b.crashes = append(b.crashes, what+panicLine(string(log)))
	b.crashMu.Unlock()
}

// Crashes implements Backend.
func (b *ProcBackend) Crashes(ctx context.Context) []string {
	b.crashMu.Lock()
	defer b.crashMu.Unlock()
	return slices.Clone(b.crashes)
}

// running returns n's process and exit channel, or nil if it is down.
func (n *procNode) running() (*exec.Cmd, chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd, n.done
}

// signal sends sig to n's process group.
func (n *procNode) signal(sig syscall.Signal) error {
	cmd, _ := n.running()
	if cmd == nil {
		return fmt.Errorf("signal %s: %w", n.name, errNotRunning)
	}
	if sig == syscall.SIGTERM || sig == syscall.SIGKILL {
		n.mu.Lock()
		n.sent = sig
		n.mu.Unlock()
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		return fmt.Errorf("signal %v to %s: %w", sig, n.name, err)
	}
	return nil
}

// errNotRunning: the node has no process.
var errNotRunning = errors.New("node not running")

// waitExit waits until n's process exited (or ctx ends) and forgets it.
func (n *procNode) waitExit(ctx context.Context) error {
	_, done := n.running()
	if done == nil {
		return nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("wait for %s to exit: %w", n.name, ctx.Err())
	}
	n.mu.Lock()
	n.cmd, n.done = nil, nil
	n.mu.Unlock()
	return nil
}

// Kill implements Backend: every node is signalled before any is waited
// for, so that they die together.
func (b *ProcBackend) Kill(ctx context.Context, nodes ...string) error {
	if err := b.signalAll(syscall.SIGKILL, nodes); err != nil {
		return err
	}
	var errs []error
	for _, node := range nodes {
		errs = append(errs, b.node(node).waitExit(ctx))
	}
	return errors.Join(errs...)
}

func (b *ProcBackend) signalAll(sig syscall.Signal, nodes []string) error {
	var errs []error
	for _, node := range nodes {
		errs = append(errs, b.node(node).signal(sig))
	}
	return errors.Join(errs...)
}

// Stop implements Backend: SIGTERM (a paused node is continued first so it
// can act on it), then SIGKILL if it has not exited within 30 s.
func (b *ProcBackend) Stop(ctx context.Context, node string) error {
	n := b.node(node)
	if err := n.signal(syscall.SIGTERM); err != nil {
		return err
	}
	_ = n.signal(syscall.SIGCONT)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.waitExit(wctx); err != nil {
		_ = n.signal(syscall.SIGKILL)
		if err2 := n.waitExit(ctx); err2 != nil {
			return err2
		}
		return fmt.Errorf("graceful stop of %s: %w (killed)", node, err)
	}
	return nil
}

// Restart implements Backend.
func (b *ProcBackend) Restart(ctx context.Context, node string) error {
	return b.startNode(b.node(node))
}

// Pause implements Backend.
func (b *ProcBackend) Pause(ctx context.Context, nodes ...string) error {
	return b.signalAll(syscall.SIGSTOP, nodes)
}

// Resume implements Backend.
func (b *ProcBackend) Resume(ctx context.Context, nodes ...string) error {
	return b.signalAll(syscall.SIGCONT, nodes)
}

// Wipe implements Backend.
func (b *ProcBackend) Wipe(ctx context.Context, node string) error {
	n := b.node(node)
	if cmd, _ := n.running(); cmd != nil {
		return fmt.Errorf("wipe %s: still running", node)
	}
	if err := os.RemoveAll(n.data); err != nil {
		return fmt.Errorf("wipe %s: %w", node, err)
	}
	if err := os.MkdirAll(n.data, 0o755); err != nil {
		return fmt.Errorf("wipe %s: %w", node, err)
	}
	return nil
}

// Partition implements Backend through contract A: a cut From -/-> To is
// blocked "out" on From and "in" on To, for To's (From's) cluster and
// gossip addresses, so it holds whichever side dialed the connection.
func (b *ProcBackend) Partition(ctx context.Context, p Partition) error {
	type key struct{ node, dir string }
	addrs := map[key][]string{}
	for _, c := range p.Cuts {
		from, to := b.node(c.From), b.node(c.To)
		addrs[key{from.name, "out"}] = append(addrs[key{from.name, "out"}], to.cluster, to.gossip)
		addrs[key{to.name, "in"}] = append(addrs[key{to.name, "in"}], from.cluster, from.gossip)
	}
	for _, n := range b.nodes {
		for _, dir := range []string{"out", "in"} {
			if a := addrs[key{n.name, dir}]; len(a) > 0 {
				if err := blockAddrs(ctx, b.HTTPURL(n.name), a, dir); err != nil {
					return fmt.Errorf("partition on %s: %w", n.name, err)
				}
			}
		}
	}
	return nil
}

// Heal implements Backend: every running node lifts all its blocks. A
// node that is down has none (blocks live in memory).
func (b *ProcBackend) Heal(ctx context.Context) error {
	var errs []error
	for _, n := range b.nodes {
		if cmd, _ := n.running(); cmd == nil {
			continue
		}
		if err := healAll(ctx, b.HTTPURL(n.name)); err != nil {
			errs = append(errs, fmt.Errorf("heal %s: %w", n.name, err))
		}
	}
	return errors.Join(errs...)
}

// StateFile implements Backend.
func (b *ProcBackend) StateFile(ctx context.Context, node string) (string, error) {
	n := b.node(node)
	if cmd, _ := n.running(); cmd != nil {
		return "", fmt.Errorf("state of %s: still running", node)
	}
	return filepath.Join(n.data, "state.db"), nil
}

// SaveLogs implements Backend.
func (b *ProcBackend) SaveLogs(ctx context.Context, dir string) error {
	var errs []error
	for _, n := range b.nodes {
		if err := copyFile(n.logPath, filepath.Join(dir, n.name+".log")); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close implements Backend: SIGKILL every process group still running
// (continuing paused ones is unnecessary: SIGKILL ends stopped processes)
// and wait for them. The caller removes the temp dir.
func (b *ProcBackend) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, n := range b.nodes {
		cmd, done := n.running()
		if cmd == nil {
			continue
		}
		select {
		case <-done: // exited already (a cut-short stop): only forget it
		default:
			if err := n.signal(syscall.SIGKILL); err != nil {
				errs = append(errs, err)
			}
		}
		if err := n.waitExit(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	b.spawn.stop()
	return errors.Join(errs...)
}

// spawner starts processes from one goroutine locked to its OS thread.
// Pdeathsig fires when the *thread* that forked a child exits, not the
// process; the Go runtime may retire ordinary threads, so children are
// forked from a thread that lives until every child is dead (Close).
type spawner struct {
	reqs chan spawnReq
	quit chan struct{}
	once sync.Once
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), quit: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	for {
		select {
		case r := <-s.reqs:
			r.err <- r.cmd.Start()
		case <-s.quit:
			return
		}
	}
}

func (s *spawner) start(cmd *exec.Cmd) error {
	r := spawnReq{cmd: cmd, err: make(chan error, 1)}
	select {
	case s.reqs <- r:
		return <-r.err
	case <-s.quit:
		return errors.New("spawner stopped")
	}
}

func (s *spawner) stop() { s.once.Do(func() { close(s.quit) }) }

// freePorts picks n distinct free 127.0.0.1 ports (TCP and UDP, as gossip
// needs both) below the kernel's ephemeral range, so that outgoing
// connections cannot take one between this check and a node's bind (or
// while a node is down between a kill and its restart).
func freePorts(n int) ([]int, error) {
	lo := ephemeralLow()
	seen := map[int]bool{}
	var out []int
	for range 50 * n {
		if len(out) == n {
			break
		}
		p := 10000 + rand.IntN(lo-10000)
		if seen[p] {
			continue
		}
		seen[p] = true
		addr := "127.0.0.1:" + strconv.Itoa(p)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("found %d of %d free ports below %d", len(out), n, lo)
	}
	return out, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > 11000 {
				return lo
			}
		}
	}
	return 32768
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
