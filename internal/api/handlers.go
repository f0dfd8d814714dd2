package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/userview"
	"github.com/cxstream/cxstream/schemas"
)

var errEOF = io.EOF

// audit records that who read or erased a user's data.
func (s *Server) audit(who Principal, action string, users ...string) {
	s.o.Audit.Info("user data access",
		zap.String("who", who.Name), zap.String("role", string(who.Role)),
		zap.String("action", action), zap.Strings("users", users),
		zap.Time("at", time.Now().UTC()))
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request, _ Principal) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request, _ Principal) {
	doc, err := schemas.OpenAPI()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "openapi document missing")
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	_, _ = w.Write(doc)
}

func (s *Server) me(w http.ResponseWriter, _ *http.Request, who Principal) {
	writeJSON(w, http.StatusOK, map[string]any{"name": who.Name, "role": who.Role, "default_lease_seconds": s.o.DefaultLease.Seconds()})
}

// queueError maps queue refusals to 4xx with their reason.
func (s *Server) queueError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, alertsink.ErrEmpty):
		writeError(w, http.StatusNotFound, "queue_empty", err.Error())
	case errors.Is(err, alertsink.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_in_queue", err.Error())
	case errors.Is(err, alertsink.ErrClaimed):
		writeError(w, http.StatusConflict, "claimed_by_other", err.Error())
	case errors.Is(err, alertsink.ErrNotClaimed):
		writeError(w, http.StatusConflict, "not_claimed", err.Error())
	case errors.Is(err, alertsink.ErrInvalid):
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
	default:
		s.internal(w, err)
	}
}

func (s *Server) internal(w http.ResponseWriter, err error) {
	s.o.Logger.Error("request failed", zap.Error(err))
	writeError(w, http.StatusServiceUnavailable, "unavailable", "the store did not answer; try again")
}

func (s *Server) listQueue(w http.ResponseWriter, r *http.Request, who Principal) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "invalid", "limit must be an integer from 1 to 1000")
			return
		}
		limit = n
	}
	items, err := s.o.Queue.List(r.Context(), limit)
	if err != nil {
		s.internal(w, err)
		return
	}
	st, err := s.o.Queue.Stats(r.Context())
	if err != nil {
		s.internal(w, err)
		return
	}
	if items == nil {
		items = []alertsink.Item{}
	}
	users := make([]string, 0, len(items))
	for _, it := range items {
		users = append(users, it.UserID)
	}
	if len(users) > 0 {
		s.audit(who, "queue.list", users...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"waiting": st.Waiting, "claimed": st.Claimed, "oldest_waiting_seconds": st.OldestWaiting.Seconds(), "items": items})
}

type claimRequest struct {
	ConversationID string  `json:"conversation_id"`
	LeaseSeconds   float64 `json:"lease_seconds"`
}

type leaseRequest struct {
	LeaseSeconds float64 `json:"lease_seconds"`
}

type resolveRequest struct {
	Outcome string `json:"outcome"`
}

func (s *Server) lease(secs float64) time.Duration {
	if secs == 0 {
		return s.o.DefaultLease
	}
	return time.Duration(secs * float64(time.Second))
}

// The agent of a claim is the token's holder: nobody acts in another
// agent's name.
func (s *Server) claim(w http.ResponseWriter, r *http.Request, who Principal) {
	var req claimRequest
	if !decode(w, r, &req) {
		return
	}
	it, err := s.o.Queue.Claim(r.Context(), alertsink.ClaimOptions{Agent: who.Name, Lease: s.lease(req.LeaseSeconds), Conversation: req.ConversationID})
	if err != nil {
		s.queueError(w, err)
		return
	}
	s.audit(who, "queue.claim", it.UserID)
	writeJSON(w, http.StatusOK, it)
}

func (s *Server) getItem(w http.ResponseWriter, r *http.Request, who Principal) {
	it, err := s.o.Queue.Get(r.Context(), r.PathValue("conversation"))
	if err != nil {
		s.queueError(w, err)
		return
	}
	s.audit(who, "queue.get", it.UserID)
	writeJSON(w, http.StatusOK, it)
}

func (s *Server) extend(w http.ResponseWriter, r *http.Request, who Principal) {
	var req leaseRequest
	if !decode(w, r, &req) {
		return
	}
	it, err := s.o.Queue.Extend(r.Context(), r.PathValue("conversation"), who.Name, s.lease(req.LeaseSeconds))
	if err != nil {
		s.queueError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, it)
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request, who Principal) {
	var req resolveRequest
	if !decode(w, r, &req) {
		return
	}
	it, err := s.o.Queue.Resolve(r.Context(), r.PathValue("conversation"), who.Name, req.Outcome)
	if err != nil {
		s.queueError(w, err)
		return
	}
	s.o.Logger.Info("conversation resolved", zap.String("agent", who.Name), zap.String("conversation", it.ConversationID), zap.String("outcome", req.Outcome))
	writeJSON(w, http.StatusOK, it)
}

