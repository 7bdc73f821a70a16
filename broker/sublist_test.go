package broker

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// newTestSub returns a subscription whose SID is its subject and queue, which
// keeps expectations in tables readable. Use sid to disambiguate duplicates.
func newTestSub(subject, queue, sid string) *Subscription {
	return &Subscription{Subject: subject, Queue: queue, SID: sid}
}

func mustInsert(t testing.TB, sl *Sublist, subs ...*Subscription) {
	t.Helper()
	for _, sub := range subs {
		if err := sl.Insert(sub); err != nil {
			t.Fatalf("Insert(%q, %q): %v", sub.Subject, sub.Queue, err)
		}
	}
}

// describe renders a result canonically: sorted plain SIDs, then each queue
// group as name=[sorted SIDs], groups sorted by name. It fails the test if a
// result breaks its invariants (a duplicate, a mixed or empty group, or two
// groups with the same name), so every comparison also checks them.
func describe(t testing.TB, r *MatchResult) string {
	t.Helper()
	seen := make(map[*Subscription]bool)
	var plain []string
	for _, sub := range r.Plain {
		if seen[sub] {
			t.Fatalf("subscription %q returned twice", sub.SID)
		}
		seen[sub] = true
		if sub.Queue != "" {
			t.Fatalf("queue subscription %q in Plain", sub.SID)
		}
		plain = append(plain, sub.SID)
	}
	var groups []string
	names := make(map[string]bool)
	for _, g := range r.Queues {
		if len(g) == 0 {
			t.Fatal("empty queue group in result")
		}
		name := g[0].Queue
		if names[name] {
			t.Fatalf("queue group %q returned as two groups", name)
		}
		names[name] = true
		var members []string
		for _, sub := range g {
			if seen[sub] {
				t.Fatalf("subscription %q returned twice", sub.SID)
			}
			seen[sub] = true
			if sub.Queue != name {
				t.Fatalf("group %q holds member %q of queue %q", name, sub.SID, sub.Queue)
			}
			members = append(members, sub.SID)
		}
		slices.Sort(members)
		groups = append(groups, name+"="+strings.Join(members, ","))
	}
	slices.Sort(plain)
	slices.Sort(groups)
	return "plain[" + strings.Join(plain, ",") + "] queues[" + strings.Join(groups, " ") + "]"
}

// modelMatch is the brute-force reference: every subscription whose pattern
// SubjectMatches the subject, grouped by queue name.
func modelMatch(t testing.TB, subs []*Subscription, subject string) string {
	t.Helper()
	r := &MatchResult{}
	group := make(map[string]int)
	for _, sub := range subs {
		if !SubjectMatches(sub.Subject, subject) {
			continue
		}
		if sub.Queue == "" {
			r.Plain = append(r.Plain, sub)
			continue
		}
		i, ok := group[sub.Queue]
		if !ok {
			i = len(r.Queues)
			group[sub.Queue] = i
			r.Queues = append(r.Queues, nil)
		}
		r.Queues[i] = append(r.Queues[i], sub)
	}
	return describe(t, r)
}

func TestSublist_Match(t *testing.T) {
	t.Parallel()
	subs := []*Subscription{
		newTestSub("foo", "", "foo"),
		newTestSub("foo.bar", "", "foo.bar"),
		newTestSub("foo.*", "", "foo.*"),
		newTestSub("foo.>", "", "foo.>"),
		newTestSub("*.bar", "", "*.bar"),
		newTestSub("*", "", "*"),
		newTestSub(">", "", ">"),
		newTestSub("foo.*.baz", "", "foo.*.baz"),
		newTestSub("foo*", "", "foo*"),
		newTestSub("a>b", "", "a>b"),
	}
	sl := NewSublist()
	mustInsert(t, sl, subs...)

	tests := []struct {
		subject string
		want    string
	}{
		{"foo", "plain[*,>,foo] queues[]"},
		{"foo.bar", "plain[*.bar,>,foo.*,foo.>,foo.bar] queues[]"},
		{"foo.baz", "plain[>,foo.*,foo.>] queues[]"},
		{"foo.bar.baz", "plain[>,foo.*.baz,foo.>] queues[]"},
		{"foo.bar.qux", "plain[>,foo.>] queues[]"},
		{"x.bar", "plain[*.bar,>] queues[]"},
		{"foo*", "plain[*,>,foo*] queues[]"},
		{"a>b", "plain[*,>,a>b] queues[]"},
		{"a.b.c.d", "plain[>] queues[]"},
		{"fo", "plain[*,>] queues[]"},
	}
	for _, tt := range tests {
		t.Run(tt.subject, func(t *testing.T) {
			t.Parallel()
			// Twice: the first call walks the trie, the second hits the cache.
			for range 2 {
				if got := describe(t, sl.Match([]byte(tt.subject))); got != tt.want {
					t.Errorf("Match(%q) = %s, want %s", tt.subject, got, tt.want)
				}
				if got := modelMatch(t, subs, tt.subject); got != tt.want {
					t.Errorf("model(%q) = %s, want %s", tt.subject, got, tt.want)
				}
			}
		})
	}
}

