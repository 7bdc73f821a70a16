package checker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ReadHistory reads a history written as JSON lines (one Event per line;
// blank lines are skipped). Unknown fields are ignored so that a recorder
// may add fields before the checker knows them.
func ReadHistory(r io.Reader) ([]Event, error) {
	// bufio.Reader rather than Scanner: a line has no length limit.
	br := bufio.NewReader(r)
	var out []Event
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return out, fmt.Errorf("read history line %d: %w", line, err)
		}
		if b = bytes.TrimSpace(b); len(b) > 0 {
			var ev Event
			if jerr := json.Unmarshal(b, &ev); jerr != nil {
				return out, fmt.Errorf("read history line %d: %w", line, jerr)
			}
			out = append(out, ev)
		}
		if err != nil {
			return out, nil
		}
	}
}

// WriteHistory writes events as JSON lines, the form ReadHistory reads.
func WriteHistory(w io.Writer, history []Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false) // keep values readable in the artifact
	for i := range history {
		if err := enc.Encode(&history[i]); err != nil {
			return fmt.Errorf("write history event %d: %w", i, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}
