package sam_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vitals-dev/vitals/infra/sam"
	"github.com/vitals-dev/vitals/infra/sam/runtimeapi"
	"github.com/vitals-dev/vitals/shared/metric"
)

// TestBootstraps runs the real function binaries (functions/ingest and
// functions/query built for this machine, as the cold-start benchmark does)
// under a local Lambda Runtime API: main's config loading, store
// connection and lambda.Start path, end to end on a real Redis.
func TestBootstraps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function binaries")
	}
	st := newStack(t)
	dir := t.TempDir()
	bins := map[string]string{}
	for _, name := range []string{"ingest", "query"} {
		bins[name] = filepath.Join(dir, name, "bootstrap")
		if err := sam.BuildBootstrap(t.Context(), repoRoot, name, bins[name], runtime.GOOS, runtime.GOARCH); err != nil {
			t.Fatal(err)
		}
	}
	// The binaries see the same Redis and key prefix as the test's store.
	env := []string{"VITALS_REDIS_URL=" + st.redis.URL, "VITALS_REDIS_PREFIX=" + st.redis.Prefix, "VITALS_LOG_LEVEL=debug", "AWS_LAMBDA_FUNCTION_NAME=vitals-test"}

	now := time.Now().UTC().Truncate(time.Second)
	batch, err := json.Marshal(metric.Batch{Samples: []metric.Sample{testSample(now.Add(-time.Second))}})
	if err != nil {
		t.Fatal(err)
	}
	ingestEv, err := sam.SignedIngestEvent(st.serverID, st.hostKey, batch, now)
	if err != nil {
		t.Fatal(err)
	}
	resp := runBootstrap(t, st, bins["ingest"], env, ingestEv)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(resp.Body, `"accepted":1`) {
		t.Fatalf("ingest → %d %s, want 202 with accepted 1", resp.StatusCode, resp.Body)
	}

	queryEnv := append(env, "VITALS_JWT_SECRET="+string(st.secret))
	latest := sam.HTTPEvent("GET", "GET /api/servers/{id}/metrics/latest", "/api/servers/"+st.serverID+"/metrics/latest", "",
		map[string]string{"Authorization": "Bearer " + st.token(t, st.serverID)}, nil, false)
	resp = runBootstrap(t, st, bins["query"], queryEnv, latest)
	var m metric.ServerMetric
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(resp.Body), &m) != nil || m.ServerID != st.serverID || !m.CollectedAt.Equal(now.Add(-time.Second)) {
		t.Fatalf("query latest → %d %s, want the sample just ingested", resp.StatusCode, resp.Body)
	}

	// Misconfigured: main fails before lambda.Start, the process exits, and
	// the reason is in its log (CloudWatch, on AWS).
	_, err = runtimeapi.RunBootstrap(t.Context(), bins["query"], env, mustJSON(t, latest), 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "VITALS_JWT_SECRET") {
		t.Errorf("query without a JWT secret: err = %v, want an exit naming VITALS_JWT_SECRET", err)
	}
}

func runBootstrap(t *testing.T, st *stack, bin string, env []string, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	run, err := runtimeapi.RunBootstrap(t.Context(), bin, env, mustJSON(t, ev), 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if run.Result.Error {
		t.Fatalf("%s posted an invocation error: %s\n%s", bin, run.Result.Body, run.Stderr)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(run.Result.Body, &resp); err != nil {
		t.Fatalf("response is not an API Gateway v2 response: %v: %s", err, run.Result.Body)
	}
	if strings.Contains(run.Stderr, string(st.secret)) || strings.Contains(run.Stderr, string(st.hostKey)) {
		t.Errorf("a secret reached the log:\n%s", run.Stderr)
	}
	return resp
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testSample(at time.Time) metric.Sample {
	return metric.Sample{
		CollectedAt: at, CPUUsagePercent: 12.5, CPULoad1m: 0.5, CPULoad5m: 0.4, CPULoad15m: 0.3,
		RAMTotalBytes: 8 << 30, RAMUsedBytes: 2 << 30, RAMAvailableBytes: 6 << 30, RAMUsagePercent: 25,
		DiskTotalBytes: 100 << 30, DiskUsedBytes: 30 << 30, DiskAvailableBytes: 70 << 30, DiskUsagePercent: 30,
		NetworkRxBytes: 1 << 20, NetworkTxBytes: 1 << 19, UptimeSeconds: 3600,
	}
}