func TestSublist_Match_NoInterest(t *testing.T) {
	t.Parallel()
	sl := NewSublist()
	mustInsert(t, sl, newTestSub("foo.bar", "", "1"))
	for _, subject := range []string{"foo", "foo.baz", "foo.bar.baz", "bar"} {
		r := sl.Match([]byte(subject))
		if len(r.Plain) != 0 || len(r.Queues) != 0 {
			t.Errorf("Match(%q) = %s, want nothing", subject, describe(t, r))
		}
	}
}

func TestSublist_QueueGroupsAcrossPatterns(t *testing.T) {
	t.Parallel()
	// The capture in the protocol reference: q.* grp ×2 and a plain q.>.
	// Adding grp on q.> too must still yield ONE grp group for q.a.
	sl := NewSublist()
	mustInsert(t, sl,
		newTestSub("q.*", "grp", "1"),
		newTestSub("q.*", "grp", "2"),
		newTestSub("q.>", "", "3"),
		newTestSub("q.>", "grp", "4"),
		newTestSub("q.a", "grp", "5"),
		newTestSub(">", "other", "6"),
		newTestSub("q.a", "solo", "7"),
	)
	want := "plain[3] queues[grp=1,2,4,5 other=6 solo=7]"
	if got := describe(t, sl.Match([]byte("q.a"))); got != want {
		t.Errorf("Match(q.a) = %s, want %s", got, want)
	}
	want = "plain[3] queues[grp=4 other=6]"
	if got := describe(t, sl.Match([]byte("q.a.b"))); got != want {
		t.Errorf("Match(q.a.b) = %s, want %s", got, want)
	}
}

func TestSublist_ManyQueueGroups(t *testing.T) {
	t.Parallel()
	// More groups than matcherIndexThreshold, each reached through two
	// patterns, exercises groupIndex's switch to a name index.
	sl := NewSublist()
	var subs []*Subscription
	for i := range 3 * smallListFixed {
		q := "g" + strconv.Itoa(i)
		subs = append(subs, newTestSub("a.*", q, q+"-star"), newTestSub("a.>", q, q+"-tail"))
	}
	mustInsert(t, sl, subs...)
	got, want := describe(t, sl.Match([]byte("a.b"))), modelMatch(t, subs, "a.b")
	if got != want {
		t.Errorf("Match(a.b) = %s, want %s", got, want)
	}
}

func TestSublist_ManyMatchingNodes(t *testing.T) {
	t.Parallel()
	// A deep subject matched at every level by a ">" (and a "*" chain) hits
	// more trie nodes than the walk keeps on the stack.
	sl := NewSublist()
	var subs []*Subscription
	prefix := ""
	for i := range 3 * smallListFixed {
		subs = append(subs,
			newTestSub(prefix+">", "", "tail"+strconv.Itoa(i)),
			newTestSub(prefix+">", "g", "gtail"+strconv.Itoa(i)),
		)
		prefix += "a."
	}
	subs = append(subs, newTestSub(strings.Repeat("*.", 3*smallListFixed)+"a", "", "stars"))
	mustInsert(t, sl, subs...)
	subject := strings.Repeat("a.", 3*smallListFixed) + "a"
	if got, want := describe(t, sl.Match([]byte(subject))), modelMatch(t, subs, subject); got != want {
		t.Errorf("Match = %s, want %s", got, want)
	}
}

