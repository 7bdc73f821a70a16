package broker

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// sublistCacheSize bounds the Match result cache. It is large enough to hold
// the working set of a busy node's hot subjects while keeping invalidation
// scans (one SubjectMatches per entry for a wildcard change) short.
const sublistCacheSize = 4096

// MatchResult is the set of subscriptions that match one literal subject.
//
// A MatchResult is immutable once Match returns it: it may be shared with
// other callers through the cache, and callers iterate it without holding
// any lock. Never modify its slices.
type MatchResult struct {
	// Plain holds every matching non-queue subscription, each once.
	Plain []*Subscription
	// Queues holds one non-empty slice per matching queue group name. A
	// group matched through several patterns (say "q.*" and "q.>" with the
	// same queue name) is still one group, so exactly one member of it gets
	// each message.
	Queues [][]*Subscription
}

// emptyResult is shared by every subject nothing matches, which keeps
// no-interest lookups (such as the no-responders check) from allocating.
var emptyResult = &MatchResult{}

// Sublist indexes subscriptions by subject pattern in a token trie and
// answers "who is interested in this subject" for published messages.
//
// Locking. Two RWMutexes split the slow trie from the hot cache, so cache
// hits never wait for a trie walk:
//   - mu guards the trie (root), count and gen.
//   - cmu guards cache; gen is written only while holding both mu and cmu,
//     so holding either one is enough to read it.
//
// The lock order is mu before cmu. A cache hit takes only cmu for reading. A
// miss walks the trie under mu (read), noting gen, then releases mu and
// stores the result under cmu (write) only if gen is unchanged: an Insert or
// Remove that ran in between bumped gen, so the result may be stale and is
// simply not cached. Insert and Remove change the trie under mu (write), then,
// while still holding mu, take cmu to bump gen and delete every cached
// subject the changed pattern matches. Cached results are therefore exact,
// and since results are replaced rather than edited, a caller holding an old
// result is never affected by a later change.
type Sublist struct {
	mu    sync.RWMutex
	root  *node
	count int
	gen   uint64

	cmu      sync.RWMutex
	cache    map[string]*MatchResult
	cacheMax int
}

// NewSublist returns an empty Sublist.
func NewSublist() *Sublist {
	return &Sublist{
		root:     &node{},
		cache:    make(map[string]*MatchResult),
		cacheMax: sublistCacheSize,
	}
}

// Insert adds sub under sub.Subject (and sub.Queue, if set). Inserting the
// same *Subscription twice is a no-op. sub.Subject and sub.Queue must not
// change while sub is in the list, since Remove finds it by them.
func (s *Sublist) Insert(sub *Subscription) error {
	// Broker.Subscribe has already validated these; check again because the
	// trie relies on ">" being last and on tokens being non-empty.
	if !ValidSubject(sub.Subject) {
		return fmt.Errorf("insert %q: %w", sub.Subject, ErrInvalidSubject)
	}
	if sub.Queue != "" && !ValidQueue(sub.Queue) {
		return fmt.Errorf("insert %q queue %q: %w", sub.Subject, sub.Queue, ErrInvalidQueue)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.root
	for tok := range strings.SplitSeq(sub.Subject, ".") {
		n = n.childOrCreate(tok)
	}
	if !n.add(sub) {
		return nil
	}
	s.count++
	s.changed(sub.Subject)
	return nil
}

// Remove deletes sub and reports whether it was present; removing it again
// is harmless. Trie nodes left empty are pruned so that the index does not
// grow with subscription churn.
func (s *Sublist) Remove(sub *Subscription) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	toks := strings.Split(sub.Subject, ".")
	// path[i] is the node reached after toks[i]; path[0] is the root.
	path := make([]*node, 1, len(toks)+1)
	path[0] = s.root
	for _, tok := range toks {
		next := path[len(path)-1].child(tok)
		if next == nil {
			return false
		}
		path = append(path, next)
	}
	if !path[len(path)-1].remove(sub) {
		return false
	}
	s.count--
	for i := len(toks) - 1; i >= 0 && path[i+1].empty(); i-- {
		path[i].deleteChild(toks[i])
	}
	s.changed(sub.Subject)
	return true
}

// changed bumps the generation and drops every cached result the pattern
// could have contributed to. The caller holds mu for writing.
func (s *Sublist) changed(pattern string) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.gen++
	if isLiteral(pattern) {
		// The common case (inboxes, per-request subscriptions) is O(1).
		delete(s.cache, pattern)
		return
	}
	for subject := range s.cache {
		if SubjectMatches(pattern, subject) {
			delete(s.cache, subject)
		}
	}
}

