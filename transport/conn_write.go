package transport

import (
	"errors"
	"net"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/metrics"
)

// Deliver implements broker.Subscriber: it formats MSG or HMSG straight into
// the outbound buffer (no allocation once the buffer has grown) and wakes the
// writer. A client whose buffer would exceed MaxPending is a slow consumer:
// it is disconnected rather than allowed to slow the publisher down.
func (c *conn) Deliver(sub *broker.Subscription, m *broker.Message) {
	hdr := m.Header
	if !c.headers.Load() {
		hdr = nil // a client without header support gets the payload only
	}
	size := len(hdr) + len(m.Payload)
	c.outMu.Lock()
	if c.closed {
		c.outMu.Unlock()
		return
	}
	need := len(m.Subject) + len(sub.SID) + len(m.Reply) + size + 48
	if c.out.n+c.inFlight+need > c.s.cfg.MaxPending {
		c.outMu.Unlock()
		c.slowConsumer("max pending exceeded")
		return
	}
	c.out.grew(appendMsg(c.out.tail(need), m.Subject, sub.SID, m.Reply, hdr, m.Payload))
	c.outMsgs++
	c.outBytes += int64(size)
	var stall chan struct{}
	if m.Publisher != nil && c.out.n+c.inFlight > c.stallAt() {
		if c.stallCh == nil {
			c.stallCh = make(chan struct{})
		}
		stall = c.stallCh
	}
	c.outMu.Unlock()
	c.signal()
	if stall != nil {
		m.Publisher.Stall(stall)
	}
	if sub.Exhausted() {
		c.forgetSub(sub)
	}
}

// stallAt is the buffered size above which publishers are asked to pause:
// three quarters of the slow-consumer limit, as nats-server does.
func (c *conn) stallAt() int { return c.s.cfg.MaxPending / 4 * 3 }

// releaseStall wakes paused publishers once the buffer is below stallAt
// (or the connection is closing). The caller holds outMu.
func (c *conn) releaseStall(force bool) {
	if c.stallCh != nil && (force || c.out.n+c.inFlight <= c.stallAt()) {
		close(c.stallCh)
		c.stallCh = nil
	}
}

// appendMsg appends `MSG subj sid [reply] n` or `HMSG subj sid [reply] h t`
// followed by the body and CRLF.
func appendMsg(b, subject []byte, sid string, reply, hdr, payload []byte) []byte {
	if len(hdr) > 0 {
		b = append(b, "HMSG "...)
	} else {
		b = append(b, "MSG "...)
	}
	b = append(b, subject...)
	b = append(b, ' ')
	b = append(b, sid...)
	b = append(b, ' ')
	if len(reply) > 0 {
		b = append(b, reply...)
		b = append(b, ' ')
	}
	if len(hdr) > 0 {
		b = strconv.AppendInt(b, int64(len(hdr)), 10)
		b = append(b, ' ')
	}
	b = strconv.AppendInt(b, int64(len(hdr)+len(payload)), 10)
	b = append(b, "\r\n"...)
	b = append(b, hdr...)
	b = append(b, payload...)
	return append(b, "\r\n"...)
}

// enqueue queues protocol bytes (INFO, PONG, PING, +OK, -ERR) under the same
// pending limit as deliveries. It reports false if the connection is closed
// or turned out to be a slow consumer.
func (c *conn) enqueue(p []byte) bool {
	return c.enqueueIf(nil, p)
}

// enqueueIf queues p only if cond (checked under outMu) holds; nil means
// always. It lets the handshake's PONG and the asynchronous INFOs be
// ordered atomically: an INFO is queued only after the first PONG.
func (c *conn) enqueueIf(cond func() bool, p []byte) bool {
	c.outMu.Lock()
	if c.closed || (cond != nil && !cond()) {
		c.outMu.Unlock()
		return false
	}
	if c.out.n+c.inFlight+len(p) > c.s.cfg.MaxPending {
		c.outMu.Unlock()
		c.slowConsumer("max pending exceeded")
		return false
	}
	c.out.add(p)
	c.outMu.Unlock()
	c.signal()
	return true
}

// signal wakes the writer without blocking; one pending wake-up is enough
// because the writer takes everything queued.
func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sendErr queues `-ERR '<text>'`.
func (c *conn) sendErr(text string) {
	c.enqueue(appendErr(nil, text))
}

func appendErr(b []byte, text string) []byte {
	b = append(b, "-ERR '"...)
	b = append(b, text...)
	return append(b, "'\r\n"...)
}