func TestSublist_InsertInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		subject, queue string
		want           error
	}{
		{"", "", ErrInvalidSubject},
		{"a..b", "", ErrInvalidSubject},
		{"a.>.b", "", ErrInvalidSubject},
		{"a b", "", ErrInvalidSubject},
		{"a", "q q", ErrInvalidQueue},
	}
	for _, tt := range tests {
		t.Run(tt.subject+"/"+tt.queue, func(t *testing.T) {
			t.Parallel()
			sl := NewSublist()
			err := sl.Insert(newTestSub(tt.subject, tt.queue, "1"))
			if !errors.Is(err, tt.want) {
				t.Errorf("Insert(%q, %q) = %v, want %v", tt.subject, tt.queue, err, tt.want)
			}
			if n := sl.Count(); n != 0 {
				t.Errorf("Count = %d after rejected insert, want 0", n)
			}
		})
	}
}

func TestSublist_InsertTwice_RemoveTwice(t *testing.T) {
	t.Parallel()
	for _, queue := range []string{"", "q"} {
		t.Run("queue="+queue, func(t *testing.T) {
			t.Parallel()
			sl := NewSublist()
			sub := newTestSub("a.*", queue, "1")
			mustInsert(t, sl, sub, sub)
			if n := sl.Count(); n != 1 {
				t.Fatalf("Count = %d after inserting twice, want 1", n)
			}
			r := sl.Match([]byte("a.b"))
			if n := len(r.Plain) + len(r.Queues); n != 1 {
				t.Fatalf("Match returned %s, want one entry", describe(t, r))
			}
			if !sl.Remove(sub) {
				t.Fatal("first Remove = false, want true")
			}
			if sl.Remove(sub) {
				t.Fatal("second Remove = true, want false")
			}
			if n := sl.Count(); n != 0 {
				t.Fatalf("Count = %d after remove, want 0", n)
			}
		})
	}
}

func TestSublist_RemoveUnknown(t *testing.T) {
	t.Parallel()
	sl := NewSublist()
	mustInsert(t, sl, newTestSub("a.b", "", "1"), newTestSub("a.b", "q", "2"))
	for _, sub := range []*Subscription{
		newTestSub("a.b", "", "other"),   // same subject, different pointer
		newTestSub("a.b", "q", "other"),  // same group, different pointer
		newTestSub("a.b", "q2", "other"), // unknown group
		newTestSub("a.c", "", "other"),   // unknown path
		newTestSub("a..b", "", "other"),  // invalid subject
	} {
		if sl.Remove(sub) {
			t.Errorf("Remove(%q, %q) = true for a subscription never inserted", sub.Subject, sub.Queue)
		}
	}
	if n := sl.Count(); n != 2 {
		t.Errorf("Count = %d, want 2", n)
	}
}

func TestSublist_RemovePrunes(t *testing.T) {
	t.Parallel()
	sl := NewSublist()
	var subs []*Subscription
	for i := range 200 {
		n := strconv.Itoa(i)
		subs = append(subs,
			newTestSub("a.b."+n, "", n),
			newTestSub("a.*."+n+".>", "", n),
			newTestSub("x."+n, "q"+n, n),
			newTestSub(">", "", n),
		)
	}
	mustInsert(t, sl, subs...)

	// Remove half first and check that the survivors are intact.
	rand.Shuffle(len(subs), func(i, j int) { subs[i], subs[j] = subs[j], subs[i] })
	half := len(subs) / 2
	for _, sub := range subs[:half] {
		if !sl.Remove(sub) {
			t.Fatalf("Remove(%q) = false", sub.Subject)
		}
	}
	for _, subject := range []string{"a.b.7", "a.b.7.x", "x.7", "x.150"} {
		if got, want := describe(t, sl.Match([]byte(subject))), modelMatch(t, subs[half:], subject); got != want {
			t.Errorf("Match(%q) = %s, want %s", subject, got, want)
		}
	}

	for _, sub := range subs[half:] {
		sl.Remove(sub)
	}
	if n := sl.Count(); n != 0 {
		t.Errorf("Count = %d, want 0", n)
	}
	// Every node must have been pruned: the root is as good as new.
	sl.mu.RLock()
	defer sl.mu.RUnlock()
	if !sl.root.empty() {
		t.Errorf("root not empty after removing everything: %+v", sl.root)
	}
}

