package broker

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/flotilla/flotilla/cluster"
)

// Core message routing between the nodes of a cluster (DESIGN.md §4 "Core
// publish"): no Raft, only interest propagation and one-hop forwarding over
// cluster's node-to-node links.
//
//   - Each node counts its local interest per (subject, queue) and tells
//     every peer when a plain interest appears or disappears and whenever a
//     queue group's local member count (its weight) changes. When its link
//     to a peer comes up it sends that peer a full sync of its interest.
//   - Each node keeps one index (a Sublist of pseudo-subscriptions) per
//     peer of that peer's interest. A full sync is built into a fresh index
//     that replaces the old one atomically when the sync ends, so a resync
//     never opens a window without interest, and dropping a peer is O(1).
//   - A publish is delivered locally and forwarded at most once to each peer
//     with matching interest, in one frame naming the queue groups that peer
//     must serve. Each queue group is resolved at the ingress node by a
//     weighted random choice between its local members and the peers'
//     weights, so exactly one member cluster-wide gets the message.
//   - A message received from a peer is delivered locally and never
//     forwarded again (full mesh, one hop).
//
// Lock order (see also broker/DESIGN.md):
//
//	router.imu  ->  Broker.subs (Sublist mu -> cmu)  and  -> Mesh.Send/Broadcast
//	router.rmu  ->  a peer's index (Sublist mu -> cmu)
//
// imu and rmu are never held together. Mesh.Send only copies the frame into
// the peer's buffer and never calls back into the broker, so holding imu
// across it is safe and is what keeps interest frames in the order of the
// changes they describe. Publish and message receipt take no broker mutex
// (Sublist read locks and atomics only), except imu when a delivery
// exhausts an auto-unsubscribe limit; no broker lock is held while a
// Subscriber's Deliver runs.

// Mesh is what the broker needs from the node-to-node links.
// *cluster.Node satisfies it.
type Mesh interface {
	// Send queues one frame for one peer and returns an error if it was
	// dropped (the peer is not connected or its buffer is full). It copies
	// body before returning.
	Send(peer string, kind byte, body []byte) error
	// Broadcast queues one frame for every connected peer.
	Broadcast(kind byte, body []byte)
}

var (
	_ Mesh                 = (*cluster.Node)(nil)
	_ cluster.FrameHandler = (*Broker)(nil)
)

const (
	// syncFrameSize is the size past which a full interest sync starts a new
	// frame, so that one huge frame does not delay other traffic to a peer.
	syncFrameSize = 32 << 10
	// maxPooledFrame bounds the encode buffers kept for reuse.
	maxPooledFrame = 1 << 20
)

// interestKey is one (subject pattern, queue group) interest; queue is
// empty for plain subscriptions.
type interestKey struct{ subject, queue string }

// router is the Broker's routing state. Its zero value is not usable; see
// newRouter.
type router struct {
	// imu guards local, out, mesh and the scratch buffers, and every
	// Subscription.inserted flag. It serialises local interest changes
	// with the frames announcing them.
	imu   sync.Mutex
	local map[interestKey]int     // local subscriptions per interest
	out   map[string]*outPeer     // peers we send interest to
	mesh  Mesh                    // nil until AttachMesh
	ibuf  []byte                  // scratch for single interest changes
	sbuf  []byte                  // scratch for full syncs
	meshV atomic.Pointer[meshRef] // mesh, for the lock-free publish path

	// rmu guards remote, down and the mutable fields of each remotePeer.
	rmu    sync.Mutex
	remote map[string]*remotePeer
	// down holds the peers reported by PeerDown and not back up since:
	// frames still in flight from them are ignored, so that a dead node's
	// interest cannot come back. A full sync is asked for when they return.
	down  map[string]bool
	peers atomic.Pointer[[]*remotePeer] // copy-on-write snapshot of remote
}

type meshRef struct{ m Mesh }

func newRouter() router {
	return router{
		local:  make(map[interestKey]int),
		out:    make(map[string]*outPeer),
		remote: make(map[string]*remotePeer),
		down:   make(map[string]bool),
	}
}

// outPeer is the sending side's state for one peer (guarded by imu).
type outPeer struct {
	// needSync is set when an interest frame to the peer was dropped (or
	// could not be sent yet): the peer's view of our interest is stale and
	// gets a full sync as soon as a frame goes through again.
	needSync bool
}

