package jetstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/internal/testutil"
	"github.com/flotilla/flotilla/storage"
)

// proc is one real flotilla process.
type proc struct {
	id, dir, client, http string
	args                  []string
	cmd                   *exec.Cmd
	log                   *bytes.Buffer
}

// freePort picks a free 127.0.0.1 port (TCP and UDP, as gossip needs both)
// below the kernel's ephemeral range, so that other tests' outgoing
// connections cannot take it between this check and the node's bind.
func freePort(t *testing.T) string {
	t.Helper()
	for range 200 {
		addr := fmt.Sprintf("127.0.0.1:%d", 10000+rand.IntN(22000))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

func (p *proc) start(t *testing.T, bin string) {
	t.Helper()
	p.log = &bytes.Buffer{}
	p.cmd = exec.Command(bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.id, err)
	}
}

func (p *proc) status(t *testing.T) (leader string, applied, commit uint64, err error) {
	resp, err := http.Get("http://" + p.http + "/cluster/status")
	if err != nil {
		return "", 0, 0, err
	}
	defer resp.Body.Close()
	var st struct {
		LeaderID     string `json:"leader_id"`
		AppliedIndex uint64 `json:"applied_index"`
		CommitIndex  uint64 `json:"commit_index"`
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st.LeaderID, st.AppliedIndex, st.CommitIndex, err
}

// TestDurability_Processes_SIGKILLLeaderMidBurst runs three real flotilla
// processes, SIGKILLs the Raft leader in the middle of a publish burst,
// restarts it, and then compares the three state files on disk message by
// message against every acknowledged publish.
func TestDurability_Processes_SIGKILLLeaderMidBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "flotilla")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/flotilla/flotilla/cmd/flotilla").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var procs []*proc
	var gossip []string
	for i := range 3 {
		p := &proc{id: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), client: freePort(t), http: freePort(t)}
		g := freePort(t)
		gossip = append(gossip, g)
		p.args = []string{"server", "--node-id", p.id, "--data-dir", p.dir, "--client-addr", p.client, "--http-addr", p.http,
			"--cluster-addr", freePort(t), "--gossip-addr", g, "--bootstrap-expect", "3", "--log-level", "warn"}
		procs = append(procs, p)
	}
	for _, p := range procs {
		p.args = append(p.args, "--join", strings.Join(gossip, ","))
		p.start(t, bin)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p.cmd != nil && p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
			}
		}
		if t.Failed() {
			keep, _ := os.MkdirTemp("", "pkfail-")
			for _, p := range procs {
				t.Logf("--- %s log:\n%s", p.id, p.log.String())
				_ = exec.Command("cp", "-a", p.dir, filepath.Join(keep, p.id)).Run()
			}
			t.Logf("data dirs kept in %s", keep)
		}
	})
	var leader string
	testutil.Eventually(t, 30*time.Second, func() error {
		for _, p := range procs {
			l, _, _, err := p.status(t)
			if err != nil || l == "" {
				return fmt.Errorf("%s: leader %q %v", p.id, l, err)
			}
			leader = l
		}
		return nil
	})
	byID := map[string]*proc{}
	for _, p := range procs {
		byID[p.id] = p
	}
	var client *proc
	for _, p := range procs {
		if p.id != leader {
			client = p
			break
		}
	}
	nc, err := nats.Connect("nats://"+client.client, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "K9", Subjects: []string{"k9"}})
	log := &ackLog{acks: map[uint64]string{}}
	killed := byID[leader]
	publishBurst(t, js, "k9", 300, log, func() {
		if err := killed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = killed.cmd.Wait()
	})
	// Bring the killed node back and let it catch up, then stop all.
	killed.start(t, bin)
	testutil.Eventually(t, 30*time.Second, func() error {
		// Every node must report the same, non-zero commit index and have
		// applied it (a node that has not heard from the leader yet
		// reports 0: that is not caught up).
		applied := make([]uint64, len(procs))
		commits := make([]uint64, len(procs))
		for i, p := range procs {
			_, a, c, err := p.status(t)
			if err != nil {
				return err
			}
			applied[i], commits[i] = a, c
		}
		for i, p := range procs {
			if commits[i] == 0 || commits[i] != commits[0] || applied[i] < commits[i] {
				return fmt.Errorf("%s applied %d commit %d; commits %v", p.id, applied[i], commits[i], commits)
			}
		}
		return nil
	})
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		_ = p.cmd.Wait()
	}
	// Every replica's file holds every acknowledged message at its
	// acknowledged sequence, and the replicas are identical.
	var ref map[uint64]*broker.StoredMsg
	for _, p := range procs {
		msgs := readStream(t, filepath.Join(p.dir, "state.db"), "K9")
		for seq, want := range log.acks {
			if m := msgs[seq]; m == nil || string(m.Data) != want {
				got := "missing"
				if m != nil {
					got = string(m.Data)
				}
				t.Errorf("%s: %d messages; around %d:", p.id, len(msgs), seq)
				for s := seq - 3; s <= seq+3; s++ {
					if mm := msgs[s]; mm != nil {
						t.Errorf("  seq %d = %q (acked %q)", s, mm.Data, log.acks[s])
					} else {
						t.Errorf("  seq %d missing (acked %q)", s, log.acks[s])
					}
				}
				t.Fatalf("%s lost acked seq %d (%q): holds %s", p.id, seq, want, got)
			}
		}
		if ref == nil {
			ref = msgs
			continue
		}
		if len(msgs) != len(ref) {
			t.Fatalf("%s holds %d messages, %s %d", p.id, len(msgs), procs[0].id, len(ref))
		}
		for seq, m := range ref {
			o := msgs[seq]
			if o == nil || o.Subject != m.Subject || !bytes.Equal(o.Data, m.Data) || !bytes.Equal(o.Header, m.Header) || !o.Time.Equal(m.Time) {
				t.Fatalf("seq %d differs between %s and %s", seq, p.id, procs[0].id)
			}
		}
	}
}

// readStream opens a stopped node's state file and returns its stream.
func readStream(t *testing.T, path, stream string) map[uint64]*broker.StoredMsg {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer st.Close()
	fsm := broker.NewFSM(st, zaptest.NewLogger(t))
	info, e := fsm.StreamInfo(stream)
	if e != nil {
		t.Fatalf("%s: %v", path, e)
	}
	out := map[uint64]*broker.StoredMsg{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		if m, e := fsm.GetMsg(stream, broker.MsgGetRequest{Seq: seq}); e == nil {
			out[seq] = m
		}
	}
	return out
}