func TestSublist_RemoveKeepsSharedPrefix(t *testing.T) {
	t.Parallel()
	// Removing a.b.c must prune c but keep a.b, which holds its own sub.
	sl := NewSublist()
	ab, abc := newTestSub("a.b", "", "ab"), newTestSub("a.b.c", "", "abc")
	mustInsert(t, sl, ab, abc)
	sl.Remove(abc)
	if got, want := describe(t, sl.Match([]byte("a.b"))), "plain[ab] queues[]"; got != want {
		t.Errorf("Match(a.b) = %s, want %s", got, want)
	}
	sl.mu.RLock()
	leaf := sl.root.literal["a"].literal["b"]
	sl.mu.RUnlock()
	if leaf.literal != nil {
		t.Errorf("a.b still has children %v after removing a.b.c", leaf.literal)
	}
}

func TestSublist_CacheInvalidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pattern string // pattern inserted, then removed
		queue   string
		affects bool // whether it matches "orders.eu"
	}{
		{"literal", "orders.eu", "", true},
		{"star", "orders.*", "", true},
		{"tail", "orders.>", "", true},
		{"root tail", ">", "", true},
		{"queue", "*.eu", "q", true},
		{"unrelated literal", "orders.us", "", false},
		{"unrelated wildcard", "trades.>", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sl := NewSublist()
			base := newTestSub("orders.eu", "", "base")
			mustInsert(t, sl, base)
			before := sl.Match([]byte("orders.eu"))
			beforeDesc := describe(t, before)
			sl.Match([]byte("other.subject")) // a cached entry no pattern here touches

			added := newTestSub(tt.pattern, tt.queue, "added")
			mustInsert(t, sl, added)
			after := describe(t, sl.Match([]byte("orders.eu")))
			want := modelMatch(t, []*Subscription{base, added}, "orders.eu")
			if after != want {
				t.Errorf("after Insert: Match = %s, want %s", after, want)
			}
			if changed := after != beforeDesc; changed != tt.affects {
				t.Errorf("after Insert: result changed = %v, want %v", changed, tt.affects)
			}
			// A result handed out earlier is never modified.
			if got := describe(t, before); got != beforeDesc {
				t.Errorf("earlier result mutated: %s, was %s", got, beforeDesc)
			}
			if !tt.affects && sl.Match([]byte("orders.eu")) != before {
				t.Error("unrelated Insert evicted the cached result")
			}

			sl.Remove(added)
			if got := describe(t, sl.Match([]byte("orders.eu"))); got != beforeDesc {
				t.Errorf("after Remove: Match = %s, want %s", got, beforeDesc)
			}
			// "other.subject" survives unless the pattern matches it too.
			wantLen := 2
			if SubjectMatches(tt.pattern, "other.subject") {
				wantLen = 1
			}
			if n := sl.cacheLen(); n != wantLen {
				t.Errorf("cacheLen = %d, want %d", n, wantLen)
			}
		})
	}
}

func TestSublist_StaleResultNotCached(t *testing.T) {
	t.Parallel()
	// Reproduce the race deterministically: a result computed at an old
	// generation must not be stored after an Insert has landed.
	sl := NewSublist()
	sl.mu.RLock()
	gen := sl.gen
	stale := sl.matchTrie([]byte("a.b"))
	sl.mu.RUnlock()

	mustInsert(t, sl, newTestSub("a.*", "", "1"))
	sl.store([]byte("a.b"), stale, gen)
	if n := sl.cacheLen(); n != 0 {
		t.Fatalf("stale result cached (cacheLen = %d)", n)
	}
	if got, want := describe(t, sl.Match([]byte("a.b"))), "plain[1] queues[]"; got != want {
		t.Errorf("Match(a.b) = %s, want %s", got, want)
	}
}

