package httpapi

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/vitals-dev/vitals/shared/metric"
)

// Function names: which deployable unit serves a route.
const (
	FunctionIngest   = "ingest"
	FunctionQuery    = "query"
	FunctionStreamer = "streamer"
)

// Route is one public route: the function that serves it, its method and its
// Go 1.22 ServeMux path pattern. Every deployment (Lambda, localdev, SAM)
// mounts routes from Routes(), so the table is the single list of them.
type Route struct {
	Function string
	Method   string
	Path     string
}

// routes is the table; NewIngest and NewQuery build their muxes from it.
var routes = []Route{
	{FunctionIngest, http.MethodPost, "/api/ingest"},

	{FunctionQuery, http.MethodGet, "/api/servers"},
	{FunctionQuery, http.MethodGet, "/api/servers/{id}/metrics"},
	{FunctionQuery, http.MethodGet, "/api/servers/{id}/metrics/latest"},
	{FunctionQuery, http.MethodGet, "/api/instances/{id}/monitoring/metrics"},
	{FunctionQuery, http.MethodGet, "/api/instances/{id}/monitoring/metrics/latest"},
	{FunctionQuery, http.MethodGet, "/api/healthz"},

	// Alerting (alerts.go).
	{FunctionQuery, http.MethodGet, "/api/alerts"},
	{FunctionQuery, http.MethodGet, "/api/alerts/rules"},
	{FunctionQuery, http.MethodPost, "/api/alerts/rules"},
	{FunctionQuery, http.MethodGet, "/api/alerts/rules/{id}"},
	{FunctionQuery, http.MethodPut, "/api/alerts/rules/{id}"},
	{FunctionQuery, http.MethodDelete, "/api/alerts/rules/{id}"},
	{FunctionQuery, http.MethodGet, "/api/alerts/channels"},
	{FunctionQuery, http.MethodPost, "/api/alerts/channels"},
	{FunctionQuery, http.MethodDelete, "/api/alerts/channels/{name}"},
	{FunctionQuery, http.MethodPost, "/api/alerts/channels/{name}/test"},
	{FunctionQuery, http.MethodGet, "/api/alerts/silences"},
	{FunctionQuery, http.MethodPost, "/api/alerts/silences"},
	{FunctionQuery, http.MethodDelete, "/api/alerts/silences/{id}"},
	{FunctionQuery, http.MethodGet, "/api/alerts/deliveries"},

	{FunctionStreamer, http.MethodGet, "/api/health/ws"},
	{FunctionStreamer, http.MethodGet, "/api/servers/{id}/metrics/stream"},
	{FunctionStreamer, http.MethodGet, "/api/instances/{id}/monitoring/metrics/stream"},
	{FunctionStreamer, http.MethodGet, "/api/alerts/stream"},
}

// Routes lists every public route of every function (a copy).
func Routes() []Route { return slices.Clone(routes) }

// newMux serves function's routes with handlers (keyed by "METHOD PATH"),
// and answers every other request in JSON: an unknown path with a 404, a
// path of the table asked with a method no function serves there with a
// 405 and Allow (GET /api/ingest: Allow: POST, whichever function gets
// it), and a method another function serves there with a 404 naming that
// function. The query function is API Gateway's $default route, so it
// answers whatever matches no other route; ServeMux's own 404/405 are
// plain text, so each path is registered without a method and dispatched
// here.
func newMux(function string, handlers map[string]http.HandlerFunc, logger *slog.Logger) http.Handler {
	served := map[string]map[string]http.HandlerFunc{} // path → method → handler
	owner := map[string]map[string]string{}            // path → method → function, every function's
	var paths []string
	for _, rt := range routes {
		if owner[rt.Path] == nil {
			owner[rt.Path] = map[string]string{}
			served[rt.Path] = map[string]http.HandlerFunc{}
			paths = append(paths, rt.Path)
		}
		methods := []string{rt.Method}
		if rt.Method == http.MethodGet {
			methods = append(methods, http.MethodHead)
		}
		for _, m := range methods {
			owner[rt.Path][m] = rt.Function
		}
		if rt.Function != function {
			continue
		}
		h, ok := handlers[rt.Method+" "+rt.Path]
		if !ok {
			panic("httpapi: no handler for " + rt.Method + " " + rt.Path) // a table/handler mismatch is a build-time bug
		}
		for _, m := range methods {
			served[rt.Path][m] = h
		}
	}
	if len(handlers) != countRoutes(function) {
		panic("httpapi: handlers registered for routes missing from the table")
	}
	mux := http.NewServeMux()
	for _, p := range paths {
		methods, owners := served[p], owner[p]
		allow := allowHeader(owners)
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			if h, ok := methods[r.Method]; ok {
				h(w, r)
				return
			}
			if fn, ok := owners[r.Method]; ok {
				// Reached only by a misrouted request (a deployment that sends
				// this path to the wrong function): say where it belongs.
				WriteError(w, r, logger, &statusError{status: http.StatusNotFound, msg: r.Method + " " + p + " is served by the " + unitName(fn) + ", not the " + unitName(function)})
				return
			}
			WriteError(w, r, logger, MethodNotAllowed(r.Method, allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, logger, NoRoute(r.URL.Path))
	})
	return recoverer(mux, logger)
}

// unitName names a function in messages: "the query function", "the streamer".
func unitName(function string) string {
	if function == FunctionStreamer {
		return function
	}
	return function + " function"
}

func countRoutes(function string) int {
	n := 0
	for _, rt := range routes {
		if rt.Function == function {
			n++
		}
	}
	return n
}

func allowHeader(methods map[string]string) string {
	var ms []string
	for m := range methods {
		ms = append(ms, m)
	}
	slices.Sort(ms)
	return strings.Join(ms, ", ")
}

// boundedPath is a request path as an error quotes it: at most its first
// 64 bytes, escaped (metric.Bounded without the quotes), so a 1 MiB path is
// never echoed whole.
func boundedPath(p string) string {
	q := metric.Bounded(p)
	return q[1 : len(q)-1]
}
