package spool_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/reporter/spool"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string, opts spool.Options) *spool.Spool {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0.Add(time.Hour) }
	}
	s, err := spool.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendN(t *testing.T, s *spool.Spool, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := s.Append(t0.Add(time.Duration(i)*time.Second), []byte(fmt.Sprintf("sample-%04d", i))); err != nil {
			t.Fatal(err)
		}
	}
}

// drain peeks and acks everything, returning the payloads in order.
func drain(t *testing.T, s *spool.Spool, batch int) []string {
	t.Helper()
	var out []string
	for {
		recs, err := s.Peek(batch, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			out = append(out, string(r.Data))
		}
		if err := s.Ack(recs[len(recs)-1].End); err != nil {
			t.Fatal(err)
		}
	}
}

func names(from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Sprintf("sample-%04d", i))
	}
	return out
}

func TestOrderAcrossSegments(t *testing.T) {
	s := open(t, t.TempDir(), spool.Options{SegmentBytes: 100}) // ~3 records per segment
	appendN(t, s, 0, 50)
	if st := s.Stats(); st.Pending != 50 {
		t.Fatalf("pending = %d", st.Pending)
	}
	got := drain(t, s, 7)
	if !slices.Equal(got, names(0, 50)) {
		t.Fatalf("order = %v", got)
	}
	if st := s.Stats(); st.Pending != 0 || st.PendingBytes != 0 || st.Dropped != 0 {
		t.Fatalf("stats after drain = %+v", st)
	}
}

func TestPeekDoesNotRemove(t *testing.T) {
	s := open(t, t.TempDir(), spool.Options{})
	appendN(t, s, 0, 3)
	a, _ := s.Peek(10, 0)
	b, _ := s.Peek(10, 0)
	if len(a) != 3 || len(b) != 3 || string(a[0].Data) != string(b[0].Data) {
		t.Fatalf("peek changed the spool: %d then %d", len(a), len(b))
	}
	if !a[1].Time.Equal(t0.Add(time.Second)) {
		t.Errorf("time = %v", a[1].Time)
	}
	// A byte bound splits the batch but always yields at least one record.
	c, _ := s.Peek(10, 15)
	if len(c) != 1 {
		t.Errorf("maxBytes 15 gave %d records, want 1", len(c))
	}
	// Partial ack: only the first record goes.
	if err := s.Ack(a[0].End); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, 10); !slices.Equal(got, names(1, 2)) {
		t.Fatalf("after partial ack = %v", got)
	}
}

func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, spool.Options{SegmentBytes: 64})
	appendN(t, s, 0, 20)
	recs, _ := s.Peek(5, 0)
	if err := s.Ack(recs[4].End); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := open(t, dir, spool.Options{SegmentBytes: 64})
	if st := s2.Stats(); st.Pending != 15 {
		t.Fatalf("pending after restart = %d, want 15", st.Pending)
	}
	appendN(t, s2, 20, 5)
	if got := drain(t, s2, 4); !slices.Equal(got, names(5, 20)) {
		t.Fatalf("after restart = %v", got)
	}
	// Acknowledged segments are gone from disk; one (the active) remains.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Errorf("segments left after drain: %v", segs)
	}
}

// TestCrashMidWrite simulates a kill -9 or power cut during an append: the
// last segment ends in a partial record or garbage. Open must keep every
// complete record, drop the torn one, and accept appends after it.
func TestCrashMidWrite(t *testing.T) {
	for name, damage := range map[string]func(path string, size int64) error{
		"truncated payload": func(p string, size int64) error { return os.Truncate(p, size-3) },
		"truncated header":  func(p string, size int64) error { return appendBytes(p, []byte{0, 0, 0}) },
		"garbage tail": func(p string, size int64) error {
			return appendBytes(p, []byte("\x00\x00\x00\x05\xde\xad\xbe\xef\x00\x00\x00\x00\x00\x00\x00\x00hello"))
		},
		"huge length": func(p string, size int64) error {
			return appendBytes(p, []byte("\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
		},
		"flipped byte in last record": func(p string, size int64) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte{'X'}, size-1)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, spool.Options{})
			appendN(t, s, 0, 10)
			s.Close()
			seg := onlySegment(t, dir)
			st, _ := os.Stat(seg)
			if err := damage(seg, st.Size()); err != nil {
				t.Fatal(err)
			}

			s2 := open(t, dir, spool.Options{})
			want := names(0, 10)
			if name != "truncated header" && name != "garbage tail" && name != "huge length" {
				want = names(0, 9) // the damaged record itself is lost
			}
			if st := s2.Stats(); st.Pending != len(want) {
				t.Fatalf("pending = %d, want %d", st.Pending, len(want))
			}
			appendN(t, s2, 100, 2)
			want = append(want, names(100, 2)...)
			if got := drain(t, s2, 3); !slices.Equal(got, want) {
				t.Fatalf("after repair = %v\nwant %v", got, want)
			}
		})
	}
}

