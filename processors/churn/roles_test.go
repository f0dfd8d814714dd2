package churn

import (
	"testing"

	"github.com/cxstream/cxstream/schemas"
)

// Churn reads roles, not names: a purchase named by the source counts with
// its amount, a support contact from the clickstream counts in
// support_contacts_14d, and any other name is activity.
func TestObserveAsUsesTheRole(t *testing.T) {
	var st State
	at := int64(1_763_900_000_000)
	ObserveAs(&st, schemas.ClickEvent{Type: "Order Completed", Amount: 20, EventTime: at}, schemas.RolePurchase)
	ObserveAs(&st, schemas.ClickEvent{Type: "Ticket Opened", EventTime: at + 1}, schemas.RoleSupportContact)
	ObserveAs(&st, schemas.ClickEvent{Type: "Wishlist Shared", EventTime: at + 2}, schemas.RoleNone)
	Observe(&st, schemas.ClickEvent{Type: "Order Completed", Amount: 99, EventTime: at + 3}) // no role without the vocabulary
	if st.Purchases != 1 || st.Spend != 20 || st.Days[0] != 4 {
		t.Fatalf("state %+v", st)
	}
	f := Features(&st, Signals{ContactAt: []int64{at}}, at+10)
	if f[FeatSupportContact] != 2 {
		t.Fatalf("support contacts: chat 1 + clickstream 1, got %v", f[FeatSupportContact])
	}
	if f = Features(&st, Signals{}, at+15*dayMs); f[FeatSupportContact] != 0 {
		t.Fatalf("a contact older than 14 days still counts: %v", f[FeatSupportContact])
	}
	for i := 0; i < 20; i++ {
		ObserveAs(&st, schemas.ClickEvent{Type: "Ticket Opened", EventTime: at + int64(i)}, schemas.RoleSupportContact)
	}
	if len(st.ContactAt) > maxContacts {
		t.Fatalf("contacts unbounded: %d", len(st.ContactAt))
	}
}
