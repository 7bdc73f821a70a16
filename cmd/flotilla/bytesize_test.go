package main

import (
	"errors"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1048576", 1 << 20},
		{"1MiB", 1 << 20},
		{"1mib", 1 << 20},
		{"64MB", 64_000_000},
		{"64 MiB", 64 << 20},
		{"4KiB", 4096},
		{"4kb", 4000},
		{"2GiB", 2 << 30},
		{"3GB", 3_000_000_000},
		{"512B", 512},
		{" 7 ", 7},
	}
	for _, tc := range cases {
		got, err := parseByteSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5MiB", "1M", "1 KiBs", "0x10", "99999999999GiB", "9223372036854775808"} {
		if got, err := parseByteSize(bad); !errors.Is(err, errByteSize) {
			t.Errorf("parseByteSize(%q) = %d, %v; want errByteSize", bad, got, err)
		}
	}
}

func TestFormatByteSize(t *testing.T) {
	t.Parallel()
	for in, want := range map[int64]string{0: "0", 1000: "1000", 4096: "4KiB", 1 << 20: "1MiB", 64 << 20: "64MiB", 3 << 30: "3GiB", 1536: "1536"} {
		if got := formatByteSize(in); got != want {
			t.Errorf("formatByteSize(%d) = %q, want %q", in, got, want)
		}
		if want == "0" {
			continue
		}
		// What help text shows must parse back to the same value.
		if back, err := parseByteSize(formatByteSize(in)); err != nil || back != in {
			t.Errorf("round trip of %d: %d, %v", in, back, err)
		}
	}
}
