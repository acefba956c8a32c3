// Command vulndb builds a Go vulnerability database that govulncheck can read
// with -db file://DIR from the OSV entries the golang.org/x/vulndb module ships
// (data/osv/GO-*.json).
//
// Why: the lint gate runs where the default database (vuln.go.dev) cannot be
// reached but the Go module proxy can, and x/vulndb published through the proxy
// carries the same OSV entries. The output follows the database's v1 layout
// (https://go.dev/security/vuln/database#api):
//
//	index/db.json       {"modified": newest entry's modified time}
//	index/modules.json  [{"path": module, "vulns": [{"id", "modified"}]}]
//	ID/<id>.json        the OSV entry, byte for byte
//
// The optional "fixed" field of index/modules.json is left out: govulncheck uses
// it only to skip fetching entries whose fix the module already has, and then
// checks every fetched entry's affected ranges itself, so the result is the same.
//
// Usage: go run ./infra/dev/vulndb -src DIR/data/osv -out DIR
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

func main() {
	src := flag.String("src", "", "directory of OSV entries (x/vulndb's data/osv)")
	out := flag.String("out", "", "directory to write the database to (replaced)")
	flag.Parse()
	if *src == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: vulndb -src DIR -out DIR")
		os.Exit(2)
	}
	n, err := build(*src, *out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(1)
	}
	fmt.Printf("vulndb: %d entries from %s -> %s\n", n, *src, *out)
}

// entry is the part of an OSV entry the index needs.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

// build writes the database for every <id>.json in src to out and returns the
// number of entries. It writes into a temporary sibling directory and renames
// it into place, so an interrupted build never leaves a half database at out.
func build(src, out string) (int, error) {
	files, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", src, err)
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("no OSV entries in %s", src)
	}
	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, fmt.Errorf("clear %s: %w", tmp, err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, "ID"), 0o750); err != nil {
		return 0, fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, "index"), 0o750); err != nil {
		return 0, fmt.Errorf("create %s: %w", tmp, err)
	}

	var newest time.Time
	modules := map[string]*moduleMeta{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, fmt.Errorf("read entry: %w", err)
		}
		var e entry
		if err := json.Unmarshal(b, &e); err != nil {
			return 0, fmt.Errorf("decode %s: %w", f, err)
		}
		if e.ID == "" || filepath.Base(f) != e.ID+".json" || strings.ContainsAny(e.ID, `/\`) {
			return 0, fmt.Errorf("%s: entry id %q does not match its file name", f, e.ID)
		}
		if e.Modified.After(newest) {
			newest = e.Modified
		}
		seen := map[string]bool{}
		for _, a := range e.Affected {
			path := a.Package.Name
			if path == "" || seen[path] {
				continue
			}
			seen[path] = true
			m := modules[path]
			if m == nil {
				m = &moduleMeta{Path: path}
				modules[path] = m
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified})
		}
		if err := os.WriteFile(filepath.Join(tmp, "ID", e.ID+".json"), b, 0o600); err != nil {
			return 0, fmt.Errorf("write entry: %w", err)
		}
	}

	list := make([]*moduleMeta, 0, len(modules))
	for _, m := range modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	if err := writeJSON(filepath.Join(tmp, "index", "modules.json"), list); err != nil {
		return 0, err
	}
	if err := writeJSON(filepath.Join(tmp, "index", "db.json"), struct {
		Modified time.Time `json:"modified"`
	}{newest}); err != nil {
		return 0, err
	}

	if err := os.RemoveAll(out); err != nil {
		return 0, fmt.Errorf("clear %s: %w", out, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return 0, fmt.Errorf("move database into place: %w", err)
	}
	return len(files), nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
