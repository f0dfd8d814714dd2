package privacy

import (
	"strings"
	"testing"
)

func TestPseudonyms(t *testing.T) {
	off := NewPseudonymizer("")
	if off.ID("alice") != "alice" || off.Enabled() {
		t.Fatal("disabled pseudonymizer changed the id")
	}
	a, b := NewPseudonymizer("k1"), NewPseudonymizer("k2")
	if a.ID("alice") != a.ID("alice") || a.ID("alice") == a.ID("bob") || a.ID("alice") == b.ID("alice") {
		t.Fatal("pseudonyms must be deterministic per key and differ across ids and keys")
	}
	if id := a.ID("alice"); !strings.HasPrefix(id, "p_") || len(id) != 34 || strings.Contains(id, "alice") {
		t.Fatalf("pseudonym %q", id)
	}
}
