// Package api is `cxstream api`: an HTTP API over the support queue, user
// views, funnel report, alert stream and erasure, with bearer tokens in
// roles, an audit log of every read of a user's data, and the web console
// for agents. schemas/openapi.v1.yaml describes every route.
package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/erasure"
	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/userview"
)

// Role is what a token may do.
type Role string

// Roles, each with its own routes; admin may use every route.
const (
	RoleAgent   Role = "agent"
	RoleAnalyst Role = "analyst"
	RoleAdmin   Role = "admin"
	// rolePublic routes need no token (probes, the console's page and
	// assets, which hold no data).
	rolePublic Role = ""
	// roleAny routes need a valid token of any role.
	roleAny Role = "any"
)

// Principal is the holder of a token.
type Principal struct {
	Name string
	Role Role
}

// Eraser erases a user given by their original id (state, timers, queue
// entries, identity links and the linked anonymous ids' history, then
// tombstones) and says what it removed.
type Eraser func(ctx context.Context, originalID string) (Erasure, error)

// Erasure is what an erasure removed.
type Erasure = erasure.Result

// Options build a Server. Queue, Views and Funnels are required.
type Options struct {
	Config config.API
	Queue  *alertsink.Queue
	Views  *userview.Builder
	// Funnels computes the funnel report.
	Funnels func(ctx context.Context) ([]report.FunnelStats, error)
	// Alerts feeds the alert stream; nil serves 503 there.
	Alerts *Hub
	// Erase erases a user; nil serves 503 on erasure.
	Erase Eraser
	// StoredID turns a user id as given into the stored id (pseudonym).
	StoredID func(id string) (string, error)
	// DefaultLease of claims that name none.
	DefaultLease time.Duration
	Logger       *zap.Logger
	// Audit receives one entry per read or erasure of a user's data.
	Audit *zap.Logger
}

func (o *Options) validate() error {
	if o.Queue == nil || o.Views == nil || o.Funnels == nil {
		return errors.New("api: queue, views and funnels are required")
	}
	if err := o.Config.Validate(); err != nil {
		return err
	}
	if o.StoredID == nil {
		o.StoredID = func(id string) (string, error) { return id, nil }
	}
	if o.DefaultLease <= 0 {
		o.DefaultLease = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Audit == nil {
		o.Audit = o.Logger.Named("audit")
	}
	return nil
}

// Server serves the API and the console.
type Server struct {
	o      Options
	tokens map[string]Principal // hex SHA-256 -> holder
	mux    *http.ServeMux
	routes []Route
}

// Route is one served method and path pattern with the role it needs.
type Route struct {
	Method, Pattern string
	Role            Role
	// Stream routes have no request timeout.
	Stream  bool
	handler func(http.ResponseWriter, *http.Request, Principal)
}

// New checks o and builds the routes.
func New(o Options) (*Server, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := &Server{o: o, tokens: map[string]Principal{}, mux: http.NewServeMux()}
	for _, t := range o.Config.Tokens {
		s.tokens[strings.ToLower(t.SHA256)] = Principal{Name: t.Name, Role: Role(t.Role)}
	}
	s.routes = []Route{
		{Method: "GET", Pattern: "/healthz", Role: rolePublic, handler: s.health},
		{Method: "GET", Pattern: "/openapi.yaml", Role: rolePublic, handler: s.openapi},
		{Method: "GET", Pattern: "/{$}", Role: rolePublic, handler: s.console},
		{Method: "GET", Pattern: "/static/{file}", Role: rolePublic, handler: s.static},
		{Method: "GET", Pattern: "/v1/me", Role: roleAny, handler: s.me},
		{Method: "GET", Pattern: "/v1/queue", Role: RoleAgent, handler: s.listQueue},
		{Method: "POST", Pattern: "/v1/queue/claim", Role: RoleAgent, handler: s.claim},
		{Method: "GET", Pattern: "/v1/queue/{conversation}", Role: RoleAgent, handler: s.getItem},
		{Method: "POST", Pattern: "/v1/queue/{conversation}/extend", Role: RoleAgent, handler: s.extend},
		{Method: "POST", Pattern: "/v1/queue/{conversation}/resolve", Role: RoleAgent, handler: s.resolve},
		{Method: "POST", Pattern: "/v1/queue/{conversation}/release", Role: RoleAgent, handler: s.release},
		{Method: "DELETE", Pattern: "/v1/queue/{conversation}", Role: RoleAdmin, handler: s.remove},
		{Method: "GET", Pattern: "/v1/users/{id}", Role: RoleAgent, handler: s.userView},
		{Method: "DELETE", Pattern: "/v1/users/{id}", Role: RoleAdmin, handler: s.erase},
		{Method: "GET", Pattern: "/v1/funnels", Role: RoleAnalyst, handler: s.funnels},
		{Method: "GET", Pattern: "/v1/alerts/stream", Role: RoleAnalyst, Stream: true, handler: s.alertStream},
	}
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
	}
	// Anything else: a 404 with a reason, in JSON.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such route: "+r.Method+" "+r.URL.Path)
	})
	return s, nil
}

// Routes lists what the server serves (the OpenAPI test compares it with
// the document).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// HTTPServer returns an http.Server for addr with a header read
// timeout; bodies, handlers and writes are bounded per route (the alert
// stream is not).
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(s.o.Logger.Named("http")),
	}
}

// allowed says whether role may use a route that needs need.
func allowed(role, need Role) bool {
	return need == rolePublic || need == roleAny || role == RoleAdmin || role == need
}

func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		var who Principal
		if rt.Role != rolePublic {
			p, ok := s.authenticate(r)
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="cxstream"`)
				writeError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required (Authorization: Bearer <token>)")
				return
			}
			if !allowed(p.Role, rt.Role) {
				writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("role %s may not %s %s (needs %s)", p.Role, rt.Method, rt.Pattern, rt.Role))
				return
			}
			who = p
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.o.Config.MaxBodyBytes)
		rc := http.NewResponseController(w)
		if rt.Stream {
			// A stream lives as long as its client: no read deadline
			// (a lapsed one would end it through the server's
			// background read).
			_ = rc.SetReadDeadline(time.Time{})
		} else {
			deadline := time.Now().Add(s.o.Config.RequestTimeout)
			ctx, cancel := context.WithDeadline(r.Context(), deadline)
			defer cancel()
			r = r.WithContext(ctx)
			_ = rc.SetReadDeadline(deadline)
			_ = rc.SetWriteDeadline(deadline.Add(time.Second))
		}
		rt.handler(w, r, who)
	})
}

// authenticate finds the token's holder by the token's SHA-256; the
// token itself is never kept or logged.
func (s *Server) authenticate(r *http.Request) (Principal, bool) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return Principal{}, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	p, ok := s.tokens[hex.EncodeToString(sum[:])]
	return p, ok
}

// apiError is the body of every 4xx and 5xx.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body into v: unknown fields, trailing data and
// oversize bodies are refused with a reason. An empty body leaves v as it
// is.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, errEOF) {
		return true
	}
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("request body over %d bytes", tooLarge.Limit))
		return false
	case err != nil:
		writeError(w, http.StatusBadRequest, "bad_json", "request body: "+err.Error())
		return false
	}
	return true
}