// remotePeer is what this node knows of one peer's interest.
type remotePeer struct {
	id string
	// index holds the peer's complete interest as pseudo-subscriptions
	// whose Client is a *remoteSub. It is nil until the first full sync
	// ends; Publish reads it without locks.
	index atomic.Pointer[Sublist]

	// Guarded by router.rmu.
	entries     map[interestKey]*Subscription // the pseudo-subscriptions in index
	next        *Sublist                      // the index a sync in progress builds
	nextEntries map[interestKey]*Subscription
}

// remoteSub stands for a peer's interest in the peer's index. It is the
// Client of a pseudo-subscription and is never delivered to.
type remoteSub struct {
	// weight is, for a queue group, how many members the peer has on this
	// pattern; Publish reads it without locks.
	weight atomic.Uint32
}

// Deliver implements Subscriber. Pseudo-subscriptions are only matched,
// never delivered to.
func (*remoteSub) Deliver(*Subscription, *Message) {}

// bufPool holds frame encode buffers (*[]byte). Mesh.Send copies a frame
// before returning, so a buffer goes back to the pool right after use.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// msgPool holds the Messages that frames from peers are delivered as.
var msgPool = sync.Pool{New: func() any { return new(Message) }}

// AttachMesh enables routing over m: from now on publishes reach the other
// nodes and this node's interest is announced to them. Call it after
// handing the broker to the cluster as its cluster.FrameHandler; the order
// relative to the node's Start does not matter, because AttachMesh
// broadcasts a full sync that asks every connected peer for its own.
func (b *Broker) AttachMesh(m Mesh) {
	b.rt.imu.Lock()
	defer b.rt.imu.Unlock()
	b.rt.mesh = m
	if m == nil {
		b.rt.meshV.Store(nil)
		return
	}
	b.rt.meshV.Store(&meshRef{m})
	// Peers whose link came up before now have not heard from us, and
	// peers whose link came up before the frame handler was set are not
	// even in out: a broadcast reaches both. The want flag makes each of
	// them answer with its own interest, which adds it to out.
	if !b.encodeSync(true, func(frame []byte) bool { m.Broadcast(kindRouteInterest, frame); return true }) {
		return
	}
	for _, p := range b.rt.out {
		p.needSync = false
	}
}

// routes returns what Publish needs to forward: the mesh and the peers
// with interest. Both are empty when routing is off.
func (b *Broker) routes() (Mesh, []*remotePeer) {
	ps := b.rt.peers.Load()
	if ps == nil || len(*ps) == 0 {
		return nil, nil
	}
	mr := b.rt.meshV.Load()
	if mr == nil {
		return nil, nil
	}
	return mr.m, *ps
}

// --- Local interest ---------------------------------------------------------

// insertSub adds sub to the local index and counts its interest.
func (b *Broker) insertSub(sub *Subscription) error {
	b.rt.imu.Lock()
	defer b.rt.imu.Unlock()
	if sub.inserted {
		return nil
	}
	if err := b.subs.Insert(sub); err != nil {
		return err
	}
	sub.inserted = true
	if !sub.Local {
		b.countInterest(interestKey{sub.Subject, sub.Queue}, +1)
	}
	return nil
}

// removeSub removes sub from the local index, if present, and uncounts its
// interest.
func (b *Broker) removeSub(sub *Subscription) {
	b.rt.imu.Lock()
	defer b.rt.imu.Unlock()
	if !sub.inserted {
		return
	}
	b.subs.Remove(sub)
	sub.inserted = false
	if !sub.Local {
		b.countInterest(interestKey{sub.Subject, sub.Queue}, -1)
	}
}

// countInterest applies a change of delta subscriptions to k and announces
// it to the peers when they need to know: plain interest only when it
// appears or disappears, queue interest whenever its weight changes. The
// caller holds imu.
func (b *Broker) countInterest(k interestKey, delta int) {
	old := b.rt.local[k]
	n := max(old+delta, 0)
	if n == 0 {
		delete(b.rt.local, k)
	} else {
		b.rt.local[k] = n
	}
	if k.queue == "" && (old == 0) == (n == 0) {
		return
	}
	b.announce(k, interestWeight(k, n))
}