func TestSublist_CacheKeyCopied(t *testing.T) {
	t.Parallel()
	// Match is called on transport's read buffer, which is reused as soon
	// as it returns: the cache must key on a copy.
	sl := NewSublist()
	mustInsert(t, sl, newTestSub("buf.one", "", "1"))
	buf := []byte("buf.one")
	sl.Match(buf)
	copy(buf, "buf.two")
	if got := describe(t, sl.Match(buf)); got != "plain[] queues[]" {
		t.Errorf("Match(buf.two) = %s, want nothing", got)
	}
	if got := describe(t, sl.Match([]byte("buf.one"))); got != "plain[1] queues[]" {
		t.Errorf("Match(buf.one) = %s, want plain[1]", got)
	}
}

func TestSublist_CacheBounded(t *testing.T) {
	t.Parallel()
	sl := NewSublist()
	sl.cacheMax = 64
	mustInsert(t, sl, newTestSub("s.*", "", "1"))
	for i := range 1000 {
		subject := "s." + strconv.Itoa(i)
		if got := describe(t, sl.Match([]byte(subject))); got != "plain[1] queues[]" {
			t.Fatalf("Match(%q) = %s", subject, got)
		}
		if n := sl.cacheLen(); n > sl.cacheMax {
			t.Fatalf("cacheLen = %d, want <= %d", n, sl.cacheMax)
		}
	}
	// Emptied when full: 1000 = 15*64 + 40 stores.
	if n := sl.cacheLen(); n != 1000%sl.cacheMax {
		t.Errorf("cacheLen = %d, want %d", n, 1000%sl.cacheMax)
	}
}

// randomPattern draws a pattern from a small alphabet so that random
// patterns and subjects overlap often.
func randomPattern(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	toks := make([]string, n)
	for i := range toks {
		switch x := r.IntN(10); {
		case x < 2:
			toks[i] = "*"
		case x < 3 && i == n-1:
			toks[i] = ">"
		default:
			toks[i] = string(rune('a' + r.IntN(3)))
		}
	}
	return strings.Join(toks, ".")
}

func randomSubject(r *rand.Rand) string {
	n := 1 + r.IntN(5)
	toks := make([]string, n)
	for i := range toks {
		toks[i] = string(rune('a' + r.IntN(3)))
	}
	return strings.Join(toks, ".")
}

func randomQueue(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return "q" + strconv.Itoa(r.IntN(2))
	}
	return ""
}

func TestSublist_MatchesModel(t *testing.T) {
	t.Parallel()
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(seed, 0x5eed))
			sl := NewSublist()
			var live []*Subscription
			for op := range 2000 {
				switch x := r.IntN(10); {
				case x < 4 || len(live) == 0:
					sub := newTestSub(randomPattern(r), randomQueue(r), strconv.Itoa(op))
					mustInsert(t, sl, sub)
					live = append(live, sub)
				case x < 7:
					i := r.IntN(len(live))
					if !sl.Remove(live[i]) {
						t.Fatalf("op %d: Remove(%q) = false", op, live[i].Subject)
					}
					live = slices.Delete(live, i, i+1)
				default:
					subject := randomSubject(r)
					got, want := describe(t, sl.Match([]byte(subject))), modelMatch(t, live, subject)
					if got != want {
						t.Fatalf("op %d: Match(%q) = %s, want %s", op, subject, got, want)
					}
				}
				if sl.Count() != len(live) {
					t.Fatalf("op %d: Count = %d, want %d", op, sl.Count(), len(live))
				}
			}
		})
	}
}

