package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/api"
	"github.com/cxstream/cxstream/internal/collect"
	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/internal/userview"
	"github.com/cxstream/cxstream/internal/userview/viewtest"
	"github.com/cxstream/cxstream/schemas"
)

func TestEveryRouteIsInTheOpenAPIDocumentAndViceVersa(t *testing.T) {
	raw, err := schemas.OpenAPI()
	testenv.Must(t, err, "read")
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	testenv.Must(t, yaml.Unmarshal(raw, &doc), "parse openapi")
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			if method == "parameters" {
				continue
			}
			role, _ := op.(map[string]any)["x-role"].(string)
			documented = append(documented, strings.ToUpper(method)+" "+path+" "+role)
		}
	}
	srv, err := api.New(api.Options{Queue: &alertsink.Queue{}, Views: &userview.Builder{}, Funnels: noFunnels, Config: defaultAPIConfig()})
	testenv.Must(t, err, "server")
	var served []string
	for _, r := range srv.Routes() {
		role := string(r.Role)
		if role == "" {
			role = "public"
		}
		served = append(served, r.Method+" "+strings.TrimSuffix(r.Pattern, "{$}")+" "+role)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("served routes and the OpenAPI document differ:\nserved:     %q\ndocumented: %q", served, documented)
	}
}

func TestRolesAndBadRequests(t *testing.T) {
	e := start(t)
	e.push(negative("u-1", "c-1", schemas.PriorityHigh, 1000))
	cases := []struct {
		holder, method, path string
		body                 any
		status               int
		code                 string
	}{
		{"", "GET", "/v1/queue", nil, 401, "unauthorized"},
		{"analyst", "GET", "/v1/queue", nil, 403, "forbidden"},
		{"analyst", "GET", "/v1/users/u-1", nil, 403, "forbidden"},
		{"ana", "GET", "/v1/funnels", nil, 403, "forbidden"},
		{"ana", "GET", "/v1/alerts/stream", nil, 403, "forbidden"},
		{"ana", "DELETE", "/v1/users/u-1", nil, 403, "forbidden"},
		{"ana", "DELETE", "/v1/queue/c-1", nil, 403, "forbidden"},
		{"ana", "GET", "/v1/queue?limit=abc", nil, 400, "invalid"},
		{"ana", "POST", "/v1/queue/claim", `{"lease_seconds": "5m"}`, 400, "bad_json"},
		{"ana", "POST", "/v1/queue/claim", `{"agent": "bob"}`, 400, "bad_json"},
		{"ana", "POST", "/v1/queue/claim", `{} {}`, 400, "bad_json"},
		{"ana", "POST", "/v1/queue/claim", `{"conversation_id": "` + strings.Repeat("x", 4000) + `"}`, 413, "too_large"},
		{"ana", "POST", "/v1/queue/claim", map[string]any{"lease_seconds": -1}, 400, "invalid"},
		{"ana", "POST", "/v1/queue/claim", map[string]any{"conversation_id": "nope"}, 404, "not_in_queue"},
		{"ana", "POST", "/v1/queue/c-1/resolve", map[string]any{"outcome": "done"}, 409, "not_claimed"},
		{"ana", "GET", "/v1/users/nobody", nil, 404, "no_such_user"},
		{"ana", "GET", "/v1/users/u-1?stored=maybe", nil, 400, "invalid"},
		{"analyst", "GET", "/v1/alerts/stream?type=bogus", nil, 400, "invalid"},
		{"analyst", "GET", "/v1/alerts/stream?min_priority=HUGE", nil, 400, "invalid"},
		{"ana", "GET", "/v1/nothing-here", nil, 404, "not_found"},
		{"admin", "GET", "/v1/queue", nil, 200, ""},
		{"admin", "GET", "/v1/funnels", nil, 200, ""},
		{"analyst", "GET", "/v1/funnels", nil, 200, ""},
		{"analyst", "GET", "/v1/me", nil, 200, ""},
		{"", "GET", "/v1/me", nil, 401, "unauthorized"},
		{"ana", "GET", "/v1/queue", nil, 200, ""},
		{"", "GET", "/", nil, 200, ""},
		{"", "GET", "/static/console.js", nil, 200, ""},
		{"", "GET", "/openapi.yaml", nil, 200, ""},
	}
	for _, c := range cases {
		status, code := e.do(c.holder, c.method, c.path, c.body, nil)
		if status != c.status || code != c.code {
			t.Errorf("%s %s %s: %d %q, want %d %q", c.holder, c.method, c.path, status, code, c.status, c.code)
		}
	}
	// A wrong token is refused like none; no token ever reaches the logs.
	req, _ := http.NewRequest("GET", e.URL+"/v1/queue", nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	res, err := http.DefaultClient.Do(req)
	testenv.Must(t, err, "request")
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Errorf("unknown token: %d", res.StatusCode)
	}
	for _, entry := range e.Logs.All() {
		line := fmt.Sprintf("%s %v", entry.Message, entry.ContextMap())
		for _, tk := range tokens {
			if strings.Contains(line, tk.token) {
				t.Fatalf("a token was logged: %s", line)
			}
		}
	}
}