// interestWeight is the weight announced for k with n local subscriptions:
// the member count for a queue group, 1 for present plain interest.
func interestWeight(k interestKey, n int) uint32 {
	if k.queue == "" {
		return uint32(min(n, 1))
	}
	return uint32(min(n, maxRemoteWeight))
}

// announce sends one interest change to every peer. A peer that misses it
// is marked for a full sync, which goes out right after the next frame that
// reaches it. The caller holds imu.
func (b *Broker) announce(k interestKey, weight uint32) {
	mesh := b.rt.mesh
	if mesh == nil || len(b.rt.out) == 0 {
		return
	}
	buf := appendInterestHeader(b.rt.ibuf[:0], 0)
	buf = appendInterestOp(buf, k.subject, k.queue, weight)
	b.rt.ibuf = buf
	for id, p := range b.rt.out {
		if err := mesh.Send(id, kindRouteInterest, buf); err != nil {
			p.needSync = true
			continue
		}
		if p.needSync {
			b.syncPeer(id, p, false)
		}
	}
}

// syncPeer sends peer id our whole interest (a reset, the ops, an end). With
// want, it also asks the peer to send its own. The caller holds imu.
func (b *Broker) syncPeer(id string, p *outPeer, want bool) {
	mesh := b.rt.mesh
	if mesh == nil {
		p.needSync = true // AttachMesh will broadcast a sync
		return
	}
	frames := 0
	ok := b.encodeSync(want, func(frame []byte) bool {
		frames++
		return mesh.Send(id, kindRouteInterest, frame) == nil
	})
	p.needSync = !ok
	b.log.Debug("interest sync sent", zap.String("peer_id", id),
		zap.Int("interests", len(b.rt.local)), zap.Int("frames", frames), zap.Bool("complete", ok))
}

// encodeSync encodes the whole local interest as a full sync, in frames of
// about syncFrameSize, and hands each frame to emit until emit returns
// false. It reports whether every frame was emitted. The caller holds imu.
func (b *Broker) encodeSync(want bool, emit func(frame []byte) bool) bool {
	buf := appendInterestHeader(b.rt.sbuf[:0], interestReset)
	defer func() {
		if cap(buf) <= maxPooledFrame {
			b.rt.sbuf = buf[:0]
		}
	}()
	for k, n := range b.rt.local {
		if len(buf) >= syncFrameSize {
			if !emit(buf) {
				return false
			}
			buf = appendInterestHeader(buf[:0], 0)
		}
		buf = appendInterestOp(buf, k.subject, k.queue, interestWeight(k, n))
	}
	buf[1] |= interestEnd
	if want {
		buf[1] |= interestWant
	}
	return emit(buf)
}

// --- cluster.FrameHandler ---------------------------------------------------

// PeerUp implements cluster.FrameHandler: our link to peer id is
// (re)established, so it gets a full sync of our interest, asking for its
// own in return if we do not hold it (it was dropped by PeerDown, or never
// received).
func (b *Broker) PeerUp(id string) {
	want := !b.peerAlive(id)
	b.rt.imu.Lock()
	defer b.rt.imu.Unlock()
	p := b.rt.out[id]
	if p == nil {
		p = &outPeer{}
		b.rt.out[id] = p
	}
	b.syncPeer(id, p, want)
}

// PeerDown implements cluster.FrameHandler: peer id left or died, so its
// interest is dropped and nothing more is sent to it.
func (b *Broker) PeerDown(id string) {
	b.rt.rmu.Lock()
	b.rt.down[id] = true
	if _, ok := b.rt.remote[id]; ok {
		delete(b.rt.remote, id)
		b.publishPeers()
	}
	b.rt.rmu.Unlock()

	b.rt.imu.Lock()
	delete(b.rt.out, id)
	b.rt.imu.Unlock()
	b.log.Debug("peer interest dropped", zap.String("peer_id", id))
}

// HandleFrame implements cluster.FrameHandler. It runs on the peer's read
// goroutine; body is only valid during the call, which is enough because
// local delivery copies synchronously.
func (b *Broker) HandleFrame(from string, kind byte, body []byte) {
	switch kind {
	case kindRouteMsg:
		b.handleRouteMsg(from, body)
	case kindRouteInterest:
		b.handleInterest(from, body)
	default:
		b.log.Debug("unknown frame kind ignored", zap.String("peer_id", from), zap.Uint8("kind", kind))
	}
}

// --- Remote interest --------------------------------------------------------