// Count returns the number of subscriptions in the list.
func (s *Sublist) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count
}

// Match returns the subscriptions interested in the literal subject. A
// repeated subject is served from the cache with one map lookup and no
// allocation. The result must not be modified (see MatchResult).
func (s *Sublist) Match(subject []byte) *MatchResult {
	return s.match(subject, true)
}

// MatchOnce is Match for a subject that is not expected again: it neither
// looks in nor adds to the cache.
func (s *Sublist) MatchOnce(subject []byte) *MatchResult {
	return s.match(subject, false)
}

func (s *Sublist) match(subject []byte, cache bool) *MatchResult {
	if !cache {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.matchTrie(subject)
	}
	// string(subject) as a map index does not allocate.
	s.cmu.RLock()
	r, ok := s.cache[string(subject)]
	s.cmu.RUnlock()
	if ok {
		return r
	}

	s.mu.RLock()
	gen := s.gen
	r = s.matchTrie(subject)
	s.mu.RUnlock()

	s.store(subject, r, gen)
	return r
}

// store caches r for subject unless the trie changed after r was computed
// at generation gen. When the cache is full it is emptied in one go. Most
// misses are subjects seen once (every async publish has its own reply
// subject, and its PubAck is matched twice), so evicting entry by entry
// meant a map iteration start plus a delete on every PubAck: about a
// quarter of a leader's CPU under async publishing. Hot subjects are cached
// again on their next miss.
func (s *Sublist) store(subject []byte, r *MatchResult, gen uint64) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if gen != s.gen {
		return
	}
	if len(s.cache) >= s.cacheMax {
		clear(s.cache)
	}
	s.cache[string(subject)] = r
}

// cacheLen returns the number of cached results (for tests).
func (s *Sublist) cacheLen() int {
	s.cmu.RLock()
	defer s.cmu.RUnlock()
	return len(s.cache)
}

// node is one trie level: children by literal token and for the two
// wildcards, plus the subscriptions whose pattern ends here.
type node struct {
	literal map[string]*node // nil when there are no literal children
	star    *node            // child for "*"
	tail    *node            // child for ">"; it never has children
	plain   subSet
	// queues holds one entry per queue name. A slice rather than a map:
	// a node rarely has more than a few groups, and Match iterates them far
	// more often than Insert/Remove search them.
	queues []*queueGroup
	// result is this node's subscriptions as a MatchResult, for subjects
	// that match this node alone (built on first use, dropped by add and
	// remove). Matches run under the read lock, so concurrent ones may
	// each build it: hence atomic.
	result atomic.Pointer[MatchResult]
}

// queueGroup is the members of one queue group subscribed to one pattern.
type queueGroup struct {
	name string
	subSet
}

func (n *node) child(tok string) *node {
	switch tok {
	case starTok:
		return n.star
	case tailTok:
		return n.tail
	}
	return n.literal[tok]
}

func (n *node) childOrCreate(tok string) *node {
	if c := n.child(tok); c != nil {
		return c
	}
	c := &node{}
	switch tok {
	case starTok:
		n.star = c
	case tailTok:
		n.tail = c
	default:
		if n.literal == nil {
			n.literal = make(map[string]*node)
		}
		n.literal[tok] = c
	}
	return c
}

func (n *node) deleteChild(tok string) {
	switch tok {
	case starTok:
		n.star = nil
	case tailTok:
		n.tail = nil
	default:
		delete(n.literal, tok)
		if len(n.literal) == 0 {
			n.literal = nil // release the map's buckets, too
		}
	}
}

func (n *node) hasSubs() bool { return n.plain.len() > 0 || len(n.queues) > 0 }

func (n *node) empty() bool {
	return !n.hasSubs() && n.literal == nil && n.star == nil && n.tail == nil
}

func (n *node) queue(name string) (int, *queueGroup) {
	for i, g := range n.queues {
		if g.name == name {
			return i, g
		}
	}
	return -1, nil
}

// add stores sub at this node and reports whether it was new.
func (n *node) add(sub *Subscription) bool {
	n.result.Store(nil)
	if sub.Queue == "" {
		return n.plain.add(sub)
	}
	_, g := n.queue(sub.Queue)
	if g == nil {
		g = &queueGroup{name: sub.Queue}
		n.queues = append(n.queues, g)
	}
	return g.add(sub)
}

