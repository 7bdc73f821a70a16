package consumers

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testcluster"
	"github.com/flotilla/flotilla/internal/testutil"
)

// TestConsumers_WaitingPull_LeaderChange: pull requests waiting on the
// leader's engine are not replicated, so when leadership moves the client
// must be told (409 Leadership Change) rather than left waiting for its
// expiry. nats.go ends a Fetch with ErrConsumerLeadershipChanged and makes
// Consume re-pull at once. Each case holds a 60 s request, so an answer
// within 10 s can only be the 409.
func TestConsumers_WaitingPull_LeaderChange(t *testing.T) {
	for _, tc := range leaderChanges {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t)
			c := tg.requireFlotilla(t)
			_, js := tg.consumerJS(t) // a follower that survives a leader kill
			mustCreateStream(t, js, jetstream.StreamConfig{Name: "LC", Subjects: []string{"lc.>"}, Storage: jetstream.FileStorage})
			cons := mustCreateConsumer(t, js, "LC", jetstream.ConsumerConfig{Durable: "D", AckPolicy: jetstream.AckExplicitPolicy})

			b, err := cons.Fetch(5, jetstream.FetchMaxWait(60*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			waitNumWaiting(t, cons, 1)
			start := time.Now()
			tc.change(c)
			select {
			case m, ok := <-b.Messages():
				if ok {
					t.Fatalf("got message %q, want the batch to end", m.Data())
				}
			case <-time.After(scaled(10 * time.Second)):
				t.Fatalf("waiting Fetch not ended %v after the leader change", scaled(10*time.Second))
			}
			if err := b.Error(); !errors.Is(err, jetstream.ErrConsumerLeadershipChanged) {
				t.Fatalf("fetch ended with %v, want ErrConsumerLeadershipChanged", err)
			}
			t.Logf("fetch ended %v after the leader change", time.Since(start).Round(time.Millisecond))

			// The client pulls again and the new leader serves it.
			_, pjs := connect(t, c.WaitLeader().ClientURL)
			b, err = cons.Fetch(1, jetstream.FetchMaxWait(scaled(20*time.Second)))
			if err != nil {
				t.Fatal(err)
			}
			waitNumWaiting(t, cons, 1)
			mustPublish(t, pjs, "lc.a", []byte("after"))
			if got := drain(t, b); len(got) != 1 || string(got[0].Data()) != "after" {
				t.Fatalf("fetch after the leader change got %d messages", len(got))
			}
		})
	}
}

// TestConsumers_Consume_RepullsOnLeaderChange: a Consume() with a 60 s
// expiry and 25 s heartbeats would notice a lost pull request only after
// missing two heartbeats; the 409 makes it pull again at once, so a message
// published after the leader change arrives within seconds.
func TestConsumers_Consume_RepullsOnLeaderChange(t *testing.T) {
	for _, tc := range leaderChanges {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t)
			c := tg.requireFlotilla(t)
			_, js := tg.consumerJS(t)
			mustCreateStream(t, js, jetstream.StreamConfig{Name: "LCC", Subjects: []string{"lcc.>"}, Storage: jetstream.FileStorage})
			cons := mustCreateConsumer(t, js, "LCC", jetstream.ConsumerConfig{Durable: "D", AckPolicy: jetstream.AckExplicitPolicy})
			got := make(chan jetstream.Msg, 10)
			errs := make(chan error, 10)
			cc, err := cons.Consume(func(m jetstream.Msg) { got <- m },
				jetstream.PullExpiry(60*time.Second), jetstream.PullHeartbeat(25*time.Second),
				jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
					select {
					case errs <- err:
					default:
					}
				}))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Stop()
			waitNumWaiting(t, cons, 1)
			tc.change(c)
			select {
			case err := <-errs:
				if !errors.Is(err, jetstream.ErrConsumerLeadershipChanged) {
					t.Fatalf("consume error %v, want ErrConsumerLeadershipChanged", err)
				}
			case <-time.After(scaled(10 * time.Second)):
				t.Fatal("Consume not told of the leader change within 10s")
			}
			_, pjs := connect(t, c.WaitLeader().ClientURL)
			mustPublish(t, pjs, "lcc.a", []byte("after"))
			select {
			case m := <-got:
				if string(m.Data()) != "after" {
					t.Fatalf("got %q", m.Data())
				}
				mustDoubleAck(t, m)
			case <-time.After(scaled(10 * time.Second)):
				t.Fatal("message published after the leader change not consumed within 10s")
			}
		})
	}
}

// leaderChanges are the ways leadership moves: a live leader hands it over
// (and can answer its waiting requests itself), or the leader's process
// dies (and only the node the client is on can answer them).
var leaderChanges = []struct {
	name   string
	change func(c *testcluster.Cluster)
}{
	{"transfer", func(c *testcluster.Cluster) { c.TransferLeadership() }},
	{"kill", func(c *testcluster.Cluster) { c.Kill(c.WaitLeader().ID) }},
}

// waitNumWaiting waits until the consumer holds n waiting pull requests.
func waitNumWaiting(t *testing.T, c jetstream.Consumer, n int) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := mustInfo(t, c).NumWaiting; got != n {
			return fmt.Errorf("num_waiting %d, want %d", got, n)
		}
		return nil
	})
}
