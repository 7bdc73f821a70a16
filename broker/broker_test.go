package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"
)

// delivery is what a fakeSubscriber records of one Deliver call. It copies
// the subject, because Message slices are only valid during Publish.
type delivery struct {
	sid     string
	subject string
}

// fakeSubscriber records deliveries. DeliverFunc, when set, runs after the
// recording, inside Deliver (so on the publisher's goroutine).
type fakeSubscriber struct {
	DeliverFunc func(sub *Subscription, m *Message)

	mu  sync.Mutex
	got []delivery
}

var _ Subscriber = (*fakeSubscriber)(nil)

func (f *fakeSubscriber) Deliver(sub *Subscription, m *Message) {
	f.mu.Lock()
	f.got = append(f.got, delivery{sid: sub.SID, subject: string(m.Subject)})
	f.mu.Unlock()
	if f.DeliverFunc != nil {
		f.DeliverFunc(sub, m)
	}
}

// deliveries returns the recorded deliveries and forgets them.
func (f *fakeSubscriber) deliveries() []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.got
	f.got = nil
	return got
}

// sids returns the sorted SIDs of the recorded deliveries and forgets them.
func (f *fakeSubscriber) sids() []string {
	var sids []string
	for _, d := range f.deliveries() {
		sids = append(sids, d.sid)
	}
	slices.Sort(sids)
	return sids
}

func newTestBroker(t *testing.T) *Broker {
	t.Helper()
	return New(zaptest.NewLogger(t))
}

func mustSubscribe(t *testing.T, b *Broker, client *fakeSubscriber, clientID uint64, subject, queue, sid string) *Subscription {
	t.Helper()
	sub := &Subscription{Subject: subject, Queue: queue, SID: sid, ClientID: clientID, Client: client}
	if err := b.Subscribe(sub); err != nil {
		t.Fatalf("Subscribe(%q, %q): %v", subject, queue, err)
	}
	return sub
}

func newMsg(subject string) *Message {
	return &Message{Subject: []byte(subject), Payload: []byte("hello")}
}

func TestBroker_Publish_FanOut(t *testing.T) {
	t.Parallel()
	b := newTestBroker(t)
	c := &fakeSubscriber{}
	for _, subject := range []string{"foo", "foo.bar", "foo.*", "foo.>", "*.bar", ">", "foo.bar.baz", "bar"} {
		mustSubscribe(t, b, c, 1, subject, "", subject)
	}
	tests := []struct {
		subject string
		want    []string
	}{
		{"foo", []string{">", "foo"}},
		{"foo.bar", []string{"*.bar", ">", "foo.*", "foo.>", "foo.bar"}},
		{"foo.bar.baz", []string{">", "foo.>", "foo.bar.baz"}},
		{"qux", []string{">"}},
	}
	for _, tt := range tests {
		// Sequential: the subtests share the subscriber.
		t.Run(tt.subject, func(t *testing.T) {
			n := b.Publish(newMsg(tt.subject))
			got := c.sids()
			if !slices.Equal(got, tt.want) {
				t.Errorf("Publish(%q) delivered to %v, want %v", tt.subject, got, tt.want)
			}
			if n != len(tt.want) {
				t.Errorf("Publish(%q) = %d, want %d", tt.subject, n, len(tt.want))
			}
		})
	}
}

func TestBroker_Publish_NoSubscribers(t *testing.T) {
	t.Parallel()
	b := newTestBroker(t)
	c := &fakeSubscriber{}
	mustSubscribe(t, b, c, 1, "foo.*", "", "1")
	if n := b.Publish(newMsg("bar")); n != 0 {
		t.Errorf("Publish = %d, want 0", n)
	}
	if b.HasInterest([]byte("bar")) {
		t.Error("HasInterest(bar) = true, want false")
	}
	if !b.HasInterest([]byte("foo.x")) {
		t.Error("HasInterest(foo.x) = false, want true")
	}
}

