package broker

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"go.uber.org/zap"
)

// Broker routes core NATS messages to the subscriptions of this node and,
// once a Mesh is attached (AttachMesh), to the other nodes of the cluster
// (see route.go). It is safe for concurrent use by every connection's
// goroutine.
type Broker struct {
	subs    *Sublist
	rt      router
	capture atomic.Pointer[Capturer]
	log     *zap.Logger
}

// New returns an empty Broker. Until AttachMesh is called it is a single
// node broker.
func New(log *zap.Logger) *Broker {
	return &Broker{subs: NewSublist(), rt: newRouter(), log: log.Named("broker")}
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
	return b.insertSub(sub)
}

// Unsubscribe removes sub. Removing a subscription twice is harmless.
func (b *Broker) Unsubscribe(sub *Subscription) {
	b.removeSub(sub)
}

// Subscriptions returns the number of subscriptions registered on this node.
func (b *Broker) Subscriptions() int { return b.subs.Count() }

// HasInterest reports whether any subscription matches subject, on this
// node or, as far as this node knows, on any other node of the cluster.
func (b *Broker) HasInterest(subject []byte) bool {
	r := b.subs.Match(subject)
	return len(r.Plain) > 0 || len(r.Queues) > 0 || b.hasRemoteInterest(subject)
}

// Publish delivers m to every matching plain subscription and to one member
// of each matching queue group, cluster-wide, and returns how many
// deliveries it made: local subscriptions it handed m to plus, for each
// other node m was forwarded to, one for that node's plain subscriptions
// and one per queue group that node serves (so 0 means no subscriber
// anywhere, which is what the no-responders status needs). Subscriptions of
// the origin client are skipped when it asked for no echo. Publish never
// blocks on a subscriber or a peer.
func (b *Broker) Publish(m *Message) int {
	n := 0
	if c := b.capture.Load(); c != nil && (*c).Capture(m) {
		// A stream stores it; with a reply the stream's PubAck answers,
		// so the publish has a responder.
		n++
	}
	return n + b.publishCore(m)
}

// publishCore routes m to subscriptions only (no stream capture): client
// publishes after capture, and system messages (API responses, PubAcks).
func (b *Broker) publishCore(m *Message) int {
	lr := b.subs.match(m.deliverTo(), !m.Once)
	if mesh, peers := b.routes(); len(peers) > 0 {
		return b.publishRouted(mesh, peers, lr, m)
	}
	return b.deliverLocal(lr, m)
}

// Capturer takes client publishes whose subject a stream captures (the
// JetStream service). Capture must not block and must copy what it keeps.
type Capturer interface {
	Capture(m *Message) bool
}

// SetCapturer installs the stream capture hook (nil removes it).
func (b *Broker) SetCapturer(c Capturer) {
	if c == nil {
		b.capture.Store(nil)
		return
	}
	b.capture.Store(&c)
}

// deliverLocal hands m to the local subscriptions in r.
func (b *Broker) deliverLocal(r *MatchResult, m *Message) int {
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

// deliver hands m to one local subscription. It is called with no broker
// lock held, so a Subscriber may unsubscribe from inside Deliver.
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
		b.removeSub(sub)
	}
	return true
}
