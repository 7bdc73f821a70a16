package broker

import "sync/atomic"

// Message is one published message as it travels from a publisher to the
// subscribers that match it. Its slices usually point into the publishing
// connection's read buffer: they are valid only for the duration of the
// Publish call, so a Subscriber must copy what it keeps (transport copies
// straight into the subscriber's outbound buffer).
type Message struct {
	// Subject is the literal subject the message was published to.
	Subject []byte
	// Target, when set, is the subject the message is delivered to
	// instead of Subject, which subscribers still see on the MSG line:
	// JetStream sends a stored message to a pull request's inbox or a
	// push consumer's deliver subject this way.
	Target []byte
	// Reply is the optional reply subject (empty when none).
	Reply []byte
	// Header is the raw NATS header block ("NATS/1.0\r\n...\r\n\r\n"),
	// nil when the message has no headers.
	Header []byte
	// Payload is the message body.
	Payload []byte
	// Origin identifies the publishing client, so that subscriptions of a
	// client that connected with echo off do not see its own messages.
	Origin uint64
	// NoEcho is true when the origin client asked not to receive its own
	// publishes.
	NoEcho bool
	// Publisher, when set, lets a subscriber whose buffer is filling up
	// slow the publisher down briefly (see Backpressure).
	Publisher Backpressure
	// Once marks a subject that receives this one message only (a PubAck
	// to its publish's own reply inbox): its match is not looked up in or
	// added to the sublists' caches, where it would only evict results
	// that are asked for again.
	Once bool
}

// deliverTo is the subject subscriptions are matched against.
func (m *Message) deliverTo() []byte {
	if m.Target != nil {
		return m.Target
	}
	return m.Subject
}

// Backpressure is implemented by a publishing connection. A subscriber
// whose outbound buffer is getting full calls Stall, on the publisher's own
// goroutine (inside Publish), with a channel that is closed once its buffer
// has drained; the publisher waits for it, for a bounded time, before it
// reads more input. A subscriber that is merely a little slower than its
// publisher then paces it instead of being cut off as a slow consumer.
type Backpressure interface {
	Stall(drained <-chan struct{})
}

// Subscriber receives messages for its subscriptions. transport's client
// connection implements it.
//
// Deliver is called from the publisher's goroutine and must not block: a
// subscriber that cannot take a message right now handles that itself (the
// transport counts it as a slow consumer and disconnects it) so that one slow
// reader never slows anyone else down. It must copy what it keeps of m:
// senders reuse a Message and its buffers once Deliver returns.
type Subscriber interface {
	Deliver(sub *Subscription, m *Message)
}

// Subscription is a client's interest in a subject (with `*` and `>`
// wildcards), optionally as a member of a queue group.
type Subscription struct {
	// Subject is the subject pattern subscribed to.
	Subject string
	// Queue is the queue group name, empty for a plain subscription.
	Queue string
	// SID is the client-chosen subscription id, echoed on every delivery.
	SID string
	// ClientID is the owning client's id, compared with Message.Origin for
	// echo suppression.
	ClientID uint64
	// Client receives the deliveries.
	Client Subscriber
	// Local subscriptions are never announced to other nodes: system
	// services that every node runs for its own clients (the JetStream API
	// responder) must answer only requests published on their node.
	Local bool

	max       atomic.Int64 // auto-unsubscribe after this many deliveries; 0 = no limit
	delivered atomic.Int64 // deliveries claimed so far

	// inserted records whether the subscription is in its broker's
	// Sublist, so that its interest is counted exactly once however often
	// Subscribe and Unsubscribe are called. Guarded by the broker's
	// interest lock (router.imu).
	inserted bool
}

// SetMax arranges for the subscription to end after max deliveries in total
// (UNSUB <sid> <max>). It reports whether the subscription has already
// reached that count, in which case the caller should remove it now.
func (s *Subscription) SetMax(max int64) (reached bool) {
	s.max.Store(max)
	return max > 0 && s.delivered.Load() >= max
}

// Delivered returns how many messages have been delivered to the
// subscription.
func (s *Subscription) Delivered() int64 { return s.delivered.Load() }

// claim reserves one delivery. ok is false when the subscription has already
// had its maximum; last is true when this delivery is the final one allowed,
// after which the subscription must be removed.
func (s *Subscription) claim() (ok, last bool) {
	for {
		max, n := s.max.Load(), s.delivered.Load()
		if max > 0 && n >= max {
			return false, false
		}
		if s.delivered.CompareAndSwap(n, n+1) {
			return true, max > 0 && n+1 == max
		}
	}
}

// Exhausted reports whether the subscription has had every delivery its
// auto-unsubscribe maximum allows.
func (s *Subscription) Exhausted() bool {
	max := s.max.Load()
	return max > 0 && s.delivered.Load() >= max
}
