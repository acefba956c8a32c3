package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

// TestInstanceBindLifecycle: a configured instance id is refused until
// vitalsctl binds it to the reporting server, and again once unbound.
func TestInstanceBindLifecycle(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = env["VITALS_REDIS_URL"], env["VITALS_REDIS_PREFIX"]
	st, err := redisstore.Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const id = "0d6c1f1e-5a7b-4c3d-9e8f-0a1b2c3d4e5f"
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	send := func() metric.IngestResult {
		t.Helper()
		at = at.Add(time.Second)
		res, err := st.Ingest(t.Context(), "db-1", []metric.Sample{{CollectedAt: at, RAMTotalBytes: 1, DiskTotalBytes: 1,
			Instances: []metric.InstanceSample{{InstanceID: id, Name: "db", MemoryLimitBytes: 1}}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := send(); res.InstancesRefused != 1 {
		t.Fatalf("unbound id stored: %+v", res)
	}

	out, errOut, err := cli(t, env, "instance", "bind", "db-1", strings.ToUpper(id), "db")
	if err != nil || !strings.Contains(out, "Bound instance") {
		t.Fatalf("bind: %q %q %v", out, errOut, err)
	}
	if res := send(); res.InstancesRefused != 0 {
		t.Fatalf("bound id refused: %+v", res)
	}
	out, _, err = cli(t, env, "instance", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "db-1") {
		t.Fatalf("list: %q %v", out, err)
	}
	out, _, err = cli(t, env, "instance", "bind", "db-2", id)
	if err != nil || !strings.Contains(out, "from db-1 to db-2") {
		t.Fatalf("move: %q %v", out, err)
	}
	out, _, err = cli(t, env, "instance", "list", "--json")
	var bs []redisstore.Binding
	if err != nil || json.Unmarshal([]byte(out), &bs) != nil || len(bs) != 1 || bs[0].ServerID != "db-2" {
		t.Fatalf("list --json: %q %v", out, err)
	}
	if res := send(); res.InstancesRefused != 1 {
		t.Fatalf("db-1 after the move: %+v", res)
	}
	if _, _, err := cli(t, env, "instance", "unbind", id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, env, "instance", "unbind", id); err == nil || !strings.Contains(err.Error(), "not bound") {
		t.Errorf("second unbind: %v", err)
	}

	_, _, err = cli(t, env, "instance", "bind", "db-1", "not-a-uuid")
	wantUsage(t, err, "must be a UUID")
	_, _, err = cli(t, env, "instance", "bind", "db-1")
	wantUsage(t, err, "want <serverId> <instanceId> [name]")
	_, _, err = cli(t, env, "instance", "frob")
	wantUsage(t, err, "unknown instance subcommand")
}
