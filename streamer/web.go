package streamer

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
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
// cached briefly.
func webHandler(log *slog.Logger) http.Handler {
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
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss: http: https:; img-src 'self' data:; style-src 'self'; script-src 'self'")
		files.ServeHTTP(w, r)
	})
}
