package broker

import "errors"

var (
	// ErrInvalidSubject means a subject is empty, has an empty token or
	// whitespace, or (for a subscription) misplaces a `>` wildcard.
	ErrInvalidSubject = errors.New("invalid subject")
	// ErrInvalidQueue means a queue group name is not a single token
	// without whitespace.
	ErrInvalidQueue = errors.New("invalid queue group")
	// errNoSuchStream means a state file has no stream of that name.
	errNoSuchStream = errors.New("no such stream")
)
