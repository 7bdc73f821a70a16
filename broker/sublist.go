package broker

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
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
	// string(subject) as a map index does not allocate.
	s.cmu.RLock()
	r, ok := s.cache[string(subject)]
	s.cmu.RUnlock()
	if ok {
		return r
	}

	s.mu.RLock()
	gen := s.gen
	var m matcher
	m.visit(s.root, subject)
	s.mu.RUnlock()
	r = m.result()

	s.store(subject, r, gen)
	return r
}

// store caches r for subject unless the trie changed after r was computed
// at generation gen. When the cache is full it evicts one arbitrary entry
// (Go randomizes map iteration), which is cheap and good enough: hot
// subjects are re-cached on their next miss.
func (s *Sublist) store(subject []byte, r *MatchResult, gen uint64) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if gen != s.gen {
		return
	}
	if _, ok := s.cache[string(subject)]; !ok && len(s.cache) >= s.cacheMax {
		for k := range s.cache {
			delete(s.cache, k)
			break
		}
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
	queues  map[string]*subSet // by queue name; nil when empty
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

func (n *node) empty() bool {
	return n.plain.len() == 0 && n.queues == nil &&
		n.literal == nil && n.star == nil && n.tail == nil
}

// add stores sub at this node and reports whether it was new.
func (n *node) add(sub *Subscription) bool {
	if sub.Queue == "" {
		return n.plain.add(sub)
	}
	if n.queues == nil {
		n.queues = make(map[string]*subSet)
	}
	qs := n.queues[sub.Queue]
	if qs == nil {
		qs = &subSet{}
		n.queues[sub.Queue] = qs
	}
	return qs.add(sub)
}

// remove deletes sub from this node and reports whether it was there.
func (n *node) remove(sub *Subscription) bool {
	if sub.Queue == "" {
		return n.plain.remove(sub)
	}
	qs := n.queues[sub.Queue]
	if qs == nil || !qs.remove(sub) {
		return false
	}
	if qs.len() == 0 {
		delete(n.queues, sub.Queue)
		if len(n.queues) == 0 {
			n.queues = nil
		}
	}
	return true
}

// matcher accumulates a MatchResult during one trie walk. Every slice it
// builds is freshly allocated, never a node's own slice, which is what makes
// results safe to hand out and cache.
type matcher struct {
	plain  []*Subscription
	queues [][]*Subscription
	names  []string       // names[i] is the queue name of queues[i]
	index  map[string]int // names -> position, once there are many groups
}

// matcherIndexThreshold is the number of distinct queue groups in one result
// above which group lookup switches from a linear scan to a map.
const matcherIndexThreshold = 16

// visit matches the remaining subject (one or more tokens) below n. Each
// node is reached at most once per walk, because a node stands for one
// pattern prefix and so for one token position; plain subscriptions are
// therefore collected without duplicates.
func (m *matcher) visit(n *node, subject []byte) {
	tok, rest := subject, []byte(nil)
	more := false
	if i := bytes.IndexByte(subject, tokenSep); i >= 0 {
		tok, rest, more = subject[:i], subject[i+1:], true
	}
	if n.tail != nil {
		m.collect(n.tail) // ">" takes this token and everything after it
	}
	if n.star != nil {
		m.step(n.star, rest, more)
	}
	if c := n.literal[string(tok)]; c != nil {
		m.step(c, rest, more)
	}
}

func (m *matcher) step(n *node, rest []byte, more bool) {
	if more {
		m.visit(n, rest)
	} else {
		m.collect(n)
	}
}

// collect adds the subscriptions stored at n, merging queue groups by name.
func (m *matcher) collect(n *node) {
	m.plain = append(m.plain, n.plain.list...)
	for name, qs := range n.queues {
		i := m.group(name)
		m.queues[i] = append(m.queues[i], qs.list...)
	}
}

// group returns the position of the named queue group, adding it if new.
func (m *matcher) group(name string) int {
	if m.index != nil {
		if i, ok := m.index[name]; ok {
			return i
		}
	} else {
		for i, nm := range m.names {
			if nm == name {
				return i
			}
		}
	}
	i := len(m.names)
	m.names = append(m.names, name)
	m.queues = append(m.queues, nil)
	switch {
	case m.index != nil:
		m.index[name] = i
	case len(m.names) > matcherIndexThreshold:
		m.index = make(map[string]int, len(m.names))
		for j, nm := range m.names {
			m.index[nm] = j
		}
	}
	return i
}

func (m *matcher) result() *MatchResult {
	if len(m.plain) == 0 && len(m.queues) == 0 {
		return emptyResult
	}
	return &MatchResult{Plain: m.plain, Queues: m.queues}
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
