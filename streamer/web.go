package streamer

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/vitals-dev/vitals/shared/httpapi"
)

// The live-view page: plain HTML, CSS and JavaScript with uPlot vendored
// from npm (web/vendor, committed so a clean clone builds without npm).
//
//go:embed web
var webFiles embed.FS

// webHandler serves the page at / and its assets. The page itself is never
// cached (it is tiny and must pick up new deployments); assets may be
// cached briefly. apiBase is Config.APIBase: the page may fetch from it.
func webHandler(log *slog.Logger, apiBase string) http.Handler {
	csp := contentSecurityPolicy(apiBase)
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/" || p == "/index.html" {
			w.Header().Set("Cache-Control", "no-cache")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		if strings.HasSuffix(p, "/") && p != "/" {
			httpapi.WriteError(w, r, log, httpapi.NoRoute(p))
			return
		}
		if _, err := fs.Stat(sub, strings.TrimPrefix(p, "/")); p != "/" && err != nil {
			httpapi.WriteError(w, r, log, httpapi.NoRoute(p))
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", csp)
		// For browsers that predate frame-ancestors.
		h.Set("X-Frame-Options", "DENY")
		files.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy is the page's policy. The page talks only to its
// own origin ('self' covers ws: and wss: to it in CSP Level 3 browsers),
// plus the REST API's origin when APIBase names another one; it may not be
// framed by anyone (clickjacking).
func contentSecurityPolicy(apiBase string) string {
	connect := "'self'"
	if u, err := url.Parse(apiBase); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		connect += " " + u.Scheme + "://" + u.Host
	}
	return "default-src 'self'; connect-src " + connect + "; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"
}