// remove deletes sub from this node and reports whether it was there.
func (n *node) remove(sub *Subscription) bool {
	n.result.Store(nil)
	if sub.Queue == "" {
		return n.plain.remove(sub)
	}
	i, g := n.queue(sub.Queue)
	if g == nil || !g.remove(sub) {
		return false
	}
	if g.len() == 0 {
		n.queues = slices.Delete(n.queues, i, i+1)
		if len(n.queues) == 0 {
			n.queues = nil
		}
	}
	return true
}

// match adds to nodes every node holding subscriptions that match the
// remaining subject (one or more tokens) below n. Each node is reached at
// most once per walk, because a node stands for one pattern prefix and so
// for one token position: plain subscriptions are collected without
// duplicates and need no dedup pass.
func (n *node) match(subject []byte, nodes *smallList[*node]) {
	tok, rest := subject, []byte(nil)
	more := false
	if i := bytes.IndexByte(subject, tokenSep); i >= 0 {
		tok, rest, more = subject[:i], subject[i+1:], true
	}
	if n.tail != nil {
		nodes.add(n.tail) // ">" takes this token and all after it
	}
	if n.star != nil {
		n.star.step(rest, more, nodes)
	}
	// Indexing with string(tok) does not allocate.
	if c := n.literal[string(tok)]; c != nil {
		c.step(rest, more, nodes)
	}
}

func (n *node) step(rest []byte, more bool, nodes *smallList[*node]) {
	if more {
		n.match(rest, nodes)
	} else if n.hasSubs() {
		nodes.add(n)
	}
}

// matchTrie walks the trie for subject and builds a fresh result. The caller
// holds mu for reading. The walk's scratch space lives on the stack.
func (s *Sublist) matchTrie(subject []byte) *MatchResult {
	if hasEmptyToken(subject) {
		return &MatchResult{} // matches nothing, like SubjectMatches
	}
	var nodes smallList[*node]
	s.root.match(subject, &nodes)
	if nodes.len() == 1 {
		// One pattern matched (a client's reply inbox, for one): its
		// result is the node's own, built once. The cache above does not
		// help there: most reply subjects are matched once or twice.
		n := nodes.get(0)
		if r := n.result.Load(); r != nil {
			return r
		}
		r := buildResult(&nodes)
		n.result.Store(r)
		return r
	}
	return buildResult(&nodes)
}

// buildResult copies the subscriptions of the matched nodes into a new
// MatchResult with at most three allocations: the result, one array holding
// every member (plain first, then each queue group in turn) and the group
// slice headers. Copying, never aliasing a node's own slices, is what makes
// a result safe to hand out and cache while the trie keeps changing.
func buildResult(nodes *smallList[*node]) *MatchResult {
	nplain, nqueued := 0, 0
	for i := range nodes.len() {
		n := nodes.get(i)
		nplain += n.plain.len()
		for _, g := range n.queues {
			nqueued += g.len()
		}
	}
	if nplain+nqueued == 0 {
		return emptyResult
	}
	all := make([]*Subscription, 0, nplain+nqueued)
	for i := range nodes.len() {
		all = append(all, nodes.get(i).plain.list...)
	}
	r := &MatchResult{}
	if nplain > 0 {
		r.Plain = all[:nplain:nplain]
	}
	if nqueued > 0 {
		r.Queues = mergeGroups(nodes, all[nplain:nplain:nplain+nqueued])
	}
	return r
}

// mergeGroups fills backing (empty, with exactly enough capacity) with the
// queue members of nodes and returns one slice of it per queue name: the
// same name reached through several patterns is one group. Each group gets a
// capacity-limited window of backing, so groups can never overwrite each
// other.
func mergeGroups(nodes *smallList[*node], backing []*Subscription) [][]*Subscription {
	var gi groupIndex
	for i := range nodes.len() {
		for _, g := range nodes.get(i).queues {
			*gi.size(g.name) += g.len()
		}
	}
	groups := make([][]*Subscription, gi.names.len())
	off := 0
	for i := range groups {
		end := off + *gi.sizes.at(i)
		groups[i] = backing[off:off:end]
		off = end
	}
	for i := range nodes.len() {
		for _, g := range nodes.get(i).queues {
			j := gi.lookup(g.name)
			groups[j] = append(groups[j], g.list...)
		}
	}
	return groups
}

// groupIndex numbers the queue names of one result in order of first
// appearance and totals their sizes. Results usually hold a handful of
// groups, so it scans a small list and only builds a map for the rare
// subject matched by many groups, to stay O(n) there.
type groupIndex struct {
	names  smallList[string]
	sizes  smallList[int]
	byName map[string]int // nil until there are more than smallListFixed names
}

