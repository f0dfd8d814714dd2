package schemas

import "testing"

func TestVocabulary(t *testing.T) {
	v := NewVocabulary(map[Role][]string{RolePurchase: {"Order Completed"}, RoleCartAdd: {"Product Added"}, RoleLogin: {"purchase"}},
		PurchaseFields{AmountPath: "properties.revenue", CurrencyPath: "properties.cur", DefaultCurrency: "USD"})
	if v.RoleOf("purchase") != RolePurchase {
		t.Error("a built-in name lost its role")
	}
	if v.RoleOf("Order Completed") != RolePurchase || v.RoleOf("Viewed") != RoleNone || (Vocabulary{}).RoleOf("login") != RoleLogin {
		t.Error("roles")
	}
	if v.Canonical("Product Added") != ClickAddToCart || v.Canonical("Viewed") != "Viewed" || v.Canonical("") != "" {
		t.Error("canonical names")
	}
	ev := ClickEvent{Type: "Order Completed", Properties: map[string]any{"revenue": 12.5, "cur": "eur"}}
	v.Complete(&ev)
	if ev.Amount != 12.5 || ev.Currency != "EUR" {
		t.Errorf("completed %+v", ev)
	}
	ev = ClickEvent{Type: "Order Completed", Amount: 3, Properties: map[string]any{"revenue": -1.0}}
	v.Complete(&ev)
	if ev.Amount != 3 || ev.Currency != "USD" {
		t.Errorf("own amount kept, default currency: %+v", ev)
	}
	ev = ClickEvent{Type: "Viewed", Properties: map[string]any{"revenue": 5.0}}
	v.Complete(&ev)
	if ev.Amount != 0 || ev.Currency != "" {
		t.Errorf("a non-purchase changed: %+v", ev)
	}
}
