package consumers

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestConsumers_Filters checks filter_subject with wildcards and
// filter_subjects with several filters: only matching messages are
// delivered, consumer sequences stay dense, and num_pending (in info and in
// each message's metadata) counts matching messages only.
func TestConsumers_Filters(t *testing.T) {
	tg := newTarget(t)
	_, js := tg.consumerJS(t)
	_, pjs := tg.producerJS(t)
	mustCreateStream(t, js, jetstream.StreamConfig{Name: "ORD", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage})
	subjects := []string{
		"orders.1.eu",    // 1
		"orders.2.us",    // 2
		"orders.3.eu",    // 3
		"orders.4.eu.x",  // 4: orders.*.eu does not match, orders.4.> does
		"orders.5.asia",  // 5
		"orders.6.eu",    // 6
		"orders.7.us",    // 7
		"orders.eu",      // 8: too short for orders.*.eu
		"orders.9.eu.eu", // 9
	}
	for i, subj := range subjects {
		msg := nats.NewMsg(subj)
		msg.Data = body(i + 1)
		msg.Header.Set("Order", subj)
		if _, err := pjs.PublishMsg(ctxT(t, 10*time.Second), msg); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}

	cases := []struct {
		name string
		cfg  jetstream.ConsumerConfig
		want []uint64
	}{
		{"star", jetstream.ConsumerConfig{FilterSubject: "orders.*.eu"}, []uint64{1, 3, 6}},
		{"gt", jetstream.ConsumerConfig{FilterSubject: "orders.4.>"}, []uint64{4}},
		{"literal", jetstream.ConsumerConfig{FilterSubject: "orders.eu"}, []uint64{8}},
		{"everything", jetstream.ConsumerConfig{FilterSubject: ">"}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"multi", jetstream.ConsumerConfig{FilterSubjects: []string{"orders.*.us", "orders.*.asia"}}, []uint64{2, 5, 7}},
		{"multi_mixed", jetstream.ConsumerConfig{FilterSubjects: []string{"orders.*.eu.>", "orders.1.eu", "orders.eu"}}, []uint64{1, 4, 8, 9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Durable = tc.name
			cfg.AckPolicy = jetstream.AckExplicitPolicy
			c := mustCreateConsumer(t, js, "ORD", cfg)
			info := mustInfo(t, c)
			if info.NumPending != uint64(len(tc.want)) {
				t.Fatalf("num_pending %d, want %d", info.NumPending, len(tc.want))
			}
			if info.Config.FilterSubject != tc.cfg.FilterSubject || !slices.Equal(info.Config.FilterSubjects, tc.cfg.FilterSubjects) {
				t.Fatalf("config filters %q %q, want %q %q", info.Config.FilterSubject, info.Config.FilterSubjects, tc.cfg.FilterSubject, tc.cfg.FilterSubjects)
			}
			got := fetchNoWait(t, c, 20)
			if seqs := streamSeqs(t, got); !slices.Equal(seqs, tc.want) {
				t.Fatalf("delivered stream seqs %v, want %v", seqs, tc.want)
			}
			for i, m := range got {
				md := meta(t, m)
				if md.Sequence.Consumer != uint64(i+1) || md.NumPending != uint64(len(tc.want)-i-1) {
					t.Errorf("message %d: consumer seq %d pending %d, want %d and %d", i, md.Sequence.Consumer, md.NumPending, i+1, len(tc.want)-i-1)
				}
				if m.Headers().Get("Order") != m.Subject() || m.Subject() != subjects[md.Sequence.Stream-1] {
					t.Errorf("message %d: subject %s header %q", i, m.Subject(), m.Headers().Get("Order"))
				}
			}
			// delivered.stream_seq is the last delivered message's, not the
			// stream's last.
			assertState(t, c, state{Delivered: [2]uint64{uint64(len(tc.want)), tc.want[len(tc.want)-1]}, AckPending: len(tc.want)})
		})
	}

	// Invalid filter sets are refused.
	ctx := ctxT(t, 10*time.Second)
	bad := []struct {
		name    string
		filters []string
		want    error
	}{
		{"overlapping", []string{"orders.>", "orders.1.eu"}, jetstream.ErrOverlappingFilterSubjects},
		{"empty", []string{"orders.1.eu", ""}, jetstream.ErrEmptyFilter},
	}
	for _, tc := range bad {
		_, err := js.CreateConsumer(ctx, "ORD", jetstream.ConsumerConfig{Durable: "bad_" + tc.name, FilterSubjects: tc.filters})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s filters %q: %v, want %v", tc.name, tc.filters, err, tc.want)
		}
	}
}