func TestSublist_ConcurrentStress(t *testing.T) {
	t.Parallel()
	sl := NewSublist()
	sl.cacheMax = 32 // force eviction races too

	// Stable subscriptions are never removed, so every Match must see them
	// no matter what the churners are doing.
	stable := []*Subscription{newTestSub("a.>", "", "stable-tail"), newTestSub("*.b", "g", "stable-q")}
	mustInsert(t, sl, stable...)

	const churners, matchers, iters = 4, 4, 2000
	var wg sync.WaitGroup
	var failed atomic.Bool
	for w := range churners {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []*Subscription
			for i := range iters {
				if len(mine) > 0 && r.IntN(2) == 0 {
					j := r.IntN(len(mine))
					if !sl.Remove(mine[j]) {
						failed.Store(true)
					}
					mine = slices.Delete(mine, j, j+1)
					continue
				}
				sub := newTestSub(randomPattern(r), randomQueue(r), fmt.Sprint(w, "-", i))
				if sl.Insert(sub) != nil {
					failed.Store(true)
				}
				mine = append(mine, sub)
			}
			for _, sub := range mine {
				sl.Remove(sub)
			}
		})
	}
	for w := range matchers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for range iters {
				subject := "a." + randomSubject(r)
				res := sl.Match([]byte(subject))
				if !slices.Contains(res.Plain, stable[0]) {
					failed.Store(true)
				}
				// Read the whole result, as Publish does, to let the race
				// detector see any write to a published slice.
				for _, g := range res.Queues {
					for _, sub := range g {
						_ = sub.Subject
					}
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		t.Fatal("a stable subscription went missing or an operation failed during churn")
	}

	// Quiescent now: only the stable subscriptions remain, and every cached
	// entry must agree with the model.
	if n := sl.Count(); n != len(stable) {
		t.Errorf("Count = %d, want %d", n, len(stable))
	}
	sl.cmu.RLock()
	cached := make(map[string]*MatchResult, len(sl.cache))
	for k, v := range sl.cache {
		cached[k] = v
	}
	sl.cmu.RUnlock()
	for subject, res := range cached {
		if got, want := describe(t, res), modelMatch(t, stable, subject); got != want {
			t.Errorf("stale cache entry %q = %s, want %s", subject, got, want)
		}
	}
}

func TestSublist_MatchCached_ZeroAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun counts every allocation in the process.
	sl := NewSublist()
	mustInsert(t, sl,
		newTestSub("orders.*", "", "1"),
		newTestSub("orders.>", "workers", "2"),
	)
	for _, subject := range []string{"orders.eu", "nobody.home"} {
		b := []byte(subject)
		sl.Match(b) // warm the cache
		if n := testing.AllocsPerRun(1000, func() { sl.Match(b) }); n != 0 {
			t.Errorf("cached Match(%q) allocs = %v, want 0", subject, n)
		}
	}
}

// newBenchSublist builds a sublist shaped like a busy node: per-connection
// inbox wildcards, per-entity literals, some fan-out wildcards and a queue
// group.
func newBenchSublist(b *testing.B) *Sublist {
	sl := NewSublist()
	for i := range 1000 {
		n := strconv.Itoa(i)
		mustInsert(b, sl,
			newTestSub("_INBOX."+n+".*", "", n),
			newTestSub("orders."+n+".created", "", n),
			newTestSub("orders."+n+".created", "workers", n),
		)
	}
	mustInsert(b, sl,
		newTestSub("orders.*.created", "", "audit"),
		newTestSub("orders.>", "", "mirror"),
		newTestSub("orders.>", "workers", "w"),
	)
	return sl
}

func BenchmarkSublist_Match(b *testing.B) {
	b.Run("cached", func(b *testing.B) {
		sl := newBenchSublist(b)
		subject := []byte("orders.42.created")
		sl.Match(subject)
		b.ReportAllocs()
		for b.Loop() {
			sl.Match(subject)
		}
	})
	b.Run("cached_parallel", func(b *testing.B) {
		sl := newBenchSublist(b)
		subject := []byte("orders.42.created")
		sl.Match(subject)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sl.Match(subject)
			}
		})
	})
	b.Run("uncached", func(b *testing.B) {
		// 100k distinct subjects cycle through a 4096-entry cache, so nearly
		// every call walks the trie and then stores (and evicts).
		sl := newBenchSublist(b)
		subjects := make([][]byte, 100_000)
		for i := range subjects {
			if i%2 == 0 {
				subjects[i] = []byte("orders." + strconv.Itoa(i) + ".created")
			} else {
				subjects[i] = []byte("_INBOX." + strconv.Itoa(i%1000) + "." + strconv.Itoa(i))
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sl.Match(subjects[i%len(subjects)])
			i++
		}
	})
	b.Run("uncached_nocache", func(b *testing.B) {
		// The bare trie walk, with caching disabled by a perpetually stale
		// generation: the cost of a miss without the store.
		sl := newBenchSublist(b)
		subject := []byte("orders.42.created")
		b.ReportAllocs()
		for b.Loop() {
			sl.mu.RLock()
			sl.matchTrie(subject)
			sl.mu.RUnlock()
		}
	})
}

