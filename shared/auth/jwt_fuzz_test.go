package auth_test

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
)

// FuzzVerifyClaims signs arbitrary claims text and verifies it: Verify
// never panics, and whatever it accepts reads the same through a plain,
// case-sensitive map decode (the reading any other RFC 7519 verifier
// has): the same servers, an exp that is a number and equal to ours, and
// no claim name twice.
func FuzzVerifyClaims(f *testing.F) {
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	for _, seed := range []string{
		`{"servers":["*"],"exp":` + exp + `}`,
		`{"servers":["web-1"],"SERVERS":["*"],"exp":` + exp + `}`,
		`{"servers":["a"],"exp":"` + exp + `"}`,
		`{"servers":["a"],"exp":` + exp + `,"exp":1}`,
		`{"servers":["a","b"],"exp":` + exp + `.25,"iat":1,"nbf":0,"aud":["x"],"iss":"i","sub":"s","jti":"j"}`,
		`{"Servers":["a"],"Exp":` + exp + `}`,
		`{"servers":null,"exp":` + exp + `}`,
		`{"servers":["\u0061"],"exp":` + exp + `e0}`,
		`[]`, `null`, `{`, `{"servers":["a"],"exp":1e999}`,
	} {
		f.Add(seed)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: testSecret, Leeway: 30 * time.Second, MaxTTL: 400 * 24 * time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		c, err := v.Verify(raw(t, payload))
		if err != nil {
			if c != nil {
				t.Fatalf("claims with an error: %+v", c)
			}
			return
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(payload), &m); err != nil {
			t.Fatalf("accepted claims encoding/json cannot read: %v", err)
		}
		list, ok := m["servers"].([]any)
		if !ok || len(list) != len(c.Servers) {
			t.Fatalf("servers = %q, a map decode reads %v", c.Servers, m["servers"])
		}
		for i, s := range list {
			if s != c.Servers[i] {
				t.Fatalf("servers = %q, a map decode reads %v", c.Servers, list)
			}
		}
		e, ok := m["exp"].(float64)
		if !ok || math.Abs(e-float64(c.ExpiresAt.Unix())) >= 1 {
			t.Fatalf("exp = %v, a map decode reads %v", c.ExpiresAt, m["exp"])
		}
	})
}
