package transport

import (
	"encoding/json"
	"errors"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/metrics"
)

// The conn is the parser's Handler: each method runs one client op on the
// read goroutine, in arrival order.
var _ Handler = (*conn)(nil)

// HandleConnect applies CONNECT: options, authentication, and from then on
// the connection counts as established (server PINGs start). A second
// CONNECT merges its fields into the options and, like nats-server, drops
// the connection's subscriptions.
func (c *conn) HandleConnect(arg []byte) error {
	opts := c.opts
	if err := json.Unmarshal(arg, &opts); err != nil {
		return &ProtocolError{Op: "CONNECT", Reason: "invalid json"}
	}
	if !c.s.authorized(&opts) {
		return errAuthorization
	}
	if opts.NoResponders && !opts.Headers {
		return errNoRespondersHeaders
	}
	c.opts = opts
	c.headers.Store(opts.Headers)
	c.proto.Store(int32(opts.Protocol))
	c.subMu.Lock()
	c.name, c.lang, c.ver = opts.Name, opts.Lang, opts.Version
	c.subMu.Unlock()
	if c.connected.Swap(true) {
		c.removeAllSubs()
	} else {
		c.authTimer.Stop()
		c.log.Info("client connection opened", zap.String("client_name", opts.Name),
			zap.String("client_lang", opts.Lang), zap.String("client_version", opts.Version))
	}
	c.ok()
	return nil
}

// requireConnect enforces the handshake order when authentication is on:
// nothing but CONNECT may come first.
func (c *conn) requireConnect() error {
	if c.connected.Load() || !c.s.authRequired() {
		return nil
	}
	return errAuthorization
}

// HandlePub publishes a message without headers.
func (c *conn) HandlePub(subject, reply, payload []byte) error {
	return c.publish(subject, reply, nil, payload)
}

// HandleHPub publishes a message with a header block.
func (c *conn) HandleHPub(subject, reply, header, payload []byte) error {
	return c.publish(subject, reply, header, payload)
}

func (c *conn) publish(subject, reply, header, payload []byte) error {
	if err := c.requireConnect(); err != nil {
		return err
	}
	if header != nil && !c.opts.Headers {
		// nats-server closes a client that sends HPUB without having
		// announced header support.
		return &ProtocolError{Op: "HPUB", Reason: "headers not enabled in CONNECT"}
	}
	size := len(header) + len(payload)
	if err := c.throttle(size); err != nil {
		return err
	}
	c.inMsgs++
	c.inBytes += int64(size)
	// Only pedantic clients get their publish subjects checked, and even
	// then the message is still delivered (nats-server's behaviour).
	if c.opts.Pedantic && !broker.ValidLiteralSubject(subject) {
		c.s.m.Errors.WithLabelValues(metrics.ReasonParse).Inc()
		c.sendErr(errTextInvalidPublishSubject)
	}
	c.ok() // +OK precedes the deliveries it caused, as in nats-server
	m := &c.pubMsg
	*m = broker.Message{Subject: subject, Reply: reply, Header: header, Payload: payload, Origin: c.id, NoEcho: !c.opts.echo(), Publisher: c}
	n := c.s.broker.Publish(m)
	*m = broker.Message{} // do not keep the read buffer reachable
	if n == 0 && len(reply) > 0 && c.opts.Headers && c.opts.NoResponders {
		c.noResponders(subject, reply)
	}
	return nil
}

// throttle applies the per-connection publish rate limits by blocking the
// read goroutine: the client is slowed down through TCP backpressure and no
// message is dropped.
func (c *conn) throttle(size int) error {
	if c.msgLim != nil {
		if err := c.msgLim.Wait(c.ctx); err != nil {
			return errClosed
		}
	}
	if c.byteLim != nil && size > 0 {
		if err := c.byteLim.WaitN(c.ctx, size); err != nil {
			return errClosed
		}
	}
	return nil
}

// noResponders answers a request that reached no subscriber with a 503
// status message on the requester's own reply subscription, as nats-server
// does (nats.go turns it into ErrNoResponders).
func (c *conn) noResponders(subject, reply []byte) {
	c.subMu.Lock()
	var target *broker.Subscription
	for _, sub := range c.subs {
		// Only a plain subscription of the requester can be its inbox.
		if sub.Queue == "" && broker.SubjectMatches(sub.Subject, string(reply)) {
			target = sub
			break
		}
	}
	c.subMu.Unlock()
	if target == nil {
		return
	}
	hdr := make([]byte, 0, 48+len(subject))
	hdr = append(hdr, "NATS/1.0 503\r\nNats-Subject: "...)
	hdr = append(hdr, subject...)
	hdr = append(hdr, "\r\n\r\n"...)
	c.Deliver(target, &broker.Message{Subject: reply, Header: hdr})
}

