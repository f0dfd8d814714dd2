package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cxstream/cxstream/internal/ingest"
	"github.com/cxstream/cxstream/schemas"
)

// Events gives meaning to the source's own event names (the `events:`
// section). The 12 built-in names keep theirs whatever is set here; a
// name that nothing declares is still stored as activity. The lists add to
// the Segment E-commerce Spec names while SegmentSpec is on.
type Events struct {
	Purchase       PurchaseEvents `yaml:"purchase"`
	SupportContact []string       `yaml:"support_contact"`
	Login          []string       `yaml:"login"`
	Signup         []string       `yaml:"signup"`
	CartAdd        []string       `yaml:"cart_add"`
	Checkout       []string       `yaml:"checkout"`
	CartRemoval    []string       `yaml:"cart_removal"`
	// Other declares names your sources send that need no role, so that
	// funnel validation knows them (a name nothing declares is still
	// stored as activity).
	Other []string `yaml:"other"`
	// SegmentSpec declares the Segment E-commerce Spec names with their
	// roles (segmentSpecRoles, segmentSpecOther), so a Segment source
	// works without configuration. A name listed above wins.
	SegmentSpec bool `yaml:"segment_spec"`
}

// PurchaseEvents names the purchase events and where their amount and
// currency are when the events do not carry them in amount and currency.
type PurchaseEvents struct {
	Names []string `yaml:"names"`
	// Amount and Currency are paths in the event: properties.X.
	Amount          string `yaml:"amount"`
	Currency        string `yaml:"currency"`
	DefaultCurrency string `yaml:"default_currency"`
}

// segmentSpecRoles are the Segment E-commerce (and B2B SaaS) Spec names
// with a role.
var segmentSpecRoles = map[schemas.Role][]string{
	schemas.RolePurchase:    {"Order Completed"},
	schemas.RoleLogin:       {"Signed In"},
	schemas.RoleSignup:      {"Signed Up"},
	schemas.RoleCartAdd:     {"Product Added"},
	schemas.RoleCheckout:    {"Checkout Started"},
	schemas.RoleCartRemoval: {"Product Removed"},
}

// segmentSpecOther are the other Spec names, and the names the segment
// format gives screen and identify calls.
var segmentSpecOther = []string{"Products Searched", "Product List Viewed", "Product List Filtered", "Promotion Viewed", "Promotion Clicked",
	"Product Clicked", "Product Viewed", "Cart Viewed", "Checkout Step Viewed", "Checkout Step Completed", "Payment Info Entered",
	"Order Updated", "Order Refunded", "Order Cancelled", "Coupon Entered", "Coupon Applied", "Coupon Denied", "Coupon Removed",
	"Product Added to Wishlist", "Product Removed from Wishlist", "Wishlist Product Added to Cart", "Product Shared", "Cart Shared",
	"Product Reviewed", "Signed Out", "Account Created", "Account Deleted", ingest.SegmentScreenName, ingest.SegmentIdentifyName}

// DefaultEvents: the Segment Spec names on, purchases' amount and
// currency where the Spec keeps them.
func DefaultEvents() Events {
	return Events{Purchase: PurchaseEvents{Amount: "properties.revenue", Currency: "properties.currency"}, SegmentSpec: true}
}

// declared is the user's own lists by role.
func (e Events) declared() map[schemas.Role][]string {
	return map[schemas.Role][]string{
		schemas.RolePurchase:       e.Purchase.Names,
		schemas.RoleSupportContact: e.SupportContact,
		schemas.RoleLogin:          e.Login,
		schemas.RoleSignup:         e.Signup,
		schemas.RoleCartAdd:        e.CartAdd,
		schemas.RoleCheckout:       e.Checkout,
		schemas.RoleCartRemoval:    e.CartRemoval,
	}
}

