package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ForwardHandler executes a request on the leader. It must return
// ErrNotLeader (wrapped is fine) when it finds that this node is no longer
// the leader before doing anything, so the caller can retry elsewhere.
type ForwardHandler func(ctx context.Context, req []byte) ([]byte, error)

// forwarder implements "try locally, else forward the envelope to the
// leader; while there is no leader, wait with jitter up to a hold timeout".
// It is written once and used for every leader-only request.
type forwarder struct {
	n        *Node
	mu       sync.Mutex
	handlers map[string]ForwardHandler
	pending  map[uint64]chan forwardResult
	nextID   atomic.Uint64
}

type forwardResult struct {
	body []byte
	err  error
}

func newForwarder(n *Node) *forwarder {
	return &forwarder{n: n, handlers: make(map[string]ForwardHandler), pending: make(map[uint64]chan forwardResult)}
}

// Handle registers the handler for one request kind.
func (n *Node) HandleForward(kind string, h ForwardHandler) {
	n.fwd.mu.Lock()
	defer n.fwd.mu.Unlock()
	n.fwd.handlers[kind] = h
}

// Forward runs a request of the given kind on the leader: locally when this
// node leads, otherwise over the cluster link. While no leader is known it
// waits with jitter, up to the hold timeout (or ctx's deadline if earlier),
// so clients see a slower answer during an election rather than an error.
// A request is retried when it did not execute (no leader, not sent, the
// receiver was not the leader) and when the leader it was sent to died or
// stepped down before answering (it may have run: handlers are idempotent);
// a request the leader holds without answering returns ErrTimeout.
func (n *Node) Forward(ctx context.Context, kind string, req []byte) ([]byte, error) {
	hold := time.Now().Add(n.cfg.ForwardHoldTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(hold) {
		hold = d
	}
	wait := 5 * time.Millisecond
	for {
		resp, err, retry := n.fwd.try(ctx, kind, req)
		if !retry {
			n.countForward(err)
			return resp, err
		}
		if time.Now().Add(wait).After(hold) {
			n.m.Forwarded.WithLabelValues("no_leader").Inc()
			return nil, fmt.Errorf("forward %s: %w", kind, ErrNoLeader)
		}
		jitter := time.Duration(rand.Int64N(int64(wait)))
		select {
		case <-time.After(wait/2 + jitter): // jittered wait for an election
		case <-ctx.Done():
			return nil, fmt.Errorf("forward %s: %w", kind, ctx.Err())
		case <-n.shutdownCh:
			return nil, fmt.Errorf("forward %s: %w", kind, ErrShutdown)
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

func (n *Node) countForward(err error) {
	if err != nil {
		n.m.Forwarded.WithLabelValues("error").Inc()
		return
	}
	n.m.Forwarded.WithLabelValues("ok").Inc()
}

// try makes one attempt. retry reports that the request certainly did not
// execute and may be tried again.
func (f *forwarder) try(ctx context.Context, kind string, req []byte) (resp []byte, err error, retry bool) {
	n := f.n
	if n.IsLeader() {
		h := f.handler(kind)
		if h == nil {
			return nil, fmt.Errorf("forward %s: %w", kind, ErrNoHandler), false
		}
		resp, err := h(ctx, req)
		if errors.Is(err, ErrNotLeader) {
			return nil, err, true
		}
		return resp, err, false
	}
	leader, _ := n.Leader()
	if leader == "" || leader == n.cfg.NodeID {
		return nil, ErrNoLeader, true
	}
	id := f.nextID.Add(1)
	ch := make(chan forwardResult, 1)
	f.mu.Lock()
	f.pending[id] = ch
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.pending, id)
		f.mu.Unlock()
	}()
	if err := n.peers.send(leader, kindForwardReq, encodeForwardReq(id, n.cfg.NodeID, kind, req)); err != nil {
		return nil, err, true // not sent
	}
	timeout := time.NewTimer(n.cfg.ForwardHoldTimeout + n.cfg.ApplyTimeout)
	defer timeout.Stop()
	check := time.NewTicker(20 * time.Millisecond)
	defer check.Stop()
	for {
		select {
		case r := <-ch:
			if errors.Is(r.err, ErrNotLeader) || errors.Is(r.err, ErrNoLeader) {
				return nil, r.err, true // the receiver did not execute it
			}
			return r.body, r.err, false
		case <-check.C:
			// The leader we asked died or lost leadership before it
			// answered: ask the next one. Handlers must therefore be
			// idempotent (membership changes are; publishes carry
			// de-duplication ids), exactly as a client retrying after a
			// timeout would require.
			if id, _ := n.Leader(); id != leader || !n.peers.connected(leader) {
				return nil, fmt.Errorf("forward %s to %s: %w", kind, leader, ErrLeadershipLost), true
			}
		case <-timeout.C:
			return nil, fmt.Errorf("forward %s to %s: %w", kind, leader, ErrTimeout), false
		case <-ctx.Done():
			return nil, fmt.Errorf("forward %s: %w", kind, ctx.Err()), false
		case <-n.shutdownCh:
			return nil, ErrShutdown, false
		}
	}
}

func (f *forwarder) handler(kind string) ForwardHandler {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handlers[kind]
}

// onFrame handles forwarding frames from peers.
func (f *forwarder) onFrame(from string, kind byte, body []byte) {
	switch kind {
	case kindForwardReq:
		id, origin, k, req, err := decodeForwardReq(body)
		if err != nil {
			f.n.log.Warn("bad forward request", zap.String("peer_id", from), zap.Error(err))
			return
		}
		req = append([]byte(nil), req...) // body is reused by the reader
		f.n.wg.Add(1)
		go f.serve(id, origin, k, req)
	case kindForwardRes:
		id, resp, rerr, err := decodeForwardRes(body, from)
		if err != nil {
			f.n.log.Warn("bad forward response", zap.String("peer_id", from), zap.Error(err))
			return
		}
		f.mu.Lock()
		ch := f.pending[id]
		f.mu.Unlock()
		if ch != nil {
			ch <- forwardResult{body: append([]byte(nil), resp...), err: rerr}
		}
	}
}

// serve executes a forwarded request. A forwarded request is never
// forwarded again: if this node is not the leader it says so and the origin
// retries.
func (f *forwarder) serve(id uint64, origin, kind string, req []byte) {
	defer f.n.wg.Done()
	var resp []byte
	var err error
	switch h := f.handler(kind); {
	case !f.n.IsLeader():
		err = ErrNotLeader
	case h == nil:
		err = ErrNoHandler
	default:
		ctx, cancel := context.WithTimeout(context.Background(), f.n.cfg.ApplyTimeout)
		resp, err = h(ctx, req)
		cancel()
	}
	if serr := f.n.peers.send(origin, kindForwardRes, encodeForwardRes(id, resp, err)); serr != nil {
		f.n.log.Warn("forward response not sent", zap.String("peer_id", origin), zap.Error(serr))
	}
}

// Wire format (all lengths big-endian):
//
//	request:  id u64 | origin len u16 + bytes | kind len u16 + bytes | body
//	response: id u64 | status u8 (0 ok, 1 error) | body or error text
func encodeForwardReq(id uint64, origin, kind string, req []byte) []byte {
	b := make([]byte, 0, 12+len(origin)+len(kind)+len(req))
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint16(b, uint16(len(origin)))
	b = append(b, origin...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(kind)))
	b = append(b, kind...)
	return append(b, req...)
}

func decodeForwardReq(b []byte) (id uint64, origin, kind string, req []byte, err error) {
	if len(b) < 10 {
		return 0, "", "", nil, errShortFrame
	}
	id = binary.BigEndian.Uint64(b)
	b = b[8:]
	origin, b, err = takeString(b)
	if err != nil {
		return 0, "", "", nil, err
	}
	kind, b, err = takeString(b)
	if err != nil {
		return 0, "", "", nil, err
	}
	return id, origin, kind, b, nil
}

func encodeForwardRes(id uint64, resp []byte, err error) []byte {
	b := make([]byte, 0, 9+len(resp))
	b = binary.BigEndian.AppendUint64(b, id)
	if err != nil {
		b = append(b, 1)
		return append(b, errText(err)...)
	}
	b = append(b, 0)
	return append(b, resp...)
}

// errText sends a sentinel's own text when err wraps one, so that the
// origin can match it with errors.Is.
func errText(err error) string {
	for _, s := range wireSentinels {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return err.Error()
}

func decodeForwardRes(b []byte, from string) (id uint64, resp []byte, rerr error, err error) {
	if len(b) < 9 {
		return 0, nil, nil, errShortFrame
	}
	id = binary.BigEndian.Uint64(b)
	if b[8] == 1 {
		return id, nil, &RemoteError{Node: from, Msg: string(b[9:])}, nil
	}
	return id, b[9:], nil, nil
}

func takeString(b []byte) (string, []byte, error) {
	if len(b) < 2 {
		return "", nil, errShortFrame
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, errShortFrame
	}
	return string(b[2 : 2+n]), b[2+n:], nil
}

var errShortFrame = errors.New("short frame")
