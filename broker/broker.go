package broker

import (
	"fmt"
	"math/rand/v2"

	"go.uber.org/zap"
)

// Broker routes core NATS messages between the subscriptions of one node.
// It is safe for concurrent use by every connection's goroutine.
type Broker struct {
	subs *Sublist
	log  *zap.Logger
}

// New returns an empty Broker.
func New(log *zap.Logger) *Broker {
	return &Broker{subs: NewSublist(), log: log.Named("broker")}
}

// Subscribe registers sub. The subject must be a valid subscription subject
// and the queue name, if any, a single valid token.
func (b *Broker) Subscribe(sub *Subscription) error {
	if !ValidSubject(sub.Subject) {
		return fmt.Errorf("subscribe %q: %w", sub.Subject, ErrInvalidSubject)
	}
	if sub.Queue != "" && !ValidQueue(sub.Queue) {
		return fmt.Errorf("subscribe %q queue %q: %w", sub.Subject, sub.Queue, ErrInvalidQueue)
	}
	return b.subs.Insert(sub)
}

// Unsubscribe removes sub. Removing a subscription twice is harmless.
func (b *Broker) Unsubscribe(sub *Subscription) {
	b.subs.Remove(sub)
}

// Subscriptions returns the number of subscriptions registered.
func (b *Broker) Subscriptions() int { return b.subs.Count() }

// HasInterest reports whether any subscription matches subject.
func (b *Broker) HasInterest(subject []byte) bool {
	r := b.subs.Match(subject)
	return len(r.Plain) > 0 || len(r.Queues) > 0
}

// Publish delivers m to every matching plain subscription and to one member
// of each matching queue group, and returns how many subscriptions it was
// handed to. Subscriptions of the origin client are skipped when it asked for
// no echo. Publish never blocks on a subscriber.
func (b *Broker) Publish(m *Message) int {
	r := b.subs.Match(m.Subject)
	n := 0
	for _, sub := range r.Plain {
		if b.deliver(sub, m) {
			n++
		}
	}
	for _, group := range r.Queues {
		if b.deliverQueue(group, m) {
			n++
		}
	}
	return n
}

// deliverQueue hands m to exactly one member of a queue group: it starts at
// a pseudo-random member so load spreads, and moves on past members that
// cannot take it (echo suppressed or auto-unsubscribed).
func (b *Broker) deliverQueue(group []*Subscription, m *Message) bool {
	start := int(rand.Uint32N(uint32(len(group))))
	for i := range group {
		if b.deliver(group[(start+i)%len(group)], m) {
			return true
		}
	}
	return false
}

func (b *Broker) deliver(sub *Subscription, m *Message) bool {
	if m.NoEcho && sub.ClientID == m.Origin {
		return false
	}
	ok, last := sub.claim()
	if !ok {
		return false
	}
	sub.Client.Deliver(sub, m)
	if last {
		b.subs.Remove(sub)
	}
	return true
}
