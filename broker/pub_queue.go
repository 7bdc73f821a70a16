package broker

import "sync"

// pubQueue holds captured publishes, by value, until pubWorker takes them
// in batches.
//
// It replaced a channel of *pendingPub: a channel costs a send (a select
// with the stop channel) and a receive per message and, with values, a
// buffer of its full capacity for ever. Here a publish is one append under
// a mutex, the worker is woken only when the queue was empty, and it takes
// a whole batch at once. A batch is a slice of the queue's backing array
// that the queue never writes again, so it stays valid while it is
// proposed, committed and acknowledged.
type pubQueue struct {
	mu    sync.Mutex
	items []pendingPub // items[head:] are queued
	head  int
	space chan struct{} // made by a put that found the queue full, closed by the take that frees room
	ready chan struct{} // one token: the queue became non-empty
	limit int
	stop  <-chan struct{}
}

func newPubQueue(limit int, stop <-chan struct{}) *pubQueue {
	return &pubQueue{ready: make(chan struct{}, 1), limit: limit, stop: stop}
}

// put queues p. While the queue holds limit publishes it waits, which
// paces the publisher (TCP backpressure) instead of dropping anything. It
// returns false, without queueing, once stop is closed.
func (q *pubQueue) put(p pendingPub) bool {
	q.mu.Lock()
	for len(q.items)-q.head >= q.limit {
		if q.space == nil {
			q.space = make(chan struct{})
		}
		space := q.space
		q.mu.Unlock()
		select {
		case <-space:
		case <-q.stop:
			return false
		}
		q.mu.Lock()
	}
	if len(q.items) == cap(q.items) && q.head > 0 {
		// Growing anyway: drop the taken prefix, so that a queue that
		// never drains does not keep every publish it ever held.
		rest := make([]pendingPub, len(q.items)-q.head, 2*(len(q.items)-q.head)+1)
		copy(rest, q.items[q.head:])
		q.items, q.head = rest, 0
	}
	q.items = append(q.items, p)
	wake := len(q.items)-q.head == 1
	q.mu.Unlock()
	if wake {
		select {
		case q.ready <- struct{}{}:
		default: // a token is already waiting
		}
	}
	return true
}

// take waits for at least one publish and returns the oldest ones, at most
// maxMsgs and, beyond the first, maxBytes of headers and data. It returns
// nil once stop is closed.
func (q *pubQueue) take(maxMsgs, maxBytes int) []pendingPub {
	for {
		q.mu.Lock()
		if batch := q.takeLocked(maxMsgs, maxBytes); batch != nil {
			q.mu.Unlock()
			return batch
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-q.stop:
			return nil
		}
	}
}

func (q *pubQueue) takeLocked(maxMsgs, maxBytes int) []pendingPub {
	queued := q.items[q.head:]
	if len(queued) == 0 {
		return nil
	}
	n, size := 0, 0
	for n < len(queued) && n < maxMsgs {
		size += len(queued[n].msg.Header) + len(queued[n].msg.Data)
		if n > 0 && size > maxBytes {
			break
		}
		n++
	}
	batch := queued[:n:n] // appends to the queue never reach into it
	if n == len(queued) {
		// Everything: the next publishes go to a new array of about this
		// batch's size; the batches hold on to the old one.
		q.items, q.head = make([]pendingPub, 0, n), 0
	} else {
		q.head += n
	}
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	return batch
}
