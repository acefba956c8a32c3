package metric

import (
	"crypto/sha1" //nolint:gosec // RFC 4122 UUIDv5 is defined with SHA-1; an id, not a security boundary
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// ValidServerID reports whether id can name a server: 1–128 bytes of ASCII
// letters, digits, '.', '_' or '-' (every hostname fits). The restriction
// keeps ids safe inside Redis keys, hash tags, channel names and URLs.
func ValidServerID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
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
func CheckServerID(id string) error {
	if !ValidServerID(id) {
		return Errorf(ErrInvalid, "server id %q: must be 1-128 characters of letters, digits, '.', '_' or '-'", id)
	}
	return nil
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
		return "", Errorf(ErrInvalid, "%q is not a UUID", s)
	}
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", Errorf(ErrInvalid, "%q is not a UUID", s)
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
