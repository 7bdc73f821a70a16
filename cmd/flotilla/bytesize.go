package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// errByteSize is the cause of every byte-size parse failure.
var errByteSize = errors.New(`want a byte count such as 1048576, 1MiB or 64MB`)

// byteUnits maps the accepted suffixes (case-insensitive) to multipliers.
// SI suffixes are powers of 1000 and IEC suffixes powers of 1024, so "1MB"
// is 1000000 and "1MiB" is 1048576; nothing is guessed.
var byteUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1000,
	"mb":  1000 * 1000,
	"gb":  1000 * 1000 * 1000,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
}

// parseByteSize parses a non-negative byte count: a plain integer or an
// integer followed by one of the byteUnits suffixes ("64MiB", "1 MB").
func parseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q: %w", s, errByteSize)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, errByteSize)
	}
	mult, ok := byteUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, fmt.Errorf("%q: %w", s, errByteSize)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q: %w: too large", s, errByteSize)
	}
	return n * mult, nil
}

// formatByteSize renders n in the largest IEC unit that divides it exactly,
// so help text shows "64MiB" rather than 67108864.
func formatByteSize(n int64) string {
	switch {
	case n != 0 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n != 0 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n != 0 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10)
}

// byteSizeValue is a flag.Value (used through cli.GenericFlag) holding a
// byte count parsed by parseByteSize.
type byteSizeValue struct{ n int64 }

func (v *byteSizeValue) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	v.n = n
	return nil
}

func (v *byteSizeValue) String() string {
	if v == nil {
		return ""
	}
	return formatByteSize(v.n)
}
