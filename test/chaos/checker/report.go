package checker

import (
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"
)

// Violation kinds.
const (
	KindLost             = "lost"              // an acknowledged publish is missing from a node
	KindAckMismatch      = "ack-mismatch"      // acks of a value disagree, or it is stored at another seq than acked
	KindForked           = "forked"            // two nodes hold different message lists
	KindGap              = "gap"               // sequences are not exactly 1..N
	KindDuplicate        = "duplicate"         // a value is stored more than once
	KindPhantom          = "phantom"           // a stored value that no producer published
	KindFailStored       = "fail-stored"       // a stored value whose every attempt failed definitely
	KindProducerOrder    = "producer-order"    // a producer's acknowledged values are stored out of its order
	KindConsumerSkip     = "consumer-skip"     // a consumer never received a message it had to
	KindConsumerBackward = "consumer-backward" // redelivery after an ok ack, or an ordered consumer going back
	KindConsumerMismatch = "consumer-mismatch" // a delivered message differs from the stored one
	KindProcessedTwice   = "processed-twice"   // ok double acks of two deliveries of one message
	KindConsumerState    = "consumer-state"    // a node's final consumer state is inconsistent
	KindNotLinearizable  = "not-linearizable"  // no sequential order of the publishes explains the history
	KindHistory          = "history"           // the history or final state itself is malformed
)

// Violation is one broken guarantee.
type Violation struct {
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// Report is the verdict of a Check.
type Report struct {
	Violations []Violation `json:"violations"`
	Stats      Stats       `json:"stats"`

	max int // details kept per kind
	// porcupine's view of the first illegal window, for WriteArtifacts.
	linModel *porcupine.Model
	linInfo  porcupine.LinearizationInfo
}

// Stats describes the run, whatever the verdict.
type Stats struct {
	Events          int `json:"events"`
	PublishAttempts int `json:"publish_attempts"`
	OKAttempts      int `json:"ok_attempts"`
	FailedAttempts  int `json:"failed_attempts"`
	UnknownAttempts int `json:"unknown_attempts"`
	Values          int `json:"values"`       // logical messages published
	AckedValues     int `json:"acked_values"` // with at least one ok attempt
	Deliveries      int `json:"deliveries"`
	Acks            int `json:"acks"`
	// LateCopies: copies of a message a durable consumer received after
	// its double ack returned ok, made before the ack took hold (held up
	// on the way); their own double acks are refused.
	LateCopies    int      `json:"late_copies"`
	Nodes         []string `json:"nodes"`
	ReferenceNode string   `json:"reference_node"` // whose log the history checks use
	Stored        int      `json:"stored"`         // messages in the reference log
	Lost          int      `json:"lost"`           // acked values missing from some node
	Duplicated    int      `json:"duplicated"`     // values stored more than once on some node

	Linearizability []WindowResult `json:"linearizability"`

	Faults              []FaultStats     `json:"faults"`
	FaultKinds          []FaultKindStats `json:"fault_kinds"`
	MaxUnavailable      time.Duration    `json:"max_unavailable"`
	MaxUnavailableFault string           `json:"max_unavailable_fault"`
	LongestOKGap        time.Duration    `json:"longest_ok_gap"` // longest time between two ok publish returns
	LongestOKGapStart   int64            `json:"longest_ok_gap_start"`
	ViolationCounts     map[string]int   `json:"violation_counts"`
}

// WindowResult is one linearizability check.
type WindowResult struct {
	Method   string        `json:"method"` // "exact" (whole history) or "porcupine"
	FirstSeq uint64        `json:"first_seq"`
	LastSeq  uint64        `json:"last_seq"`
	Ops      int           `json:"ops"`
	Result   string        `json:"result"` // "ok", "illegal" or "timeout"
	Elapsed  time.Duration `json:"elapsed"`
}

// FaultStats is the availability around one nemesis event.
type FaultStats struct {
	Fault string `json:"fault"`
	Desc  string `json:"desc"`
	Start int64  `json:"start"`
	End   int64  `json:"end"` // healed at (0: never)
	// Unavailable runs from the start to the return of the first ok
	// publish called after it; Recovered is false when there was none
	// (Unavailable then runs to the end of the history).
	Unavailable time.Duration `json:"unavailable"`
	Recovered   bool          `json:"recovered"`
	// Publish attempts called from the start until the next nemesis event.
	Attempts int `json:"attempts"`
	Errors   int `json:"errors"`
	Unknown  int `json:"unknown"`
}

// FaultKindStats sums FaultStats by fault kind.
type FaultKindStats struct {
	Fault          string        `json:"fault"`
	Count          int           `json:"count"`
	MaxUnavailable time.Duration `json:"max_unavailable"`
	NotRecovered   int           `json:"not_recovered"`
	Attempts       int           `json:"attempts"`
	Errors         int           `json:"errors"`
	Unknown        int           `json:"unknown"`
}

// OK tells whether no guarantee was broken.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// add records a violation, keeping at most r.max details per kind.
func (r *Report) add(kind, format string, args ...any) {
	r.Stats.ViolationCounts[kind]++
	if r.Stats.ViolationCounts[kind] <= r.max {
		r.Violations = append(r.Violations, Violation{Kind: kind, Detail: fmt.Sprintf(format, args...)})
	}
}

// finish notes, per kind, how many details the cap left out.
func (r *Report) finish() {
	for _, kind := range sortedKeys(r.Stats.ViolationCounts) {
		if n := r.Stats.ViolationCounts[kind]; n > r.max {
			r.Violations = append(r.Violations, Violation{Kind: kind, Detail: fmt.Sprintf("... and %d more", n-r.max)})
		}
	}
}
