package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestPullTracker(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_000_000, 0)
	sweep := func(p *pullTracker, leader string, at time.Time) []string {
		lost := p.sweep(leader, at)
		slices.Sort(lost)
		return lost
	}

	t.Run("leader change answers what waits on the old leader", func(t *testing.T) {
		t.Parallel()
		p := newPullTracker()
		p.track("in.a", "n1", time.Minute, t0)
		p.track("in.b", "n1", 0, t0) // no expiry
		if lost := sweep(p, "n1", t0.Add(time.Second)); len(lost) != 0 {
			t.Fatalf("same leader: lost %v", lost)
		}
		p.track("in.c", "n2", time.Minute, t0) // forwarded to the new leader
		if lost := sweep(p, "n2", t0.Add(2*time.Second)); !slices.Equal(lost, []string{"in.a", "in.b"}) {
			t.Fatalf("leader n1 -> n2: lost %v, want [in.a in.b]", lost)
		}
		if lost := sweep(p, "", t0.Add(3*time.Second)); !slices.Equal(lost, []string{"in.c"}) {
			t.Fatalf("leader n2 -> none: lost %v, want [in.c]", lost)
		}
		if n := p.len(); n != 0 {
			t.Fatalf("%d entries left", n)
		}
	})

	t.Run("an entry tracked after the sweep saw the change", func(t *testing.T) {
		t.Parallel()
		p := newPullTracker()
		sweep(p, "n2", t0)
		// Forwarded while this node still knew n1 as the leader.
		p.track("in.a", "n1", time.Minute, t0)
		if lost := sweep(p, "n2", t0.Add(time.Millisecond)); !slices.Equal(lost, []string{"in.a"}) {
			t.Fatalf("lost %v, want [in.a]", lost)
		}
	})

	t.Run("expired entries are dropped, not answered", func(t *testing.T) {
		t.Parallel()
		p := newPullTracker()
		p.track("in.short", "n1", time.Second, t0)
		p.track("in.long", "n1", time.Minute, t0)
		sweep(p, "n1", t0)
		if lost := sweep(p, "n1", t0.Add(2*time.Second)); len(lost) != 0 {
			t.Fatalf("lost %v", lost)
		}
		if n := p.len(); n != 1 {
			t.Fatalf("%d entries, want 1 (in.short expired)", n)
		}
		if lost := sweep(p, "n3", t0.Add(3*time.Second)); !slices.Equal(lost, []string{"in.long"}) {
			t.Fatalf("lost %v, want [in.long]", lost)
		}
	})

	t.Run("pulls sharing an inbox", func(t *testing.T) {
		t.Parallel()
		p := newPullTracker()
		if lost := p.track("in.c", "n1", time.Minute, t0); lost {
			t.Fatal("first pull reported lost")
		}
		// A shorter later pull keeps the earlier expiry.
		if lost := p.track("in.c", "n1", time.Second, t0); lost {
			t.Fatal("second pull to the same leader reported lost")
		}
		sweep(p, "n1", t0)
		if sweep(p, "n1", t0.Add(30*time.Second)); p.len() != 1 {
			t.Fatal("entry dropped before the first pull's expiry")
		}
		// A pull to a new leader: the one on the old leader is lost.
		if lost := p.track("in.c", "n2", time.Minute, t0); !lost {
			t.Fatal("pull to a new leader did not report the old one lost")
		}
		if lost := sweep(p, "n2", t0.Add(31*time.Second)); len(lost) != 0 {
			t.Fatalf("lost %v after the caller answered it", lost)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		t.Parallel()
		p := newPullTracker()
		for i := range maxTrackedPulls + 10 {
			p.track(fmt.Sprintf("in.%d", i), "n1", time.Minute, t0)
		}
		if n := p.len(); n != maxTrackedPulls {
			t.Fatalf("%d entries, want %d", n, maxTrackedPulls)
		}
		p.track("in.0", "n1", time.Hour, t0) // a known inbox is still updated
		if lost := p.sweep("n2", t0); len(lost) != maxTrackedPulls {
			t.Fatalf("lost %d, want %d", len(lost), maxTrackedPulls)
		}
	})
}
