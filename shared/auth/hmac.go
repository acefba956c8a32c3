// Package auth holds Vitals' two credentials: host signatures (HMAC-SHA256
// over each ingest request, one random key per host) and user tokens (JWTs
// whose "servers" claim scopes what a user may read).
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// Ingest request headers.
const (
	HeaderServer    = "X-Vitals-Server"
	HeaderTimestamp = "X-Vitals-Timestamp"
	HeaderSignature = "X-Vitals-Signature"
)

// signaturePrefix versions the scheme so it can change without ambiguity.
const signaturePrefix = "v1="

// HostKeyBytes is the entropy of a host key: 256 bits from crypto/rand.
const HostKeyBytes = 32

// NewHostKey returns a fresh random host key: 64 hex characters. The key is
// used as the HMAC key in exactly this text form, so what an operator pastes
// into VITALS_HOST_KEY works unchanged with `openssl dgst -hmac "$KEY"`.
func NewHostKey() []byte {
	k := make([]byte, HostKeyBytes)
	if _, err := rand.Read(k); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return []byte(hex.EncodeToString(k))
}

// Sign returns the X-Vitals-Signature value for a request: "v1=" + hex
// HMAC-SHA256(key, timestamp + "\n" + serverID + "\n" + body), body being the
// bytes exactly as sent (compressed if compressed).
func Sign(key []byte, timestamp int64, serverID string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(key, strconv.FormatInt(timestamp, 10), serverID, body))
}

func mac(key []byte, timestamp, serverID string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(timestamp))
	h.Write([]byte{'\n'})
	h.Write([]byte(serverID))
	h.Write([]byte{'\n'})
	h.Write(body)
	return h.Sum(nil)
}

// SignatureMismatch is the one answer to a request whose signature does
// not verify, whatever the reason: ingest gives the same text for a host
// that is not enrolled, so the answer never tells which hosts exist.
const SignatureMismatch = "signature does not match: wrong or rotated host key, host not enrolled or revoked, or the body changed in transit"

// VerifyRequest checks an ingest request's timestamp header (within
// metric.MaxClockSkew of now, either way) and signature header against key.
// Every failure is an ErrUnauthorized *metric.Error that says which check
// failed but never echoes key material. The comparison is constant-time.
func VerifyRequest(key []byte, timestamp, serverID string, body []byte, signature string, now time.Time) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return metric.Errorf(metric.ErrUnauthorized, "%s must be unix seconds", HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > metric.MaxClockSkew || d < -metric.MaxClockSkew {
		return metric.Errorf(metric.ErrUnauthorized, "%s is %s off the server clock (limit %s); check the host's clock", HeaderTimestamp, d.Round(time.Second).Abs(), metric.MaxClockSkew)
	}
	hexSig, ok := strings.CutPrefix(signature, signaturePrefix)
	if !ok {
		return metric.Errorf(metric.ErrUnauthorized, "%s must look like v1=<hex>", HeaderSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return metric.Errorf(metric.ErrUnauthorized, "%s must look like v1=<hex>", HeaderSignature)
	}
	if !hmac.Equal(got, mac(key, timestamp, serverID, body)) {
		return metric.Errorf(metric.ErrUnauthorized, SignatureMismatch)
	}
	return nil
}