// writeLoop is the connection's output goroutine: it writes whatever has
// been queued in one syscall (coalescing many small messages), sends server
// PINGs and detects stale connections.
func (c *conn) writeLoop() {
	defer c.s.connWG.Done()
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
			if !c.flush() {
				return
			}
		case <-ping.C:
			c.ping()
		}
	}
}

// flush writes the queued bytes. It returns false once the connection is
// closed (by a write failure or because a requested drain completed).
func (c *conn) flush() bool {
	c.outMu.Lock()
	chunks, n := c.out.take()
	c.inFlight = n
	msgs, bytes := c.outMsgs, c.outBytes
	c.outMsgs, c.outBytes = 0, 0
	c.outMu.Unlock()

	var err error
	if n > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteDeadline))
		err = writeChunks(c.nc, &c.wbufs, chunks)
	}
	if msgs > 0 {
		c.s.m.MsgsOut.Add(float64(msgs))
		c.s.m.BytesOut.Add(float64(bytes))
		c.stats.outMsgs.Add(msgs)
		c.stats.outBytes.Add(bytes)
	}

	c.outMu.Lock()
	c.inFlight = 0
	c.out.recycle(chunks)
	c.releaseStall(err != nil)
	drained := c.draining && c.out.n == 0
	why := c.drainWhy
	c.outMu.Unlock()

	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.slowConsumer("write deadline exceeded")
		} else {
			c.closeNow(closeWriteError)
		}
		return false
	}
	if drained {
		c.closeNow(why)
		return false
	}
	return true
}

// ping sends a server PING, or closes the connection as stale when the
// client has left MaxPingsOut of them unanswered.
func (c *conn) ping() {
	if !c.connected.Load() {
		return
	}
	if int(c.pingsOut.Load()) >= c.s.cfg.MaxPingsOut {
		c.s.m.Errors.WithLabelValues(metrics.ReasonStale).Inc()
		c.sendErr(errTextStale)
		c.drainClose(closeStale)
		return
	}
	c.pingsOut.Add(1)
	c.enqueue([]byte("PING\r\n"))
}

// slowConsumer counts, logs and disconnects a client that cannot keep up.
func (c *conn) slowConsumer(why string) {
	c.outMu.Lock()
	already := c.closed && !c.draining
	c.outMu.Unlock()
	if already {
		return
	}
	c.s.m.SlowConsumers.Inc()
	c.s.slowConsumers.Add(1)
	c.log.Warn("slow consumer detected", zap.String("client_name", c.clientName()), zap.String("reason", why))
	c.closeNow(closeSlowConsumer)
}

// drainClose stops accepting new output, lets the writer flush what is
// queued (bounded by the write deadline) and then closes.
func (c *conn) drainClose(why closeReason) {
	c.outMu.Lock()
	if c.closed {
		c.outMu.Unlock()
		return
	}
	c.closed, c.draining, c.drainWhy = true, true, why
	c.outMu.Unlock()
	c.signal()
}

// pongSent reports (under outMu) whether the handshake's PONG is queued.
func (c *conn) pongSent() bool { return c.ponged }

// asyncInfo sends a fresh INFO (new connect_urls) to an established
// client. Never before its first PONG: the handshake must see PONG first.
func (c *conn) asyncInfo() {
	if c.proto.Load() >= 1 {
		c.enqueueIf(c.pongSent, appendInfo(nil, c.s.info(c.id, hostOf(c.remote))))
	}
}

// lameDuck tells the client this node is going away, flushes and closes.
func (c *conn) lameDuck() {
	if c.proto.Load() >= 1 {
		info := c.s.info(c.id, hostOf(c.remote))
		info.LameDuckMode = true
		c.enqueueIf(c.pongSent, appendInfo(nil, info))
	}
	c.drainClose(closeServerShutdown)
}

// closeNow closes the connection at once (idempotent): the socket is closed,
// both goroutines end, and every subscription is removed from the broker.
func (c *conn) closeNow(why closeReason) {
	c.closeOnce.Do(func() {
		c.outMu.Lock()
		c.closed = true
		c.releaseStall(true)
		c.outMu.Unlock()
		close(c.done)
		c.cancel()
		_ = c.nc.Close()
		c.removeAllSubs()
		c.s.removeConn(c)
		c.log.Info("client connection closed",
			zap.String("client_name", c.clientName()),
			zap.String("close_reason", string(why)),
			zap.Int64("in_msgs", c.stats.inMsgs.Load()),
			zap.Int64("out_msgs", c.stats.outMsgs.Load()),
			zap.Duration("duration", time.Since(c.start)))
	})
}
