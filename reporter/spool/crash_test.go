package spool_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/reporter/spool"
)

// TestKill9DuringAppends kills a process that appends as fast as it can with
// SIGKILL, then checks that every append it reported as done is in the spool,
// in order, with nothing but possibly the one in flight after it.
func TestKill9DuringAppends(t *testing.T) {
	if dir := os.Getenv("SPOOL_CRASH_CHILD"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9DuringAppends$")
	cmd.Env = append(os.Environ(), "SPOOL_CRASH_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	confirmed := -1
	for sc.Scan() {
		n, err := strconv.Atoi(sc.Text())
		if err != nil {
			continue
		}
		confirmed = n
		if n >= 300 {
			break
		}
	}
	cmd.Process.Kill() // SIGKILL: no deferred code, no flush
	cmd.Wait()
	if confirmed < 300 {
		t.Fatalf("child confirmed only %d appends", confirmed)
	}

	s, err := spool.Open(dir, spool.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := drain(t, s, 50)
	if len(got) < confirmed+1 {
		t.Fatalf("spool holds %d records, child confirmed %d", len(got), confirmed+1)
	}
	for i, g := range got {
		if g != fmt.Sprintf("sample-%04d", i) {
			t.Fatalf("record %d = %q: order broken or a gap", i, g)
		}
	}
}

func crashChild(dir string) {
	s, err := spool.Open(dir, spool.Options{SegmentBytes: 1024, Now: func() time.Time { return t0 }})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		if err := s.Append(t0, []byte(fmt.Sprintf("sample-%04d", i))); err != nil {
			fmt.Println("append:", err)
			os.Exit(1)
		}
		// Confirmed only after Append returned: the record is durable.
		fmt.Println(i)
	}
}
