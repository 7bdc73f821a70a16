package checker

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flotilla/flotilla/broker"
)

// TestCheck_CraftedHistories is the evidence that the checker can fail:
// each case breaks one guarantee of a clean run and must be reported
// under exactly the expected kinds (so a clean run passing is not luck).
func TestCheck_CraftedHistories(t *testing.T) {
	t.Parallel()
	type state = map[string]*broker.StateDump
	tests := []struct {
		name   string
		mutate func(h []Event, f state) ([]Event, state)
		want   []string
		detail string // a substring some violation's detail must contain
	}{
		{name: "clean", mutate: func(h []Event, f state) ([]Event, state) { return h, f }},
		{
			name: "lost write: acked but on no node",
			mutate: func(h []Event, f state) ([]Event, state) {
				return append(h, ok(pub("p1", "f", 1, 71, 80), 5)), f
			},
			want:   []string{KindLost},
			detail: `p1's publish of "f" (attempt 1) was acked seq 5 at 80ns, but it is missing on n1 n2 n3`,
		},
		{
			name: "lost write on one node, which is behind",
			mutate: func(h []Event, f state) ([]Event, state) {
				f["n3"].Messages = f["n3"].Messages[:3]
				return h, f
			},
			want:   []string{KindConsumerState, KindForked, KindLost},
			detail: "[n1 n2] holds 4 messages, n3 only 3: n3 lacks seqs 4..4",
		},
		{
			name: "duplicate under dedup",
			mutate: func(h []Event, f state) ([]Event, state) {
				for _, d := range f {
					d.Messages = append(d.Messages, msg(5, "c"))
				}
				return append(h, deliver("o1", 5, "c", 80, 81)), f
			},
			want:   []string{KindDuplicate},
			detail: `[n1 n2 n3]: value "c" is stored at seq 2 and again at seq 5`,
		},
		{
			name: "forked sequence",
			mutate: func(h []Event, f state) ([]Event, state) {
				f["n3"].Messages[2].Data = []byte("B!")
				return h, f
			},
			want:   []string{KindForked},
			detail: `[n1 n2] and n3 differ at their message 3: [n1 n2] has seq 3 = "b" on chaos.data, n3 has seq 3 = "b" (data "B!") on chaos.data`,
		},
		{
			name: "ordered consumer skips",
			mutate: func(h []Event, f state) ([]Event, state) {
				return slices.DeleteFunc(h, func(e Event) bool { return e.Client == "o1" && e.Seq == 2 }), f
			},
			want:   []string{KindConsumerSkip},
			detail: "ordered o1 skipped seqs 2..2 (got seq 3 after 1 at 47ns)",
		},
		{
			name: "ordered consumer stops early",
			mutate: func(h []Event, f state) ([]Event, state) {
				return slices.DeleteFunc(h, func(e Event) bool { return e.Client == "o1" && e.Seq == 4 }), f
			},
			want:   []string{KindConsumerSkip},
			detail: "ordered o1 never received seqs 4..4 (it stopped at seq 3)",
		},
		{
			name: "durable consumer never gets an acked message",
			mutate: func(h []Event, f state) ([]Event, state) {
				return slices.DeleteFunc(h, func(e Event) bool { return e.Client == "d1" && e.Seq == 3 }), f
			},
			want:   []string{KindConsumerSkip},
			detail: "durable d1 never received 1 acked messages: seqs 3",
		},
		{
			name: "gap in sequences",
			mutate: func(h []Event, f state) ([]Event, state) {
				h = append(h, ok(pub("p1", "f", 1, 71, 80), 6), deliver("d1", 6, "f", 81, 82), ack("d1", 6, 83, 84), deliver("o1", 6, "f", 81, 82))
				for _, d := range f {
					d.Messages = append(d.Messages, msg(6, "f"))
					d.Consumers["d1"] = broker.DumpConsumer{DeliveredConsumer: 5, DeliveredStream: 6, AckFloorConsumer: 5, AckFloorStream: 6}
				}
				return h, f
			},
			want:   []string{KindConsumerSkip, KindGap},
			detail: "[n1 n2 n3]: seqs 5..5 are missing (seq 6 follows 4)",
		},
		{
			name: "producer order",
			mutate: func(h []Event, f state) ([]Event, state) {
				// p1's b, published after a returned, is stored before it.
				h[0].Seq, h[3].Seq = 3, 1
				for _, d := range f {
					d.Messages[0], d.Messages[2] = msg(1, "b"), msg(3, "a")
				}
				return slices.DeleteFunc(h, func(e Event) bool { return e.Kind == EventDeliver || e.Kind == EventAck }), f
			},
			want:   []string{KindNotLinearizable, KindProducerOrder},
			detail: `p1 published "a" (acked seq 3 at 10ns) before "b", which was acked seq 1`,
		},
		{
			name: "redelivery after an ok double ack",
			mutate: func(h []Event, f state) ([]Event, state) {
				// numbered above the delivery of d (seq 4, consumer seq 8),
				// first published at 41, after the ack returned at 14
				e := deliver("d1", 1, "a", 30, 31)
				e.Delivered, e.Node, e.ConsumerSeq = 2, "n2", 9
				return append(h, e), f
			},
			want:   []string{KindConsumerBackward},
			detail: "d1 received seq 1 again at 31ns (delivery 2 via n2, consumer seq 9) after d1's ack of it returned ok at 14ns; consumer seq 8 went to seq 4, first published after that ack",
		},
		{
			name: "a copy made before the ack took hold, received after it returned, is fine",
			mutate: func(h []Event, f state) ([]Event, state) {
				e := deliver("d1", 1, "a", 30, 31)
				e.Delivered, e.ConsumerSeq = 2, 3
				return append(h, e), f
			},
		},
		{
			name: "two deliveries of one message both double-acked ok",
			mutate: func(h []Event, f state) ([]Event, state) {
				e := deliver("d1", 1, "a", 12, 13)
				e.Delivered, e.ConsumerSeq = 2, 9
				a := ack("d1", 1, 20, 21)
				a.ConsumerSeq = 9
				return append(h, e, a), f
			},
			want:   []string{KindProcessedTwice},
			detail: "d1: double acks of two deliveries of seq 1 returned ok: consumer seq 2 at 14ns and 9 at 21ns",
		},
		{
			name: "redelivery in flight when the ack returned is fine",
			mutate: func(h []Event, f state) ([]Event, state) {
				return append(h, deliver("d1", 1, "a", 13, 15)), f
			},
		},
		{
			name: "ordered consumer goes backwards",
			mutate: func(h []Event, f state) ([]Event, state) {
				return append(h, deliver("o1", 2, "c", 90, 91)), f
			},
			want:   []string{KindConsumerBackward},
			detail: "ordered o1 went backwards: seq 2 at 91ns after seq 4",
		},
		{
			name: "consumer delivers another value than stored",
			mutate: func(h []Event, f state) ([]Event, state) {
				h[len(h)-3].Value = "zz" // d1's delivery of seq 4
				h[len(h)-1].Value = "zz" // o1's
				return h, f
			},
			want:   []string{KindConsumerMismatch, KindNotLinearizable},
			detail: `o1 received "zz" as seq 4 at 62ns, but [n1 n2 n3] holds "d" there`,
		},
		{
			name: "phantom message",
			mutate: func(h []Event, f state) ([]Event, state) {
				for _, d := range f {
					d.Messages = append(d.Messages, msg(5, "zz"))
				}
				return append(h, deliver("o1", 5, "zz", 80, 81)), f
			},
			want:   []string{KindPhantom},
			detail: `[n1 n2 n3]: seq 5 holds "zz" on chaos.data, which no producer published`,
		},
		{
			name: "a definitely failed publish was stored",
			mutate: func(h []Event, f state) ([]Event, state) {
				for _, d := range f {
					d.Messages = append(d.Messages, msg(5, "f"))
				}
				return append(h, fail(pub("p1", "f", 1, 71, 80), "no responders"), deliver("o1", 5, "f", 80, 81)), f
			},
			want:   []string{KindFailStored},
			detail: `[n1 n2 n3]: seq 5 holds "f" although none of p1's 1 attempts could have stored it (fail (no responders))`,
		},
		{
			name: "duplicate ack with the wrong seq",
			mutate: func(h []Event, f state) ([]Event, state) {
				h[4].Seq = 3
				return h, f
			},
			want:   []string{KindAckMismatch, KindNotLinearizable},
			detail: `p2's publish of "c" (attempt 2) was acked seq 3, but n1 n2 n3 hold it at seq 2`,
		},
		{
			name: "final consumer state inconsistent",
			mutate: func(h []Event, f state) ([]Event, state) {
				f["n2"].Consumers["d1"] = broker.DumpConsumer{DeliveredConsumer: 4, DeliveredStream: 4, AckFloorConsumer: 2, AckFloorStream: 2, Pending: []uint64{3}}
				return h, f
			},
			want:   []string{KindConsumerState},
			detail: "n2: consumer d1 (delivered 4/4, ack floor 2/2 (consumer/stream seq), pending [3]): d1's ack of seq 3 returned ok at 49ns, yet it is pending or beyond delivered",
		},
		{
			name: "durable consumer missing on one node",
			mutate: func(h []Event, f state) ([]Event, state) {
				delete(f["n1"].Consumers, "d1")
				return h, f
			},
			want:   []string{KindConsumerState},
			detail: "consumer d1 exists on [n2 n3] but not on [n1]",
		},
		{
			name: "malformed history",
			mutate: func(h []Event, f state) ([]Event, state) {
				return append(h, Event{Kind: "publsh", Client: "p1"}), f
			},
			want:   []string{KindHistory},
			detail: `event 20 has unknown kind "publsh"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, f := tt.mutate(baseline())
			r := mustCheck(t, h, f, Options{})
			if got := kinds(r); !slices.Equal(got, tt.want) {
				t.Fatalf("kinds = %v, want %v\n%s", got, tt.want, r)
			}
			if tt.detail != "" && !slices.ContainsFunc(r.Violations, func(v Violation) bool { return strings.Contains(v.Detail, tt.detail) }) {
				t.Fatalf("no violation says %q\n%s", tt.detail, r)
			}
		})
	}
}

// TestCheck_Linearizability covers histories that only the
// linearizability check can judge, with no consumers.
func TestCheck_Linearizability(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		h      []Event
		log    []string
		bad    bool
		detail string
	}{
		{
			name: "later publish got the lower seq",
			h:    []Event{ok(pub("p1", "x", 1, 0, 10), 2), ok(pub("p2", "y", 1, 20, 30), 1)},
			log:  []string{"y", "x"},
			bad:  true,
			detail: `p1's publish of "x" (attempt 1, acked seq 2) returned at 10ns, but the log puts it after seq 1, ` +
				`p2's publish of "y" (attempt 1, acked seq 1), which was only called at 20ns`,
		},
		{
			name: "concurrent publishes in either order",
			h:    []Event{ok(pub("p1", "x", 1, 0, 30), 2), ok(pub("p2", "y", 1, 10, 20), 1)},
			log:  []string{"y", "x"},
		},
		{
			name: "an unknown outcome may land after it timed out",
			h:    []Event{unknown(pub("p1", "x", 1, 0, 10)), ok(pub("p2", "y", 1, 20, 30), 1)},
			log:  []string{"y", "x"},
		},
		{
			name: "an unknown outcome cannot land before its call",
			h:    []Event{ok(pub("p2", "y", 1, 0, 10), 2), unknown(pub("p1", "x", 1, 20, 30))},
			log:  []string{"x", "y"},
			bad:  true,
		},
		{
			name:   "duplicate ack before any attempt could have stored it",
			h:      []Event{dup(pub("p1", "x", 1, 0, 10), 1), unknown(pub("p1", "x", 2, 11, 20))},
			log:    []string{"x"},
			bad:    true,
			detail: `p1's publish of "x" (attempt 1, acked seq 1 as a duplicate) returned at 10ns, before seq 1 could have been stored`,
		},
		{
			name:   "read before the write was called",
			h:      []Event{deliver("o1", 1, "x", 0, 1), ok(pub("p1", "x", 1, 5, 10), 1)},
			log:    []string{"x"},
			bad:    true,
			detail: `o1's read of seq 1 ("x") returned at 1ns, before seq 1 could have been stored`,
		},
		{
			name: "a retry's duplicate ack after an unknown first attempt",
			h:    []Event{unknown(pub("p1", "x", 1, 0, 10)), dup(pub("p1", "x", 2, 11, 20), 1), ok(pub("p2", "y", 1, 21, 30), 2)},
			log:  []string{"x", "y"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mustCheck(t, tt.h, nodes(logOf(tt.log...), nil), Options{})
			for _, w := range r.Stats.Linearizability {
				if (w.Result == "illegal") != tt.bad {
					t.Errorf("%s: %s, want illegal=%v", w.Method, w.Result, tt.bad)
				}
			}
			if len(r.Stats.Linearizability) != 2 {
				t.Errorf("%d checks ran, want exact and porcupine", len(r.Stats.Linearizability))
			}
			if tt.bad != slices.Contains(kinds(r), KindNotLinearizable) {
				t.Errorf("kinds = %v", kinds(r))
			}
			if tt.detail != "" && !slices.ContainsFunc(r.Violations, func(v Violation) bool { return strings.Contains(v.Detail, tt.detail) }) {
				t.Errorf("no violation says %q", tt.detail)
			}
			if t.Failed() {
				t.Log(r)
			}
		})
	}
}