func TestDamagedCursorResendsNotLoses(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":            "{not json",
		"inside a record":    `{"segment":1,"offset":5,"dropped":0}`,
		"negative offset":    `{"segment":1,"offset":-4}`,
		"unknown segment":    `{"segment":0,"offset":0}`,
		"past every segment": `{"segment":99,"offset":0}`,
		"cursor temp left":   "",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, spool.Options{})
			appendN(t, s, 0, 4)
			s.Close()
			if content != "" {
				os.WriteFile(filepath.Join(dir, "cursor"), []byte(content), 0o600)
			} else {
				os.WriteFile(filepath.Join(dir, "cursor.tmp"), []byte("half"), 0o600)
			}
			s2 := open(t, dir, spool.Options{})
			if got := drain(t, s2, 10); !slices.Equal(got, names(0, 4)) {
				t.Fatalf("got %v", got)
			}
			if _, err := os.Stat(filepath.Join(dir, "cursor.tmp")); err == nil {
				t.Error("stale cursor.tmp left behind")
			}
		})
	}
}

func TestFullSpoolDropsOldest(t *testing.T) {
	dir := t.TempDir()
	// Each record is 16 header + 11 payload bytes; room for 10.
	s := open(t, dir, spool.Options{MaxBytes: 270, SegmentBytes: 80})
	appendN(t, s, 0, 25)
	st := s.Stats()
	if st.Pending != 10 || st.Dropped != 15 || st.PendingBytes > 270 {
		t.Fatalf("stats = %+v, want 10 pending, 15 dropped", st)
	}
	s.Close()
	// The drop count and the survivors persist.
	s2 := open(t, dir, spool.Options{MaxBytes: 270, SegmentBytes: 80})
	if st := s2.Stats(); st.Dropped != 15 || st.Pending != 10 {
		t.Fatalf("after restart = %+v", st)
	}
	if got := drain(t, s2, 4); !slices.Equal(got, names(15, 10)) {
		t.Fatalf("kept = %v, want the newest 10", got)
	}
	// Disk use stays within the bound plus one segment.
	var total int64
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for _, f := range files {
		fi, _ := os.Stat(f)
		total += fi.Size()
	}
	if total > 270+80+27 {
		t.Errorf("segments hold %d bytes", total)
	}
}

func TestAgeBound(t *testing.T) {
	now := t0.Add(30 * time.Second)
	s := open(t, t.TempDir(), spool.Options{MaxAge: 10 * time.Second, Now: func() time.Time { return now }})
	appendN(t, s, 0, 30) // samples at t0 … t0+29s
	// Older than now-10s = t0+20s: 0…19 dropped.
	if got := drain(t, s, 100); !slices.Equal(got, names(20, 10)) {
		t.Fatalf("kept = %v", got)
	}
	if st := s.Stats(); st.Dropped != 20 {
		t.Errorf("dropped = %d", st.Dropped)
	}
}

func TestAckAfterDropIsHarmless(t *testing.T) {
	s := open(t, t.TempDir(), spool.Options{MaxBytes: 27 * 3})
	appendN(t, s, 0, 3)
	recs, _ := s.Peek(3, 0)
	appendN(t, s, 3, 3) // drops 0..2 while the sender holds them
	if err := s.Ack(recs[2].End); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, 10); !slices.Equal(got, names(3, 3)) {
		t.Fatalf("got %v", got)
	}
}

func TestConcurrentAppendAndDrain(t *testing.T) {
	s := open(t, t.TempDir(), spool.Options{SegmentBytes: 200})
	done := make(chan struct{})
	go func() {
		defer close(done)
		appendN(t, s, 0, 300)
	}()
	var got []string
	for len(got) < 300 {
		recs, err := s.Peek(16, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			got = append(got, string(r.Data))
		}
		if len(recs) > 0 {
			if err := s.Ack(recs[len(recs)-1].End); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-done
	if !slices.Equal(got, names(0, 300)) {
		t.Fatal("order broken under concurrency")
	}
}

func TestClosed(t *testing.T) {
	s := open(t, t.TempDir(), spool.Options{})
	s.Close()
	if err := s.Append(t0, []byte("x")); !errors.Is(err, spool.ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
	if _, err := s.Peek(1, 0); !errors.Is(err, spool.ErrClosed) {
		t.Errorf("peek after close: %v", err)
	}
}

func TestRecordTooLarge(t *testing.T) {
	s := open(t, t.TempDir(), spool.Options{})
	err := s.Append(t0, make([]byte, spool.MaxRecordBytes+1))
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("err = %v", err)
	}
}

func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments = %v", segs)
	}
	return segs[0]
}

