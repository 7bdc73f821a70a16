package broker

import (
	"slices"
	"strings"
	"testing"
)

// refValidSubject is a deliberately naive restatement of the subject rules
// (split, then check each token) that the single-pass validator is checked
// against.
func refValidSubject(s string, wildcards bool) bool {
	if s == "" {
		return false
	}
	toks := strings.Split(s, ".")
	for i, tok := range toks {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			return false
		}
		if tok == "*" || tok == ">" {
			if !wildcards || (tok == ">" && i != len(toks)-1) {
				return false
			}
		}
	}
	return true
}

// refSubjectMatches is the naive restatement of NATS matching.
func refSubjectMatches(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	if slices.Contains(s, "") {
		return false // a subject with an empty token reaches no one
	}
	for i, tok := range p {
		if tok == ">" && i == len(p)-1 {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

var fuzzSubjectSeeds = [][2]string{
	{"foo", "foo"},
	{"foo.*", "foo.bar"},
	{"foo.>", "foo.bar.baz"},
	{">", "a"},
	{"*", "a.b"},
	{"*.>", "a"},
	{"a.*.c", "a.b.c"},
	{"foo*", "foo*"},
	{"a>b", "a>b"},
	{"a..b", "a..b"},
	{".", "."},
	{"", ""},
	{"a.>.b", "a.x.b"},
	{"foo bar", "foo bar"},
	{"_INBOX.abc.*", "_INBOX.abc.12345678"},
	{"a.", "a."},
	{"a.*", "a."},
}

// FuzzSubjectMatches checks that validation and matching never panic, agree
// with the naive reference model, and that a Sublist holding the fuzzed
// pattern matches exactly when SubjectMatches says so, from the trie and
// from the cache.
func FuzzSubjectMatches(f *testing.F) {
	for _, s := range fuzzSubjectSeeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		for _, s := range []string{pattern, subject} {
			if got, want := ValidSubject(s), refValidSubject(s, true); got != want {
				t.Fatalf("ValidSubject(%q) = %v, reference says %v", s, got, want)
			}
			if got, want := ValidLiteralSubject([]byte(s)), refValidSubject(s, false); got != want {
				t.Fatalf("ValidLiteralSubject(%q) = %v, reference says %v", s, got, want)
			}
			if got, want := ValidQueue(s), s != "" && !strings.ContainsAny(s, " \t\r\n"); got != want {
				t.Fatalf("ValidQueue(%q) = %v, want %v", s, got, want)
			}
		}
		matches := SubjectMatches(pattern, subject)
		if want := refSubjectMatches(pattern, subject); matches != want {
			t.Fatalf("SubjectMatches(%q, %q) = %v, reference says %v", pattern, subject, matches, want)
		}

		sl := NewSublist()
		sl.Match([]byte(subject)) // an empty list must cope with anything
		plain := &Subscription{Subject: pattern, SID: "plain"}
		queued := &Subscription{Subject: pattern, Queue: "q", SID: "queued"}
		if err := sl.Insert(plain); err != nil {
			if ValidSubject(pattern) {
				t.Fatalf("Insert(%q): %v", pattern, err)
			}
			return
		}
		if err := sl.Insert(queued); err != nil {
			t.Fatalf("Insert(%q, q): %v", pattern, err)
		}
		// The Sublist tokenizes any subject the same way SubjectMatches
		// does, so they agree even on subjects a publisher could not send.
		for _, from := range []string{"trie", "cache"} {
			r := sl.Match([]byte(subject))
			gotPlain := len(r.Plain) == 1 && r.Plain[0] == plain
			gotQueue := len(r.Queues) == 1 && len(r.Queues[0]) == 1 && r.Queues[0][0] == queued
			if gotPlain != matches || gotQueue != matches || len(r.Plain) > 1 || len(r.Queues) > 1 {
				t.Fatalf("Match(%q) from %s with pattern %q = %+v, SubjectMatches = %v",
					subject, from, pattern, r, matches)
			}
		}
		if !sl.Remove(plain) || !sl.Remove(queued) {
			t.Fatalf("Remove(%q) = false", pattern)
		}
		if r := sl.Match([]byte(subject)); len(r.Plain)+len(r.Queues) != 0 {
			t.Fatalf("Match(%q) after Remove = %+v, want nothing", subject, r)
		}
		if !sl.root.empty() {
			t.Fatalf("trie not pruned after removing %q", pattern)
		}
	})
}

// fuzzPatterns and fuzzSubjects are small alphabets so that the fuzzer's
// byte script produces overlapping patterns and plenty of matches.
var (
	fuzzPatterns = []string{
		"a", "b", "a.b", "a.c", "*", ">", "a.*", "*.b", "a.>", "*.*",
		"*.>", "a.b.c", "a.*.c", "a.b.>", "b.>", "*.*.*",
	}
	fuzzSubjects = []string{"a", "b", "a.b", "a.c", "b.b", "a.b.c", "a.x.c", "a.b.c.d"}
)

// FuzzSublist_Ops interprets its input as a script of Insert, Remove and
// Match operations and checks every Match against the brute-force model,
// and that Count and pruning stay right.
func FuzzSublist_Ops(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0x06, 0x48, 0x16, 0x83, 0x88, 0x40, 0x85, 0x2a})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 256 {
			// Checks are O(live) per op; long scripts add time, not coverage.
			script = script[:256]
		}
		sl := NewSublist()
		var live []*Subscription
		for i, op := range script {
			arg := int(op & 0x3f)
			switch op >> 6 {
			case 0, 1: // insert; bit 6 picks one of two queue names, bit 5 plain
				queue := ""
				if op&0x20 != 0 {
					queue = []string{"q0", "q1"}[op>>6&1]
				}
				sub := newTestSub(fuzzPatterns[arg%len(fuzzPatterns)], queue, string(rune('A'+i%26))+strings.Repeat("'", i/26))
				mustInsert(t, sl, sub)
				live = append(live, sub)
			case 2: // remove
				if len(live) == 0 {
					continue
				}
				j := arg % len(live)
				if !sl.Remove(live[j]) {
					t.Fatalf("op %d: Remove(%q) = false", i, live[j].Subject)
				}
				live = append(live[:j], live[j+1:]...)
			case 3: // match
				subject := fuzzSubjects[arg%len(fuzzSubjects)]
				if got, want := describe(t, sl.Match([]byte(subject))), modelMatch(t, live, subject); got != want {
					t.Fatalf("op %d: Match(%q) = %s, want %s", i, subject, got, want)
				}
			}
		}
		for _, subject := range fuzzSubjects {
			if got, want := describe(t, sl.Match([]byte(subject))), modelMatch(t, live, subject); got != want {
				t.Fatalf("final Match(%q) = %s, want %s", subject, got, want)
			}
		}
		if sl.Count() != len(live) {
			t.Fatalf("Count = %d, want %d", sl.Count(), len(live))
		}
		for _, sub := range live {
			sl.Remove(sub)
		}
		if !sl.root.empty() {
			t.Fatal("trie not pruned after removing everything")
		}
	})
}
