// Package spool is the reporter's durable on-disk queue: every sample is
// appended here (and fsync'd) before it is sent, and removed only once the
// ingest endpoint has accepted it. A kill -9 at any moment loses at most the
// record being written; an outage of any length loses nothing until the
// configured size or age bound, beyond which the oldest records are dropped
// and counted.
//
// Layout: a directory of segment files ("<16 hex digits>.seg", numbered in
// order) holding length-prefixed, CRC-checked records, plus a "cursor" file
// naming the first record not yet acknowledged. Appends go to the newest
// segment; segments wholly behind the cursor are deleted. A torn write at the
// end of a segment (power loss mid-append) fails its checksum and is cut off
// on Open. The cursor is replaced atomically (write, fsync, rename, fsync the
// directory); if it is lost, delivery restarts at the oldest segment, which
// only re-sends samples the server already has: ingest is idempotent.
package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options bound a spool. Zero values take the defaults.
type Options struct {
	// MaxBytes bounds the records waiting to be sent (default 64 MiB: a
	// week of 10 s samples of ~1 KiB, a small host's size); beyond it the
	// oldest are dropped. Disk use can exceed it by one segment.
	MaxBytes int64
	// MaxAge drops records older than this (default 7 days: the longest
	// retention tier, beyond which ingest would discard them anyway).
	MaxAge time.Duration
	// SegmentBytes is the size at which a new segment file is started
	// (default 1 MiB).
	SegmentBytes int64
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Defaults.
const (
	DefaultMaxBytes     = 64 << 20
	DefaultMaxAge       = 7 * 24 * time.Hour
	DefaultSegmentBytes = 1 << 20
	// MaxRecordBytes bounds one record; a larger length field means a
	// corrupt header, not a real record.
	MaxRecordBytes = 16 << 20
)

// Record header: payload length, CRC-32C of timestamp+payload, timestamp
// (unix nanoseconds), all big-endian.
const headerSize = 4 + 4 + 8

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Position is a place in the spool: a segment and a byte offset in it.
type Position struct {
	Seg uint64 `json:"segment"`
	Off int64  `json:"offset"`
}

func (p Position) less(q Position) bool {
	return p.Seg < q.Seg || p.Seg == q.Seg && p.Off < q.Off
}

// Record is one queued item.
type Record struct {
	Time time.Time
	Data []byte
	// End is the position just after this record: acknowledging it
	// acknowledges everything up to and including this record.
	End Position
}

// Stats describe a spool's content.
type Stats struct {
	// Pending records are written and not yet acknowledged.
	Pending int
	// PendingBytes is their size on disk, headers included.
	PendingBytes int64
	// Dropped counts records discarded by the size or age bound since the
	// spool was created (kept in the cursor file across restarts).
	Dropped uint64
}

// Spool is a durable FIFO queue of byte records. It is safe for concurrent
// use: one goroutine may append while another peeks and acknowledges.
type Spool struct {
	dir  string
	opts Options

	mu     sync.Mutex
	segs   []segment // oldest first; the last is the one appended to
	active segFile   // open for appending: segs[len-1]
	// sealed means the active segment may end in a partial record that
	// could not be cut off: nothing more may go into it (Open stops
	// reading a segment at its first bad record), so the next append
	// starts a new segment.
	sealed bool
	// wrap, when set (tests), wraps each segment opened for appending.
	wrap    func(segFile) segFile
	cursor  Position
	pending int
	pbytes  int64
	dropped uint64
	closed  bool
	// reader is a read handle on segment readerID, kept between calls:
	// acknowledging a batch walks many records of one segment.
	reader   *os.File
	readerID uint64
}

type segment struct {
	id   uint64
	size int64
}

// segFile is what appending needs of a segment file; an interface so a test
// can make a write, an fsync or the cleanup truncate fail.
type segFile interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("spool: closed")

// Open opens (creating if needed) the spool in dir, repairing a torn tail
// left by a crash.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", dir, err)
	}
	s := &Spool{dir: dir, opts: opts}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Spool) segPath(id uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x.seg", id))
}

