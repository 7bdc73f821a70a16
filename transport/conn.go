package transport

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/flotilla/flotilla/broker"
)

// Why a connection closed; logged as close_reason.
type closeReason string

const (
	closeClient         closeReason = "client closed"
	closeServerShutdown closeReason = "server shutdown"
	closeSlowConsumer   closeReason = "slow consumer"
	closeStale          closeReason = "stale connection"
	closeProtocol       closeReason = "protocol violation"
	closeAuth           closeReason = "authorization violation"
	closeAuthTimeout    closeReason = "authentication timeout"
	closeMaxConnections closeReason = "maximum connections exceeded"
	closeWriteError     closeReason = "write error"
	closeReadError      closeReason = "read error"
)

// Read buffer sizing: small for idle connections (10k of them must stay
// cheap), growing for busy publishers.
const (
	minReadBuf = 1024
	maxReadBuf = 64 * 1024
)

// conn is one client connection. Two goroutines own it: readLoop parses
// input and runs the ops in order (so a PONG is queued after everything an
// earlier op produced, which makes the client's Flush a barrier), and
// writeLoop flushes the outbound buffer and sends server PINGs. Deliveries
// arrive from other connections' read goroutines through Deliver, which only
// appends to the outbound buffer under outMu and never blocks.
type conn struct {
	s      *Server
	id     uint64
	nc     net.Conn
	remote string
	log    *zap.Logger
	start  time.Time

	ctx    context.Context // cancelled on close; bounds rate-limiter waits
	cancel context.CancelFunc

	// Owned by the read goroutine.
	parser    *Parser
	opts      connectOpts
	msgLim    *rate.Limiter
	byteLim   *rate.Limiter
	pubMsg    broker.Message // reused so Publish through an interface does not allocate
	authTimer *time.Timer
	inMsgs    int64 // since the last metrics update
	inBytes   int64
	stallOn   <-chan struct{} // a subscriber asked us to pause (Backpressure)

	// Read by other goroutines.
	connected atomic.Bool  // CONNECT was accepted
	headers   atomic.Bool  // client understands HMSG
	proto     atomic.Int32 // CONNECT protocol; async INFO only for >= 1
	pingsOut  atomic.Int32

	subMu sync.Mutex
	subs  map[string]*broker.Subscription
	name  string // client_name, under subMu (varz reads it)
	lang  string
	ver   string

	outMu     sync.Mutex
	out       outQueue    // queued for the next write
	wbufs     net.Buffers // the writer's scratch (writeChunks)
	inFlight  int         // bytes the writer is writing now, counted against MaxPending
	outMsgs   int64       // messages in out, for metrics at flush time
	outBytes  int64
	stallCh   chan struct{} // closed when out drains below stallAt
	ponged    bool          // a PONG after CONNECT is queued: async INFOs may follow
	closed    bool          // nothing more may be queued
	draining  bool          // the writer flushes what is queued, then closes
	drainWhy  closeReason
	wake      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	stats connStats
}

// connStats are lifetime counters for diagnostics (/debug/vars).
type connStats struct {
	inMsgs, inBytes, outMsgs, outBytes atomic.Int64
}

