package raft

// Flotilla: AppendEntries requests on the wire without msgpack.
//
// Upstream encodes every request with go-msgpack, which walks each Log by
// reflection and copies its Data into the encoder's own buffer before the
// connection's bufio.Writer copies it again. AppendEntries carry nearly
// every byte a cluster sends, so the NetworkTransport sends them as
// rpcAppendEntriesBin in this fixed binary layout instead, written straight
// into the bufio.Writer and read straight from the bufio.Reader; every
// other RPC, and every response, is msgpack as upstream.
//
// Layout (uvarint unless noted; "bytes" is a uvarint length, then the
// bytes; a zero length decodes as nil):
//
//	varint ProtocolVersion | bytes ID | bytes Addr | Term | bytes Leader |
//	PrevLogEntry | PrevLogTerm | LeaderCommitIndex | count |
//	count × (Index | Term | byte Type | bytes Data | bytes Extensions |
//	         AppendedAt: byte 0 for the zero time, or byte 1, varint Unix
//	         seconds, uvarint nanoseconds)
//
// A node of this build still takes msgpack AppendEntries but sends only
// this layout, which an older build rejects: every node of a cluster runs
// the same build.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// rpcAppendEntriesBin is the RPC type of an AppendEntries in this layout.
const rpcAppendEntriesBin uint8 = 100

// maxAppendField and maxAppendCount bound a length and the entry count
// read from the wire, so a corrupt stream fails instead of allocating
// without limit (Config.MaxAppendEntries is at most 1024).
const (
	maxAppendField = 1 << 30
	maxAppendCount = 1 << 16
)

var errAppendField = errors.New("append entries: field too large")

// EncodeAppendEntries writes req in the binary layout (without the RPC
// type byte).
func EncodeAppendEntries(w *bufio.Writer, req *AppendEntriesRequest) error {
	var b [binary.MaxVarintLen64]byte
	uv := func(v uint64) { w.Write(b[:binary.PutUvarint(b[:], v)]) }
	sv := func(v int64) { w.Write(b[:binary.PutVarint(b[:], v)]) }
	bs := func(p []byte) {
		uv(uint64(len(p)))
		if len(p) > w.Size() && w.Buffered() > 0 {
			// Flotilla: bufio copies a large p until its buffer is full,
			// flushes, and writes the rest from p. Flushed first, all of p
			// goes from p, with the same two writes and no copy (up to 256
			// KiB per entry of a 1 KiB publish batch).
			w.Flush()
		}
		w.Write(p)
	}

	sv(int64(req.ProtocolVersion))
	bs(req.ID)
	bs(req.Addr)
	uv(req.Term)
	bs(req.Leader)
	uv(req.PrevLogEntry)
	uv(req.PrevLogTerm)
	uv(req.LeaderCommitIndex)
	uv(uint64(len(req.Entries)))
	for _, l := range req.Entries {
		uv(l.Index)
		uv(l.Term)
		w.WriteByte(byte(l.Type))
		bs(l.Data)
		bs(l.Extensions)
		if l.AppendedAt.IsZero() {
			w.WriteByte(0)
		} else {
			w.WriteByte(1)
			sv(l.AppendedAt.Unix())
			uv(uint64(l.AppendedAt.Nanosecond()))
		}
	}
	// bufio.Writer keeps its first error and returns it from every call
	_, err := w.Write(nil)
	return err
}

// DecodeAppendEntries reads a request written by EncodeAppendEntries.
func DecodeAppendEntries(r *bufio.Reader) (*AppendEntriesRequest, error) {
	d := appendDecoder{r: r}
	req := &AppendEntriesRequest{}
	req.ProtocolVersion = ProtocolVersion(d.varint())
	req.ID = d.bytes()
	req.Addr = d.bytes()
	req.Term = d.uvarint()
	req.Leader = d.bytes()
	req.PrevLogEntry = d.uvarint()
	req.PrevLogTerm = d.uvarint()
	req.LeaderCommitIndex = d.uvarint()
	n := d.uvarint()
	if d.err == nil && n > maxAppendCount {
		d.err = fmt.Errorf("%w: %d entries", errAppendField, n)
	}
	if d.err != nil {
		return nil, d.err
	}
	// allocated as entries arrive, not for what the count claims
	var chunk []Log
	for i := uint64(0); i < n; i++ {
		if len(chunk) == 0 {
			chunk = make([]Log, min(n-i, 256))
		}
		l := &chunk[0]
		chunk = chunk[1:]
		l.Index = d.uvarint()
		l.Term = d.uvarint()
		l.Type = LogType(d.byte())
		l.Data = d.bytes()
		l.Extensions = d.bytes()
		if d.byte() != 0 {
			sec, nsec := d.varint(), d.uvarint()
			l.AppendedAt = time.Unix(sec, int64(nsec%1e9))
		}
		if d.err != nil {
			return nil, d.err
		}
		req.Entries = append(req.Entries, l)
	}
	return req, nil
}

// appendDecoder reads fields until the first error, which it keeps.
type appendDecoder struct {
	r   *bufio.Reader
	err error
}

func (d *appendDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	d.err = noEOF(err)
	return v
}

func (d *appendDecoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadVarint(d.r)
	d.err = noEOF(err)
	return v
}

func (d *appendDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	c, err := d.r.ReadByte()
	d.err = noEOF(err)
	return c
}

func (d *appendDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	if n > maxAppendField {
		d.err = fmt.Errorf("%w: %d bytes", errAppendField, n)
		return nil
	}
	// grown as the bytes arrive (doubling), not allocated at the length
	// the stream claims
	p := make([]byte, min(n, 64<<10))
	read := 0 // p[:read] is filled
	for {
		if _, err := io.ReadFull(d.r, p[read:]); err != nil {
			d.err = noEOF(err)
			return nil
		}
		read = len(p)
		if uint64(read) == n {
			return p
		}
		grow := int(min(n-uint64(read), uint64(read)))
		p = slices.Grow(p, grow)[:read+grow]
	}
}

// noEOF turns an EOF inside a request into ErrUnexpectedEOF: the stream
// ended mid-request, which is not a clean close.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
