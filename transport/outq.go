package transport

import "net"

// outQueue is a connection's outbound bytes as a list of chunks, written
// with one writev. It replaced a single growing buffer: with 1 KiB
// messages the buffer outgrew the size kept for reuse between writes, so
// it was dropped and regrown (copying itself at every doubling) after
// every write; appendMsg was 97-99% of a subscriber node's allocations
// (3.7-5.9 GB in 10 s) in the core 1 KiB benchmark. Chunks never move once
// written to, and the writer hands full-size ones back for reuse.
type outQueue struct {
	chunks [][]byte // the last one is appended to
	n      int      // bytes queued
	free   [][]byte // empty outChunk-sized chunks to reuse
	list   [][]byte // the chunk list the writer gave back, for the next take
}

const (
	// outChunk is the size of a chunk; a bigger message gets a chunk of
	// its own, not reused.
	outChunk = 64 << 10
	// maxFreeChunks bounds what an idle connection keeps for reuse.
	maxFreeChunks = 4
)

// tail returns the chunk to append at most n more bytes to; the caller
// stores the grown chunk back with grew.
func (q *outQueue) tail(n int) []byte {
	if k := len(q.chunks); k > 0 && cap(q.chunks[k-1])-len(q.chunks[k-1]) >= n {
		return q.chunks[k-1]
	}
	var c []byte
	switch {
	case n > outChunk:
		c = make([]byte, 0, n)
	case len(q.free) > 0:
		c = q.free[len(q.free)-1]
		q.free[len(q.free)-1] = nil
		q.free = q.free[:len(q.free)-1]
	default:
		c = make([]byte, 0, outChunk)
	}
	q.chunks = append(q.chunks, c)
	return c
}

// grew stores the tail chunk after an append to it.
func (q *outQueue) grew(c []byte) {
	k := len(q.chunks) - 1
	q.n += len(c) - len(q.chunks[k])
	q.chunks[k] = c
}

// add queues p.
func (q *outQueue) add(p []byte) { q.grew(append(q.tail(len(p)), p...)) }

// take hands the queued chunks to the writer and empties the queue.
func (q *outQueue) take() ([][]byte, int) {
	chunks, n := q.chunks, q.n
	q.chunks, q.n, q.list = q.list, 0, nil
	return chunks, n
}

// recycle keeps written chunks of the standard size, and the list, for
// reuse.
func (q *outQueue) recycle(chunks [][]byte) {
	for _, c := range chunks {
		if cap(c) == outChunk && len(q.free) < maxFreeChunks {
			q.free = append(q.free, c[:0])
		}
	}
	clear(chunks)
	q.list = chunks[:0]
}

// writeChunks writes chunks with writev. net.Buffers consumes the slice it
// writes, so it works on a copy in scratch and the chunks stay intact for
// recycle.
func writeChunks(nc net.Conn, scratch *net.Buffers, chunks [][]byte) error {
	*scratch = append((*scratch)[:0], chunks...)
	b := *scratch
	_, err := b.WriteTo(nc)
	clear((*scratch)[:cap(*scratch)])
	return err
}
