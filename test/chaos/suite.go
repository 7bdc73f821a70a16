package chaos

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SuiteConfig is what the environment chooses for a suite run.
type SuiteConfig struct {
	// Seed fixes every schedule (CHAOS_SEED; default: from the clock).
	Seed uint64
	// Duration is the nemesis time planned per cluster size
	// (CHAOS_DURATION, a Go duration; default 60s). Every fault kind runs
	// at least once across the suite however short it is.
	Duration time.Duration
	// Sizes are the cluster sizes, run one after the other (CHAOS_NODES,
	// comma-separated; default 3,5).
	Sizes []int
	// Backend is "process" (default) or "docker" (CHAOS_BACKEND).
	Backend string
	// Artifacts is where each run's artifacts go (CHAOS_ARTIFACTS). Empty:
	// a new temp dir, and only for a failed run.
	Artifacts string
	// Image is the docker backend's image (CHAOS_IMAGE, default flotilla:dev).
	Image string
	// Bin is a prebuilt flotilla binary for the process backend
	// (CHAOS_BIN); empty: the suite builds one.
	Bin string
	// Faults restricts the schedules to these fault kinds (CHAOS_FAULTS,
	// comma-separated); empty: every kind the backend supports.
	Faults []string
	// Tags are build tags for the binary the process backend builds
	// (CHAOS_BUILD_TAGS, e.g. chaosunsafe).
	Tags string
}

// SuiteFromEnv reads the CHAOS_* variables.
func SuiteFromEnv() (SuiteConfig, error) {
	c := SuiteConfig{
		Seed:      uint64(time.Now().UnixNano()) % 1_000_000_000,
		Duration:  60 * time.Second,
		Sizes:     []int{3, 5},
		Backend:   "process",
		Artifacts: os.Getenv("CHAOS_ARTIFACTS"),
		Image:     "flotilla:dev",
		Bin:       os.Getenv("CHAOS_BIN"),
		Tags:      os.Getenv("CHAOS_BUILD_TAGS"),
	}
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return c, fmt.Errorf("CHAOS_SEED=%q: %w", v, err)
		}
		c.Seed = s
	}
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return c, fmt.Errorf("CHAOS_DURATION=%q: want a Go duration such as 90s or 10m", v)
		}
		c.Duration = d
	}
	if v := os.Getenv("CHAOS_NODES"); v != "" {
		c.Sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 3 || n > 9 || n%2 == 0 {
				return c, fmt.Errorf("CHAOS_NODES=%q: want odd sizes 3..9, e.g. 3,5", v)
			}
			c.Sizes = append(c.Sizes, n)
		}
	}
	if v := os.Getenv("CHAOS_BACKEND"); v != "" {
		if v != "process" && v != "docker" {
			return c, fmt.Errorf("CHAOS_BACKEND=%q: want process or docker", v)
		}
		c.Backend = v
	}
	if v := os.Getenv("CHAOS_FAULTS"); v != "" {
		for _, f := range strings.Split(v, ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(AllFaults, f) {
				return c, fmt.Errorf("CHAOS_FAULTS: unknown fault %q (known: %s)", f, strings.Join(AllFaults, ", "))
			}
			c.Faults = append(c.Faults, f)
		}
	}
	if v := os.Getenv("CHAOS_IMAGE"); v != "" {
		c.Image = v
	}
	return c, nil
}

// Kinds returns the fault kinds to schedule on a backend with caps.
func (c SuiteConfig) Kinds(caps Capabilities) []string {
	var out []string
	for _, k := range SupportedFaults(caps) {
		if len(c.Faults) == 0 || slices.Contains(c.Faults, k) {
			out = append(out, k)
		}
	}
	return out
}
