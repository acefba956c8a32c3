package auth

import "time"

// SetJWKSClock replaces the clock a JWKS uses to pace its refreshes, so tests
// can move time forward instead of sleeping.
func SetJWKSClock(j *JWKS, now func() time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.now = now
}