func TestTwoAgentsClaimingAtOnceNeverHoldTheSameConversation(t *testing.T) {
	e := start(t)
	var alerts []*schemas.Alert
	for i := range 60 {
		alerts = append(alerts, negative(fmt.Sprintf("u-%d", i), fmt.Sprintf("c-%d", i), schemas.PriorityFromRank(i%4), int64(1000+i)))
	}
	e.push(alerts...)
	var (
		mu    sync.Mutex
		owner = map[string]string{}
		wg    sync.WaitGroup
	)
	for _, agent := range []string{"ana", "bob"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var it alertsink.Item
				status, code := e.do(agent, "POST", "/v1/queue/claim", map[string]any{"lease_seconds": 600}, &it)
				if code == "queue_empty" {
					return
				}
				if status != 200 || it.Claim == nil || it.Claim.Agent != agent {
					t.Errorf("%s claim: %d %s %+v", agent, status, code, it)
					return
				}
				mu.Lock()
				if prev, dup := owner[it.ConversationID]; dup {
					t.Errorf("%s claimed by %s and %s", it.ConversationID, prev, agent)
				}
				owner[it.ConversationID] = agent
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(owner) != 60 {
		t.Fatalf("%d conversations claimed, want 60", len(owner))
	}
	// Each may work only its own.
	for conv, agent := range owner {
		other := map[string]string{"ana": "bob", "bob": "ana"}[agent]
		if status, code := e.do(other, "POST", "/v1/queue/"+conv+"/resolve", map[string]any{"outcome": "resolved"}, nil); status != 409 || code != "claimed_by_other" {
			t.Fatalf("%s resolved %s's %s: %d %s", other, agent, conv, status, code)
		}
		if status, _ := e.do(agent, "POST", "/v1/queue/"+conv+"/resolve", map[string]any{"outcome": "resolved"}, nil); status != 200 {
			t.Fatalf("%s could not resolve its %s: %d", agent, conv, status)
		}
	}
}

func TestAClaimWhoseClientDiesComesBackAfterItsLease(t *testing.T) {
	e := start(t)
	e.push(negative("u-1", "c-1", schemas.PriorityHigh, 1000), negative("u-2", "c-2", schemas.PriorityNormal, 500))
	var it alertsink.Item
	if status, _ := e.do("crashy", "POST", "/v1/queue/claim", map[string]any{"lease_seconds": 30}, &it); status != 200 || it.ConversationID != "c-1" {
		t.Fatalf("claim: %d %+v", status, it)
	}
	var extended alertsink.Item
	if status, _ := e.do("crashy", "POST", "/v1/queue/c-1/extend", map[string]any{"lease_seconds": 60}, &extended); status != 200 || !extended.Claim.ExpiresAt.After(it.Claim.ExpiresAt) {
		t.Fatalf("extend: %d %+v", status, extended.Claim)
	}
	// crashy's tool dies here. Within the lease the item stays claimed...
	e.Clock.Advance(59 * time.Second)
	var q struct {
		Waiting, Claimed int
		Items            []alertsink.Item
	}
	e.do("bob", "GET", "/v1/queue", nil, &q)
	if q.Claimed != 1 || q.Waiting != 1 {
		t.Fatalf("within the lease: %+v", q)
	}
	// ...after it, it is back, first in line, with its priority and age.
	e.Clock.Advance(2 * time.Second)
	q.Items = nil // decoding into reused elements would keep their old claims
	e.do("bob", "GET", "/v1/queue", nil, &q)
	if q.Claimed != 0 || q.Waiting != 2 || q.Items[0].ConversationID != "c-1" || q.Items[0].Claim != nil || q.Items[0].Priority != schemas.PriorityHigh || q.Items[0].WaitingSeconds < 61 {
		t.Fatalf("after the lease: %+v", q)
	}
	var got alertsink.Item
	if status, _ := e.do("bob", "POST", "/v1/queue/claim", map[string]any{}, &got); status != 200 || got.ConversationID != "c-1" {
		t.Fatalf("bob's claim: %d %+v", status, got)
	}
	if status, code := e.do("crashy", "POST", "/v1/queue/c-1/resolve", map[string]any{"outcome": "resolved"}, nil); status != 409 || code != "claimed_by_other" {
		t.Fatalf("the crashed client resolved after losing its lease: %d %s", status, code)
	}
	if status, _ := e.do("bob", "POST", "/v1/queue/c-1/release", nil, nil); status != 200 {
		t.Fatalf("release: %d", status)
	}
	if status, _ := e.do("admin", "DELETE", "/v1/queue/c-1", nil, nil); status != 200 {
		t.Fatalf("admin remove: %d", status)
	}
}

func TestUserViewIsAuditedAndErasureRemovesEverything(t *testing.T) {
	e := start(t)
	viewtest.Seed(t, e.Redis.Client, e.Queue, viewtest.Customer{UserID: "u-42", ConversationID: "conv-9", Messages: []string{
		"hello", "I was charged twice and nobody answers, this is ridiculous",
	}}, time.Now())
	var v userview.View
	if status, _ := e.do("ana", "GET", "/v1/users/u-42", nil, &v); status != 200 || v.Schema != "user-view.v1" || v.Purchases.Count != 1 || len(v.Queue) != 1 {
		t.Fatalf("view: %d %+v", status, v)
	}
	audited := e.Logs.FilterMessage("user data access").FilterField(zapString("who", "ana")).FilterField(zapString("action", "user.view")).All()
	if len(audited) != 1 || fmt.Sprint(audited[0].ContextMap()["users"]) != "[u-42]" || audited[0].LoggerName != "audit" {
		t.Fatalf("audit entries %+v", audited)
	}

	// The funnel report sees the seeded journey: two attempts reached
	// checkout, one bought within 30 minutes.
	var rep struct {
		Funnels []struct {
			Name        string
			Conversions int
			Steps       []struct {
				Name    string
				Reached int
			}
			ConvertHistogram []struct {
				UpToSeconds float64 `json:"up_to_seconds"`
				Count       int
			} `json:"convert_histogram"`
		}
	}
	if status, _ := e.do("analyst", "GET", "/v1/funnels", nil, &rep); status != 200 || len(rep.Funnels) != 1 {
		t.Fatalf("funnels: %d %+v", status, rep)
	}
	f := rep.Funnels[0]
	reached := fmt.Sprint(f.Steps)
	if f.Name != "purchase" || f.Conversions != 1 || reached != "[{view 2} {cart 2} {checkout 2} {purchase 1}]" {
		t.Fatalf("funnel %+v", f)
	}
	for _, b := range f.ConvertHistogram {
		want := 0
		if b.UpToSeconds == 3600 {
			want = 1 // 30 minutes from view to purchase
		}
		if b.Count != want {
			t.Fatalf("time-to-convert histogram %+v", f.ConvertHistogram)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Kafka.Brokers...), kgo.ConsumeTopics("cx.alerts.v2"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testenv.Must(t, err, "client")
	defer cl.Close()
	// The collector linked an anonymous id to u-42: erasure removes it too.
	testenv.Must(t, collect.NewLinks(e.Redis.Client, "cx", 0, privacy.NewPseudonymizer("")).Link(context.Background(), map[string]string{"anon-7": "u-42"}), "link")
	var res api.Erasure
	if status, _ := e.do("admin", "DELETE", "/v1/users/u-42", nil, &res); status != 200 || res.Keys != 2 || res.QueueEntries != 1 || res.IdentityLinks != 2 || !res.Tombstone {
		t.Fatalf("erase: %d %+v", status, res)
	}
	if status, code := e.do("ana", "GET", "/v1/users/u-42", nil, nil); status != 404 || code != "no_such_user" {
		t.Fatalf("view after erasure: %d %s", status, code)
	}
	if keys := append(e.Redis.Client.Keys(context.Background(), "*u-42*").Val(), e.Redis.Client.Keys(context.Background(), "*anon-7*").Val()...); len(keys) != 0 {
		t.Fatalf("left behind: %v", keys)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("no tombstone on the alert topic")
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) {
			found = found || (string(r.Key) == "u-42" && r.Value == nil)
		})
		if found {
			break
		}
	}
}

func TestAlertStreamFiltersAndShowsSLABreaches(t *testing.T) {
	e := start(t)
	high := e.stream("analyst", "?min_priority=HIGH")
	breaches := e.stream("admin", "?type=sla_breach")
	// The hub starts at the topic's end: produce until the stream shows
	// the HIGH alert, and never the LOW one.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the HIGH alert never arrived")
		}
		e.produceAlert(&schemas.Alert{Schema: schemas.AlertV2, AlertID: strings.Repeat("a", 32), Type: schemas.AlertChurnRisk, UserID: "u-low", Priority: schemas.PriorityLow, ChurnProbability: new(0.7), Reasons: []schemas.AlertReason{{Code: "x", Text: "x"}}, RuleVersion: "x"})
		e.produceAlert(&schemas.Alert{Schema: schemas.AlertV2, AlertID: strings.Repeat("b", 32), Type: schemas.AlertNegativeChat, UserID: "u-high", Priority: schemas.PriorityHigh, Sentiment: new(-0.9), Reasons: []schemas.AlertReason{{Code: "x", Text: "x"}}, RuleVersion: "x"})
		a, ok := next(t, high, time.Second)
		if ok {
			if a.UserID != "u-high" {
				t.Fatalf("min_priority=HIGH streamed %+v", a)
			}
			break
		}
	}
	// The streams outlive the request timeout (1s in these tests).
	time.Sleep(1500 * time.Millisecond)
	// A HIGH conversation waits past its 15-minute target: the api's SLA
	// watcher raises one sla_breach alert, which the stream shows.
	e.push(negative("u-late", "c-late", schemas.PriorityHigh, 1000))
	e.Clock.Advance(16 * time.Minute)
	a, ok := next(t, breaches, 20*time.Second)
	if !ok || a.Type != schemas.AlertSLABreach || a.ConversationID != "c-late" || a.Priority != schemas.PriorityUrgent {
		t.Fatalf("breach alert %+v %v", a, ok)
	}
	if a, ok := next(t, breaches, 500*time.Millisecond); ok {
		t.Fatalf("a second breach alert: %+v", a)
	}
	for {
		a, ok := next(t, high, 200*time.Millisecond)
		if !ok {
			break
		}
		if a.Priority.Rank() < schemas.PriorityHigh.Rank() {
			t.Fatalf("min_priority=HIGH streamed %+v", a)
		}
	}
}

