package consumers

import (
	"bytes"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testutil"
)

// TestConsumers_LegacyPush_FlowControlAndHeartbeats subscribes with the
// legacy js.Subscribe, nats.EnableFlowControl() and nats.IdleHeartbeat(),
// to a backlog several flow-control windows long. Every message must
// arrive in order (a flow-control request the client answers resumes
// delivery; one it could not answer would stall it), and once idle the
// server must keep sending idle heartbeats whose Nats-Last-Consumer and
// Nats-Last-Stream name the last delivery: nats.go reports a missing
// heartbeat as ErrConsumerNotActive and a Nats-Last-Consumer that differs
// from the last message's as ErrConsumerSequenceMismatch, and neither may
// be reported. A plain subscriber on the deliver subject watches the
// status messages.
func TestConsumers_LegacyPush_FlowControlAndHeartbeats(t *testing.T) {
	tg := newTarget(t)
	var (
		mu        sync.Mutex
		asyncErrs []error
	)
	nc, js := connect(t, tg.consumerURL(t), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		asyncErrs = append(asyncErrs, err)
		mu.Unlock()
	}))
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "FC", Subjects: []string{"fc.>"}, Storage: jetstream.FileStorage})
	// The backlog is several flow-control windows long, in messages (512
	// on Flotilla) and in bytes (nats-server's windows are bytes).
	const backlog, live = 2000, 5
	payload := func(i int) []byte { return append(body(i), bytes.Repeat([]byte{'x'}, 1024)...) }
	publishAsyncData(t, pjs, backlog, func(i int) string { return fmt.Sprintf("fc.%d", i%4) }, payload)

	// The watcher sees what the server sends to the deliver subject.
	deliver := nats.NewInbox()
	var (
		wmu      sync.Mutex
		fcReqs   int
		lastMsg  time.Time // when the watcher saw the last message
		lastHB   nats.Header
		hbsAfter int // heartbeats seen after the last message
	)
	wnc, _ := connect(t, tg.consumerURL(t))
	if _, err := wnc.Subscribe(deliver, func(m *nats.Msg) {
		wmu.Lock()
		defer wmu.Unlock()
		switch {
		case m.Header.Get("Status") == "" && len(m.Data) > 0:
			lastMsg, hbsAfter = time.Now(), 0
		case m.Header.Get("Status") == "100" && m.Header.Get("Description") == "FlowControl Request":
			fcReqs++
		case m.Header.Get("Status") == "100" && m.Header.Get("Description") == "Idle Heartbeat":
			lastHB = m.Header
			hbsAfter++
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := wnc.Flush(); err != nil {
		t.Fatal(err)
	}

	old, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *nats.Msg, backlog+live)
	hb := scaled(250 * time.Millisecond)
	sub, err := old.Subscribe("fc.>", func(m *nats.Msg) {
		got <- m
		_ = m.Ack()
	}, nats.Durable("FCD"), nats.DeliverSubject(deliver), nats.EnableFlowControl(), nats.IdleHeartbeat(hb), nats.ManualAck())
	if err != nil {
		t.Fatalf("legacy subscribe with flow control: %v", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ci, err := sub.ConsumerInfo()
	if err != nil {
		t.Fatal(err)
	}
	if !ci.Config.FlowControl || ci.Config.Heartbeat != hb || ci.Config.DeliverSubject != deliver {
		t.Fatalf("consumer config: flow_control %v idle_heartbeat %v deliver_subject %q", ci.Config.FlowControl, ci.Config.Heartbeat, ci.Config.DeliverSubject)
	}

	next := func(i int) {
		t.Helper()
		select {
		case m := <-got:
			md, err := m.Metadata()
			if err != nil {
				t.Fatalf("message %d: metadata: %v", i, err)
			}
			if md.Sequence.Stream != uint64(i+1) || md.Sequence.Consumer != uint64(i+1) || !bytes.Equal(m.Data, payload(i)) {
				t.Fatalf("message %d: stream seq %d consumer seq %d data %.20q", i, md.Sequence.Stream, md.Sequence.Consumer, m.Data)
			}
		case <-time.After(scaled(20 * time.Second)):
			wmu.Lock()
			n := fcReqs
			wmu.Unlock()
			t.Fatalf("got %d of %d messages (%d flow-control requests seen)", i, backlog+live, n)
		}
	}
	for i := range backlog {
		next(i)
	}
	// Live messages are pushed as they are stored.
	for i := backlog; i < backlog+live; i++ {
		if seq := mustPublish(t, pjs, "fc.live", payload(i)); seq != uint64(i+1) {
			t.Fatalf("published at %d, want %d", seq, i+1)
		}
		next(i)
	}

	// Idle now: heartbeats keep coming and name the last delivery.
	const n = backlog + live
	testutil.Eventually(t, 20*time.Second, func() error {
		wmu.Lock()
		defer wmu.Unlock()
		if lastMsg.IsZero() || hbsAfter < 4 {
			return fmt.Errorf("%d heartbeats since the last message", hbsAfter)
		}
		if c, s := lastHB.Get("Nats-Last-Consumer"), lastHB.Get("Nats-Last-Stream"); c != strconv.Itoa(n) || s != strconv.Itoa(n) {
			return fmt.Errorf("heartbeat Nats-Last-Consumer %q Nats-Last-Stream %q, want %d", c, s, n)
		}
		return nil
	})
	wmu.Lock()
	if fcReqs == 0 {
		t.Errorf("no flow-control request in %d messages", n)
	}
	t.Logf("%d flow-control requests, %d heartbeats since the last message", fcReqs, hbsAfter)
	wmu.Unlock()

	testutil.Eventually(t, 10*time.Second, func() error {
		info, err := sub.ConsumerInfo()
		if err != nil {
			return err
		}
		if info.AckFloor.Stream != n || info.NumAckPending != 0 {
			return fmt.Errorf("ack floor %d, num_ack_pending %d", info.AckFloor.Stream, info.NumAckPending)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, err := range asyncErrs {
		t.Errorf("async error: %v", err)
	}
}
