package redisstore

import (
	"strings"
	"testing"
)

func TestDecodeMember(t *testing.T) {
	t.Parallel()
	// An instance member: bucket, n, offset, then instanceSpec "ABLALLLL":
	// cpu|cpuMax|mem|memMax|limit|pct|pctMax|read|write|used|total.
	good := "toxhc0|2|9|13.22|20||3pej1n|zik0zk|10.43||3ep6chs|cisee68||"
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"good", good, true},
		{"one field short", strings.TrimSuffix(good, "|"), false},
		{"one field long", good + "|", false},
		{"empty", "", false},
		{"bad bucket", "t!xhc0" + good[6:], false},
		{"bad count", "toxhc0|?" + good[8:], false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var m member
			if ok := decodeMember(tc.in, instanceSpec, &m); ok != tc.ok {
				t.Fatalf("decodeMember(%q) = %v, want %v", tc.in, ok, tc.ok)
			}
		})
	}
	var m member
	if !decodeMember(good, instanceSpec, &m) {
		t.Fatal("good member rejected")
	}
	if m.n != 2 || m.vals[0] != "13.22" || m.maxes[0] != "20" || m.maxes[1] != "3pej1n" || m.vals[7] != "" || m.maxes[2] != "" {
		t.Errorf("decoded %+v", m)
	}
}
