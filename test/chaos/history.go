package chaos

import (
	"slices"
	"sync"
	"time"
)

// History collects the events of one run. Times are monotonic nanoseconds
// since the run started (time.Since reads Go's monotonic clock, so wall
// clock steps cannot reorder events).
type History struct {
	start  time.Time
	mu     sync.Mutex
	events []Event
}

// NewHistory starts the run's clock.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the run's clock: nanoseconds since the run started.
func (h *History) Now() int64 { return time.Since(h.start).Nanoseconds() }

// Add records one event.
func (h *History) Add(e Event) {
	h.mu.Lock()
	h.events = append(h.events, e)
	h.mu.Unlock()
}

// Events returns a copy of the events ordered by call time (stable, so
// events of one client keep their order).
func (h *History) Events() []Event {
	h.mu.Lock()
	out := slices.Clone(h.events)
	h.mu.Unlock()
	slices.SortStableFunc(out, func(a, b Event) int {
		switch {
		case a.Call < b.Call:
			return -1
		case a.Call > b.Call:
			return 1
		}
		return 0
	})
	return out
}

// Counts returns how many events of each kind and outcome were recorded,
// for progress lines.
func (h *History) Counts() (publishes, acked, delivers int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		switch e.Kind {
		case KindPublish:
			publishes++
			if e.Outcome == OutcomeOK {
				acked++
			}
		case KindDeliver:
			delivers++
		}
	}
	return publishes, acked, delivers
}
