package chaos

import "github.com/flotilla/flotilla/test/chaos/checker"

// Event is one line of the history; the checker defines it (contract C
// in docs/reliability.md).
type Event = checker.Event

// Event kinds and outcomes, as the checker names them.
const (
	KindPublish = checker.EventPublish
	KindDeliver = checker.EventDeliver
	KindAck     = checker.EventAck
	KindNemesis = checker.EventNemesis

	OutcomeOK      = checker.OutcomeOK
	OutcomeFail    = checker.OutcomeFail
	OutcomeUnknown = checker.OutcomeUnknown
)
