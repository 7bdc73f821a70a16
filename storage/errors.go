package storage

import "errors"

var (
	// ErrClosed means the store was used after Close.
	ErrClosed = errors.New("store is closed")
	// ErrCorrupt means a file is not a valid store.
	ErrCorrupt = errors.New("store file is corrupt")
)