func (s *Spool) load() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: read %s: %w", s.dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			// A cursor write that never reached its rename.
			_ = os.Remove(filepath.Join(s.dir, name)) // best effort: a stale .tmp is removed again at the next open
			continue
		}
		hex, ok := strings.CutSuffix(name, ".seg")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(hex, 16, 64)
		if err != nil {
			continue
		}
		s.segs = append(s.segs, segment{id: id})
	}
	slices.SortFunc(s.segs, func(a, b segment) int { return cmpUint(a.id, b.id) })

	cur, dropped := s.readCursor()
	s.dropped = dropped
	if n := len(s.segs); n > 0 && cur.Seg > s.segs[n-1].id {
		// The cursor always points into an existing segment (the one
		// appended to is never deleted); one past them all is damage.
		// Trusting it would delete every record: start over instead.
		cur = Position{}
	}

	// Validate every segment, cutting a torn tail, and count what is
	// pending after the cursor.
	kept := s.segs[:0]
	for _, seg := range s.segs {
		if seg.id < cur.Seg {
			// Fully acknowledged; the crash came between saving the
			// cursor and deleting this file.
			_ = os.Remove(s.segPath(seg.id)) // best effort: a fully acknowledged segment is skipped again at the next open
			continue
		}
		size, n, nbytes, boundary, cut, err := s.scan(seg.id, cur)
		if err != nil {
			return err
		}
		if !boundary && cur.Off <= size {
			// The cursor points inside a record: rescan from the
			// segment's start. Re-sending is harmless, skipping is not.
			cur.Off = 0
			size, n, nbytes, _, cut, err = s.scan(seg.id, cur)
			if err != nil {
				return err
			}
		}
		// A torn tail that could not be cut is harmless in a segment
		// nothing appends to; the last one is sealed (below).
		s.sealed = !cut
		seg.size = size
		kept = append(kept, seg)
		s.pending += n
		s.pbytes += nbytes
	}
	s.segs = kept
	switch {
	case len(s.segs) == 0:
		s.cursor = Position{Seg: max(cur.Seg, 1)}
	case cur.Seg < s.segs[0].id:
		// The cursor's segment is gone (or there was no cursor): start at
		// the oldest record we have.
		s.cursor = Position{Seg: s.segs[0].id}
	default:
		s.cursor = Position{Seg: cur.Seg, Off: min(cur.Off, s.segs[0].size)}
	}
	if len(s.segs) == 0 {
		if err := s.newSegment(s.cursor.Seg); err != nil {
			return err
		}
	} else {
		last := s.segs[len(s.segs)-1]
		f, err := os.OpenFile(s.segPath(last.id), os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("spool: open segment: %w", err)
		}
		s.active = f
	}
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// scan walks one segment's records, truncates it at the first record that
// is incomplete or fails its checksum, and returns its valid size plus the
// number and bytes of records at or after cur.
// boundary is false when cur points into this segment but not at the start
// of a record (a damaged cursor). cut is false when a bad tail could not be
// truncated: the records before it are still good, but nothing may be
// appended after it.
func (s *Spool) scan(id uint64, cur Position) (size int64, n int, nbytes int64, boundary, cut bool, err error) {
	path := s.segPath(id)
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return 0, 0, 0, false, false, fmt.Errorf("spool: open segment: %w", err)
	}
	defer f.Close() //nolint:errcheck // read-only scan; a close error loses nothing
	var off int64
	boundary = id != cur.Seg || cur.Off == 0
	for {
		if id == cur.Seg && off == cur.Off {
			boundary = true
		}
		_, recLen, err := readRecordAt(f, off, true)
		if err != nil {
			break // the clean end, or a torn/garbage tail starting here
		}
		if id > cur.Seg || id == cur.Seg && off >= cur.Off {
			n++
			nbytes += recLen
		}
		off += recLen
	}
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, false, false, fmt.Errorf("spool: stat segment: %w", err)
	}
	cut = true
	if st.Size() != off {
		// If the cut fails the records before off are still read; only
		// appending to this segment must stop (see sealed).
		cut = f.Truncate(off) == nil && f.Sync() == nil
	}
	return off, n, nbytes, boundary, cut, nil
}

// errBadRecord marks a record that is incomplete or corrupt.
var errBadRecord = errors.New("spool: bad record")

// readRecordAt reads the record at off. With verify false only the header
// is read (the payload was checked when the spool was opened or the record
// appended); with verify true the payload is read and its checksum checked,
// which is how Open finds a torn write.
func readRecordAt(f *os.File, off int64, verify bool) (Record, int64, error) {
	var h [headerSize]byte
	if n, err := f.ReadAt(h[:], off); err != nil {
		switch {
		case n == 0 && errors.Is(err, io.EOF):
			return Record{}, 0, io.EOF // the clean end
		case errors.Is(err, io.EOF):
			return Record{}, 0, errBadRecord // a torn header
		}
		return Record{}, 0, err
	}
	n := binary.BigEndian.Uint32(h[0:4])
	sum := binary.BigEndian.Uint32(h[4:8])
	ts := int64(binary.BigEndian.Uint64(h[8:16])) //nolint:gosec // the bits Append wrote from an int64 (UnixNano); a damaged header fails the checksum
	if n > MaxRecordBytes {
		return Record{}, 0, errBadRecord
	}
	rec := Record{Time: time.Unix(0, ts).UTC()}
	if verify {
		data := make([]byte, n)
		if _, err := f.ReadAt(data, off+headerSize); err != nil {
			return Record{}, 0, errBadRecord
		}
		c := crc32.Update(0, crcTable, h[8:16])
		c = crc32.Update(c, crcTable, data)
		if c != sum {
			return Record{}, 0, errBadRecord
		}
		rec.Data = data
	}
	return rec, headerSize + int64(n), nil
}

