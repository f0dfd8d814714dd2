package api

import (
	"embed"
	"html/template"
	"net/http"
	"path"
	"strings"
)

// The console is a server-rendered page plus a little vanilla JavaScript
// and CSS, embedded in the binary: no build step, nothing from a CDN. The
// page holds no customer data; the script fetches it with the token the
// agent types in (kept in the tab's sessionStorage only).
//
//go:embed console/index.html console/static
var consoleFS embed.FS

var consoleTmpl = template.Must(template.ParseFS(consoleFS, "console/index.html"))

type consolePage struct {
	DefaultLeaseSeconds float64
	Outcomes            []string
}

// Outcomes offered by the console when resolving (the API accepts any
// short code).
var consoleOutcomes = []string{"resolved", "refunded", "replaced", "explained", "escalated", "no_action", "spam"}

func (s *Server) console(w http.ResponseWriter, _ *http.Request, _ Principal) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	if err := consoleTmpl.Execute(w, consolePage{DefaultLeaseSeconds: s.o.DefaultLease.Seconds(), Outcomes: consoleOutcomes}); err != nil {
		s.o.Logger.Warn("console page")
	}
}

func (s *Server) static(w http.ResponseWriter, r *http.Request, _ Principal) {
	name := r.PathValue("file")
	if strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		writeError(w, http.StatusNotFound, "not_found", "no such file")
		return
	}
	body, err := consoleFS.ReadFile(path.Join("console/static", name))
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no such file: "+name)
		return
	}
	switch path.Ext(name) {
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	_, _ = w.Write(body)
}
