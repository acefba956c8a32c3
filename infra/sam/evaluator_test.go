package sam_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/infra/sam"
	"github.com/vitals-dev/vitals/infra/sam/runtimeapi"
	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/alertstore"
	"github.com/vitals-dev/vitals/shared/metric"
)

// TestEvaluatorBootstrap runs the real functions/evaluator binary under a
// local Lambda Runtime API with the recorded EventBridge schedule event: a
// host silent for two minutes gets its firing webhook from that one
// invocation, and the invocation reports the transition.
func TestEvaluatorBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function binary")
	}
	st := newStack(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if _, err := st.store.Ingest(ctx, st.serverID, []metric.Sample{testSample(now.Add(-2 * time.Minute))}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer rc.Close()
	as := alertstore.New(st.store.Client(), st.store.Prefix(), st.store.Wrap)
	ch, _ := alert.DecodeChannel([]byte(`{"name":"ops","url":"webhook+`+rc.URL+`"}`), now)
	if err := as.CreateChannel(ctx, ch); err != nil {
		t.Fatal(err)
	}
	rule, _ := alert.DecodeRule([]byte(`{"name":"down","metric":"nodata","for":"30s","servers":["*"],"channels":["ops"],"group":"0s"}`))
	if _, err := as.CreateRule(ctx, rule); err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(t.TempDir(), "evaluator", "bootstrap")
	if err := sam.BuildBootstrap(t.Context(), repoRoot, "evaluator", bin, runtime.GOOS, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	ev, err := os.ReadFile("testdata/schedule/evaluator-schedule.json")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"VITALS_REDIS_URL=" + st.redis.URL, "VITALS_REDIS_PREFIX=" + st.redis.Prefix, "AWS_LAMBDA_FUNCTION_NAME=vitals-evaluator"}
	run, err := runtimeapi.RunBootstrap(t.Context(), bin, env, ev, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if run.Result.Error {
		t.Fatalf("invocation error: %s\n%s", run.Result.Body, run.Stderr)
	}
	var res struct{ Transitions, Notices int }
	if err := json.Unmarshal(run.Result.Body, &res); err != nil || res.Transitions != 1 || res.Notices != 1 {
		t.Fatalf("result %s (%v), want 1 transition and 1 notice\n%s", run.Result.Body, err, run.Stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.Contains(got[0], `"status":"firing"`) || !strings.Contains(got[0], `"serverId":"`+st.serverID+`"`) {
		t.Fatalf("webhooks %v", got)
	}
	if strings.Contains(run.Stderr, ch.Secret) {
		t.Error("the channel secret reached the log")
	}
}

// TestEvaluatorUnit: the evaluator's systemd unit is hardened like the
// function units and needs no user-token secret.
func TestEvaluatorUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(systemdDir, "vitals-evaluator.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=always",
		"CapabilityBoundingSet=\n", "EnvironmentFile=/etc/vitals/vitals.env\n", "KillSignal=SIGTERM",
		"ExecStart=/usr/local/bin/vitals-evaluator\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("vitals-evaluator.service lacks %q", strings.TrimSpace(want))
		}
	}
	if strings.Contains(string(b), "jwt.env") {
		t.Error("vitals-evaluator.service loads jwt.env; it verifies no tokens")
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "functions", "evaluator", "main.go")); err != nil {
		t.Error(err)
	}
}