func newConn(s *Server, id uint64, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{
		s:      s,
		id:     id,
		nc:     nc,
		remote: nc.RemoteAddr().String(),
		start:  time.Now(),
		ctx:    ctx,
		cancel: cancel,
		parser: NewParser(ParserConfig{MaxControlLine: s.cfg.MaxControlLine, MaxPayload: s.cfg.MaxPayload}),
		subs:   make(map[string]*broker.Subscription),
		opts:   defaultConnectOpts(),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	c.log = s.log.With(zap.Uint64("conn_id", id), zap.String("remote_addr", c.remote))
	if s.cfg.RateLimitMsgs > 0 {
		c.msgLim = rate.NewLimiter(rate.Limit(s.cfg.RateLimitMsgs), max(1, int(s.cfg.RateLimitMsgs)))
	}
	if s.cfg.RateLimitBytes > 0 {
		c.byteLim = rate.NewLimiter(rate.Limit(s.cfg.RateLimitBytes), int(s.cfg.RateLimitBytes))
	}
	return c
}

// reject serves a connection that will not be admitted (over the
// connection limit): INFO, then the -ERR once the client has sent its
// CONNECT, then close. Answering before the client has written would race
// with its CONNECT and surface as a broken pipe instead of the reason.
// Reading is bounded by the auth timeout.
func (c *conn) reject(text string) {
	defer c.s.connWG.Done()
	defer c.cancel()
	defer c.nc.Close()
	deadline := time.Now().Add(c.s.cfg.AuthTimeout)
	_ = c.nc.SetDeadline(deadline)
	if _, err := c.nc.Write(appendInfo(nil, c.s.info(c.id, hostOf(c.remote)))); err != nil {
		return
	}
	buf := make([]byte, 512)
	for got := 0; got < 4096; {
		n, err := c.nc.Read(buf)
		got += n
		if err != nil || bytes.Contains(buf[:n], []byte("PING")) {
			break
		}
	}
	_, _ = c.nc.Write(appendErr(nil, text))
}

// readLoop is the connection's input goroutine.
func (c *conn) readLoop() {
	defer c.s.connWG.Done()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("connection panic", zap.Any("panic", r), zap.Stack("stack"))
			c.closeNow(closeProtocol)
		}
	}()
	c.enqueue(appendInfo(nil, c.s.info(c.id, hostOf(c.remote))))
	c.authTimer = time.AfterFunc(c.s.cfg.AuthTimeout, c.authTimeout)
	defer c.authTimer.Stop()

	buf := make([]byte, minReadBuf)
	small := 0
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			perr := c.parser.Parse(buf[:n], c)
			c.flushInStats()
			if perr != nil {
				c.handleParseError(perr)
				return
			}
			c.waitStall()
		}
		if err != nil {
			c.closeNow(readCloseReason(err))
			return
		}
		// Grow when a read fills the buffer, shrink after a run of small
		// reads, so idle connections stay cheap and busy ones read in bulk.
		switch {
		case n == len(buf) && len(buf) < maxReadBuf:
			buf = make([]byte, 2*len(buf))
			small = 0
		case n < len(buf)/2 && len(buf) > minReadBuf:
			if small++; small > 16 {
				buf = make([]byte, len(buf)/2)
				small = 0
			}
		default:
			small = 0
		}
	}
}

func readCloseReason(err error) closeReason {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return closeReadError
	}
	return closeClient
}

// maxStall bounds one pause a slow subscriber can impose on a publisher, so
// a subscriber that stopped reading delays others only until it is cut off.
const maxStall = 50 * time.Millisecond

// Stall implements broker.Backpressure. It runs on this connection's read
// goroutine (deliveries happen inside our own Publish calls).
func (c *conn) Stall(drained <-chan struct{}) { c.stallOn = drained }

// waitStall pauses reading while a subscriber we fed is draining.
func (c *conn) waitStall() {
	if c.stallOn == nil {
		return
	}
	t := time.NewTimer(maxStall)
	select {
	case <-c.stallOn:
	case <-t.C:
	case <-c.done:
	}
	t.Stop()
	c.stallOn = nil
}

// flushInStats moves the read batch's counters to metrics once per read,
// not once per message, to keep shared atomics off the hot path.
func (c *conn) flushInStats() {
	if c.inMsgs == 0 {
		return
	}
	c.s.m.MsgsIn.Add(float64(c.inMsgs))
	c.s.m.BytesIn.Add(float64(c.inBytes))
	c.stats.inMsgs.Add(c.inMsgs)
	c.stats.inBytes.Add(c.inBytes)
	c.inMsgs, c.inBytes = 0, 0
}

// authTimeout fires when CONNECT did not arrive in time.
func (c *conn) authTimeout() {
	if c.connected.Load() {
		return
	}
	c.s.m.Errors.WithLabelValues(reasonFor(closeAuthTimeout)).Inc()
	c.sendErr(errTextAuthTimeout)
	c.drainClose(closeAuthTimeout)
}

// hostOf returns the host part of a host:port address.
func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}