// byRole is the user's lists plus, with SegmentSpec, the Spec names the
// user did not declare otherwise.
func (e Events) byRole() map[schemas.Role][]string {
	out := e.declared()
	if !e.SegmentSpec {
		return out
	}
	mine := map[string]bool{}
	for _, list := range out {
		for _, n := range list {
			mine[n] = true
		}
	}
	for _, n := range e.Other {
		mine[n] = true
	}
	for role, names := range segmentSpecRoles {
		for _, n := range names {
			if !mine[n] {
				out[role] = append(slices.Clone(out[role]), n)
			}
		}
	}
	return out
}

// Vocabulary is the name -> role lookup the processors use.
func (e Events) Vocabulary() schemas.Vocabulary {
	return schemas.NewVocabulary(e.byRole(), schemas.PurchaseFields{
		AmountPath: e.Purchase.Amount, CurrencyPath: e.Purchase.Currency, DefaultCurrency: e.Purchase.DefaultCurrency,
	})
}

// Validate names the first key of the events section that cannot work: a
// name that is not a valid event name, a name given two roles, a built-in
// name given another role, a path that is not properties.X, a currency
// that is not three capital letters.
func (e Events) Validate() error {
	owner := map[string]schemas.Role{}
	for _, role := range schemas.AllRoles {
		key := "events." + string(role)
		if role == schemas.RolePurchase {
			key += ".names"
		}
		for _, n := range e.declared()[role] {
			if !schemas.ValidEventName(n) {
				return fmt.Errorf("%s: %q is not an event name (1 to %d characters, no control characters)", key, n, schemas.MaxEventNameLength)
			}
			if b := (schemas.Vocabulary{}).RoleOf(n); slices.Contains(schemas.BuiltinClickNames, n) && b != role {
				return fmt.Errorf("%s: %q is a built-in name with its own meaning", key, n)
			}
			if prev, ok := owner[n]; ok && prev != role {
				return fmt.Errorf("%s: %q is already declared under events.%s", key, n, prev)
			}
			owner[n] = role
		}
	}
	for _, n := range e.Other {
		if !schemas.ValidEventName(n) {
			return fmt.Errorf("events.other: %q is not an event name (1 to %d characters, no control characters)", n, schemas.MaxEventNameLength)
		}
	}
	for key, path := range map[string]string{"events.purchase.amount": e.Purchase.Amount, "events.purchase.currency": e.Purchase.Currency} {
		if path != "" && !strings.HasPrefix(path, "properties.") {
			return fmt.Errorf("%s: want a path properties.<name>, got %q", key, path)
		}
	}
	if c := e.Purchase.DefaultCurrency; c != "" && (len(c) != 3 || strings.ToUpper(c) != c || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "") {
		return fmt.Errorf("events.purchase.default_currency: want an ISO 4217 code such as EUR, got %q", c)
	}
	return nil
}

// DeclaredEventNames lists, sorted and once each, the event names the
// configuration declares: the built-in names, the names under events:
// (with a role, or in events.other), and the names the clickstream input
// mapping produces (its value map and constant of type). Funnel
// validation uses it to catch a misspelt name.
func (c Config) DeclaredEventNames() []string {
	names := slices.Clone(schemas.BuiltinClickNames)
	for _, list := range c.Events.byRole() {
		names = append(names, list...)
	}
	names = append(names, c.Events.Other...)
	if c.Events.SegmentSpec {
		names = append(names, segmentSpecOther...)
	}
	for _, in := range []ingest.Input{c.Topics.Input.Clickstream} {
		if m, err := in.Resolve(); err == nil && m != nil {
			names = append(names, m.EventNames()...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// validateInputs checks the events section, the input formats and the
// collector; each error starts with its key.
func (c Config) validateInputs(ps *problems) {
	for _, err := range []error{c.Events.Validate(), c.Topics.Input.Validate(), c.Collect.Validate()} {
		if err != nil {
			ps.addKeyed(fmt.Errorf("config: %w", err))
		}
	}
}