// lookup returns the number of name, or -1 if it has not been seen.
func (gi *groupIndex) lookup(name string) int {
	if gi.byName != nil {
		if i, ok := gi.byName[name]; ok {
			return i
		}
		return -1
	}
	for i := range gi.names.len() {
		if gi.names.get(i) == name {
			return i
		}
	}
	return -1
}

// size returns the size counter of name, adding name if it is new.
func (gi *groupIndex) size(name string) *int {
	if i := gi.lookup(name); i >= 0 {
		return gi.sizes.at(i)
	}
	i := gi.names.add(name)
	gi.sizes.add(0)
	switch {
	case gi.byName != nil:
		gi.byName[name] = i
	case gi.names.len() > smallListFixed:
		gi.byName = make(map[string]int, gi.names.len())
		for j := range gi.names.len() {
			gi.byName[gi.names.get(j)] = j
		}
	}
	return gi.sizes.at(i)
}

// smallListFixed is how many items a smallList holds before it allocates.
const smallListFixed = 16

// smallList is an append-only list that keeps its first smallListFixed items
// in an array, so that a list declared on the stack does not allocate in the
// common case. (A slice over an array field would make the struct refer to
// itself and force it onto the heap.)
type smallList[T any] struct {
	n     int
	fixed [smallListFixed]T
	more  []T
}

func (l *smallList[T]) len() int { return l.n }

// add appends v and returns its index.
func (l *smallList[T]) add(v T) int {
	if l.n < smallListFixed {
		l.fixed[l.n] = v
	} else {
		l.more = append(l.more, v)
	}
	l.n++
	return l.n - 1
}

// get returns item i, which must be below len.
func (l *smallList[T]) get(i int) T { return *l.at(i) }

// at returns a pointer to item i, which must be below len.
func (l *smallList[T]) at(i int) *T {
	if i < smallListFixed {
		return &l.fixed[i]
	}
	return &l.more[i-smallListFixed]
}

// subSet is a set of subscriptions kept as a slice, so that Match can copy a
// node's members with one append, with O(1) add and remove. Most sets hold
// one or two members (one inbox per connection, one subscriber per subject),
// so the position index is only built once a set grows past
// subSetIndexThreshold; below that a linear scan is cheaper than a map.
type subSet struct {
	list []*Subscription
	pos  map[*Subscription]int // index into list; nil while the set is small
}

const subSetIndexThreshold = 16

func (ss *subSet) len() int { return len(ss.list) }

func (ss *subSet) indexOf(sub *Subscription) int {
	if ss.pos != nil {
		if i, ok := ss.pos[sub]; ok {
			return i
		}
		return -1
	}
	for i, s := range ss.list {
		if s == sub {
			return i
		}
	}
	return -1
}

// add inserts sub and reports whether it was absent.
func (ss *subSet) add(sub *Subscription) bool {
	if ss.indexOf(sub) >= 0 {
		return false
	}
	ss.list = append(ss.list, sub)
	switch {
	case ss.pos != nil:
		ss.pos[sub] = len(ss.list) - 1
	case len(ss.list) > subSetIndexThreshold:
		ss.pos = make(map[*Subscription]int, len(ss.list))
		for i, s := range ss.list {
			ss.pos[s] = i
		}
	}
	return true
}

// remove deletes sub by moving the last member into its place, and reports
// whether it was present. Order is not meaningful: Match results are sets.
func (ss *subSet) remove(sub *Subscription) bool {
	i := ss.indexOf(sub)
	if i < 0 {
		return false
	}
	last := len(ss.list) - 1
	moved := ss.list[last]
	ss.list[i] = moved
	ss.list[last] = nil // let the removed subscription be collected
	ss.list = ss.list[:last]
	if ss.pos != nil {
		delete(ss.pos, sub)
		if moved != sub {
			ss.pos[moved] = i
		}
	}
	if len(ss.list) == 0 {
		// Drop the backing array and index so an emptied set held by a
		// surviving node does not pin memory after a burst of churn.
		*ss = subSet{}
	}
	return true
}

// hasEmptyToken reports whether subject is empty or has an empty token
// ("a..b", ".a", "a.").
func hasEmptyToken(subject []byte) bool {
	if len(subject) == 0 || subject[0] == '.' || subject[len(subject)-1] == '.' {
		return true
	}
	return bytes.Contains(subject, []byte(".."))
}