// handleInterest applies an interest frame from peer from. When the frame
// completes a full sync it may also call for one in return: the peer asked
// for it (want), or the peer is not yet one we send interest to.
func (b *Broker) handleInterest(from string, body []byte) {
	f, err := decodeInterest(body)
	if err != nil {
		b.log.Warn("bad interest frame dropped", zap.String("peer_id", from), zap.Error(err))
		return
	}
	known := b.applyInterest(from, &f)
	if f.Flags&interestEnd == 0 || !known {
		return
	}

	b.rt.imu.Lock()
	defer b.rt.imu.Unlock()
	p := b.rt.out[from]
	switch {
	case f.Flags&interestWant != 0 && p != nil:
		b.syncPeer(from, p, false)
	case p == nil:
		// Our link to this peer came up while we had no frame handler, so
		// PeerUp never told us about it. Add it if that link works, which a
		// full sync to it proves; if not, PeerUp will add it later.
		p = &outPeer{}
		b.syncPeer(from, p, false)
		if !p.needSync {
			b.rt.out[from] = p
		}
	}
}

// applyInterest applies f's ops to the index of peer from and reports
// whether this node now holds the peer's complete interest. Interest is
// accepted only from a reset (the start of a full sync) on, and not from a
// peer marked down: frames still in flight from a dead peer must not bring
// its interest back.
func (b *Broker) applyInterest(from string, f *interestFrame) bool {
	b.rt.rmu.Lock()
	defer b.rt.rmu.Unlock()
	if b.rt.down[from] {
		b.log.Debug("interest from down peer ignored", zap.String("peer_id", from))
		return false
	}
	p := b.rt.remote[from]
	if f.Flags&interestReset != 0 {
		if p == nil {
			p = &remotePeer{id: from}
			b.rt.remote[from] = p
			b.publishPeers()
		}
		p.next = NewSublist()
		p.nextEntries = make(map[interestKey]*Subscription, len(f.Ops))
	}
	if p == nil {
		b.log.Debug("interest from unsynced peer ignored", zap.String("peer_id", from))
		return false
	}
	index, entries := p.index.Load(), p.entries
	if p.next != nil {
		index, entries = p.next, p.nextEntries
	}
	if index == nil {
		// Deltas before any full sync cannot happen on a healthy link; the
		// next sync will bring them.
		return false
	}
	for _, op := range f.Ops {
		b.applyOp(from, index, entries, op)
	}
	if f.Flags&interestEnd != 0 && p.next != nil {
		p.index.Store(p.next)
		p.entries = p.nextEntries
		p.next, p.nextEntries = nil, nil
		b.log.Debug("peer interest synced", zap.String("peer_id", from), zap.Int("interests", len(p.entries)))
	}
	return p.index.Load() != nil
}

// applyOp applies one interest change to a peer's index. The caller holds
// rmu.
func (b *Broker) applyOp(from string, index *Sublist, entries map[interestKey]*Subscription, op interestOp) {
	k := interestKey{string(op.Subject), string(op.Queue)}
	sub := entries[k]
	if op.Weight == 0 {
		if sub != nil {
			index.Remove(sub)
			delete(entries, k)
		}
		return
	}
	if sub != nil {
		sub.Client.(*remoteSub).weight.Store(op.Weight)
		return
	}
	rs := &remoteSub{}
	rs.weight.Store(op.Weight)
	sub = &Subscription{Subject: k.subject, Queue: k.queue, Client: rs}
	if err := index.Insert(sub); err != nil {
		b.log.Debug("invalid peer interest ignored", zap.String("peer_id", from),
			zap.String("subject", k.subject), zap.Error(err))
		return
	}
	entries[k] = sub
}

// publishPeers refreshes the lock-free snapshot of remote. The caller holds
// rmu.
func (b *Broker) publishPeers() {
	ps := make([]*remotePeer, 0, len(b.rt.remote))
	for _, p := range b.rt.remote {
		ps = append(ps, p)
	}
	b.rt.peers.Store(&ps)
}

// peerAlive clears PeerDown's mark on peer id, whose link is up again, and
// reports whether this node holds a complete view of its interest.
func (b *Broker) peerAlive(id string) bool {
	b.rt.rmu.Lock()
	defer b.rt.rmu.Unlock()
	delete(b.rt.down, id)
	p := b.rt.remote[id]
	return p != nil && p.index.Load() != nil
}

