package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flotilla/flotilla/test/chaos/checker"
)

// artifactsDir is where a run's artifacts go: CHAOS_ARTIFACTS/<backend>-<n>nodes-seed<seed>,
// or a new temp dir.
func artifactsDir(cfg SuiteConfig, s Schedule) (string, error) {
	name := fmt.Sprintf("%s-%dnodes-seed%d", cfg.Backend, s.Nodes, s.Seed)
	if cfg.Artifacts == "" {
		return os.MkdirTemp("", "flotilla-chaos-"+name+"-")
	}
	dir := filepath.Join(cfg.Artifacts, name)
	return dir, os.MkdirAll(dir, 0o755)
}

// writeArtifacts saves what is needed to understand a run: the checker's
// files (history.jsonl, schedule.json, report.txt/json, porcupine.html),
// the harness's own errors appended to report.txt, the printed schedule,
// and every node's log and state file.
func writeArtifacts(ctx context.Context, dir string, res *Result, rep *checker.Report, b Backend) error {
	if err := rep.WriteArtifacts(dir, res.History, res.Schedule); err != nil {
		return err
	}
	var errs []error
	var extra strings.Builder
	fmt.Fprintf(&extra, "\n%s\n%s", recoveryTable(res.Recoveries), res.Schedule)
	for _, e := range res.Errs {
		fmt.Fprintf(&extra, "run error: %v\n", e)
	}
	f, err := os.OpenFile(filepath.Join(dir, "report.txt"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		_, err = f.WriteString(extra.String())
		errs = append(errs, err, f.Close())
	} else {
		errs = append(errs, err)
	}
	errs = append(errs, b.SaveLogs(ctx, dir))
	for _, n := range b.Nodes() {
		if p, err := b.StateFile(ctx, n); err == nil {
			if _, serr := os.Stat(p); serr == nil {
				errs = append(errs, copyFile(p, filepath.Join(dir, n+"-state.db")))
			}
		}
	}
	return errors.Join(errs...)
}

// summaryRow is one run's line in the suite's closing table.
type summaryRow struct {
	nodes  int
	res    *Result
	rep    *checker.Report
	failed bool
}

// summaryTable renders the closing table: one line per cluster size.
func summaryTable(cfg SuiteConfig, rows []summaryRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nchaos suite: seed %d, backend %s\n", cfg.Seed, cfg.Backend)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "nodes\tfaults\tpublish attempts\tacked values\tlost\tduplicated\tviolations\tmax unavailable\tharness errors\tverdict\ttime")
	for _, r := range rows {
		st := r.rep.Stats
		violations := 0
		for _, n := range st.ViolationCounts {
			violations += n
		}
		verdict := "PASS"
		if r.failed {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s (%s)\t%d\t%s\t%.0fs\n", r.nodes, len(r.res.Schedule.Steps),
			st.PublishAttempts, st.AckedValues, st.Lost, st.Duplicated, violations,
			st.MaxUnavailable.Round(time.Millisecond), st.MaxUnavailableFault, len(r.res.Errs), verdict, r.res.Elapsed.Seconds())
	}
	tw.Flush()
	return b.String()
}

// recoveryTable renders, per fault, how long it was held and how long
// after its heal every node served clients again (the harness's view; the
// checker's availability table is the clients' view).
func recoveryTable(rs []Recovery) string {
	if len(rs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("recovery after heal (every node ready and forwarding to the leader):\n")
	tw := tabwriter.NewWriter(&b, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  fault\tdescription\theld\trecovered after")
	for _, r := range rs {
		fmt.Fprintf(tw, "  %s\t%s\t%.1fs\t%.1fs\n", r.Fault, r.Desc, r.Held.Seconds(), r.Recovered.Seconds())
	}
	tw.Flush()
	return b.String()
}
