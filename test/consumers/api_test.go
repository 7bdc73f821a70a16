package consumers

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flotilla/flotilla/internal/testutil"
)

// TestConsumers_API covers the consumer CRUD calls: create (idempotent,
// ErrConsumerExists), update (allowed and refused changes,
// ErrConsumerDoesNotExist), info, names, list, delete and not-found errors.
func TestConsumers_API(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	ctx := ctxT(t, 30*time.Second)
	s := mustCreateStream(t, js, jetstream.StreamConfig{Name: "API", Subjects: []string{"api.>"}, Storage: jetstream.MemoryStorage})

	cfg := jetstream.ConsumerConfig{Durable: "D", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, Description: "first"}
	c, err := s.CreateConsumer(ctx, cfg)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	info := c.CachedInfo()
	if info.Name != "D" || info.Stream != "API" || info.Config.Durable != "D" || info.Config.AckWait != 30*time.Second ||
		info.Config.DeliverPolicy != jetstream.DeliverAllPolicy || info.Config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Fatalf("create response: %+v", info)
	}
	// Server defaults are filled in.
	if info.Config.MaxDeliver != -1 || info.Config.MaxWaiting != 512 || info.Config.MaxAckPending != 1000 || info.Config.ReplayPolicy != jetstream.ReplayInstantPolicy {
		t.Fatalf("defaults: max_deliver %d max_waiting %d max_ack_pending %d replay %v",
			info.Config.MaxDeliver, info.Config.MaxWaiting, info.Config.MaxAckPending, info.Config.ReplayPolicy)
	}
	// Create with the same config again: idempotent.
	if _, err := s.CreateConsumer(ctx, cfg); err != nil {
		t.Fatalf("idempotent create: %v", err)
	}
	// Create with a different config: refused.
	changed := cfg
	changed.AckWait = 10 * time.Second
	if _, err := s.CreateConsumer(ctx, changed); !errors.Is(err, jetstream.ErrConsumerExists) {
		t.Fatalf("create with another config: %v, want ErrConsumerExists", err)
	}
	// Update of a consumer that does not exist: refused.
	if _, err := s.UpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "NOPE", AckPolicy: jetstream.AckExplicitPolicy}); !errors.Is(err, jetstream.ErrConsumerDoesNotExist) {
		t.Fatalf("update missing consumer: %v, want ErrConsumerDoesNotExist", err)
	}
	// Allowed update: ack_wait and description.
	changed.Description = "second"
	if _, err := s.UpdateConsumer(ctx, changed); err != nil {
		t.Fatalf("update ack_wait: %v", err)
	}
	if info, err := c.Info(ctx); err != nil || info.Config.AckWait != 10*time.Second || info.Config.Description != "second" {
		t.Fatalf("after update: %+v %v", info, err)
	}
	// CreateOrUpdate applies an allowed change too.
	changed.MaxAckPending = 7
	if _, err := s.CreateOrUpdateConsumer(ctx, changed); err != nil {
		t.Fatalf("create-or-update max_ack_pending: %v", err)
	}
	// Refused updates: deliver policy and ack policy cannot change.
	refused := []jetstream.ConsumerConfig{changed, changed}
	refused[0].DeliverPolicy = jetstream.DeliverNewPolicy
	refused[1].AckPolicy = jetstream.AckAllPolicy
	for _, r := range refused {
		if _, err := s.UpdateConsumer(ctx, r); apiCode(err) != jetstream.JSErrCodeConsumerCreate {
			t.Errorf("update deliver %v ack %v: %v, want err_code %d", r.DeliverPolicy, r.AckPolicy, err, jetstream.JSErrCodeConsumerCreate)
		}
	}
	if info, err := c.Info(ctx); err != nil || info.Config.DeliverPolicy != jetstream.DeliverAllPolicy || info.Config.MaxAckPending != 7 {
		t.Fatalf("after refused updates: %+v %v", info, err)
	}

	// More consumers, then names and list.
	mustCreateConsumer(t, js, "API", jetstream.ConsumerConfig{Durable: "B", AckPolicy: jetstream.AckExplicitPolicy})
	mustCreateConsumer(t, js, "API", jetstream.ConsumerConfig{Name: "E", AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Hour})
	var names []string
	nl := s.ConsumerNames(ctx)
	for n := range nl.Name() {
		names = append(names, n)
	}
	slices.Sort(names)
	if nl.Err() != nil || !slices.Equal(names, []string{"B", "D", "E"}) {
		t.Fatalf("names %v (%v)", names, nl.Err())
	}
	var listed []string
	ll := s.ListConsumers(ctx)
	for i := range ll.Info() {
		if i.Stream != "API" {
			t.Errorf("listed consumer %s has stream %q", i.Name, i.Stream)
		}
		listed = append(listed, i.Name)
	}
	slices.Sort(listed)
	if ll.Err() != nil || !slices.Equal(listed, []string{"B", "D", "E"}) {
		t.Fatalf("list %v (%v)", listed, ll.Err())
	}

	// Delete, then every call on it is not found.
	if err := s.DeleteConsumer(ctx, "D"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.Info(ctx); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("info after delete: %v", err)
	}
	if err := s.DeleteConsumer(ctx, "D"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("delete again: %v", err)
	}
	if _, err := js.Consumer(ctx, "API", "NOPE"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("missing consumer: %v", err)
	}
	// Consumers of a missing stream.
	if _, err := js.CreateConsumer(ctx, "MISSING", jetstream.ConsumerConfig{Durable: "X"}); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("create on missing stream: %v", err)
	}
	if _, err := js.Consumer(ctx, "MISSING", "X"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("info on missing stream: %v", err)
	}
}

