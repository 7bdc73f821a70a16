package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla/flotilla/test/chaos/checker"
)

// TestChaos is the chaos suite: for every cluster size, a fresh cluster,
// the workload, the seeded nemesis schedule, the final state of every
// node, the checker. It fails on any violation and on any liveness
// failure of the harness's own expectations (the cluster does not recover
// after everything is healed). Run it with `make chaos` or `make
// chaos-docker`; docs/reliability.md explains the knobs.
func TestChaos(t *testing.T) {
	if os.Getenv("CHAOS") != "1" {
		t.Skip("the chaos suite runs with CHAOS=1 (make chaos, make chaos-docker)")
	}
	cfg, err := SuiteFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		// leave time to stop the nodes and write artifacts
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-90*time.Second))
		defer cancel()
	}
	out := os.Stdout
	var caps Capabilities
	switch cfg.Backend {
	case "process":
		caps = Capabilities{LinkFaults: true}
		if cfg.Bin == "" {
			cfg.Bin = buildBinary(t, cfg.Tags)
		}
	case "docker":
		caps = Capabilities{}
	}
	kinds := cfg.Kinds(caps)
	if len(kinds) == 0 {
		t.Fatalf("no fault kind left to run on the %s backend (CHAOS_FAULTS=%s)", cfg.Backend, os.Getenv("CHAOS_FAULTS"))
	}
	schedules := PlanSuite(cfg.Seed, cfg.Sizes, kinds, cfg.Duration)
	fmt.Fprintf(out, "chaos: seed %d, backend %s, sizes %v, %s of faults per size (replay: CHAOS_SEED=%d CHAOS_NODES=%s CHAOS_DURATION=%s)\n",
		cfg.Seed, cfg.Backend, cfg.Sizes, cfg.Duration, cfg.Seed, joinInts(cfg.Sizes), cfg.Duration)
	if cfg.Tags != "" {
		fmt.Fprintf(out, "chaos: binary built with -tags %s\n", cfg.Tags)
	}
	for _, s := range schedules {
		fmt.Fprint(out, s.String())
	}
	var rows []summaryRow
	for _, s := range schedules {
		t.Run(fmt.Sprintf("%dnodes", s.Nodes), func(t *testing.T) {
			rows = append(rows, runOne(ctx, t, cfg, s))
		})
	}
	fmt.Fprint(out, summaryTable(cfg, rows))
}

// runOne runs one schedule on a fresh cluster and reports it.
func runOne(ctx context.Context, t *testing.T, cfg SuiteConfig, s Schedule) summaryRow {
	out := os.Stdout
	dir := t.TempDir()
	var b Backend
	var err error
	switch cfg.Backend {
	case "process":
		b, err = NewProcBackend(cfg.Bin, dir, s.Nodes)
	case "docker":
		b, err = NewDockerBackend(cfg.Image, dir, s.Nodes)
	}
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	closeBackend := func() {
		if !closed {
			closed = true
			if err := b.Close(); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	}
	defer closeBackend()
	fmt.Fprintf(out, "\n=== %d nodes, seed %d\n", s.Nodes, s.Seed)
	wl := DefaultWorkload()
	res := Run(ctx, RunConfig{Backend: b, Schedule: s, Workload: wl, DrainTimeout: 90 * time.Second, Log: out})
	rep := check(res, wl.Durables)
	fmt.Fprintf(out, "--- report (%d nodes, seed %d, %.0fs)\n%s%s", s.Nodes, s.Seed, res.Elapsed.Seconds(), rep, recoveryTable(res.Recoveries))
	failed := !rep.OK() || len(res.Errs) > 0
	if ctx.Err() != nil {
		t.Errorf("run cut short (%v): its report is incomplete", context.Cause(ctx))
	}
	for _, e := range res.Errs {
		t.Errorf("run: %v", e)
	}
	if !rep.OK() {
		t.Errorf("checker: violations (see the report above)")
	}
	if failed || cfg.Artifacts != "" {
		adir, err := artifactsDir(cfg, s)
		if err == nil {
			err = writeArtifacts(ctx, adir, res, rep, b)
		}
		if err != nil {
			t.Errorf("artifacts: %v", err)
		} else {
			fmt.Fprintf(out, "artifacts: %s\n", adir)
		}
	}
	closeBackend()
	return summaryRow{nodes: s.Nodes, res: res, rep: rep, failed: failed}
}

// buildBinary builds cmd/flotilla once for the process backend.
func buildBinary(t *testing.T, tags string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flotilla")
	cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, "github.com/flotilla/flotilla/cmd/flotilla")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build flotilla: %v\n%s", err, out)
	}
	return bin
}

func joinInts(xs []int) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprint(x))
	}
	return strings.Join(s, ",")
}

// TestChaos_CatchesUnsafeBuild proves the suite has teeth: a binary built
// with -tags chaosunsafe acknowledges publishes before Raft commits them
// (guessing their sequences), and a short run on it, with a leader kill
// and an isolated leader, must end with the checker reporting acknowledged
// messages lost or stored at other sequences than acknowledged. The test
// fails if the checker finds nothing. Run it with `make chaos-unsafe`.
func TestChaos_CatchesUnsafeBuild(t *testing.T) {
	if os.Getenv("CHAOS") != "1" || os.Getenv("CHAOS_UNSAFE") != "1" {
		t.Skip("runs with CHAOS=1 CHAOS_UNSAFE=1 (make chaos-unsafe)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bin := buildBinary(t, "chaosunsafe")
	b, err := NewProcBackend(bin, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}()
	s := Schedule{Seed: 1, Nodes: 3, Steps: []Step{
		{Fault: FaultKillLeader, Hold: 3 * time.Second, Quiet: 2 * time.Second, Pick: []int{0, 1, 2}},
		{Fault: FaultIsolateLeader, Hold: 3 * time.Second, Quiet: 2 * time.Second, Pick: []int{0, 1, 2}},
	}}
	fmt.Fprintf(os.Stdout, "chaos: unsafe build (acks before commit), 3 nodes\n%s", s)
	wl := DefaultWorkload()
	res := Run(ctx, RunConfig{Backend: b, Schedule: s, Workload: wl, DrainTimeout: 60 * time.Second, Log: os.Stdout})
	rep := check(res, wl.Durables)
	fmt.Fprintf(os.Stdout, "--- report of the unsafe build\n%s", rep)
	caught := rep.Stats.ViolationCounts[checker.KindLost] + rep.Stats.ViolationCounts[checker.KindAckMismatch]
	if caught == 0 {
		t.Fatalf("the checker did not catch a broker that acknowledges before commit (violations: %v)", rep.Stats.ViolationCounts)
	}
	fmt.Fprintf(os.Stdout, "caught: %d acknowledged publishes lost or stored at another sequence than acknowledged\n", caught)
}
