package jetstream

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testcluster"
)

func TestJetStream_StreamAPI_ThroughFollower(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	_, js := connectJS(t, follower(t, c))
	ctx := ctxT(t, 30*time.Second)

	s := mustCreateStream(t, js, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	// Create again with the same config: idempotent.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatalf("idempotent create: %v", err)
	}
	// A different config under the same name is refused.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"other.>"}}); !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		t.Fatalf("create with another config: %v", err)
	}
	// Overlapping subjects are refused.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DUP", Subjects: []string{"orders.eu"}}); err == nil {
		t.Fatal("overlapping stream created")
	}
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.*"}, MaxMsgs: 100})

	for i := range 5 {
		if _, err := js.Publish(ctx, fmt.Sprintf("orders.%d", i%2), body(i)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 5 || info.State.FirstSeq != 1 || info.State.LastSeq != 5 {
		t.Fatalf("state %+v", info.State)
	}

	names := js.StreamNames(ctx)
	var got []string
	for n := range names.Name() {
		got = append(got, n)
	}
	if names.Err() != nil || !slices.Equal(got, []string{"EVENTS", "ORDERS"}) {
		t.Fatalf("names %v (%v)", got, names.Err())
	}
	list := js.ListStreams(ctx)
	count := 0
	for range list.Info() {
		count++
	}
	if list.Err() != nil || count != 2 {
		t.Fatalf("list %d (%v)", count, list.Err())
	}

	m, err := s.GetMsg(ctx, 3)
	if err != nil || m.Sequence != 3 || string(m.Data) != "msg-000002" || m.Subject != "orders.0" {
		t.Fatalf("get 3: %+v %v", m, err)
	}
	last, err := s.GetLastMsgForSubject(ctx, "orders.1")
	if err != nil || last.Sequence != 4 {
		t.Fatalf("last for orders.1: %+v %v", last, err)
	}
	if _, err := s.GetMsg(ctx, 99); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("get 99: %v", err)
	}
	if err := s.DeleteMsg(ctx, 1); err != nil {
		t.Fatalf("delete msg 1: %v", err)
	}
	if _, err := s.GetMsg(ctx, 1); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("get deleted msg 1: %v", err)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 4 || info.State.FirstSeq != 2 {
		t.Fatalf("after deleting seq 1: %+v", info.State)
	}

	if _, err := js.UpdateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, MaxMsgs: 3}); err != nil {
		t.Fatalf("update: %v", err)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 3 || info.State.FirstSeq != 3 {
		t.Fatalf("after shrinking max_msgs: %+v", info.State)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject("orders.0")); err != nil {
		t.Fatalf("purge subject: %v", err)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 0 || info.State.FirstSeq != 6 || info.State.LastSeq != 5 {
		t.Fatalf("after purge: %+v", info.State)
	}
	if err := js.DeleteStream(ctx, "ORDERS"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := js.Stream(ctx, "ORDERS"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("info after delete: %v", err)
	}
}

func TestJetStream_PublishAsync_10000_DenseSequences(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	_, js := connectJS(t, follower(t, c))
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "BULK", Subjects: []string{"bulk.>"}})
	// Published in windows of 1,000 outstanding, as `nats bench js pub
	// async --batch` does (nats.go gives up on a window it cannot grow
	// for 200 ms).
	const n, window = 10000, 1000
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		f, err := js.PublishAsync(fmt.Sprintf("bulk.%d", i%10), body(i))
		if err != nil {
			t.Fatalf("publish async %d: %v", i, err)
		}
		futures = append(futures, f)
		if (i+1)%window == 0 {
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(60 * time.Second):
				t.Fatalf("window ending at %d: %d acks outstanding", i, js.PublishAsyncPending())
			}
		}
	}
	seen := make(map[uint64]bool, n)
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Stream != "BULK" || seen[ack.Sequence] {
				t.Fatalf("ack %d: %+v (duplicate seq?)", i, ack)
			}
			seen[ack.Sequence] = true
		case err := <-f.Err():
			t.Fatalf("publish %d failed: %v", i, err)
		}
	}
	for seq := uint64(1); seq <= n; seq++ {
		if !seen[seq] {
			t.Fatalf("sequence %d missing: not dense", seq)
		}
	}
	if last := assertReplicasEqual(t, c, "BULK"); last != n {
		t.Fatalf("last seq %d", last)
	}
	// A sync publish after the burst continues the sequence.
	ack, err := js.Publish(ctxT(t, 10*time.Second), "bulk.x", []byte("after"))
	if err != nil || ack.Sequence != n+1 {
		t.Fatalf("sync publish: %+v %v", ack, err)
	}
}

