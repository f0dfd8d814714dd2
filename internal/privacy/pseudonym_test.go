package privacy

import (
	"os"
	"path/filepath"
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

func TestLoadKeyFromFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key")
	os.WriteFile(p, []byte("s3cret\n"), 0o600)
	if k, err := LoadKey("file:" + p); err != nil || k != "s3cret" {
		t.Fatalf("%q %v", k, err)
	}
	if k, _ := LoadKey("inline"); k != "inline" {
		t.Fatal(k)
	}
}
