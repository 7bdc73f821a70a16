package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// The raft fork sends AppendEntries in its own binary layout
// (third_party/hashicorp/raft/append_codec.go); what a follower decodes
// must be what the leader sent, field for field.

func appendRoundTrip(t *testing.T, req *raft.AppendEntriesRequest) *raft.AppendEntriesRequest {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := raft.EncodeAppendEntries(w, req); err != nil {
		t.Fatalf("encode: %v", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	buf.WriteString("next") // the decoder must stop at the request's end
	r := bufio.NewReader(&buf)
	got, err := raft.DecodeAppendEntries(r)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "next" {
		t.Fatalf("decode of %d bytes left %q, want %q", n, rest, "next")
	}
	step := max(1, n/2048)                              // every truncation of a small request, a sample of a large one
	for i := 1; i < n; i = min(i+step, max(i+1, n-1)) { // n-1 always
		if _, err := raft.DecodeAppendEntries(bufio.NewReader(bytes.NewReader(buf.Bytes()[:i]))); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("decode of the first %d of %d bytes: %v, want unexpected EOF", i, n, err)
		}
	}
	return got
}

// normalize maps what the layout does not keep apart: an empty slice
// arrives as nil, and a time as the same instant in the local zone
// without its monotonic reading.
func normalize(req *raft.AppendEntriesRequest) *raft.AppendEntriesRequest {
	c := *req
	nilEmpty := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return b
	}
	c.ID, c.Addr, c.Leader = nilEmpty(c.ID), nilEmpty(c.Addr), nilEmpty(c.Leader)
	c.Entries = nil
	for _, l := range req.Entries {
		lc := *l
		lc.Data, lc.Extensions = nilEmpty(lc.Data), nilEmpty(lc.Extensions)
		if !lc.AppendedAt.IsZero() {
			lc.AppendedAt = time.Unix(lc.AppendedAt.Unix(), int64(lc.AppendedAt.Nanosecond()))
		}
		c.Entries = append(c.Entries, &lc)
	}
	return &c
}

func describe(req *raft.AppendEntriesRequest) string {
	s := fmt.Sprintf("%+v", *req)
	for _, l := range req.Entries {
		s += fmt.Sprintf("\n  %+v", *l)
	}
	return s
}

func TestAppendCodec_RoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 30, 10, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		req  raft.AppendEntriesRequest
	}{
		{"empty", raft.AppendEntriesRequest{}},
		{"heartbeat", raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n1"), Addr: []byte("127.0.0.1:6222")},
			Term:      7, Leader: []byte("127.0.0.1:6222"),
		}},
		{"entries", raft.AppendEntriesRequest{
			RPCHeader:    raft.RPCHeader{ProtocolVersion: 3, ID: []byte("n1"), Addr: []byte("a:1")},
			Term:         1 << 40,
			PrevLogEntry: 41, PrevLogTerm: 6, LeaderCommitIndex: 40,
			Entries: []*raft.Log{
				{Index: 42, Term: 7, Type: raft.LogCommand, Data: bytes.Repeat([]byte{0xab}, 70000), AppendedAt: at},
				{Index: 43, Term: 7, Type: raft.LogNoop},
				{Index: 44, Term: 7, Type: raft.LogConfiguration, Data: []byte{1}, Extensions: []byte("ext"), AppendedAt: at.Add(-time.Hour)},
				{Index: 1<<64 - 1, Term: 1<<64 - 1, Type: raft.LogType(255), Data: []byte{}, AppendedAt: time.Unix(-1<<40, 999999999)},
			},
		}},
		{"negative protocol version", raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: -1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := appendRoundTrip(t, &tc.req)
			if want := normalize(&tc.req); !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %s\nwant    %s", describe(got), describe(want))
			}
		})
	}
}

func FuzzAppendCodec_RoundTrip(f *testing.F) {
	f.Add(uint64(1), uint64(2), uint64(3), []byte("n1"), []byte("data"), []byte(nil), int64(0), uint8(0), 2)
	f.Add(uint64(1<<63), uint64(0), uint64(1<<64-1), []byte(nil), bytes.Repeat([]byte("x"), 5000), []byte("e"), int64(-5), uint8(9), 0)
	f.Fuzz(func(t *testing.T, term, prev, commit uint64, id, data, ext []byte, at int64, typ uint8, n int) {
		req := raft.AppendEntriesRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersion(typ), ID: id, Addr: data},
			Term:      term, Leader: id, PrevLogEntry: prev, PrevLogTerm: term ^ prev, LeaderCommitIndex: commit,
		}
		for i := range n % 8 {
			l := &raft.Log{Index: prev + uint64(i) + 1, Term: term, Type: raft.LogType(typ), Data: data, Extensions: ext}
			if at != 0 {
				l.AppendedAt = time.Unix(at, at+int64(i)) // any second, any nanoseconds
			}
			req.Entries = append(req.Entries, l)
		}
		if got, want := appendRoundTrip(t, &req), normalize(&req); !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %s\nwant    %s", describe(got), describe(want))
		}
	})
}

// Whatever arrives, decoding fails or returns a request; it never panics
// and never allocates for a length the stream does not back.
func FuzzAppendCodec_Decode(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 3, 'a', 'b', 'c', 0, 0})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := raft.DecodeAppendEntries(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && req == nil {
			t.Fatal("no request and no error")
		}
	})
}

// aliasWriter records whether any one write was data itself.
type aliasWriter struct {
	data   []byte
	direct bool
	buf    bytes.Buffer
}

func (a *aliasWriter) Write(p []byte) (int, error) {
	if len(p) == len(a.data) && &p[0] == &a.data[0] {
		a.direct = true
	}
	return a.buf.Write(p)
}

// An entry larger than the writer's buffer goes to the connection from
// the entry itself, not copied into the buffer first (a publish batch of
// 1 KiB messages is about 1 MiB).
func TestAppendCodec_LargeEntryNotCopied(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte{7}, 300_000)
	aw := &aliasWriter{data: data}
	w := bufio.NewWriterSize(aw, 256*1024) // the transport's size
	req := &raft.AppendEntriesRequest{Term: 3, Leader: []byte("n1"), Entries: []*raft.Log{
		{Index: 1, Term: 3, Type: raft.LogCommand, Data: []byte("small")},
		{Index: 2, Term: 3, Type: raft.LogCommand, Data: data},
	}}
	if err := raft.EncodeAppendEntries(w, req); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !aw.direct {
		t.Error("the large entry was copied into the buffer")
	}
	got, err := raft.DecodeAppendEntries(bufio.NewReader(&aw.buf))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalize(got), normalize(req)) {
		t.Fatalf("round trip:\n%s\nwant\n%s", describe(got), describe(req))
	}
}
