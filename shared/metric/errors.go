package metric

import (
	"errors"
	"fmt"
)

// Error kinds. Every error a Vitals package returns to a handler either wraps
// one of these (test with errors.Is) or is internal. The HTTP layer maps them
// to statuses in exactly one place.
var (
	// ErrInvalid: the input is malformed or out of range (400).
	ErrInvalid = errors.New("invalid")
	// ErrUnauthorized: no, bad, expired or revoked credentials (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: valid credentials that may not read this resource (403).
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: unknown id, or no data yet (404).
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: the request body exceeds the limit (413).
	ErrTooLarge = errors.New("too large")
	// ErrUnavailable: a dependency (Redis) is unreachable; retry later (503).
	ErrUnavailable = errors.New("unavailable")
)

// Error is an error of a given kind with a message meant for the client.
// Its Error() is the message alone, so it can be shown as is.
type Error struct {
	Kind error
	Msg  string
}

// Errorf builds an *Error of the given kind with a formatted client message.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return e.Msg }

// Unwrap lets errors.Is(err, ErrInvalid) and friends see the kind.
func (e *Error) Unwrap() error { return e.Kind }