func TestBroker_Publish_QueueGroups(t *testing.T) {
	t.Parallel()
	b := newTestBroker(t)
	c := &fakeSubscriber{}
	// Group "workers" spans two patterns; it is still one group. "audit"
	// is a second group and "plain" a non-queue subscription.
	members := []string{"w1", "w2", "w3", "w4"}
	mustSubscribe(t, b, c, 1, "jobs.*", "workers", "w1")
	mustSubscribe(t, b, c, 2, "jobs.*", "workers", "w2")
	mustSubscribe(t, b, c, 3, "jobs.>", "workers", "w3")
	mustSubscribe(t, b, c, 4, "jobs.eu", "workers", "w4")
	mustSubscribe(t, b, c, 5, "jobs.>", "audit", "a1")
	mustSubscribe(t, b, c, 6, "jobs.>", "audit", "a2")
	mustSubscribe(t, b, c, 7, "jobs.eu", "", "plain")

	const msgs = 4000
	counts := make(map[string]int)
	for i := range msgs {
		if n := b.Publish(newMsg("jobs.eu")); n != 3 {
			t.Fatalf("message %d: Publish = %d, want 3 (one per group + plain)", i, n)
		}
		got := c.sids()
		var workers, audit int
		for _, sid := range got {
			counts[sid]++
			switch {
			case strings.HasPrefix(sid, "w"):
				workers++
			case strings.HasPrefix(sid, "a"):
				audit++
			}
		}
		if workers != 1 || audit != 1 || !slices.Contains(got, "plain") {
			t.Fatalf("message %d delivered to %v, want one worker, one auditor and plain", i, got)
		}
	}
	// The spread is random; with 4000 messages each of 4 members expects
	// 1000, and falling below half of that is vanishingly unlikely.
	for _, sid := range members {
		if counts[sid] < msgs/len(members)/2 {
			t.Errorf("member %s got %d of %d messages; spread %v is uneven", sid, counts[sid], msgs, counts)
		}
	}
	for _, sid := range []string{"a1", "a2"} {
		if counts[sid] < msgs/2/2 {
			t.Errorf("member %s got %d of %d messages; spread %v is uneven", sid, counts[sid], msgs, counts)
		}
	}
}

func TestBroker_Publish_NoEcho(t *testing.T) {
	t.Parallel()
	b := newTestBroker(t)
	self, other := &fakeSubscriber{}, &fakeSubscriber{}
	mustSubscribe(t, b, self, 1, "chat", "", "self")
	mustSubscribe(t, b, other, 2, "chat", "", "other")
	mustSubscribe(t, b, self, 1, "chat", "q", "self-q")
	mustSubscribe(t, b, other, 2, "chat", "q", "other-q")

	tests := []struct {
		name      string
		noEcho    bool
		wantSelf  []string
		wantOther []string
		wantN     int
	}{
		// With echo off, the queue group skips the publisher's own member
		// instead of dropping the message.
		{"no echo", true, nil, []string{"other", "other-q"}, 2},
		{"echo", false, []string{"self"}, []string{"other"}, 3},
	}
	for _, tt := range tests {
		// Sequential: the subtests share the subscribers.
		t.Run(tt.name, func(t *testing.T) {
			for range 50 { // the queue member is picked at random
				m := newMsg("chat")
				m.Origin, m.NoEcho = 1, tt.noEcho
				if n := b.Publish(m); n != tt.wantN {
					t.Fatalf("Publish = %d, want %d", n, tt.wantN)
				}
				gotSelf, gotOther := self.sids(), other.sids()
				if tt.noEcho {
					if !slices.Equal(gotSelf, tt.wantSelf) || !slices.Equal(gotOther, tt.wantOther) {
						t.Fatalf("delivered self=%v other=%v, want self=%v other=%v",
							gotSelf, gotOther, tt.wantSelf, tt.wantOther)
					}
					continue
				}
				// With echo on, the queue copy goes to either member.
				gotSelf = slices.DeleteFunc(gotSelf, func(s string) bool { return s == "self-q" })
				gotOther = slices.DeleteFunc(gotOther, func(s string) bool { return s == "other-q" })
				if !slices.Equal(gotSelf, tt.wantSelf) || !slices.Equal(gotOther, tt.wantOther) {
					t.Fatalf("plain deliveries self=%v other=%v, want self=%v other=%v",
						gotSelf, gotOther, tt.wantSelf, tt.wantOther)
				}
			}
		})
	}
}

func TestBroker_Publish_NoEchoOnlyMember(t *testing.T) {
	t.Parallel()
	// A group whose only member is the publisher's gets nothing, and the
	// message is not counted.
	b := newTestBroker(t)
	self := &fakeSubscriber{}
	mustSubscribe(t, b, self, 1, "chat", "q", "self-q")
	m := newMsg("chat")
	m.Origin, m.NoEcho = 1, true
	if n := b.Publish(m); n != 0 {
		t.Errorf("Publish = %d, want 0", n)
	}
	if got := self.sids(); len(got) != 0 {
		t.Errorf("delivered %v, want nothing", got)
	}
}

