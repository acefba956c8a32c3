package httpapi

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
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
}

// Routes lists every public route of every function (a copy).
func Routes() []Route { return slices.Clone(routes) }

// newMux serves function's routes with handlers (keyed by "METHOD PATH"),
// answering unknown paths with a JSON 404 and known paths with another
// method with a JSON 405 and Allow. ServeMux's own 404/405 are plain text,
// so each path is registered without a method and dispatched here.
func newMux(function string, handlers map[string]http.HandlerFunc, logger *slog.Logger) http.Handler {
	byPath := map[string]map[string]http.HandlerFunc{}
	var paths []string
	for _, rt := range routes {
		if rt.Function != function {
			continue
		}
		h, ok := handlers[rt.Method+" "+rt.Path]
		if !ok {
			panic("httpapi: no handler for " + rt.Method + " " + rt.Path) // a table/handler mismatch is a build-time bug
		}
		if byPath[rt.Path] == nil {
			byPath[rt.Path] = map[string]http.HandlerFunc{}
			paths = append(paths, rt.Path)
		}
		byPath[rt.Path][rt.Method] = h
		if rt.Method == http.MethodGet {
			byPath[rt.Path][http.MethodHead] = h
		}
	}
	if len(handlers) != countRoutes(function) {
		panic("httpapi: handlers registered for routes missing from the table")
	}
	mux := http.NewServeMux()
	for _, p := range paths {
		methods := byPath[p]
		allow := allowHeader(methods)
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			h, ok := methods[r.Method]
			if !ok {
				WriteError(w, r, logger, &statusError{status: http.StatusMethodNotAllowed, msg: "method " + r.Method + " not allowed; use " + allow, allow: allow})
				return
			}
			h(w, r)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, logger, &statusError{status: http.StatusNotFound, msg: "no such route: " + r.URL.Path})
	})
	return recoverer(mux, logger)
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

func allowHeader(methods map[string]http.HandlerFunc) string {
	var ms []string
	for m := range methods {
		ms = append(ms, m)
	}
	slices.Sort(ms)
	return strings.Join(ms, ", ")
}
