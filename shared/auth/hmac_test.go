package auth_test

import (
	"encoding/hex"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// wantUnauthorized fails unless err is an ErrUnauthorized *metric.Error
// whose message contains want and none of the secrets.
func wantUnauthorized(tb testing.TB, err error, want string, secrets ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got nil error, want unauthorized (%q)", want)
	}
	var me *metric.Error
	if !errors.As(err, &me) || !errors.Is(err, metric.ErrUnauthorized) {
		tb.Fatalf("got %T %v, want an ErrUnauthorized *metric.Error", err, err)
	}
	if !strings.Contains(err.Error(), want) {
		tb.Errorf("error %q does not mention %q", err, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			tb.Errorf("error %q leaks a secret", err)
		}
	}
}

func TestNewHostKey(t *testing.T) {
	a, b := auth.NewHostKey(), auth.NewHostKey()
	if len(a) != 2*auth.HostKeyBytes {
		t.Fatalf("key is %d chars, want %d", len(a), 2*auth.HostKeyBytes)
	}
	if _, err := hex.DecodeString(string(a)); err != nil {
		t.Fatalf("key %q is not hex: %v", a, err)
	}
	if string(a) == string(b) {
		t.Fatal("two keys are equal")
	}
}

// TestSignKnownVector pins the wire format against a value computed
// independently, with both Python's hmac module and
//
//	printf '1700000000\nweb-1\n{"samples":[]}' | openssl dgst -sha256 -hmac "$(printf 'k%.0s' $(seq 64))"
//
// so the README's curl + openssl recipe stays true.
func TestSignKnownVector(t *testing.T) {
	key := []byte(strings.Repeat("k", 64))
	got := auth.Sign(key, 1700000000, "web-1", []byte(`{"samples":[]}`))
	want := "v1=1e8a85a5de8252bc9b51b44952a404c04a1592db7ebfc5f447c9a648b49cf386"
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerifyRequest(t *testing.T) {
	key := auth.NewHostKey()
	other := auth.NewHostKey()
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"samples":[{"collectedAt":"2023-11-14T22:13:20Z"}]}`)
	const server = "web-1"
	at := func(d time.Duration) (string, string) {
		ts := now.Add(d).Unix()
		return strconv.FormatInt(ts, 10), auth.Sign(key, ts, server, body)
	}
	ts0, sig0 := at(0)

	tests := []struct {
		name      string
		key       []byte
		timestamp string
		server    string
		body      []byte
		sig       string
		want      string // "" = valid; else part of the error message
	}{
		{name: "good", key: key, timestamp: ts0, server: server, body: body, sig: sig0},
		{name: "tampered body", key: key, timestamp: ts0, server: server, body: append([]byte(" "), body...), sig: sig0, want: "signature does not match"},
		{name: "truncated body", key: key, timestamp: ts0, server: server, body: body[:len(body)-1], sig: sig0, want: "signature does not match"},
		{name: "empty body", key: key, timestamp: ts0, server: server, body: nil, sig: sig0, want: "signature does not match"},
		{name: "wrong key", key: other, timestamp: ts0, server: server, body: body, sig: sig0, want: "signature does not match"},
		{name: "wrong server id", key: key, timestamp: ts0, server: "web-2", body: body, sig: sig0, want: "signature does not match"},
		{name: "timestamp re-spelled", key: key, timestamp: "0" + ts0, server: server, body: body, sig: sig0, want: "signature does not match"},
		{name: "missing prefix", key: key, timestamp: ts0, server: server, body: body, sig: strings.TrimPrefix(sig0, "v1="), want: "v1=<hex>"},
		{name: "other version", key: key, timestamp: ts0, server: server, body: body, sig: "v2=" + strings.TrimPrefix(sig0, "v1="), want: "v1=<hex>"},
		{name: "upper-case prefix", key: key, timestamp: ts0, server: server, body: body, sig: "V1=" + strings.TrimPrefix(sig0, "v1="), want: "v1=<hex>"},
		{name: "empty signature", key: key, timestamp: ts0, server: server, body: body, sig: "", want: "v1=<hex>"},
		{name: "non-hex", key: key, timestamp: ts0, server: server, body: body, sig: "v1=" + strings.Repeat("zz", 32), want: "v1=<hex>"},
		{name: "odd-length hex", key: key, timestamp: ts0, server: server, body: body, sig: sig0[:len(sig0)-1], want: "v1=<hex>"},
		{name: "short hex", key: key, timestamp: ts0, server: server, body: body, sig: sig0[:len(sig0)-2], want: "signature does not match"},
		{name: "empty hex", key: key, timestamp: ts0, server: server, body: body, sig: "v1=", want: "signature does not match"},
		{name: "missing timestamp", key: key, timestamp: "", server: server, body: body, sig: sig0, want: "unix seconds"},
		{name: "timestamp not a number", key: key, timestamp: "yesterday", server: server, body: body, sig: sig0, want: "unix seconds"},
		{name: "timestamp in milliseconds", key: key, timestamp: ts0 + "000", server: server, body: body, sig: sig0, want: "off the server clock"},
	}
	// The skew window is ±5 min, inclusive; one second beyond fails.
	for _, c := range []struct {
		name string
		d    time.Duration
		ok   bool
	}{
		{"skew past just inside", -metric.MaxClockSkew + time.Second, true},
		{"skew past at limit", -metric.MaxClockSkew, true},
		{"skew past just outside", -metric.MaxClockSkew - time.Second, false},
		{"skew future just inside", metric.MaxClockSkew - time.Second, true},
		{"skew future at limit", metric.MaxClockSkew, true},
		{"skew future just outside", metric.MaxClockSkew + time.Second, false},
		{"skew a day old", -24 * time.Hour, false},
	} {
		ts, sig := at(c.d)
		want := ""
		if !c.ok {
			want = "off the server clock"
		}
		tests = append(tests, struct {
			name      string
			key       []byte
			timestamp string
			server    string
			body      []byte
			sig       string
			want      string
		}{c.name, key, ts, server, body, sig, want})
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := auth.VerifyRequest(tc.key, tc.timestamp, tc.server, tc.body, tc.sig, now)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("VerifyRequest: %v", err)
				}
				return
			}
			wantUnauthorized(t, err, tc.want, string(key), string(other))
		})
	}
}

// TestVerifyRequestConstantTime checks, in the source, that the signature is
// compared with a constant-time function and never with ==, bytes.Equal or
// the like, which would leak through timing how many leading bytes matched.
func TestVerifyRequestConstantTime(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "hmac.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "VerifyRequest" {
			fn = fd
		}
	}
	if fn == nil {
		t.Fatal("VerifyRequest not found in hmac.go")
	}
	constantTime := false
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, _ := sel.X.(*ast.Ident)
			if pkg == nil {
				return true
			}
			switch pkg.Name + "." + sel.Sel.Name {
			case "hmac.Equal", "subtle.ConstantTimeCompare":
				constantTime = true
			case "bytes.Equal", "bytes.Compare", "strings.EqualFold", "reflect.DeepEqual", "slices.Equal":
				t.Errorf("VerifyRequest compares with %s.%s, which is not constant-time", pkg.Name, sel.Sel.Name)
			}
		case *ast.BinaryExpr:
			if n.Op != token.EQL && n.Op != token.NEQ {
				return true
			}
			if isNil(n.X) || isNil(n.Y) {
				return true
			}
			t.Errorf("VerifyRequest uses %s on non-nil operands; signatures must be compared in constant time", n.Op)
		}
		return true
	})
	if !constantTime {
		t.Error("VerifyRequest does not call hmac.Equal or subtle.ConstantTimeCompare")
	}
}

func isNil(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == "nil"
}

// FuzzVerifyRequest feeds arbitrary headers and bodies: VerifyRequest never
// panics, fails only with ErrUnauthorized, never echoes the key, accepts
// only what was signed with the key, and always accepts what Sign produced.
func FuzzVerifyRequest(f *testing.F) {
	key := string(auth.NewHostKey())
	f.Add(key, "1700000000", "web-1", []byte(`{"samples":[]}`), "v1=00", int64(1700000000))
	f.Add(key, "1700000000", "web-1", []byte{}, auth.Sign([]byte(key), 1700000000, "web-1", nil), int64(1700000300))
	f.Add("k", "+1", "", []byte("\x00\xff"), "v1=", int64(1))
	f.Add("", "-9223372036854775808", "a\nb", []byte("x"), "v1=zz", int64(9223372036854775807))
	f.Add(key, "9223372036854775807", "web-1", []byte("x"), "v1=", int64(-9223372036854775808))
	f.Add(key, " 1700000000", "web-1", []byte("x"), "v1=ab", int64(1700000000))
	f.Fuzz(func(t *testing.T, key, timestamp, server string, body []byte, sig string, nowUnix int64) {
		now := time.Unix(nowUnix, 0)
		err := auth.VerifyRequest([]byte(key), timestamp, server, body, sig, now)
		if err != nil {
			var me *metric.Error
			if !errors.As(err, &me) || !errors.Is(err, metric.ErrUnauthorized) {
				t.Fatalf("error %T %v is not an ErrUnauthorized *metric.Error", err, err)
			}
			if len(key) >= 16 && strings.Contains(err.Error(), key) {
				t.Fatalf("error %q leaks the key", err)
			}
		} else if ts, perr := strconv.ParseInt(timestamp, 10, 64); perr != nil {
			t.Fatalf("accepted unparsable timestamp %q", timestamp)
		} else if strconv.FormatInt(ts, 10) == timestamp && auth.Sign([]byte(key), ts, server, body) != strings.ToLower(sig) {
			t.Fatalf("accepted a signature Sign would not produce: %q", sig)
		}

		// Whatever the inputs, a fresh signature verifies at its own time.
		ts := nowUnix
		good := auth.Sign([]byte(key), ts, server, body)
		if err := auth.VerifyRequest([]byte(key), strconv.FormatInt(ts, 10), server, body, good, time.Unix(ts, 0)); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
	})
}
