package cluster

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/hashicorp/raft"
)

// Record format of the segment log (raftlog.go), little-endian:
//
//	u32 body length | u32 CRC-32C of the body | body
//	body: u64 index | u64 term | u8 type | i64 appended-at (Unix ns)
//	      | u32 data length | data | u32 extensions length | extensions
//
// The CRC tells a complete record from one torn by a crash in the middle
// of a write (only the last batch of the last segment can be torn: every
// earlier one was fsynced before StoreLogs returned).
const (
	recHeaderLen  = 8
	recFixedLen   = 8 + 8 + 1 + 8 + 4 + 4 // body without data and extensions
	maxRecordBody = 1 << 30               // a larger length is garbage, not a record
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord: the bytes at an offset are not a complete, intact record.
var errBadRecord = errors.New("bad raft log record")

// appendRecord appends l's record to dst.
func appendRecord(dst []byte, l *raft.Log) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, recHeaderLen)...)
	dst = binary.LittleEndian.AppendUint64(dst, l.Index)
	dst = binary.LittleEndian.AppendUint64(dst, l.Term)
	dst = append(dst, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	dst = binary.LittleEndian.AppendUint64(dst, uint64(at))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	body := dst[start+recHeaderLen:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, crcTable))
	return dst
}

// recordLen returns the body length in a record header and whether it is
// plausible.
func recordLen(hdr []byte) (int, bool) {
	n := binary.LittleEndian.Uint32(hdr)
	return int(n), n >= recFixedLen && n <= maxRecordBody
}

// decodeRecord checks body against the header's CRC and decodes it into l.
// Data and Extensions are copied out of body.
func decodeRecord(hdr, body []byte, l *raft.Log) error {
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) || len(body) < recFixedLen {
		return errBadRecord
	}
	l.Index = binary.LittleEndian.Uint64(body)
	l.Term = binary.LittleEndian.Uint64(body[8:])
	l.Type = raft.LogType(body[16])
	l.AppendedAt = time.Time{}
	if at := int64(binary.LittleEndian.Uint64(body[17:])); at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	rest := body[25:]
	dn := int(binary.LittleEndian.Uint32(rest))
	if dn > len(rest)-8 {
		return errBadRecord
	}
	l.Data = cloneOrNil(rest[4 : 4+dn])
	rest = rest[4+dn:]
	en := int(binary.LittleEndian.Uint32(rest))
	if en != len(rest)-4 {
		return errBadRecord
	}
	l.Extensions = cloneOrNil(rest[4:])
	return nil
}

func cloneOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
