package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/metric"
)

// The query function and the streamer (SSE and WebSocket) read tokens and
// decide scope with these, so one failure has one status and one text on
// every transport.

// Authenticate verifies the user token of r, taken from "Authorization:
// Bearer" or, for clients that cannot set headers (EventSource), from
// ?access_token=. Failures are ErrUnauthorized with a client-safe reason;
// a nil v is an internal error.
func Authenticate(r *http.Request, v *auth.Verifier) (*auth.Claims, error) {
	tok := r.URL.Query().Get("access_token")
	if hv := r.Header.Get("Authorization"); hv != "" {
		// A header of another scheme is a client mistake worth naming,
		// not a reason to fall back to the query parameter.
		tok = auth.BearerToken(hv)
		if tok == "" {
			return nil, metric.Errorf(metric.ErrUnauthorized, "Authorization must be \"Bearer <token>\"")
		}
	}
	if strings.TrimSpace(tok) == "" {
		return nil, metric.Errorf(metric.ErrUnauthorized, "missing token: send Authorization: Bearer <JWT> or ?access_token=<JWT>")
	}
	if v == nil {
		return nil, errors.New("no token verifier configured")
	}
	return v.Verify(tok)
}

// InstanceID checks a client-given instance id and returns its canonical
// (lowercase) form, or ErrInvalid.
func InstanceID(raw string) (string, error) {
	id, err := metric.ParseUUID(raw)
	if err != nil {
		return "", metric.Errorf(metric.ErrInvalid, "instance id %s: must be a UUID", metric.Bounded(raw))
	}
	return id, nil
}

// InstanceFinder looks instances up; metric.Store implements it.
type InstanceFinder interface {
	Instance(ctx context.Context, instanceID string) (metric.InstanceInfo, error)
}

// ReadInstance checks a client-given instance id and returns the instance
// when c may read it. An unknown instance is ErrNotFound only for a token
// that may read every server; any other token gets the same ErrForbidden as
// for an instance of a server outside its scope, so a token can neither
// probe which ids exist nor learn which server an instance belongs to.
func ReadInstance(ctx context.Context, f InstanceFinder, c *auth.Claims, raw string) (metric.InstanceInfo, error) {
	id, err := InstanceID(raw)
	if err != nil {
		return metric.InstanceInfo{}, err
	}
	info, err := f.Instance(ctx, id)
	switch {
	case errors.Is(err, metric.ErrNotFound):
		if c.CanRead("*") {
			return metric.InstanceInfo{}, metric.Errorf(metric.ErrNotFound, "instance %s not found", id)
		}
		return metric.InstanceInfo{}, forbiddenInstance(id)
	case err != nil:
		return metric.InstanceInfo{}, err
	case !c.CanRead(info.ServerID):
		return metric.InstanceInfo{}, forbiddenInstance(id)
	}
	info.ID = id
	return info, nil
}

func forbiddenInstance(id string) error {
	return metric.Errorf(metric.ErrForbidden, "token may not read instance %s", id)
}

// ClientError returns the status and the client-safe text WriteError
// answers err with, for replies that are not an HTTP response (the
// streamer's WebSocket). A 500's text is "internal error": log err.
func ClientError(err error) (int, string) { return classify(err) }

// NoRoute is the 404 of a path no handler serves.
func NoRoute(path string) error {
	return &statusError{status: http.StatusNotFound, msg: "no such route: " + boundedPath(path)}
}

// MethodNotAllowed is the 405 of a known path asked with another method;
// WriteError sets Allow from allow.
func MethodNotAllowed(method, allow string) error {
	return &statusError{status: http.StatusMethodNotAllowed, msg: "method " + method + " not allowed; use " + allow, allow: allow}
}