func TestBroker_AutoUnsubscribe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		queue string
	}{
		{"plain", ""},
		{"queue", "q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newTestBroker(t)
			c := &fakeSubscriber{}
			sub := mustSubscribe(t, b, c, 1, "svc.>", tt.queue, "1")
			if reached := sub.SetMax(3); reached {
				t.Fatal("SetMax(3) reported reached on a fresh subscription")
			}
			var ns []int
			for range 6 {
				ns = append(ns, b.Publish(newMsg("svc.ping")))
			}
			if want := []int{1, 1, 1, 0, 0, 0}; !slices.Equal(ns, want) {
				t.Errorf("Publish counts = %v, want %v", ns, want)
			}
			if got := len(c.deliveries()); got != 3 {
				t.Errorf("delivered %d messages, want 3", got)
			}
			if got := sub.Delivered(); got != 3 {
				t.Errorf("Delivered = %d, want 3", got)
			}
			if !sub.Exhausted() {
				t.Error("Exhausted = false after max deliveries")
			}
			if n := b.Subscriptions(); n != 0 {
				t.Errorf("Subscriptions = %d after max reached, want 0", n)
			}
			if b.HasInterest([]byte("svc.ping")) {
				t.Error("HasInterest = true after auto-unsubscribe")
			}
		})
	}
}

func TestBroker_AutoUnsubscribe_AlreadyReached(t *testing.T) {
	t.Parallel()
	b := newTestBroker(t)
	c := &fakeSubscriber{}
	sub := mustSubscribe(t, b, c, 1, "x", "", "1")
	b.Publish(newMsg("x"))
	b.Publish(newMsg("x"))
	if reached := sub.SetMax(2); !reached {
		t.Error("SetMax(2) after 2 deliveries = false, want true")
	}
	if reached := sub.SetMax(5); reached {
		t.Error("SetMax(5) after 2 deliveries = true, want false")
	}
}

func TestBroker_AutoUnsubscribe_Concurrent(t *testing.T) {
	t.Parallel()
	// Many publishers racing past the limit must still deliver exactly max.
	b := newTestBroker(t)
	c := &fakeSubscriber{}
	sub := mustSubscribe(t, b, c, 1, "race", "", "1")
	const limit = 50
	sub.SetMax(limit)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Publish(newMsg("race"))
			}
		})
	}
	wg.Wait()
	if got := len(c.deliveries()); got != limit {
		t.Errorf("delivered %d messages, want exactly %d", got, limit)
	}
	if n := b.Subscriptions(); n != 0 {
		t.Errorf("Subscriptions = %d, want 0", n)
	}
}

func TestBroker_Unsubscribe(t *testing.T) {
	t.Parallel()
	b := newTestBroker(t)
	c := &fakeSubscriber{}
	mustSubscribe(t, b, c, 1, "a.*", "", "keep")
	drop := mustSubscribe(t, b, c, 1, "a.b", "", "drop")
	b.Publish(newMsg("a.b"))
	if got, want := c.sids(), []string{"drop", "keep"}; !slices.Equal(got, want) {
		t.Fatalf("before Unsubscribe delivered %v, want %v", got, want)
	}
	b.Unsubscribe(drop)
	b.Unsubscribe(drop) // harmless
	b.Publish(newMsg("a.b"))
	if got, want := c.sids(), []string{"keep"}; !slices.Equal(got, want) {
		t.Errorf("after Unsubscribe delivered %v, want %v", got, want)
	}
	if n := b.Subscriptions(); n != 1 {
		t.Errorf("Subscriptions = %d, want 1", n)
	}
}

func TestBroker_Subscribe_Invalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		subject, queue string
		want           error
	}{
		{"", "", ErrInvalidSubject},
		{"foo..bar", "", ErrInvalidSubject},
		{".foo", "", ErrInvalidSubject},
		{"foo.", "", ErrInvalidSubject},
		{"foo.>.bar", "", ErrInvalidSubject},
		{"foo bar", "", ErrInvalidSubject},
		{"foo\t", "q", ErrInvalidSubject},
		{"foo", "bad queue", ErrInvalidQueue},
		{"foo", "q\r\n", ErrInvalidQueue},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%q", tt.subject, tt.queue), func(t *testing.T) {
			t.Parallel()
			b := newTestBroker(t)
			sub := &Subscription{Subject: tt.subject, Queue: tt.queue, SID: "1", Client: &fakeSubscriber{}}
			err := b.Subscribe(sub)
			if !errors.Is(err, tt.want) {
				t.Errorf("Subscribe(%q, %q) = %v, want %v", tt.subject, tt.queue, err, tt.want)
			}
			if n := b.Subscriptions(); n != 0 {
				t.Errorf("Subscriptions = %d after rejected subscribe, want 0", n)
			}
		})
	}
}
