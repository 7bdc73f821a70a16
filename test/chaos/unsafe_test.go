package chaos

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestChaos_UnsafeBuildIsCaught is the evidence that the suite can fail on
// a broker that breaks its promise: a binary built with -tags chaosunsafe
// (broker/unsafe_ack.go) acknowledges publishes before Raft commits them,
// guessing their sequences. Under the workload, with leaders killed, the
// checker must report acknowledged writes lost or acknowledged at the
// wrong sequence. Runs with the suite (CHAOS=1, make chaos).
func TestChaos_UnsafeBuildIsCaught(t *testing.T) {
	if os.Getenv("CHAOS") != "1" {
		t.Skip("the chaos suite runs with CHAOS=1 (make chaos)")
	}
	bin := filepath.Join(t.TempDir(), "flotilla-unsafe")
	cmd := exec.Command("go", "build", "-tags", "chaosunsafe", "-o", bin, "github.com/flotilla/flotilla/cmd/flotilla")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the unsafe binary: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := PlanSuite(1, []int{3}, []string{"kill-leader"}, 20*time.Second)[0]
	b, err := NewProcBackend(bin, t.TempDir(), s.Nodes)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close() }()
	wl := DefaultWorkload()
	res := Run(ctx, RunConfig{Backend: b, Schedule: s, Workload: wl, DrainTimeout: 30 * time.Second, Log: os.Stdout})
	rep := check(res, wl.Durables)
	if rep.OK() {
		t.Fatalf("the unsafe build (acks before commit) passed the checker:\n%s", rep)
	}
	t.Logf("the unsafe build was caught, as it must be: %v", rep.Stats.ViolationCounts)
}
