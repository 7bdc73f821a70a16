package checker

import (
	"strings"
	"time"
)

// Defaults for Options fields left zero.
const (
	DefaultLinearizabilityWindow  = 2000
	DefaultLinearizabilityTimeout = 30 * time.Second
	DefaultMaxViolationsPerKind   = 20
)

// Options tune a Check.
type Options struct {
	// DurableConsumers names the durable consumers that ran until the end
	// of the run, so must have received every acknowledged message. A
	// durable consumer is named by its events' Consumer field, or by their
	// Client when Consumer is empty. Nil means every durable consumer seen
	// in the history; an empty non-nil slice means none.
	DurableConsumers []string
	// OrderedConsumers names the clients that ran an ordered consumer until
	// the end (it must read 1..N in order). Nil means the clients named
	// "o<N>", as the history format names them.
	OrderedConsumers []string

	// LinearizabilityWindow is how many consecutive stream sequences one
	// porcupine window covers (each with its publish attempts and ordered
	// reads). A log no longer than that is checked whole; otherwise the
	// first, the last, one chosen by Seed and one around the first
	// violation the exact check found. 0 means the default; negative skips
	// porcupine (the exact whole-history check always runs).
	LinearizabilityWindow int
	// LinearizabilityTimeout bounds each porcupine window; a window that
	// times out is reported in the stats, not as a violation.
	LinearizabilityTimeout time.Duration
	// Seed picks the random window, so a run's seed replays its check.
	Seed int64

	// MaxViolationsPerKind caps the details kept per kind (the count is
	// still exact in Stats.ViolationCounts). 0 means the default.
	MaxViolationsPerKind int
}

func (o Options) withDefaults() Options {
	if o.LinearizabilityWindow == 0 {
		o.LinearizabilityWindow = DefaultLinearizabilityWindow
	}
	if o.LinearizabilityTimeout <= 0 {
		o.LinearizabilityTimeout = DefaultLinearizabilityTimeout
	}
	if o.MaxViolationsPerKind <= 0 {
		o.MaxViolationsPerKind = DefaultMaxViolationsPerKind
	}
	return o
}

// isOrdered tells whether client ran an ordered consumer.
func (o Options) isOrdered(client string) bool {
	if o.OrderedConsumers != nil {
		for _, c := range o.OrderedConsumers {
			if c == client {
				return true
			}
		}
		return false
	}
	rest, ok := strings.CutPrefix(client, "o")
	if !ok || rest == "" {
		return false
	}
	for _, r := range rest {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
