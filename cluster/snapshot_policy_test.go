package cluster

import "testing"

func TestSnapshotDue(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	for _, tc := range []struct {
		name      string
		entries   uint64
		logBytes  uint64
		state     int64
		threshold uint64
		ratio     float64
		want      bool
	}{
		{"too few entries", 8191, 10 * mib, mib, 8192, 1, false},
		{"entries and log as big as the state", 8192, mib, mib, 8192, 1, true},
		{"log smaller than the state", 100000, mib - 1, mib, 8192, 1, false},
		{"half ratio", 100000, mib / 2, mib, 8192, 0.5, true},
		{"ratio 0: entries alone", 8192, 0, 1 << 40, 8192, 0, true},
		{"ratio 0 still needs the entries", 10, 1 << 40, 1, 8192, 0, false},
		{"big state, little log", 1 << 30, 100 * mib, 4096 * mib, 8192, 1, false},
	} {
		if got := snapshotDue(tc.entries, tc.logBytes, tc.state, tc.threshold, tc.ratio); got != tc.want {
			t.Errorf("%s: snapshotDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}
