// Package testutil holds helpers shared by tests: polling with a deadline
// instead of sleeping, and timeouts that scale on slow machines.
package testutil

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Scale multiplies d by TEST_TIMEOUT_MULT (default 1) so slow or loaded
// machines can stretch every test timeout at once.
func Scale(d time.Duration) time.Duration {
	if m, err := strconv.ParseFloat(os.Getenv("TEST_TIMEOUT_MULT"), 64); err == nil && m > 0 {
		return time.Duration(float64(d) * m)
	}
	return d
}

// Eventually polls f until it returns nil or the (scaled) timeout passes,
// then fails the test with f's last error.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(Scale(timeout))
	wait := time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", Scale(timeout), err)
		}
		time.Sleep(wait) // polling interval, not synchronisation
		wait = min(2*wait, 50*time.Millisecond)
	}
}
