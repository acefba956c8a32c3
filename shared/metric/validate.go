package metric

import (
	"crypto/sha1" //nolint:gosec // RFC 4122 UUIDv5 is defined with SHA-1; an id, not a security boundary
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ValidServerID reports whether id can name a server: 1–128 bytes of ASCII
// letters, digits, '.', '_' or '-' (every hostname fits), except "." and
// "..". The restriction keeps ids safe inside Redis keys, hash tags,
// channel names and URLs; "." and ".." are path segments that URL
// clients and proxies resolve away (/api/servers/../metrics), so a server
// named so could only be reached as %2e%2e.
func ValidServerID(id string) bool {
	if len(id) == 0 || len(id) > 128 || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CheckServerID returns an ErrInvalid error when id is not a ValidServerID.
// The message quotes at most the start of id (see Bounded).
func CheckServerID(id string) error {
	if id == "." || id == ".." {
		return Errorf(ErrInvalid, "server id %q: must not be \".\" or \"..\" (URLs resolve them away as path segments)", id)
	}
	if !ValidServerID(id) {
		return Errorf(ErrInvalid, "server id %s: must be 1-128 characters of letters, digits, '.', '_' or '-'", Bounded(id))
	}
	return nil
}

// maxEcho is how much of a client's input an error message quotes.
const maxEcho = 64

// Bounded quotes s for an error message: Go-quoted, cut to its first 64
// bytes (on a character boundary) with "…" when longer. Every error that
// quotes client input uses it, so a 1 MiB id or value never comes back as
// a 1 MB answer or log line.
func Bounded(s string) string {
	return strconv.Quote(truncate(s))
}

// truncate is Bounded without the quotes, for field paths.
func truncate(s string) string {
	if len(s) > maxEcho {
		cut := maxEcho
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// CheckIngestURL says why s cannot be a reporter's ingest endpoint, or
// returns nil. vitalsctl checks the URL it prints into a reporter's env
// file with it, so that file never holds one the reporter refuses.
func CheckIngestURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := s
		if err == nil {
			shown = u.Redacted() // a password is never echoed
		}
		return fmt.Errorf("ingest url %q: must be an absolute http(s) URL such as https://vitals.example.com/api/ingest", shown)
	}
	if u.User != nil {
		return fmt.Errorf("ingest url: must not carry credentials; requests are signed with the host key")
	}
	return nil
}

// ParseUUID checks that s is a UUID in the canonical 8-4-4-4-12 hex form
// (any version, any case) and returns it lowercased; otherwise ErrInvalid.
func ParseUUID(s string) (string, error) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return "", Errorf(ErrInvalid, "%s is not a UUID", Bounded(s))
	}
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", Errorf(ErrInvalid, "%s is not a UUID", Bounded(s))
		}
	}
	return strings.ToLower(s), nil
}

// InstanceNamespace is the UUIDv5 namespace of derived instance ids.
const InstanceNamespace = "6f1c3b0e-8a4d-5b7e-9c2f-1d3e5a7b9c0d"

// InstanceUUID derives the stable id of an instance that has none configured:
// UUIDv5 (RFC 9562) of serverID + "/" + name in InstanceNamespace. The same
// server and name always give the same id, so restarts keep the history.
func InstanceUUID(serverID, name string) string {
	ns, _ := hex.DecodeString(strings.ReplaceAll(InstanceNamespace, "-", ""))
	h := sha1.New() //nolint:gosec // RFC 4122 UUIDv5 is defined with SHA-1
	h.Write(ns)
	h.Write([]byte(serverID + "/" + name))
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