// TestConsumers_BadConfigs checks that invalid deliver policy settings are
// refused with err_code 10094 (consumer invalid policy).
func TestConsumers_BadConfigs(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	ctx := ctxT(t, 30*time.Second)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "BAD", Subjects: []string{"bad.>"}, Storage: jetstream.MemoryStorage})
	now := time.Now()
	cases := []struct {
		name string
		cfg  jetstream.ConsumerConfig
	}{
		{"by_start_sequence without a sequence", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy}},
		{"by_start_time without a time", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy}},
		{"all with a start sequence", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy, OptStartSeq: 3}},
		{"new with a start time", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy, OptStartTime: &now}},
		{"last_per_subject without a filter", jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy}},
	}
	const invalidPolicy = 10094
	for i, tc := range cases {
		tc.cfg.Durable = fmt.Sprintf("bad%d", i)
		if _, err := js.CreateConsumer(ctx, "BAD", tc.cfg); apiCode(err) != invalidPolicy {
			t.Errorf("%s: %v, want err_code %d", tc.name, err, invalidPolicy)
		}
	}
}

// TestConsumers_EphemeralInactiveThreshold: an ephemeral consumer (no
// durable name; nats.go names it) with inactive_threshold 1s disappears
// once nobody uses it.
func TestConsumers_EphemeralInactiveThreshold(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	ctx := ctxT(t, 30*time.Second)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "EPH", Subjects: []string{"eph.>"}, Storage: jetstream.MemoryStorage})
	c, err := js.CreateConsumer(ctx, "EPH", jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy, InactiveThreshold: time.Second})
	if err != nil {
		t.Fatalf("create ephemeral: %v", err)
	}
	info := c.CachedInfo()
	if info.Name == "" || info.Config.Durable != "" || info.Config.InactiveThreshold != time.Second {
		t.Fatalf("ephemeral: name %q durable %q inactive_threshold %v", info.Name, info.Config.Durable, info.Config.InactiveThreshold)
	}
	if _, err := js.Consumer(ctx, "EPH", info.Name); err != nil {
		t.Fatalf("ephemeral right after create: %v", err)
	}
	testutil.Eventually(t, 15*time.Second, func() error {
		_, err := js.Consumer(ctx, "EPH", info.Name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil
		}
		return fmt.Errorf("ephemeral %s still there (%v)", info.Name, err)
	})
	// A durable with no inactive_threshold stays.
	d := mustCreateConsumer(t, js, "EPH", jetstream.ConsumerConfig{Durable: "STAYS", AckPolicy: jetstream.AckExplicitPolicy})
	fetchNone(t, d, 2*time.Second)
	mustInfo(t, d)
}
