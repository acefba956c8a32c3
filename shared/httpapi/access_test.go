package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/metric"
)

func TestAuthenticate(t *testing.T) {
	v := verifier(t)
	web := token(t, "web-1")
	for _, tc := range []struct {
		name, authz, query string
		want               string // "" = accepted
	}{
		{"bearer", "Bearer " + web, "", ""},
		{"query parameter", "", "access_token=" + web, ""},
		{"none", "", "", "missing token: send Authorization: Bearer <JWT> or ?access_token=<JWT>"},
		{"empty query parameter", "", "access_token=", "missing token: send Authorization: Bearer <JWT> or ?access_token=<JWT>"},
		// The header wins: a wrong scheme is named, not bypassed.
		{"other scheme", "Basic dTpw", "access_token=" + web, `Authorization must be "Bearer <token>"`},
		{"malformed", "Bearer nope", "", "invalid token: malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/servers?"+tc.query, nil)
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			c, err := httpapi.Authenticate(r, v)
			if tc.want == "" {
				if err != nil || !c.CanRead("web-1") {
					t.Fatalf("claims %+v, err %v", c, err)
				}
				return
			}
			if status, msg := httpapi.ClientError(err); status != http.StatusUnauthorized || msg != tc.want {
				t.Fatalf("got %d %q, want 401 %q", status, msg, tc.want)
			}
		})
	}
}

// instances is an InstanceFinder over a map of instance id to server; a
// server "" stands for a failing lookup.
type instances map[string]string

func (m instances) Instance(_ context.Context, id string) (metric.InstanceInfo, error) {
	srv, ok := m[id]
	if ok && srv == "" {
		return metric.InstanceInfo{}, errors.New("redis said no")
	}
	if !ok {
		return metric.InstanceInfo{}, metric.Errorf(metric.ErrNotFound, "instance not found")
	}
	return metric.InstanceInfo{ID: id, ServerID: srv, Name: "app"}, nil
}

func TestReadInstance(t *testing.T) {
	known := metric.InstanceUUID("web-1", "app")
	unknown := metric.InstanceUUID("web-1", "nosuch")
	f := instances{known: "web-1"}
	claims := func(servers ...string) *auth.Claims { return &auth.Claims{Servers: servers} }
	for _, tc := range []struct {
		name   string
		c      *auth.Claims
		raw    string
		status int
		msg    string
	}{
		{"in scope", claims("web-1"), known, 200, ""},
		{"any case", claims("*"), strings.ToUpper(known), 200, ""},
		{"out of scope", claims("db-1"), known, 403, "token may not read instance " + known},
		{"unknown, scoped token", claims("db-1", "web-1"), unknown, 403, "token may not read instance " + unknown},
		{"unknown, every server", claims("*"), unknown, 404, "instance " + unknown + " not found"},
		{"not a UUID", claims("*"), "nope", 400, `instance id "nope": must be a UUID`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := httpapi.ReadInstance(context.Background(), f, tc.c, tc.raw)
			if tc.status == 200 {
				if err != nil || info.ID != known || info.ServerID != "web-1" {
					t.Fatalf("info %+v, err %v", info, err)
				}
				return
			}
			if status, msg := httpapi.ClientError(err); status != tc.status || msg != tc.msg {
				t.Fatalf("got %d %q, want %d %q", status, msg, tc.status, tc.msg)
			}
		})
	}
	// A failing lookup is passed on (a 500 for any token), not turned into
	// a scope answer.
	broken := metric.InstanceUUID("web-1", "broken")
	f[broken] = ""
	_, err := httpapi.ReadInstance(context.Background(), f, claims("db-1"), broken)
	if status, msg := httpapi.ClientError(err); status != 500 || msg != "internal error" {
		t.Fatalf("failing lookup: %d %q", status, msg)
	}
}