// BenchmarkSublist_MatchUniqueSubjects is the PubAck path: every async
// publish has its own reply subject, so each Match misses the cache and
// stores a result that is never asked for again.
func BenchmarkSublist_MatchUniqueSubjects(b *testing.B) {
	sl := NewSublist()
	for i := range 8 {
		if err := sl.Insert(newTestSub("_INBOX.c"+strconv.Itoa(i)+".*", "", strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	subjects := make([][]byte, 1<<16)
	for i := range subjects {
		subjects[i] = []byte("_INBOX.c3." + strconv.Itoa(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if r := sl.Match(subjects[i%len(subjects)]); len(r.Plain) != 1 {
			b.Fatal("no match")
		}
	}
}

// MatchOnce gives Match's answer without touching the cache.
func TestSublist_MatchOnce(t *testing.T) {
	t.Parallel()
	sl := NewSublist()
	mustInsert(t, sl, newTestSub("_INBOX.c.*", "", "1"))
	mustInsert(t, sl, newTestSub("_INBOX.>", "q", "2"))
	for _, subject := range []string{"_INBOX.c.1", "_INBOX.d.1", "other"} {
		if once, m := describe(t, sl.MatchOnce([]byte(subject))), describe(t, sl.Match([]byte(subject))); once != m {
			t.Errorf("MatchOnce(%q) = %s, Match = %s", subject, once, m)
		}
	}
	if n := sl.cacheLen(); n != 3 {
		t.Fatalf("cacheLen = %d after three Match calls, want 3", n)
	}
	sl.MatchOnce([]byte("_INBOX.c.2"))
	if n := sl.cacheLen(); n != 3 {
		t.Fatalf("MatchOnce added to the cache (cacheLen = %d)", n)
	}
}

// A subject that matches one pattern gets that node's own result, built
// once: answering PubAcks to one client's reply inbox (a new subject each
// time, so the subject cache never hits) allocates nothing. A change at the
// node drops it.
func TestSublist_OneNodeResultReused(t *testing.T) {
	sl := NewSublist()
	first := newTestSub("_INBOX.c.*", "", "1")
	mustInsert(t, sl, first)
	subjects := make([][]byte, 101)
	for i := range subjects {
		subjects[i] = []byte("_INBOX.c." + strconv.Itoa(i))
	}
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		if r := sl.MatchOnce(subjects[i]); len(r.Plain) != 1 {
			t.Fatalf("match: %+v", r)
		}
		i++
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per match, want none", allocs)
	}
	before := sl.MatchOnce([]byte("_INBOX.c.1"))
	steps := []struct {
		name   string
		change func()
		want   string
	}{
		{"insert", func() { mustInsert(t, sl, newTestSub("_INBOX.c.*", "", "2")) }, "plain[1,2] queues[]"},
		{"insert queue", func() { mustInsert(t, sl, newTestSub("_INBOX.c.*", "q", "3")) }, "plain[1,2] queues[q=3]"},
		{"remove", func() { sl.Remove(first) }, "plain[2] queues[q=3]"},
	}
	for _, st := range steps {
		st.change()
		if got := describe(t, sl.MatchOnce([]byte("_INBOX.c.1"))); got != st.want {
			t.Errorf("after %s: %s, want %s", st.name, got, st.want)
		}
	}
	if got := describe(t, before); got != "plain[1] queues[]" {
		t.Errorf("a result handed out earlier changed: %s", got)
	}
}