func TestCheck_NoFinalState(t *testing.T) {
	t.Parallel()
	r := mustCheck(t, []Event{unknown(pub("p1", "x", 1, 0, 10))}, nil, Options{})
	if got := kinds(r); !slices.Equal(got, []string{KindHistory}) {
		t.Fatalf("kinds = %v\n%s", got, r)
	}
}

func TestCheck_MaxViolationsPerKind(t *testing.T) {
	t.Parallel()
	var h []Event
	for i := range 30 {
		h = append(h, ok(pub("p1", string(rune('A'+i)), 1, int64(10*i), int64(10*i+5)), uint64(i+1)))
	}
	r := mustCheck(t, h, nodes(nil, nil), Options{MaxViolationsPerKind: 5})
	if r.Stats.ViolationCounts[KindLost] != 30 || r.Stats.Lost != 30 {
		t.Fatalf("counted %d lost (stats %d), want 30", r.Stats.ViolationCounts[KindLost], r.Stats.Lost)
	}
	if len(r.Violations) != 6 || r.Violations[5].Detail != "... and 25 more" {
		t.Fatalf("violations = %v", r.Violations)
	}
}

func TestReport_WriteArtifacts(t *testing.T) {
	t.Parallel()
	h, f := baseline()
	h[0].Seq, h[3].Seq = 3, 1 // p1's a and b stored in the wrong order
	for _, d := range f {
		d.Messages[0], d.Messages[2] = msg(1, "b"), msg(3, "a")
	}
	h = slices.DeleteFunc(h, func(e Event) bool { return e.Kind == EventDeliver || e.Kind == EventAck })
	r := mustCheck(t, h, f, Options{})
	dir := filepath.Join(t.TempDir(), "artifacts")
	if err := r.WriteArtifacts(dir, h, map[string]any{"seed": 7}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"history.jsonl", "schedule.json", "report.txt", "report.json", "porcupine.html"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %v (%d bytes)", name, err, len(b))
		}
	}
	fh, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	back, err := ReadHistory(fh)
	if err != nil || !slices.Equal(back, h) {
		t.Fatalf("history.jsonl does not read back: %v", err)
	}
	txt, _ := os.ReadFile(filepath.Join(dir, "report.txt"))
	for _, want := range []string{"verdict: FAIL", "[producer-order]", "kill leader n1", "porcupine"} {
		if !strings.Contains(string(txt), want) {
			t.Errorf("report.txt lacks %q:\n%s", want, txt)
		}
	}

	// A clean run has no porcupine view.
	h, f = baseline()
	clean := t.TempDir()
	if err := mustCheck(t, h, f, Options{}).WriteArtifacts(clean, h, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(clean, "porcupine.html")); !os.IsNotExist(err) {
		t.Fatalf("porcupine.html for a clean run: %v", err)
	}
}
