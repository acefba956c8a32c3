package spool_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/reporter/spool"
)

// FuzzOpenDamagedSegment writes good records followed by arbitrary bytes (a
// torn write, disk garbage) and checks that Open never fails or panics, keeps
// every good record in order, and leaves a spool that accepts appends.
func FuzzOpenDamagedSegment(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0})
	f.Add([]byte("\x00\x00\x00\x05\xde\xad\xbe\xef\x00\x00\x00\x00\x00\x00\x00\x00hello"))
	f.Add([]byte("\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte(`{"segment":1,"offset":3}`))
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		s, err := spool.Open(dir, spool.Options{Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, s, 0, 3)
		s.Close()
		segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		if err := appendBytes(segs[0], tail); err != nil {
			t.Fatal(err)
		}
		// The same bytes as a cursor file must not hurt either.
		os.WriteFile(filepath.Join(dir, "cursor"), tail, 0o600)

		s2, err := spool.Open(dir, spool.Options{Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatalf("Open after damage: %v", err)
		}
		defer s2.Close()
		appendN(t, s2, 3, 1)
		got := drain(t, s2, 2)
		// A tail that happens to be a valid record survives; the three good
		// records must always come first, in order, and the new one last.
		if len(got) < 4 || got[0] != "sample-0000" || got[1] != "sample-0001" || got[2] != "sample-0002" || got[len(got)-1] != "sample-0003" {
			t.Fatalf("records after damage: %q", got)
		}
	})
}
