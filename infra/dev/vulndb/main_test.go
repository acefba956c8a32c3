package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeEntry(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBuild checks the v1 layout govulncheck reads with -db file://: every
// module an entry affects is indexed once per entry, entries are copied
// unchanged, and db.json carries the newest modified time.
func TestBuild(t *testing.T) {
	src, out := t.TempDir(), filepath.Join(t.TempDir(), "db")
	a := `{"id":"GO-2024-0001","modified":"2024-01-02T00:00:00Z","affected":[{"package":{"name":"stdlib"}},{"package":{"name":"stdlib"}},{"package":{"name":"example.com/m"}}]}`
	b := `{"id":"GO-2025-0002","modified":"2025-03-04T00:00:00Z","affected":[{"package":{"name":"example.com/m"}}]}`
	writeEntry(t, src, "GO-2024-0001.json", a)
	writeEntry(t, src, "GO-2025-0002.json", b)

	n, err := build(src, out)
	if err != nil || n != 2 {
		t.Fatalf("build: %d, %v", n, err)
	}
	got, err := os.ReadFile(filepath.Join(out, "ID", "GO-2024-0001.json"))
	if err != nil || string(got) != a {
		t.Fatalf("entry copy: %q, %v", got, err)
	}
	var db struct{ Modified string }
	readJSON(t, filepath.Join(out, "index", "db.json"), &db)
	if db.Modified != "2025-03-04T00:00:00Z" {
		t.Errorf("db.json modified %q", db.Modified)
	}
	var mods []struct {
		Path  string
		Vulns []struct{ ID string }
	}
	readJSON(t, filepath.Join(out, "index", "modules.json"), &mods)
	var lines []string
	for _, m := range mods {
		for _, v := range m.Vulns {
			lines = append(lines, m.Path+" "+v.ID)
		}
	}
	want := "example.com/m GO-2024-0001,example.com/m GO-2025-0002,stdlib GO-2024-0001"
	if strings.Join(lines, ",") != want {
		t.Errorf("modules.json = %v, want %s", lines, want)
	}
}

func TestBuildRefusesMismatchedID(t *testing.T) {
	src := t.TempDir()
	writeEntry(t, src, "GO-2024-0001.json", `{"id":"GO-2024-9999","modified":"2024-01-02T00:00:00Z"}`)
	if _, err := build(src, filepath.Join(t.TempDir(), "db")); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("build: %v, want a mismatch error", err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