func TestJetStream_Dedup_AcrossLeaderKill(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	leader := c.WaitLeader()
	fs := c.Followers()
	_, js := connectJS(t, fs[0])
	ctx := ctxT(t, 30*time.Second)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "PAY", Subjects: []string{"pay.>"}, Duplicates: time.Minute})
	first, err := js.Publish(ctx, "pay.1", []byte("charge"), jetstream.WithMsgID("charge-1"))
	if err != nil || first.Duplicate {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := js.Publish(ctx, "pay.1", []byte("charge"), jetstream.WithMsgID("charge-1"))
	if err != nil || !again.Duplicate || again.Sequence != first.Sequence {
		t.Fatalf("retry: %+v %v, want duplicate of seq %d", again, err, first.Sequence)
	}
	// The leader dies; the retry goes through another node and a new
	// leader, and is still recognised as a duplicate.
	c.Kill(leader.ID)
	_, js2 := connectJS(t, fs[1])
	var retry *jetstream.PubAck
	deadline := time.Now().Add(20 * time.Second)
	for {
		retry, err = js2.Publish(ctx, "pay.1", []byte("charge"), jetstream.WithMsgID("charge-1"))
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !retry.Duplicate || retry.Sequence != first.Sequence {
		t.Fatalf("retry after failover: %+v %v", retry, err)
	}
	if info, _ := js2.Stream(ctx, "PAY"); info == nil || info.CachedInfo().State.Msgs != 1 {
		t.Fatalf("stored copies: %+v", info)
	}
}

func TestJetStream_ExpectedHeadersAndLimits(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	_, js := connectJS(t, follower(t, c))
	ctx := ctxT(t, 30*time.Second)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "KVISH", Subjects: []string{"k.>"}, MaxMsgSize: 256, MaxMsgsPerSubject: 2, Discard: jetstream.DiscardNew, DiscardNewPerSubject: true})
	ack, err := js.Publish(ctx, "k.a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	code := func(err error) uint16 {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) {
			return uint16(apiErr.ErrorCode)
		}
		return 0
	}
	cases := []struct {
		name string
		opts []jetstream.PublishOpt
		subj string
		data []byte
		want uint16
	}{
		{"expected stream", []jetstream.PublishOpt{jetstream.WithExpectStream("OTHER")}, "k.a", []byte("x"), 10060},
		{"expected last sequence", []jetstream.PublishOpt{jetstream.WithExpectLastSequence(99)}, "k.a", []byte("x"), 10071},
		{"expected last msg id", []jetstream.PublishOpt{jetstream.WithExpectLastMsgID("nope")}, "k.a", []byte("x"), 10070},
		{"expected last subject sequence", []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(7)}, "k.a", []byte("x"), 10071},
		{"max msg size", nil, "k.b", make([]byte, 300), 10054},
	}
	for _, tc := range cases {
		if _, err := js.Publish(ctx, tc.subj, tc.data, tc.opts...); code(err) != tc.want {
			t.Errorf("%s: %v, want err_code %d", tc.name, err, tc.want)
		}
	}
	// The right expectations pass.
	if _, err := js.Publish(ctx, "k.a", []byte("2"), jetstream.WithExpectStream("KVISH"), jetstream.WithExpectLastSequence(ack.Sequence), jetstream.WithExpectLastSequencePerSubject(ack.Sequence)); err != nil {
		t.Fatalf("matching expectations: %v", err)
	}
	// max_msgs_per_subject 2 with discard new per subject: a third is refused.
	if _, err := js.Publish(ctx, "k.a", []byte("3")); code(err) != 10077 {
		t.Fatalf("third message on k.a: %v, want 10077", err)
	}

	// max_msgs and max_bytes with discard new refuse; with discard old the
	// oldest messages make room.
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "NEW", Subjects: []string{"new.>"}, MaxMsgs: 2, Discard: jetstream.DiscardNew})
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "BYTES", Subjects: []string{"bytes.>"}, MaxBytes: 100, Discard: jetstream.DiscardNew})
	old := mustCreateStream(t, js, jetstream.StreamConfig{Name: "OLD", Subjects: []string{"old.>"}, MaxMsgs: 2})
	for i := range 2 {
		if _, err := js.Publish(ctx, "new.x", []byte("x")); err != nil {
			t.Fatalf("new %d: %v", i, err)
		}
	}
	if _, err := js.Publish(ctx, "new.x", []byte("x")); code(err) != 10077 {
		t.Fatalf("max_msgs discard new: %v, want 10077", err)
	}
	if _, err := js.Publish(ctx, "bytes.x", make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "bytes.x", make([]byte, 60)); code(err) != 10077 {
		t.Fatalf("max_bytes discard new: %v, want 10077", err)
	}
	for i := range 5 {
		if _, err := js.Publish(ctx, "old.x", body(i)); err != nil {
			t.Fatalf("old %d: %v", i, err)
		}
	}
	if info, _ := old.Info(ctx); info.State.Msgs != 2 || info.State.FirstSeq != 4 || info.State.LastSeq != 5 {
		t.Fatalf("discard old kept %+v", info.State)
	}
	// Roll-ups need allow_rollup_hdrs.
	rollup := nats.NewMsg("old.x")
	rollup.Header.Set("Nats-Rollup", "sub")
	if _, err := js.PublishMsg(ctx, rollup); err == nil {
		t.Fatal("roll-up accepted on a stream without allow_rollup_hdrs")
	}
}

func TestJetStream_KeyValueBasics(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, 3, testcluster.WithClients())
	_, js := connectJS(t, follower(t, c))
	ctx := ctxT(t, 30*time.Second)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "config", History: 5})
	if err != nil {
		t.Fatalf("create kv: %v", err)
	}
	rev, err := kv.Put(ctx, "color", []byte("blue"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, "color")
	if err != nil || string(e.Value()) != "blue" || e.Revision() != rev {
		t.Fatalf("get: %v %v", e, err)
	}
	if _, err := kv.Create(ctx, "color", []byte("red")); !errors.Is(err, jetstream.ErrKeyExists) {
		t.Fatalf("create existing: %v", err)
	}
	rev2, err := kv.Update(ctx, "color", []byte("green"), rev)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if _, err := kv.Update(ctx, "color", []byte("stale"), rev); err == nil {
		t.Fatal("update with a stale revision succeeded")
	}
	if _, err := kv.Create(ctx, "size", []byte("xl")); err != nil {
		t.Fatalf("create new key: %v", err)
	}
	if err := kv.Delete(ctx, "size"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := kv.Get(ctx, "size"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
	if err := kv.Purge(ctx, "color"); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if _, err := kv.Get(ctx, "color"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("get purged: %v (rev2 %d)", err, rev2)
	}
}
