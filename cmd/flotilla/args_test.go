package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestInterspersed_MovesFlagsBeforeArguments(t *testing.T) {
	t.Parallel()
	app := newApp(strings.NewReader(""), io.Discard, io.Discard)
	cases := []struct{ in, want string }{
		{"flotilla pub subj data -s nats://x:1", "flotilla pub -s nats://x:1 subj data"},
		{"flotilla pub -s nats://x:1 subj data", "flotilla pub -s nats://x:1 subj data"},
		{"flotilla sub subj --count 3 --queue q", "flotilla sub --count 3 --queue q subj"},
		{"flotilla pub subj --server=nats://x:1 data", "flotilla pub --server=nats://x:1 subj data"},
		{"flotilla pub subj -- -not-a-flag", "flotilla pub subj -- -not-a-flag"},
		{"flotilla cluster remove n3 --http-addr 127.0.0.1:8223", "flotilla cluster remove --http-addr 127.0.0.1:8223 n3"},
		{"flotilla sub subj --help", "flotilla sub --help subj"},
		{"flotilla --version", "flotilla --version"},
		{"flotilla nosuch a -b c", "flotilla nosuch a -b c"},
	}
	for _, tc := range cases {
		got := strings.Join(interspersed(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("%q -> %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := interspersed(app, []string{"flotilla"}); !slices.Equal(got, []string{"flotilla"}) {
		t.Errorf("bare: %q", got)
	}
}
