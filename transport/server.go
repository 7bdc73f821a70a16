package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/broker"
	"github.com/flotilla/flotilla/metrics"
)

// Broker is what the transport needs from the domain: *broker.Broker
// satisfies it. Declared here, at the consumer, so tests can supply their
// own.
type Broker interface {
	Subscribe(sub *broker.Subscription) error
	Unsubscribe(sub *broker.Subscription)
	Publish(m *broker.Message) int
}

// Server accepts NATS client connections and serves them until Shutdown.
type Server struct {
	cfg    Config
	broker Broker
	m      *metrics.Transport
	log    *zap.Logger
	start  time.Time

	ln       net.Listener
	closing  atomic.Bool // set once Shutdown begins: refuse new connections
	nextID   atomic.Uint64
	acceptWG sync.WaitGroup // the accept loop
	connWG   sync.WaitGroup // every connection's goroutines

	slowConsumers atomic.Int64
	closedStats   connStats // counters of connections that have closed

	mu          sync.Mutex
	conns       map[uint64]*conn
	total       uint64   // connections accepted since start
	connectURLs []string // client addresses of every live node
}

// New validates cfg and returns a Server that is not yet listening.
func New(cfg Config, b Broker, m *metrics.Transport, log *zap.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("transport config: %w", err)
	}
	return &Server{
		cfg:    cfg,
		broker: b,
		m:      m,
		log:    log.Named("transport"),
		conns:  make(map[uint64]*conn),
	}, nil
}

// Start binds the client listener and serves it in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	s.start = time.Now()
	s.acceptWG.Add(1)
	go s.acceptLoop()
	s.log.Info("client listener started", zap.String("client_addr", ln.Addr().String()))
	return nil
}

// Addr returns the bound client address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// acceptLoop follows net/http's Serve: temporary errors back off from 5 ms
// to 1 s instead of spinning or giving up, and the loop ends only when the
// listener is closed.
func (s *Server) acceptLoop() {
	defer s.acceptWG.Done()
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", zap.Error(err), zap.Duration("backoff", backoff))
			time.Sleep(backoff) // pacing a retry loop, not synchronising
			continue
		}
		backoff = 0
		s.serve(nc)
	}
}

// serve registers a new connection and starts its goroutines. Over the
// connection limit the client still gets INFO first, because nats.go reads
// INFO before it can understand the -ERR that follows.
func (s *Server) serve(nc net.Conn) {
	id := s.nextID.Add(1)
	c := newConn(s, id, nc)
	s.mu.Lock()
	over := s.cfg.MaxConnections > 0 && len(s.conns) >= s.cfg.MaxConnections
	if !over {
		s.conns[id] = c
		s.total++
	}
	s.mu.Unlock()
	s.m.ConnectionsTotal.Inc()
	if over {
		s.m.Errors.WithLabelValues(metrics.ReasonLimit).Inc()
		s.log.Warn("maximum connections exceeded", zap.Uint64("conn_id", id),
			zap.String("remote_addr", nc.RemoteAddr().String()), zap.Int("max_connections", s.cfg.MaxConnections))
		s.connWG.Add(1)
		go c.reject(errTextMaxConnections)
		return
	}
	s.m.Connections.Inc()
	s.connWG.Add(2)
	go c.writeLoop()
	go c.readLoop()
}

// removeConn forgets a closed connection.
func (s *Server) removeConn(c *conn) {
	s.closedStats.inMsgs.Add(c.stats.inMsgs.Load())
	s.closedStats.outMsgs.Add(c.stats.outMsgs.Load())
	s.closedStats.inBytes.Add(c.stats.inBytes.Load())
	s.closedStats.outBytes.Add(c.stats.outBytes.Load())
	s.mu.Lock()
	_, ok := s.conns[c.id]
	delete(s.conns, c.id)
	s.mu.Unlock()
	if ok {
		s.m.Connections.Dec()
	}
}

// snapshotConns returns the open connections without holding the lock
// while the caller works on them.
func (s *Server) snapshotConns() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		cs = append(cs, c)
	}
	return cs
}

// info builds the INFO sent to connection id at remote address ip.
func (s *Server) info(id uint64, ip string) *serverInfo {
	adv := s.cfg.AdvertiseAddr
	if adv == "" {
		adv = s.ln.Addr().String()
	}
	host, portStr, _ := net.SplitHostPort(adv)
	port, _ := strconv.Atoi(portStr)
	s.mu.Lock()
	urls := s.connectURLs
	s.mu.Unlock()
	return &serverInfo{
		ConnectURLs:  urls,
		ServerID:     s.cfg.ServerID,
		ServerName:   s.cfg.ServerName,
		Version:      s.cfg.Version,
		Proto:        1,
		Host:         host,
		Port:         port,
		Headers:      true,
		MaxPayload:   s.cfg.MaxPayload,
		AuthRequired: s.cfg.Username != "" || s.cfg.Token != "",
		ClientID:     id,
		ClientIP:     ip,
		JetStream:    s.cfg.JetStream,
	}
}

// SetConnectURLs sets the client addresses (host:port) of every live node,
// which INFO carries as connect_urls so that stock clients learn the whole
// cluster and fail over by themselves. When the list changes, connected
// clients that speak protocol 1 get an asynchronous INFO with it.
func (s *Server) SetConnectURLs(urls []string) {
	urls = slices.Clone(urls)
	slices.Sort(urls)
	s.mu.Lock()
	same := slices.Equal(urls, s.connectURLs)
	s.connectURLs = urls
	s.mu.Unlock()
	if same || s.ln == nil {
		return
	}
	for _, c := range s.snapshotConns() {
		c.asyncInfo()
	}
}

// Shutdown stops the server gracefully: it refuses new connections, tells
// every client with an INFO carrying ldm:true that this node is going away
// (so clients can move to another node first), flushes what is buffered for
// each client and closes it. If ctx ends first, the remaining connections
// are closed at once and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	if !s.closing.CompareAndSwap(false, true) {
		return nil
	}
	s.log.Info("client listener shutting down")
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.acceptWG.Wait()
	for _, c := range s.snapshotConns() {
		c.lameDuck()
	}
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range s.snapshotConns() {
			c.closeNow(closeServerShutdown)
		}
		<-done
		return fmt.Errorf("shutdown: %w", ctx.Err())
	}
}

// Close stops the server abruptly, as a crash would look to clients: the
// listener and every connection are closed at once, without a lame-duck
// INFO or flushing. Tests use it to simulate a killed node.
func (s *Server) Close() {
	if !s.closing.CompareAndSwap(false, true) {
		return
	}
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.acceptWG.Wait()
	for _, c := range s.snapshotConns() {
		c.closeNow(closeServerShutdown)
	}
	s.connWG.Wait()
}
