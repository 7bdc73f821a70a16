package transport

import (
	"bytes"
	"net"
	"testing"
)

// Queued bytes come out in order across chunk boundaries and messages
// bigger than a chunk; written chunks are reused, at most maxFreeChunks.
func TestOutQueue_OrderAndReuse(t *testing.T) {
	t.Parallel()
	var q outQueue
	var want bytes.Buffer
	for i, size := range []int{10, outChunk - 20, 30, outChunk + 5, 1, outChunk, 7} {
		p := bytes.Repeat([]byte{byte('a' + i)}, size)
		q.add(p)
		want.Write(p)
	}
	if q.n != want.Len() {
		t.Fatalf("queued %d bytes, want %d", q.n, want.Len())
	}
	chunks, n := q.take()
	if n != want.Len() || q.n != 0 || len(q.chunks) != 0 {
		t.Fatalf("take: %d bytes, queue left with %d bytes in %d chunks", n, q.n, len(q.chunks))
	}
	server, client := net.Pipe()
	got := make(chan []byte)
	go func() {
		b := make([]byte, n)
		k := 0
		for k < n {
			m, err := client.Read(b[k:])
			if err != nil {
				break
			}
			k += m
		}
		got <- b[:k]
	}()
	var scratch net.Buffers
	if err := writeChunks(server, &scratch, chunks); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("wrote %d bytes that differ from the %d queued", len(b), want.Len())
	}
	for i, c := range chunks {
		if c == nil {
			t.Fatalf("chunk %d was consumed by the write", i)
		}
	}
	standard := 0
	for _, c := range chunks {
		if cap(c) == outChunk {
			standard++
		}
	}
	q.recycle(chunks)
	if len(q.free) != min(standard, maxFreeChunks) {
		t.Fatalf("%d chunks kept for reuse, want %d", len(q.free), min(standard, maxFreeChunks))
	}
	q.add([]byte("x"))
	if len(q.free) != min(standard, maxFreeChunks)-1 {
		t.Fatal("a new chunk was allocated although a free one was kept")
	}
}