// newSegment starts segment id and makes its creation durable before any
// record goes in, so a crash cannot lose a file whose records were fsync'd.
func (s *Spool) newSegment(id uint64) error {
	f, err := os.OpenFile(s.segPath(id), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spool: create segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		_ = f.Close() // already failing; the syncDir error is the one to report
		return err
	}
	if s.active != nil {
		s.active.Close() //nolint:errcheck // every record in the old segment was fsynced before rotating
	}
	s.active = f
	if s.wrap != nil {
		s.active = s.wrap(f)
	}
	s.segs = append(s.segs, segment{id: id})
	s.sealed = false
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: open dir: %w", err)
	}
	defer d.Close() //nolint:errcheck // opened read-only for Sync, whose error is checked
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: sync dir: %w", err)
	}
	return nil
}

// Append writes one record stamped t and fsyncs it. When it returns nil the
// record survives a crash. It then applies the size and age bounds.
func (s *Spool) Append(t time.Time, data []byte) error {
	if len(data) > MaxRecordBytes {
		return fmt.Errorf("spool: record of %d bytes exceeds %d", len(data), MaxRecordBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	last := &s.segs[len(s.segs)-1]
	if last.size >= s.opts.SegmentBytes || s.sealed {
		// (A sealed segment's good records were each fsync'd already.)
		if !s.sealed {
			if err := s.active.Sync(); err != nil {
				return fmt.Errorf("spool: sync segment: %w", err)
			}
		}
		if err := s.newSegment(last.id + 1); err != nil {
			return err
		}
		last = &s.segs[len(s.segs)-1]
	}
	buf := make([]byte, headerSize+len(data))
	binary.BigEndian.PutUint32(buf[0:4], uint32(len(data))) //nolint:gosec // len(data) <= MaxRecordBytes (16 MiB), checked at the top of Append
	binary.BigEndian.PutUint64(buf[8:16], uint64(t.UnixNano()))
	copy(buf[headerSize:], data)
	c := crc32.Update(0, crcTable, buf[8:16])
	binary.BigEndian.PutUint32(buf[4:8], crc32.Update(c, crcTable, data))
	// One write call, so a crash leaves at most one partial record, which
	// the checksum exposes.
	if _, err := s.active.Write(buf); err != nil {
		return s.failedAppend(last.size, fmt.Errorf("spool: append: %w", err))
	}
	if err := s.active.Sync(); err != nil {
		return s.failedAppend(last.size, fmt.Errorf("spool: fsync: %w", err))
	}
	last.size += int64(len(buf))
	s.pending++
	s.pbytes += int64(len(buf))
	return s.enforce()
}

// failedAppend cleans up after a write or fsync that failed: it cuts the
// active segment back to good, its size before the append, so the next
// append starts clean. If the cut fails too, the segment may end in a
// partial record, and Open stops reading a segment at its first bad record:
// anything appended after it would be lost at the next start. So the
// segment is sealed and the next append starts a new one. Caller holds mu.
func (s *Spool) failedAppend(good int64, err error) error {
	if terr := s.active.Truncate(good); terr != nil {
		s.sealed = true
		return fmt.Errorf("%w; cutting the partial record also failed (%w): the next record starts a new segment", err, terr)
	}
	return err
}

// enforce drops the oldest records while the spool is over its size bound or
// holds records older than the age bound. Caller holds mu.
func (s *Spool) enforce() error {
	oldest := s.opts.Now().Add(-s.opts.MaxAge)
	droppedNow := 0
	for s.pending > 0 {
		rec, size, err := s.readAt(s.cursor, false)
		if err != nil {
			return err
		}
		if s.pbytes <= s.opts.MaxBytes && !rec.Time.Before(oldest) {
			break
		}
		s.cursor = rec.End
		s.pending--
		s.pbytes -= size
		s.dropped++
		droppedNow++
	}
	if droppedNow == 0 {
		return nil
	}
	return s.saveCursor()
}

// readAt reads the record at p, stepping over segment ends. Caller holds mu.
func (s *Spool) readAt(p Position, withData bool) (Record, int64, error) {
	for i := range s.segs {
		seg := s.segs[i]
		if seg.id < p.Seg {
			continue
		}
		if seg.id > p.Seg {
			p = Position{Seg: seg.id}
		}
		if p.Off >= seg.size {
			continue // at the end of this segment: the next one starts at 0
		}
		if s.reader == nil || s.readerID != seg.id {
			if s.reader != nil {
				s.reader.Close() //nolint:errcheck // read-only reader; a close error loses nothing
			}
			f, err := os.Open(s.segPath(seg.id))
			if err != nil {
				s.reader = nil
				return Record{}, 0, fmt.Errorf("spool: open segment: %w", err)
			}
			s.reader, s.readerID = f, seg.id
		}
		rec, n, err := readRecordAt(s.reader, p.Off, withData)
		if err != nil {
			return Record{}, 0, fmt.Errorf("spool: read segment %x at %d: %w", seg.id, p.Off, err)
		}
		rec.End = Position{Seg: seg.id, Off: p.Off + n}
		return rec, n, nil
	}
	return Record{}, 0, io.EOF
}

// Peek returns up to max of the oldest pending records, in order, without
// removing them; maxBytes (if > 0) bounds their total payload size, though
// at least one record is returned. Records past the age bound are dropped
// first.
func (s *Spool) Peek(max int, maxBytes int) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if err := s.enforce(); err != nil {
		return nil, err
	}
	var out []Record
	p := s.cursor
	size := 0
	for len(out) < max && len(out) < s.pending {
		rec, _, err := s.readAt(p, true)
		if err != nil {
			return nil, err
		}
		if maxBytes > 0 && len(out) > 0 && size+len(rec.Data) > maxBytes {
			break
		}
		size += len(rec.Data)
		out = append(out, rec)
		p = rec.End
	}
	return out, nil
}

// Ack removes every record up to and including the one ending at end (a
// Record.End from Peek), durably. Acknowledging records that the bounds
// already dropped is harmless.
func (s *Spool) Ack(end Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.cursor.less(end) {
		return nil
	}
	for s.pending > 0 && s.cursor.less(end) {
		rec, size, err := s.readAt(s.cursor, false)
		if err != nil {
			return err
		}
		s.cursor = rec.End
		s.pending--
		s.pbytes -= size
	}
	if err := s.saveCursor(); err != nil {
		return err
	}
	// Delete segments the cursor has left behind (never the active one).
	// The cursor is saved first: a crash in between leaves files that Open
	// removes.
	for len(s.segs) > 1 && (s.segs[0].id < s.cursor.Seg || s.cursor.Off >= s.segs[0].size && s.cursor.Seg == s.segs[0].id) {
		if s.reader != nil && s.readerID == s.segs[0].id {
			s.reader.Close() //nolint:errcheck // read-only reader; a close error loses nothing
			s.reader = nil
		}
		if err := os.Remove(s.segPath(s.segs[0].id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("spool: remove segment: %w", err)
		}
		s.segs = s.segs[1:]
		if s.cursor.Seg < s.segs[0].id {
			s.cursor = Position{Seg: s.segs[0].id}
		}
	}
	return nil
}

// cursorFile is the on-disk cursor.
type cursorFile struct {
	Position
	Dropped uint64 `json:"dropped"`
}

func (s *Spool) readCursor() (Position, uint64) {
	b, err := os.ReadFile(filepath.Join(s.dir, "cursor"))
	if err != nil {
		return Position{}, 0
	}
	var c cursorFile
	if json.Unmarshal(b, &c) != nil || c.Off < 0 {
		// A damaged cursor costs re-sending, never losing.
		return Position{}, 0
	}
	return c.Position, c.Dropped
}

// saveCursor replaces the cursor file atomically. Caller holds mu.
func (s *Spool) saveCursor() error {
	b, _ := json.Marshal(cursorFile{Position: s.cursor, Dropped: s.dropped})
	tmp := filepath.Join(s.dir, "cursor.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: write cursor: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, "cursor"))
	}
	if err != nil {
		_ = os.Remove(tmp) // best effort cleanup; the write error is the one to report
		return fmt.Errorf("spool: write cursor: %w", err)
	}
	return syncDir(s.dir)
}

// Stats returns the current counts.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Pending: s.pending, PendingBytes: s.pbytes, Dropped: s.dropped}
}

// Close releases the files. Everything appended is already durable.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.reader != nil {
		s.reader.Close() //nolint:errcheck // read-only reader; the active segment's close is checked below
	}
	return s.active.Close()
}