// HandleSub registers a subscription. An invalid subject or a full
// subscription table is answered with the standard -ERR and the connection
// stays open.
func (c *conn) HandleSub(subject, queue, sid []byte) error {
	if err := c.requireConnect(); err != nil {
		return err
	}
	c.subMu.Lock()
	if _, dup := c.subs[string(sid)]; dup {
		// nats-server keeps the first subscription for a reused sid.
		c.subMu.Unlock()
		c.ok()
		return nil
	}
	if max := c.s.cfg.MaxSubscriptions; max > 0 && len(c.subs) >= max {
		c.subMu.Unlock()
		c.s.m.Errors.WithLabelValues(metrics.ReasonLimit).Inc()
		c.sendErr(errTextMaxSubscriptions)
		return nil
	}
	sub := &broker.Subscription{
		Subject:  string(subject),
		Queue:    string(queue),
		SID:      string(sid),
		ClientID: c.id,
		Client:   c,
	}
	if err := c.s.broker.Subscribe(sub); err != nil {
		c.subMu.Unlock()
		if errors.Is(err, broker.ErrInvalidSubject) || errors.Is(err, broker.ErrInvalidQueue) {
			c.s.m.Errors.WithLabelValues(metrics.ReasonParse).Inc()
			c.sendErr(errTextInvalidSubject)
			return nil
		}
		return err
	}
	c.subs[sub.SID] = sub
	c.subMu.Unlock()
	c.s.m.Subscriptions.Inc()
	c.log.Debug("subscribed", zap.String("subject", sub.Subject), zap.String("sub_id", sub.SID))
	c.ok()
	return nil
}

// HandleUnsub removes a subscription now, or after max deliveries in total.
// Unknown sids are ignored.
func (c *conn) HandleUnsub(sid []byte, max int64) error {
	if err := c.requireConnect(); err != nil {
		return err
	}
	c.subMu.Lock()
	sub := c.subs[string(sid)]
	c.subMu.Unlock()
	if sub != nil && (max <= 0 || sub.SetMax(max)) {
		c.forgetSub(sub)
	}
	c.ok()
	return nil
}

// HandlePing answers in order, after everything earlier ops queued.
func (c *conn) HandlePing() error {
	if err := c.requireConnect(); err != nil {
		return err
	}
	connected := c.connected.Load()
	c.enqueueIf(func() bool {
		// Under outMu: from the PONG on, async INFOs may be queued.
		c.ponged = c.ponged || connected
		return true
	}, []byte("PONG\r\n"))
	return nil
}

// HandlePong records that the client is alive.
func (c *conn) HandlePong() error {
	if err := c.requireConnect(); err != nil {
		return err
	}
	c.pingsOut.Store(0)
	return nil
}

// ok sends +OK to verbose clients.
func (c *conn) ok() {
	if c.opts.Verbose {
		c.enqueue([]byte("+OK\r\n"))
	}
}

// forgetSub removes one subscription from the broker and the connection.
func (c *conn) forgetSub(sub *broker.Subscription) {
	c.subMu.Lock()
	cur, ok := c.subs[sub.SID]
	if ok && cur == sub {
		delete(c.subs, sub.SID)
	}
	c.subMu.Unlock()
	if ok && cur == sub {
		c.s.broker.Unsubscribe(sub)
		c.s.m.Subscriptions.Dec()
	}
}

// removeAllSubs drops every subscription of a closing connection.
func (c *conn) removeAllSubs() {
	c.subMu.Lock()
	subs := c.subs
	c.subs = make(map[string]*broker.Subscription)
	c.subMu.Unlock()
	for _, sub := range subs {
		c.s.broker.Unsubscribe(sub)
	}
	c.s.m.Subscriptions.Sub(float64(len(subs)))
}

// clientName returns the CONNECT name for logs.
func (c *conn) clientName() string {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	return c.name
}

// handleParseError answers a fatal protocol error with the standard -ERR
// text (when there is one) and closes after flushing it.
func (c *conn) handleParseError(err error) {
	if errors.Is(err, errClosed) {
		return
	}
	text, reason, why := classify(err)
	c.s.m.Errors.WithLabelValues(reason).Inc()
	if why == closeProtocol {
		c.log.Debug("protocol error", zap.Error(err))
	} else {
		c.log.Info("closing client connection", zap.Error(err), zap.String("client_name", c.clientName()))
	}
	if text != "" {
		c.sendErr(text)
	}
	c.drainClose(why)
}
