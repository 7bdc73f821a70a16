package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/flotilla/flotilla/broker"
)

// RunConfig is one chaos run: one cluster, one schedule.
type RunConfig struct {
	Backend  Backend
	Schedule Schedule
	Workload WorkloadConfig
	// DrainTimeout bounds the wait for the consumers to catch up at the end.
	DrainTimeout time.Duration
	// Log receives progress lines.
	Log io.Writer
}

// Result is what a run produced: the history, every node's final state,
// and Errs for what went wrong outside the checker's scope (the cluster
// did not recover, a producer could not finish, a state file could not
// be read). Errs make the run fail just as violations do.
type Result struct {
	Schedule Schedule
	History  []Event
	Final    map[string]*broker.StateDump
	Errs     []error
	Elapsed  time.Duration
	// Recoveries: per fault, how long after its heal every node served
	// clients again.
	Recoveries []Recovery
}

// Run starts the cluster, runs the workload under the schedule's faults,
// heals, drains, stops every node gracefully and reads their states. When
// it cannot get that far (the cluster never formed, the stream could not
// be created) it returns early with the nodes still running: the caller's
// Close on the backend removes them, after saving the artifacts.
func Run(ctx context.Context, cfg RunConfig) *Result {
	b := cfg.Backend
	res := &Result{Schedule: cfg.Schedule, Final: map[string]*broker.StateDump{}}
	h := NewHistory()
	started := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	fail := func(err error) {
		if err != nil {
			logf("ERROR: %v", err)
			res.Errs = append(res.Errs, err)
		}
	}
	defer func() {
		res.History = h.Events()
		res.Elapsed = time.Since(started)
	}()

	logf("starting %d nodes (%s backend)", len(b.Nodes()), b.Name())
	if err := b.Start(ctx); err != nil {
		fail(err)
		return res
	}
	nem := NewNemesis(b, h, logf)
	w := NewWorkload(cfg.Workload, b, h)
	defer w.Close()
	nem.Probe = w.Probe
	leader, err := nem.WaitHealthy(ctx)
	if err != nil {
		fail(fmt.Errorf("new cluster: %w", err))
		return res
	}
	logf("cluster healthy, leader %s", leader)
	if err := w.Setup(ctx); err != nil {
		fail(err)
		return res
	}
	if err := w.Start(ctx); err != nil {
		fail(err)
		return res
	}
	logf("workload running: %d producers at %.0f msg/s each, durable consumers %v, ordered consumer o1",
		cfg.Workload.Producers, cfg.Workload.Rate, cfg.Workload.Durables)
	if err := sleepCtx(ctx, 3*time.Second); err != nil { // a fault-free start for the baseline
		fail(err)
		return res
	}
	nemErr := nem.Run(ctx, cfg.Schedule)
	fail(nemErr)
	res.Recoveries = nem.Recoveries

	// Final phase: heal everything and let the system settle, whatever
	// happened above, so that the checker sees the state it converged to.
	// After a cluster that did not recover, the waits are short: the run
	// has failed already and the final states are for the post-mortem.
	finish := 90 * time.Second
	if nemErr != nil {
		nem.RecoverTimeout, finish = 30*time.Second, 30*time.Second
	}
	logf("nemesis done: healing everything")
	fail(nem.HealAll(ctx))
	if _, err := nem.WaitHealthy(ctx); err != nil {
		fail(fmt.Errorf("after healing everything: %w", err))
	}
	fail(w.StopProducers(finish))
	p, a, d := h.Counts()
	logf("producers done: %d publish attempts, %d acknowledged, %d deliveries so far; draining consumers", p, a, d)
	if err := w.Drain(ctx, cfg.DrainTimeout); err != nil {
		fail(fmt.Errorf("consumers not drained (the checker lists what they miss): %w", err))
	}
	w.Close()
	lagging, err := waitQuiesced(ctx, b, 60*time.Second)
	fail(err)
	logf("stopping every node")
	fail(stopAll(ctx, b))
	for _, c := range b.Crashes(ctx) {
		fail(fmt.Errorf("node crash: %s", c))
	}
	for _, n := range b.Nodes() {
		if slices.Contains(lagging, n) {
			// its file would show "lost" messages that it simply had not
			// received yet: the quiesce error already fails the run
			logf("%s left out of the final-state checks: it had not applied the leader's commit index", n)
			continue
		}
		path, err := b.StateFile(ctx, n)
		if err != nil {
			fail(err)
			continue
		}
		st, err := broker.ReadState(path, cfg.Workload.Stream)
		if err != nil {
			fail(fmt.Errorf("%s: %w", n, err))
			continue
		}
		res.Final[n] = st
	}
	return res
}

// waitQuiesced waits until every node has committed and applied the
// leader's commit index (nothing writes any more by then). On timeout it
// also returns the nodes that were behind at the last look.
func waitQuiesced(ctx context.Context, b Backend, timeout time.Duration) ([]string, error) {
	var lagging []string
	err := pollUntil(ctx, timeout, func() error {
		lagging = nil
		var leader string
		sts := map[string]*nodeStatus{}
		var errs []error
		for _, n := range b.Nodes() {
			st, err := getStatus(ctx, b.HTTPURL(n))
			if err != nil {
				lagging = append(lagging, n)
				errs = append(errs, fmt.Errorf("%s: %w", n, err))
				continue
			}
			sts[n] = st
			if st.LeaderID == n {
				leader = n
			}
		}
		if leader == "" {
			return errors.Join(append(errs, errors.New("no leader"))...)
		}
		commit := sts[leader].CommitIndex
		for _, n := range b.Nodes() {
			if st := sts[n]; st != nil && (st.CommitIndex != commit || st.AppliedIndex < commit) {
				lagging = append(lagging, n)
				errs = append(errs, fmt.Errorf("%s applied %d, commit %d; leader %s commit %d", n, st.AppliedIndex, st.CommitIndex, leader, commit))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return lagging, fmt.Errorf("quiesce: %w", err)
	}
	return nil, nil
}

// stopAll stops every node gracefully, all at once (one by one would
// start elections among the rest).
func stopAll(ctx context.Context, b Backend) error {
	var wg sync.WaitGroup
	errs := make([]error, len(b.Nodes()))
	for i, n := range b.Nodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Stop(ctx, n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