func appendBytes(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(b)
	return err
}

// faultyFile fails on demand: a write that stores half the record and then
// reports ENOSPC, and a truncate that fails (EIO), as a dying disk does.
type faultyFile struct {
	spool.SegFile
	mu                     sync.Mutex
	shortWrite, noTruncate bool
}

func (f *faultyFile) set(on bool) {
	f.mu.Lock()
	f.shortWrite, f.noTruncate = on, on
	f.mu.Unlock()
}

func (f *faultyFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	short := f.shortWrite
	f.mu.Unlock()
	if short {
		n, _ := f.SegFile.Write(p[:len(p)/2])
		return n, syscall.ENOSPC
	}
	return f.SegFile.Write(p)
}

func (f *faultyFile) Truncate(size int64) error {
	f.mu.Lock()
	fail := f.noTruncate
	f.mu.Unlock()
	if fail {
		return syscall.EIO
	}
	return f.SegFile.Truncate(size)
}

// TestFailedCleanupKeepsLaterRecords: an append fails half-written and the
// truncate that should cut the partial record fails too. The error says so,
// and every record appended afterwards must be readable now and after a
// restart (before, they followed the partial record in the same segment, and
// Open cut the segment there).
func TestFailedCleanupKeepsLaterRecords(t *testing.T) {
	dir := t.TempDir()
	opts := spool.Options{Now: func() time.Time { return t0 }}
	s := open(t, dir, opts)
	appendN(t, s, 0, 3)
	var faulty *faultyFile
	spool.WrapSegments(s, func(f spool.SegFile) spool.SegFile {
		faulty = &faultyFile{SegFile: f}
		return faulty
	})
	faulty.set(true)
	err := s.Append(t0.Add(3*time.Second), []byte("sample-0003"))
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with a failing disk = %v, want the write's ENOSPC and the truncate's EIO", err)
	}
	faulty.set(false)
	appendN(t, s, 4, 3)
	want := append(names(0, 3), names(4, 3)...)
	if st := s.Stats(); st.Pending != len(want) {
		t.Errorf("pending %d, want %d", st.Pending, len(want))
	}
	recs, err := s.Peek(100, 0)
	if err != nil {
		t.Fatalf("peek before the restart: %v", err)
	}
	var live []string
	for _, r := range recs {
		live = append(live, string(r.Data))
	}
	if !slices.Equal(live, want) {
		t.Fatalf("before the restart the spool reads %q, want %q", live, want)
	}
	s.Close()

	s2 := open(t, dir, opts)
	got := drain(t, s2, 2)
	if !slices.Equal(got, want) {
		t.Fatalf("after a restart the spool holds %q, want %q", got, want)
	}
	appendN(t, s2, 7, 1)
	if got := drain(t, s2, 2); !slices.Equal(got, names(7, 1)) {
		t.Fatalf("append after the restart: %q", got)
	}
}

// TestSealedSegmentAckAndRestart: acknowledging across a sealed segment
// (past its good records) deletes it and keeps the rest, across a restart.
func TestSealedSegmentAckAndRestart(t *testing.T) {
	dir := t.TempDir()
	opts := spool.Options{Now: func() time.Time { return t0 }}
	s := open(t, dir, opts)
	appendN(t, s, 0, 2)
	var faulty *faultyFile
	spool.WrapSegments(s, func(f spool.SegFile) spool.SegFile {
		faulty = &faultyFile{SegFile: f}
		return faulty
	})
	faulty.set(true)
	if err := s.Append(t0, []byte("lost")); err == nil {
		t.Fatal("append with a failing disk succeeded")
	}
	faulty.set(false)
	appendN(t, s, 2, 3)
	recs, err := s.Peek(3, 0)
	if err != nil || len(recs) != 3 {
		t.Fatalf("peek: %d records, %v", len(recs), err)
	}
	if err := s.Ack(recs[2].End); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) != 1 {
		t.Errorf("segments after acknowledging past the sealed one: %v", segs)
	}
	s2 := open(t, dir, opts)
	if got := drain(t, s2, 10); !slices.Equal(got, names(3, 2)) {
		t.Fatalf("after a restart: %q, want %q", got, names(3, 2))
	}
}