func (s *Server) release(w http.ResponseWriter, r *http.Request, who Principal) {
	if !decode(w, r, &struct{}{}) {
		return
	}
	it, err := s.o.Queue.Release(r.Context(), r.PathValue("conversation"), who.Name)
	if err != nil {
		s.queueError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, it)
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request, who Principal) {
	it, err := s.o.Queue.RemoveConversation(r.Context(), r.PathValue("conversation"))
	if err != nil {
		s.queueError(w, err)
		return
	}
	s.o.Logger.Info("conversation removed", zap.String("by", who.Name), zap.String("conversation", it.ConversationID))
	writeJSON(w, http.StatusOK, it)
}

// userView takes the user id as the customer knows it, or with
// ?stored=true the id as stored (the pseudonym queue items carry).
func (s *Server) userView(w http.ResponseWriter, r *http.Request, who Principal) {
	id := r.PathValue("id")
	switch r.URL.Query().Get("stored") {
	case "true":
	case "", "false":
		var err error
		if id, err = s.o.StoredID(id); err != nil {
			s.internal(w, err)
			return
		}
	default:
		writeError(w, http.StatusBadRequest, "invalid", "stored must be true or false")
		return
	}
	s.audit(who, "user.view", id)
	v, err := s.o.Views.Build(r.Context(), id)
	if errors.Is(err, userview.ErrNoUser) {
		writeError(w, http.StatusNotFound, "no_such_user", "no state or queue entry for this user")
		return
	}
	if err != nil {
		s.internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) erase(w http.ResponseWriter, r *http.Request, who Principal) {
	if s.o.Erase == nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "erasure is not configured on this server")
		return
	}
	id, err := s.o.StoredID(r.PathValue("id"))
	if err != nil {
		s.internal(w, err)
		return
	}
	s.audit(who, "user.erase", id)
	// Erase takes the id as given: identity links are kept under the
	// original ids, the state under the stored one.
	res, err := s.o.Erase(r.Context(), r.PathValue("id"))
	if err != nil {
		s.o.Logger.Error("erasure failed", zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "erasure incomplete, run it again: " + err.Error(), "code": "unavailable", "done": res})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// funnelReport is one funnel of GET /v1/funnels.
type funnelReport struct {
	Name                 string       `json:"name"`
	Users                int          `json:"users"`
	Steps                []funnelStep `json:"steps"`
	Conversions          int          `json:"conversions"`
	Abandonments         int          `json:"abandonments"`
	MeanConvertSeconds   float64      `json:"mean_convert_seconds"`
	MedianConvertSeconds float64      `json:"median_convert_seconds"`
	ConvertHistogram     []histBucket `json:"convert_histogram"`
}

type funnelStep struct {
	Name       string `json:"name"`
	Reached    int    `json:"reached"`
	InProgress int    `json:"in_progress"`
}

type histBucket struct {
	// UpToSeconds is the bucket's upper bound; 0 for the open last one.
	UpToSeconds float64 `json:"up_to_seconds"`
	Count       int     `json:"count"`
}

func (s *Server) funnels(w http.ResponseWriter, r *http.Request, _ Principal) {
	stats, err := s.o.Funnels(r.Context())
	if err != nil {
		s.internal(w, err)
		return
	}
	out := make([]funnelReport, 0, len(stats))
	for _, f := range stats {
		fr := funnelReport{Name: f.Name, Users: f.Users, Conversions: f.Conversions, Abandonments: f.Abandonments,
			MeanConvertSeconds: f.MeanConvert.Seconds(), MedianConvertSeconds: f.MedianConvert.Seconds(), Steps: []funnelStep{}, ConvertHistogram: []histBucket{}}
		for i, name := range f.Steps {
			fr.Steps = append(fr.Steps, funnelStep{Name: name, Reached: f.Reached[i], InProgress: f.InProgress[i]})
		}
		for i, n := range f.ConvertHistogram {
			b := histBucket{Count: n}
			if i < len(report.ConvertBuckets) {
				b.UpToSeconds = report.ConvertBuckets[i].Seconds()
			}
			fr.ConvertHistogram = append(fr.ConvertHistogram, b)
		}
		out = append(out, fr)
	}
	writeJSON(w, http.StatusOK, map[string]any{"funnels": out})
}
