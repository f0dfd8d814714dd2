package schemas

import (
	"strconv"
	"strings"
)

// Role is the meaning cxstream gives an event name. The built-in names
// have theirs; configuration (events:) gives one to the source's own
// names. A name with no role is still activity.
type Role string

// Roles cxstream acts on.
const (
	RoleNone Role = ""
	// RolePurchase: counts as a purchase (churn's RFM features, a chat
	// customer's value); its amount and currency come from the event or
	// from the configured paths and default currency.
	RolePurchase Role = "purchase"
	// RoleSupportContact: a contact with support outside the chat (a
	// ticket, a call), counted in churn's support_contacts_14d.
	RoleSupportContact Role = "support_contact"
	// RoleLogin: an authenticated session start; with a user id and an
	// anonymous id it links the two (cxstream collect).
	RoleLogin Role = "login"
	// RoleSignup: an account creation; also links ids like a login.
	RoleSignup Role = "signup"
	// RoleCartAdd and RoleCheckout: a user at this funnel stage is "in the
	// middle of a purchase", which raises a negative chat's priority.
	RoleCartAdd  Role = "cart_add"
	RoleCheckout Role = "checkout"
	// RoleCartRemoval: an item taken out of the cart; funnels use such
	// names as exclusions.
	RoleCartRemoval Role = "cart_removal"
)

// builtinRoles are the roles of the built-in names; configuration cannot
// change them.
var builtinRoles = map[string]Role{
	ClickPurchase:       RolePurchase,
	ClickSupportContact: RoleSupportContact,
	ClickLogin:          RoleLogin,
	ClickSignup:         RoleSignup,
	ClickAddToCart:      RoleCartAdd,
	ClickCheckoutStart:  RoleCheckout,
	ClickRemoveFromCart: RoleCartRemoval,
}

// canonical is the built-in name standing for a role, where code written
// for the built-in vocabulary compares names (the funnel stage).
var canonical = map[Role]string{
	RolePurchase:       ClickPurchase,
	RoleSupportContact: ClickSupportContact,
	RoleLogin:          ClickLogin,
	RoleSignup:         ClickSignup,
	RoleCartAdd:        ClickAddToCart,
	RoleCheckout:       ClickCheckoutStart,
	RoleCartRemoval:    ClickRemoveFromCart,
}

// AllRoles lists the roles a name can be given, in a fixed order.
var AllRoles = []Role{RolePurchase, RoleSupportContact, RoleLogin, RoleSignup, RoleCartAdd, RoleCheckout, RoleCartRemoval}

// PurchaseFields says where a purchase named by the source keeps its
// amount and currency when the event's own amount and currency fields are
// empty: a path "properties.X" (or "amount"/"currency"), and a default
// currency (ISO 4217) when none is found.
type PurchaseFields struct {
	AmountPath      string
	CurrencyPath    string
	DefaultCurrency string
}

// Vocabulary maps event names to roles. The zero value knows the
// built-in names only. It is read-only once built, so safe to share.
type Vocabulary struct {
	byName   map[string]Role
	purchase PurchaseFields
}

// NewVocabulary gives the names in names their role, on top of the
// built-in names (whose roles do not change).
func NewVocabulary(names map[Role][]string, purchase PurchaseFields) Vocabulary {
	v := Vocabulary{byName: map[string]Role{}, purchase: purchase}
	for role, list := range names {
		for _, n := range list {
			v.byName[n] = role
		}
	}
	for n, r := range builtinRoles {
		v.byName[n] = r
	}
	return v
}

// RoleOf is the role of an event name, RoleNone for plain activity.
func (v Vocabulary) RoleOf(name string) Role {
	if v.byName == nil {
		return builtinRoles[name]
	}
	return v.byName[name]
}

// Canonical is the built-in name of name's role (add_to_cart for a name
// declared cart_add), or name itself when it has no role.
func (v Vocabulary) Canonical(name string) string {
	if c, ok := canonical[v.RoleOf(name)]; ok {
		return c
	}
	return name
}

// Purchase returns the fields of the configured purchases.
func (v Vocabulary) Purchase() PurchaseFields { return v.purchase }

// Complete fills a purchase's amount and currency from the configured
// paths and default currency when the event does not carry them. It
// changes nothing for events of other roles.
func (v Vocabulary) Complete(ev *ClickEvent) {
	if v.RoleOf(ev.Type) != RolePurchase {
		return
	}
	if ev.Amount == 0 && v.purchase.AmountPath != "" {
		if f, ok := numberAt(*ev, v.purchase.AmountPath); ok && f >= 0 && f <= 1e9 {
			ev.Amount = f
		}
	}
	if ev.Currency == "" && v.purchase.CurrencyPath != "" {
		if s, ok := ev.field(v.purchase.CurrencyPath).(string); ok && isUpper3(strings.ToUpper(s)) {
			ev.Currency = strings.ToUpper(s)
		}
	}
	if ev.Currency == "" {
		ev.Currency = v.purchase.DefaultCurrency
	}
}

// field reads a top-level field or properties.X.
func (ev ClickEvent) field(path string) any {
	switch path {
	case "amount":
		return ev.Amount
	case "currency":
		return ev.Currency
	case "page":
		return ev.Page
	case "item_id":
		return ev.ItemID
	case "session_id":
		return ev.SessionID
	}
	if name, ok := strings.CutPrefix(path, "properties."); ok {
		return ev.Properties[name]
	}
	return nil
}

func numberAt(ev ClickEvent, path string) (float64, bool) {
	switch x := ev.field(path).(type) {
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}