func TestUserViewWithPseudonymsTakesTheOriginalOrTheStoredID(t *testing.T) {
	e := start(t, func(c *config.Config) { c.Privacy.PseudonymKey = "test-key" })
	stored := privacy.NewPseudonymizer("test-key").ID("u-42")
	viewtest.Seed(t, e.Redis.Client, e.Queue, viewtest.Customer{UserID: stored, ConversationID: "conv-9", Messages: []string{"hello"}}, time.Now())
	var v userview.View
	if status, _ := e.do("ana", "GET", "/v1/users/u-42", nil, &v); status != 200 || v.UserID != stored {
		t.Fatalf("by original id: %d %q, want the state of %s", status, v.UserID, stored)
	}
	if status, _ := e.do("ana", "GET", "/v1/users/"+stored+"?stored=true", nil, &v); status != 200 || v.UserID != stored {
		t.Fatalf("by stored id: %d %q", status, v.UserID)
	}
	if status, _ := e.do("ana", "GET", "/v1/users/"+stored, nil, nil); status != 404 {
		t.Fatalf("a pseudonym given as an original id must not be found (it is pseudonymised again): %d", status)
	}
	for _, entry := range e.Logs.FilterMessage("user data access").All() {
		if strings.Contains(fmt.Sprint(entry.ContextMap()), "u-42") {
			t.Fatalf("the audit log holds the original id: %v", entry.ContextMap())
		}
	}
}
