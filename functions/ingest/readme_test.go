package main

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/httpapi"
)

// readmeScript is the curl + openssl example of the README's ingest section.
func readmeScript(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	_, sec, ok := strings.Cut(s, "<!-- section:ingest -->")
	if !ok {
		t.Fatal("README has no ingest section")
	}
	_, block, ok := strings.Cut(sec, "```sh\n")
	if !ok {
		t.Fatal("ingest section has no sh block")
	}
	script, _, ok := strings.Cut(block, "\n```")
	if !ok || !strings.Contains(script, "openssl dgst") {
		t.Fatalf("unexpected sh block: %s", script)
	}
	return script
}

// TestReadmeShellExample runs the README's shell reporter with sh against
// the real ingest handler: the documented scheme must work as written.
func TestReadmeShellExample(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "openssl", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	script := readmeScript(t)
	s, _ := openStore(t)
	key, err := s.AddHost(context.Background(), "shell-1")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.NewIngest(httpapi.IngestDeps{Store: s, Keys: s, Now: time.Now}))
	defer srv.Close()
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "VITALS_URL="+srv.URL, "VITALS_SERVER_ID=shell-1", "VITALS_HOST_KEY="+string(key))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	if want := `{"accepted":1,"duplicates":0,"stale":0}`; !strings.Contains(string(out), want) {
		t.Fatalf("script printed %s, want %s", out, want)
	}
	latest, err := s.LatestServer(context.Background(), "shell-1")
	if err != nil || latest.CPUUsagePercent != 12.5 || latest.NetworkRxBytes != 123456789 {
		t.Fatalf("stored: %+v %v", latest, err)
	}
}
