package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/cxstream/cxstream/schemas"
)

func TestEventsSectionGivesNamesTheirRoles(t *testing.T) {
	p := write(t, `
events:
  purchase: {names: ["Order Completed", "Abo gebucht"], amount: properties.price, default_currency: EUR}
  support_contact: ["Ticket Opened"]
topics:
  input:
    clickstream:
      format: mapping
      mapping:
        fields: {user_id: uid, type: what, event_time: ts}
        values: {type: {v: "Viewed Item", c: "Carted"}}
`)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.Events.Vocabulary()
	if v.RoleOf("Abo gebucht") != schemas.RolePurchase || v.RoleOf("Ticket Opened") != schemas.RoleSupportContact || v.RoleOf("purchase") != schemas.RolePurchase || v.RoleOf("Viewed Item") != schemas.RoleNone {
		t.Fatalf("roles: %+v", v)
	}
	ev := schemas.ClickEvent{Type: "Abo gebucht", Properties: map[string]any{"price": "9.90"}}
	v.Complete(&ev)
	if ev.Amount != 9.9 || ev.Currency != "EUR" {
		t.Fatalf("purchase not completed from the configured path: %+v", ev)
	}
	names := cfg.DeclaredEventNames()
	for _, n := range []string{"Order Completed", "Abo gebucht", "Ticket Opened", "Viewed Item", "Carted", "page_view", "support_contact", "Product Viewed", "screen_view"} {
		if !slices.Contains(names, n) {
			t.Errorf("DeclaredEventNames lacks %q: %v", n, names)
		}
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("not sorted and unique: %v", names)
	}
}

func TestEventsSectionRejections(t *testing.T) {
	for body, want := range map[string]string{
		"events:\n  login: [\"a\\u0007b\"]\n":                              "events.login",
		"events:\n  login: [X]\n  signup: [X]\n":                           `already declared under events.login`,
		"events:\n  other: [\"a\\u0007b\"]\n":                              "events.other",
		"events:\n  cart_add: [purchase]\n":                                "built-in name",
		"events:\n  purchase: {amount: revenue}\n":                         "events.purchase.amount",
		"events:\n  purchase: {default_currency: euro}\n":                  "events.purchase.default_currency",
		"topics:\n  input:\n    chat: {format: segment}\n":                 "topics.input.chat",
		"topics:\n  input:\n    clickstream: {format: mapping}\n":          "topics.input.clickstream",
		"topics:\n  input:\n    clickstream: {format: segment, typo: 1}\n": "typo",
	} {
		_, err := Load(write(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to name %q", body, err, want)
		}
	}
}

// Funnels may name what the configuration declares; a misspelt name is
// still caught, with the declared name suggested.
func TestFunnelsAcceptDeclaredNames(t *testing.T) {
	funnels := `
funnels:
  - name: shop
    window: 1h
    steps:
      - {name: viewed, events: ["%s"]}
      - {name: ordered, events: ["Order Completed", "Abo gebucht"]}
events:
  purchase: {names: ["Abo gebucht"]}
`
	if _, err := Load(write(t, strings.ReplaceAll(funnels, "%s", "Product Viewed"))); err != nil {
		t.Fatalf("declared names refused: %v", err)
	}
	_, err := Load(write(t, strings.ReplaceAll(funnels, "%s", "Prodcut Viewed")))
	if err == nil || !strings.Contains(err.Error(), `"Prodcut Viewed"`) || !strings.Contains(err.Error(), `did you mean "Product Viewed"`) {
		t.Fatalf("misspelt name: %v", err)
	}
}
