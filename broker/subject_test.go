package broker

import (
	"strings"
	"testing"
)

func TestValidSubject(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("tok.", 5000) + "end" // 20 kB, 5001 tokens
	tests := []struct {
		name    string
		subject string
		sub     bool // valid as a subscription subject
		pub     bool // valid as a publish subject
	}{
		{"single token", "foo", true, true},
		{"several tokens", "foo.bar.baz", true, true},
		{"star alone", "*", true, false},
		{"tail alone", ">", true, false},
		{"star middle", "foo.*.baz", true, false},
		{"star last", "foo.*", true, false},
		{"tail last", "foo.>", true, false},
		{"star then tail", "*.>", true, false},
		{"tail middle", "foo.>.bar", false, false},
		{"tail first", ">.foo", false, false},
		{"tail twice", ">.>", false, false},
		{"star in token is literal", "foo*", true, true},
		{"tail in token is literal", "a>b", true, true},
		{"wildcard chars as literal tokens", "*a.b>.>c", true, true},
		{"empty", "", false, false},
		{"dot alone", ".", false, false},
		{"leading dot", ".foo", false, false},
		{"trailing dot", "foo.", false, false},
		{"empty token", "a..b", false, false},
		{"trailing dot after star", "foo.*.", false, false},
		{"space", "foo bar", false, false},
		{"leading space", " foo", false, false},
		{"tab", "foo\tbar", false, false},
		{"CR", "foo\r", false, false},
		{"LF", "foo\nbar", false, false},
		{"whitespace token", "a. .b", false, false},
		{"unicode", "ünï.cødé", true, true},
		{"inbox", "_INBOX.abcdefghijklmnopqrstuv.12345678", true, true},
		{"JS API", "$JS.API.STREAM.INFO.orders", true, true},
		{"very long", long, true, true},
		{"very long with tail", long + ".>", true, false},
		{"very long empty token", long + "..x", false, false},
		{"very long with space", long + " x", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ValidSubject(tt.subject); got != tt.sub {
				t.Errorf("ValidSubject(%.40q) = %v, want %v", tt.subject, got, tt.sub)
			}
			if got := ValidLiteralSubject([]byte(tt.subject)); got != tt.pub {
				t.Errorf("ValidLiteralSubject(%.40q) = %v, want %v", tt.subject, got, tt.pub)
			}
		})
	}
}

func TestValidQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		queue string
		want  bool
	}{
		{"workers", true},
		{"a.b", true},
		{"*", true},
		{"q-1_x", true},
		{"", false},
		{"a b", false},
		{"a\tb", false},
		{"a\r", false},
		{"\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.queue, func(t *testing.T) {
			t.Parallel()
			if got := ValidQueue(tt.queue); got != tt.want {
				t.Errorf("ValidQueue(%q) = %v, want %v", tt.queue, got, tt.want)
			}
		})
	}
}

func TestSubjectMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"foo", "foo", true},
		{"foo", "bar", false},
		{"foo", "foo.bar", false},
		{"foo.bar", "foo", false},
		{"foo.bar", "foo.bar", true},
		{"*", "foo", true},
		{"*", "foo.bar", false},
		{"foo.*", "foo.bar", true},
		{"foo.*", "foo", false},
		{"foo.*", "foo.bar.baz", false},
		{"*.bar", "foo.bar", true},
		{"*.bar", "foo.baz", false},
		{"*.*", "a.b", true},
		{"*.*", "a", false},
		{">", "foo", true},
		{">", "foo.bar.baz", true},
		{"foo.>", "foo", false},
		{"foo.>", "foo.bar", true},
		{"foo.>", "foo.bar.baz", true},
		{"foo.>", "bar.baz", false},
		{"*.>", "foo", false},
		{"*.>", "foo.bar", true},
		{"foo.*.>", "foo.bar.baz.qux", true},
		{"foo.*.baz", "foo.bar.baz", true},
		{"foo.*.baz", "foo.bar.qux", false},
		{"foo*", "foo", false},
		{"foo*", "foo*", true},
		{"a>b", "a>b", true},
		{"a>b", "axb", false},
		{"_INBOX.abc.*", "_INBOX.abc.xyz", true},
		{"_INBOX.abc.*", "_INBOX.abd.xyz", false},
		{"foo.bar", "foo.barr", false},
		{"foo.barr", "foo.bar", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+"~"+tt.subject, func(t *testing.T) {
			t.Parallel()
			if got := SubjectMatches(tt.pattern, tt.subject); got != tt.want {
				t.Errorf("SubjectMatches(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
			}
		})
	}
}

func TestIsLiteral(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		want    bool
	}{
		{"foo", true},
		{"foo.bar", true},
		{"foo*.a>b", true},
		{"*", false},
		{">", false},
		{"foo.*.bar", false},
		{"foo.>", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			t.Parallel()
			if got := isLiteral(tt.pattern); got != tt.want {
				t.Errorf("isLiteral(%q) = %v, want %v", tt.pattern, got, tt.want)
			}
		})
	}
}

func TestValidLiteralSubject_NoAllocs(t *testing.T) {
	// Not parallel: AllocsPerRun is distorted by concurrent tests.
	b := []byte("orders.eu.created.12345")
	if n := testing.AllocsPerRun(100, func() { ValidLiteralSubject(b) }); n != 0 {
		t.Errorf("ValidLiteralSubject allocs = %v, want 0", n)
	}
}
