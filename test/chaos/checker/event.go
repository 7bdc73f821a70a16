package checker

// Event is one line of a chaos run's history. Times are monotonic
// nanoseconds since the run started; Call and Return bracket the client
// call (for a nemesis event: the fault's start and the time it was healed,
// 0 if never).
type Event struct {
	Kind   string `json:"kind"`           // EventPublish, EventDeliver, EventAck or EventNemesis
	Client string `json:"client"`         // "p1".. producers, "d1".. durable consumers, "o1" ordered consumer, "nemesis"
	Node   string `json:"node,omitempty"` // node the client was connected to (best effort)
	Call   int64  `json:"call"`
	Return int64  `json:"return"`

	// publish: one event per attempt. Value is unique per logical message
	// and is also its Nats-Msg-Id.
	Value     string `json:"value,omitempty"`
	Attempt   int    `json:"attempt,omitempty"`
	Outcome   string `json:"outcome,omitempty"`   // OutcomeOK, OutcomeFail or OutcomeUnknown
	Seq       uint64 `json:"seq,omitempty"`       // stream seq from the PubAck (ok) or of a delivered/acked message
	Duplicate bool   `json:"duplicate,omitempty"` // the PubAck said duplicate: the value was already stored
	Err       string `json:"err,omitempty"`

	// deliver (a consumer received a message) / ack (a double ack's result).
	Consumer    string `json:"consumer,omitempty"`
	ConsumerSeq uint64 `json:"consumer_seq,omitempty"`
	Delivered   uint64 `json:"delivered,omitempty"` // delivery count

	// nemesis: Value describes the fault ("kill leader n2"), Fault is its kind.
	Fault string `json:"fault,omitempty"`
}

// Event kinds.
const (
	EventPublish = "publish"
	EventDeliver = "deliver"
	EventAck     = "ack"
	EventNemesis = "nemesis"
)

// Outcomes of a publish attempt or a double ack.
const (
	OutcomeOK      = "ok"
	OutcomeFail    = "fail"    // definite: an API error reply, so it did not take effect
	OutcomeUnknown = "unknown" // timeout, no reply, connection lost: it may or may not have taken effect
)
