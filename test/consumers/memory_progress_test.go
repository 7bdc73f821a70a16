package consumers

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/internal/testutil"
)

// TestConsumers_MemoryAckNone_ProgressReplicatedLazily: an ack-none
// consumer with mem_storage (what ordered consumers ask for) has its
// delivered position replicated at most about once a second while it
// delivers, not once per pull, and its last position soon after it stops;
// a new leader resumes from there. The same consumer on file storage keeps
// recording its position pull by pull.
func TestConsumers_MemoryAckNone_ProgressReplicatedLazily(t *testing.T) {
	tg := newFlotillaTarget(t)
	c := tg.cluster
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	const n, batch = 4000, 100
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "LAZY", Subjects: []string{"lazy.>"}})
	publishAsyncN(t, pjs, n, func(int) string { return "lazy.x" })
	mem := mustCreateConsumer(t, js, "LAZY", jetstream.ConsumerConfig{Durable: "MEM", AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true})
	file := mustCreateConsumer(t, js, "LAZY", jetstream.ConsumerConfig{Durable: "FILE", AckPolicy: jetstream.AckNonePolicy})

	// readAll fetches the whole stream and returns how many Raft entries
	// the leader applied meanwhile and the time it took. Little else
	// writes: the odd expiry entry (the duplicate window of the publishes'
	// message ids) may land in between.
	readAll := func(cons jetstream.Consumer) (uint64, time.Duration) {
		t.Helper()
		leader := c.WaitLeader()
		c.WaitApplied(leader.Cluster.Status().LastIndex) // the consumer creates are in
		before, start := leader.Cluster.AppliedIndex(), time.Now()
		next := uint64(1)
		for next <= n {
			for _, m := range fetch(t, cons, batch) {
				if seq := meta(t, m).Sequence.Stream; seq != next {
					t.Fatalf("got stream seq %d, want %d", seq, next)
				}
				next++
			}
		}
		return leader.Cluster.AppliedIndex() - before, time.Since(start)
	}

	// mem_storage first: its last position, recorded a second later, must
	// not count against it.
	memEntries, memTook := readAll(mem)
	fileEntries, fileTook := readAll(file)
	t.Logf("%d pulls of %d: file storage %d Raft entries in %v, mem_storage %d in %v",
		n/batch, batch, fileEntries, fileTook.Round(time.Millisecond), memEntries, memTook.Round(time.Millisecond))
	if limit := uint64(memTook/time.Second) + 3; memEntries > limit {
		t.Errorf("mem_storage consumer: %d Raft entries in %v, want at most %d (one per second)", memEntries, memTook, limit)
	}
	if fileEntries < n/batch/4 {
		t.Errorf("file storage consumer: %d Raft entries for %d pulls, want at least %d (its position is recorded as it goes)", fileEntries, n/batch, n/batch/4)
	}

	// The last position reaches every replica once the interval is over.
	testutil.Eventually(t, 10*time.Second, func() error {
		for _, node := range c.Running() {
			d, err := broker.DumpState(node.Store, "LAZY")
			if err != nil {
				return err
			}
			if got := d.Consumers["MEM"]; got.DeliveredStream != n || got.DeliveredConsumer != n {
				return fmt.Errorf("%s: MEM delivered %d/%d (stream/consumer), want %d", node.ID, got.DeliveredStream, got.DeliveredConsumer, n)
			}
		}
		return nil
	})

	// A new leader resumes there: nothing is delivered again.
	c.TransferLeadership()
	if info := mustInfo(t, mem); info.Delivered.Stream != n || info.Delivered.Consumer != n || info.NumPending != 0 {
		t.Fatalf("after a leader change MEM is at %+v with %d pending, want delivered %d", info.Delivered, info.NumPending, n)
	}
	fetchNone(t, mem, 300*time.Millisecond)
}

// TestConsumers_Ordered_AcrossLeaderKill: an ordered consumer on a follower
// reads a stream while the leader is killed halfway. Its position was not
// replicated for up to a second, so the new leader resumes it behind the
// client; the client must see that (the consumer sequence goes back),
// recreate the consumer where it was, and get every message once, in
// order.
func TestConsumers_Ordered_AcrossLeaderKill(t *testing.T) {
	tg := newFlotillaTarget(t)
	c := tg.cluster
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	const n = 4000
	mustCreateStream(t, pjs, jetstream.StreamConfig{Name: "ORD", Subjects: []string{"ord.>"}, Storage: jetstream.FileStorage})
	publishAsyncN(t, pjs, n, func(i int) string { return fmt.Sprintf("ord.%d", i%4) })

	oc, err := js.OrderedConsumer(ctxT(t, 10*time.Second), "ORD", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	// The handler hands every message over and waits, so the test decides
	// how far the consumer got when the leader dies.
	ch := consumeOrdered(t, oc, 0, jetstream.PullMaxMessages(100), jetstream.PullExpiry(scaled(4*time.Second)),
		jetstream.PullHeartbeat(scaled(time.Second)), logConsumeErrors(t, "ordered"))

	timeout := time.After(scaled(120 * time.Second))
	var names []string
	for want := uint64(1); want <= n; want++ {
		if want == n/2 {
			leader := c.WaitLeader()
			c.Kill(leader.ID)
			t.Logf("killed leader %s after %d messages", leader.ID, want-1)
		}
		var got orderedMsg
		select {
		case got = <-ch:
		case <-timeout:
			t.Fatalf("got stream seqs 1..%d of %d", want-1, n)
		}
		if got.stream != want || got.data != string(body(int(want-1))) {
			t.Fatalf("got stream seq %d (%q), want %d", got.stream, got.data, want)
		}
		if len(names) == 0 || names[len(names)-1] != got.name {
			names = append(names, got.name)
		}
	}
	t.Logf("read by %d consumers in turn (nats.go recreates it on a sequence gap or a missed heartbeat)", len(names))
	select {
	case got := <-ch:
		t.Fatalf("stream seq %d delivered after the last message", got.stream)
	case <-time.After(scaled(200 * time.Millisecond)):
	}
}
