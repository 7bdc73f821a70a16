package broker

import "bytes"

// JetStream publish headers (reference §2.6). Keys are case-sensitive,
// exactly as nats-server compares them.
const (
	hdrMsgID              = "Nats-Msg-Id"
	hdrExpectedStream     = "Nats-Expected-Stream"
	hdrExpectedLastSeq    = "Nats-Expected-Last-Sequence"
	hdrExpectedLastMsgID  = "Nats-Expected-Last-Msg-Id"
	hdrExpectedLastSubj   = "Nats-Expected-Last-Subject-Sequence"
	hdrExpectedLastSubjOn = "Nats-Expected-Last-Subject-Sequence-Subject"
	hdrRollup             = "Nats-Rollup"

	rollupSubject = "sub"
	rollupAll     = "all"
)

// pubHeaders are the JetStream headers of one publish. Each field is the
// header's value with surrounding blanks trimmed, aliasing the header
// block; nil (or empty) means absent, as with nats-server, which ignores
// a header with an empty value.
type pubHeaders struct {
	msgID           []byte
	expStream       []byte
	expLastSeq      []byte
	expLastMsgID    []byte
	expLastSubjSeq  []byte
	expLastSubjOn   []byte
	rollup          []byte
	hasExpectations bool // any Nats-Expected-* header
}

// parsePubHeaders reads a raw header block ("NATS/1.0[ status]\r\n" then
// "Key: Value\r\n" lines and an empty line) without allocating. The first
// occurrence of a key wins. Lines without a colon are skipped; a bare
// "\n" line ending is accepted.
func parsePubHeaders(hdr []byte) pubHeaders {
	var h pubHeaders
	if len(hdr) == 0 {
		return h
	}
	// Skip the version/status line.
	i := bytes.IndexByte(hdr, '\n')
	if i < 0 {
		return h
	}
	rest := hdr[i+1:]
	for len(rest) > 0 {
		line := rest
		if j := bytes.IndexByte(rest, '\n'); j >= 0 {
			line, rest = rest[:j], rest[j+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			break // end of the header block
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !bytes.HasPrefix(line, []byte("Nats-")) {
			continue
		}
		key, val := line[:colon], trimBlanks(line[colon+1:])
		var dst *[]byte
		switch string(key) {
		case hdrMsgID:
			dst = &h.msgID
		case hdrExpectedStream:
			dst = &h.expStream
		case hdrExpectedLastSeq:
			dst = &h.expLastSeq
		case hdrExpectedLastMsgID:
			dst = &h.expLastMsgID
		case hdrExpectedLastSubj:
			dst = &h.expLastSubjSeq
		case hdrExpectedLastSubjOn:
			dst = &h.expLastSubjOn
		case hdrRollup:
			dst = &h.rollup
		default:
			continue
		}
		if len(*dst) == 0 && len(val) > 0 {
			*dst = val
		}
	}
	h.hasExpectations = len(h.expStream) > 0 || len(h.expLastSeq) > 0 || len(h.expLastMsgID) > 0 ||
		len(h.expLastSubjSeq) > 0 || len(h.expLastSubjOn) > 0
	return h
}

func trimBlanks(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseSeq parses a decimal sequence number; ok is false for anything
// else (nats-server then compares a value no sequence can equal).
func parseSeq(b []byte) (seq uint64, ok bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if seq > (^uint64(0)-d)/10 {
			return 0, false
		}
		seq = seq*10 + d
	}
	return seq, true
}