// hasRemoteInterest reports whether any peer has interest in subject.
func (b *Broker) hasRemoteInterest(subject []byte) bool {
	ps := b.rt.peers.Load()
	if ps == nil {
		return false
	}
	for _, p := range *ps {
		if idx := p.index.Load(); idx != nil {
			if r := idx.Match(subject); len(r.Plain) > 0 || len(r.Queues) > 0 {
				return true
			}
		}
	}
	return false
}

// --- Publish with routing ---------------------------------------------------

// routeTarget is one peer a publish is forwarded to.
type routeTarget struct {
	peer  *remotePeer
	plain bool // the peer has matching plain interest
}

// queueCand is one peer's matching members of a queue group.
type queueCand struct {
	name   string
	target int    // index into routePlan.targets
	weight uint64 // the peer's member count for this message
	seen   bool   // already resolved with another candidate of its name
}

// queuePick assigns a queue group to a target.
type queuePick struct {
	target int
	name   string
}

// routePlan is the forwarding decision for one publish. It lives on the
// publisher's stack: smallLists do not allocate for up to 16 entries.
type routePlan struct {
	targets smallList[routeTarget]
	cands   smallList[queueCand]
	picks   smallList[queuePick]
}

// publishRouted delivers m locally and forwards it to the peers in peers
// that want it. It returns the deliveries counted as Publish documents.
//
// Most publishes on a cluster have no remote interest (a PubAck to its
// publisher's inbox, a subject only this node's clients read), so the
// peers are matched first and the plan, over a kilobyte that Go zeroes
// wherever it is declared, is only made in publishPlanned for one that
// has. Zeroing it for every PubAck was 2.6% of a leader's CPU under async
// publishing.
func (b *Broker) publishRouted(mesh Mesh, peers []*remotePeer, lr *MatchResult, m *Message) int {
	for i, p := range peers {
		index := p.index.Load()
		if index == nil {
			continue
		}
		if r := index.match(m.deliverTo(), !m.Once); len(r.Plain) > 0 || len(r.Queues) > 0 {
			return b.publishPlanned(mesh, peers[i:], r, lr, m)
		}
	}
	return b.deliverLocal(lr, m)
}

// publishPlanned is publishRouted once peers[0] matched m (first, its
// match): it matches the remaining peers, then delivers and forwards.
func (b *Broker) publishPlanned(mesh Mesh, peers []*remotePeer, first *MatchResult, lr *MatchResult, m *Message) int {
	var plan routePlan
	for i, p := range peers {
		r := first
		if i > 0 {
			index := p.index.Load()
			if index == nil {
				continue
			}
			if r = index.match(m.deliverTo(), !m.Once); len(r.Plain) == 0 && len(r.Queues) == 0 {
				continue
			}
		}
		t := plan.targets.add(routeTarget{peer: p, plain: len(r.Plain) > 0})
		for _, g := range r.Queues {
			var w uint64
			for _, sub := range g {
				w += uint64(sub.Client.(*remoteSub).weight.Load())
			}
			plan.cands.add(queueCand{name: g[0].Queue, target: t, weight: w})
		}
	}

	n := 0
	for _, sub := range lr.Plain {
		if b.deliver(sub, m) {
			n++
		}
	}
	for _, g := range lr.Queues {
		if b.routeQueue(&plan, g[0].Queue, g, m) {
			n++
		}
	}
	for i := range plan.cands.len() {
		if c := plan.cands.at(i); !c.seen {
			b.routeQueue(&plan, c.name, nil, m)
		}
	}
	return n + b.forward(mesh, &plan, lr, m)
}

// routeQueue resolves queue group name for one message: local holds its
// local members (nil when there are none here) and plan.cands the peers'
// weights. The choice is weighted random over members cluster-wide, so
// every member, wherever it is, gets an equal share. It reports whether m
// was delivered locally; a remote choice is added to plan.picks and counted
// when the frame is sent.
func (b *Broker) routeQueue(plan *routePlan, name string, local []*Subscription, m *Message) bool {
	var remote uint64
	for i := range plan.cands.len() {
		if c := plan.cands.at(i); !c.seen && c.name == name {
			c.seen = true
			remote += c.weight
		}
	}
	nlocal := uint64(len(local))
	if nlocal+remote == 0 {
		return false
	}
	r := rand.Uint64N(nlocal + remote)
	if r < nlocal {
		if b.deliverQueue(local, m) {
			return true
		}
		// Every local member refused (no echo, or auto-unsubscribed):
		// another node's member takes it instead.
		if remote == 0 {
			return false
		}
		r = rand.Uint64N(remote)
	} else {
		r -= nlocal
	}
	last := -1
	for i := range plan.cands.len() {
		c := plan.cands.at(i)
		if c.name != name || c.weight == 0 {
			continue
		}
		last = c.target
		if r < c.weight {
			break
		}
		r -= c.weight
	}
	plan.picks.add(queuePick{target: last, name: name})
	return false
}

// forward sends one message frame to each target that has plain interest
// or was picked for a queue group, and returns the deliveries that counts
// for. When a frame cannot be sent, the queue groups picked for that peer
// fall back to local members, if any: a message is never lost because of a
// choice this node made.
func (b *Broker) forward(mesh Mesh, plan *routePlan, lr *MatchResult, m *Message) int {
	bp := bufPool.Get().(*[]byte)
	buf := appendRouteMsg((*bp)[:0], m)
	base := len(buf)
	n := 0
	for ti := range plan.targets.len() {
		t := plan.targets.at(ti)
		buf = buf[:base]
		queues := 0
		for i := range plan.picks.len() {
			if pk := plan.picks.at(i); pk.target == ti {
				buf = appendRouteQueue(buf, pk.name)
				queues++
			}
		}
		if !t.plain && queues == 0 {
			continue // only queue interest, and every group went elsewhere
		}
		if err := mesh.Send(t.peer.id, kindRouteMsg, buf); err != nil {
			// Check first: this runs per message while a link is down, and
			// building the fields allocates.
			if ce := b.log.Check(zap.DebugLevel, "message not forwarded"); ce != nil {
				ce.Write(zap.String("peer_id", t.peer.id), zap.ByteString("subject", m.Subject), zap.Error(err))
			}
			n += b.deliverPicksLocally(plan, ti, lr, m)
			continue
		}
		n += queues
		if t.plain {
			n++
		}
	}
	if cap(buf) <= maxPooledFrame {
		*bp = buf[:0]
		bufPool.Put(bp)
	}
	return n
}

// deliverPicksLocally delivers the queue groups picked for target ti to
// local members instead.
func (b *Broker) deliverPicksLocally(plan *routePlan, ti int, lr *MatchResult, m *Message) int {
	n := 0
	for i := range plan.picks.len() {
		pk := plan.picks.at(i)
		if pk.target != ti {
			continue
		}
		if g := findGroup(lr.Queues, pk.name); g != nil && b.deliverQueue(g, m) {
			n++
		}
	}
	return n
}

// findGroup returns the queue group called name in groups, or nil.
func findGroup(groups [][]*Subscription, name string) []*Subscription {
	for _, g := range groups {
		if g[0].Queue == name {
			return g
		}
	}
	return nil
}

// handleRouteMsg delivers a message forwarded by peer from to the local
// plain subscriptions and to one local member of each queue group the
// sender picked this node for. It never forwards: the sender already did.
// A group that has no local member any more misses the message (core
// delivery is at-most-once).
func (b *Broker) handleRouteMsg(from string, body []byte) {
	var rm routeMsg
	if err := decodeRouteMsg(body, &rm); err != nil {
		b.log.Debug("bad message frame dropped", zap.String("peer_id", from), zap.Error(err))
		return
	}
	m := msgPool.Get().(*Message)
	// No Origin: echo suppression only concerns the publisher's own node.
	// No Publisher: a peer's read goroutine must never be stalled by one
	// slow subscriber.
	*m = Message{Subject: rm.Subject, Target: rm.Target, Reply: rm.Reply, Header: rm.Header, Payload: rm.Payload}
	lr := b.subs.Match(m.deliverTo())
	for _, sub := range lr.Plain {
		b.deliver(sub, m)
	}
	for q, rest, ok := nextQueue(rm.queues); ok; q, rest, ok = nextQueue(rest) {
		for _, g := range lr.Queues {
			if g[0].Queue == string(q) {
				b.deliverQueue(g, m)
				break
			}
		}
	}
	*m = Message{}
	msgPool.Put(m)
}
