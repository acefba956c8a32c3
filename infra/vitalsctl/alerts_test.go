package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/alert"
	"github.com/vitals-dev/vitals/shared/alertstore"
)

// alertStore opens the alert store the API and evaluators read, on the
// test's own Redis prefix, to check what vitalsctl wrote.
func alertStore(t *testing.T, env map[string]string) *alertstore.Store {
	t.Helper()
	s, err := openStore(t.Context(), env["VITALS_REDIS_URL"], env["VITALS_REDIS_PREFIX"], nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return alertstore.New(s.Client(), s.Prefix(), s.Wrap)
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rule.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAlertRuleLifecycle: a rule file as POST /api/alerts/rules takes is
// stored as the API would store it, listed, and removed.
func TestAlertRuleLifecycle(t *testing.T) {
	// Not parallel: it sets the package-level stdin.
	env := redisEnv(t)
	st := alertStore(t, env)
	if _, _, err := cli(t, env, "alert", "channel", "add", "ops", "webhook+http://127.0.0.1:9/hook"); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, `{"name": "cpu high", "metric": "cpuUsagePercent", "op": ">", "value": 90, "clear": 80,
		"for": "2m", "servers": ["web-*"], "channels": ["ops"]}`)
	out, errOut, err := cli(t, env, "alert", "rule", "add", file)
	if err != nil {
		t.Fatalf("rule add: %v (%s)", err, errOut)
	}
	id := strings.TrimSpace(out)
	stored, err := st.Rule(t.Context(), id)
	if err != nil {
		t.Fatalf("rule add printed %q, not a stored id: %v", out, err)
	}
	if stored.Name != "cpu high" || stored.For.D() != 2*time.Minute || *stored.Clear != 80 || stored.Channels[0] != "ops" {
		t.Fatalf("stored %+v", stored)
	}

	// From stdin too: a nodata rule.
	stdin = strings.NewReader(`{"name":"host down","metric":"nodata","for":"30s","servers":["*"]}`)
	t.Cleanup(func() { stdin = os.Stdin })
	out, _, err = cli(t, env, "alert", "rule", "add", "-")
	if err != nil {
		t.Fatal(err)
	}
	id2 := strings.TrimSpace(out)

	out, _, err = cli(t, env, "alert", "rule", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "cpuUsagePercent > 90 (clear 80)") ||
		!strings.Contains(out, "web-*") || !strings.Contains(out, id2) || !strings.Contains(out, "nodata") {
		t.Fatalf("list: %q %v", out, err)
	}
	out, _, err = cli(t, env, "alert", "rules", "ls", "--json")
	var page struct{ Rules []alert.Rule }
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Rules) != 2 || page.Rules[0].ID != id || page.Rules[1].ID != id2 {
		t.Fatalf("list --json (the body of GET /api/alerts/rules): %q %v", out, err)
	}

	if out, _, err = cli(t, env, "alert", "rule", "rm", id); err != nil || !strings.Contains(out, "Deleted rule "+id) {
		t.Fatalf("rm: %q %v", out, err)
	}
	if _, err := st.Rule(t.Context(), id); err == nil {
		t.Fatal("rule still stored after rm")
	}
	_, _, err = cli(t, env, "alert", "rule", "rm", id)
	wantFailure(t, err, "not found")
	if _, _, err := cli(t, env, "alert", "rule", "rm", id2); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = cli(t, env, "alert", "rule", "list")
	if err != nil || out != "" || !strings.Contains(errOut, "No alert rules") {
		t.Fatalf("empty list: %q %q %v", out, errOut, err)
	}
	out, _, err = cli(t, env, "alert", "rule", "list", "--json")
	if err != nil || strings.TrimSpace(out) != `{
  "rules": []
}` {
		t.Fatalf("empty list --json: %q %v", out, err)
	}
}

// TestAlertRuleInvalid: a rule the API answers 400 fails with the same
// field error, exit status 1, and stores nothing.
func TestAlertRuleInvalid(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)
	st := alertStore(t, env)
	for body, msg := range map[string]string{
		`{"name":"cpu","metric":"cpuUsagePercent","op":">","for":"2m","servers":["*"]}`:     "value: required for a threshold rule",
		`{"name":"cpu","metric":"cpuUsage","op":">","value":1,"for":"2m","servers":["*"]}`:  `metric: "cpuUsage" is not`,
		`{"name":"down","metric":"nodata","for":"30s","servers":["*"],"channels":["nope"]}`: `channels[0]: no channel named "nope"`,
		`{"name":"down","metric":"nodata","for":"30s","servers":["*"],"colour":"red"}`:      "colour: unknown field",
		`{"name":"down","metric":"nodata","for":"soon","servers":["*"]}`:                    "for: must be a duration",
		`{"name":"down","metric":"nodata","for":"30s","servers":["tag:db"]}`:                "servers[0]",
		`not json`: "body: malformed JSON",
		`{"name":"down","metric":"nodata","for":"30s","servers":["*"]} {"name":"again"}`:               "unexpected data after the JSON object",
		`{"name":"cpu","metric":"cpuUsagePercent","op":"!=","value":1,"for":"2m","servers":["web-1"]}`: `op: "!=": must be one of`,
	} {
		_, _, err := cli(t, env, "alert", "rule", "add", writeFile(t, body))
		wantFailure(t, err, msg)
		if !strings.HasPrefix(err.Error(), "alert rule add: ") {
			t.Errorf("error %q: want the command then the API's message", err)
		}
	}
	if rules, err := st.Rules(t.Context()); err != nil || len(rules) != 0 {
		t.Fatalf("invalid rules stored: %+v %v", rules, err)
	}
	_, _, err := cli(t, env, "alert", "rule", "add", filepath.Join(t.TempDir(), "missing.json"))
	wantFailure(t, err, "no such file")
	_, _, err = cli(t, env, "alert", "rule", "add")
	wantUsage(t, err, "want one rule file")
	_, _, err = cli(t, env, "alert", "rule", "frob")
	wantUsage(t, err, "unknown alert rule subcommand")
	_, _, err = cli(t, env, "alert", "hooks", "list")
	wantUsage(t, err, "unknown alert object")
	_, _, err = cli(t, env, "alert", "rule", "rm", "x", "--json")
	wantUsage(t, err, "--json is for list only")
}

// TestAlertChannelsNeverShowCredentials: channel add prints a webhook's
// secret once; list, in either form, shows neither secret nor any part of
// a URL's credentials, as GET /api/alerts/channels.
func TestAlertChannelsNeverShowCredentials(t *testing.T) {
	// Not parallel: it sets the package-level stdin.
	env := redisEnv(t)
	st := alertStore(t, env)
	const hook = "webhook+https://hookuser:hookpass@hooks.example.com/T0KEN-in-path?sig=qs-secret"
	out, errOut, err := cli(t, env, "alert", "channel", "add", "ops", hook)
	if err != nil {
		t.Fatalf("add: %v %s", err, errOut)
	}
	secret := strings.TrimSpace(out)
	if b, err := hex.DecodeString(secret); err != nil || len(b) != 32 {
		t.Fatalf("stdout %q: want the 64-hex signing secret alone", out)
	}
	ch, err := st.Channel(t.Context(), "ops")
	if err != nil || ch.URL != hook || ch.Secret != secret {
		t.Fatalf("stored %+v %v: want the URL as given and the printed secret", ch, err)
	}
	if strings.Contains(errOut, "hookpass") || strings.Contains(errOut, "T0KEN") || strings.Contains(errOut, secret) {
		t.Fatalf("stderr shows credentials: %q", errOut)
	}

	const slack = "slack://xoxb:123456789-123456789-abcdefghijklmnopqrstuvwx@C0123456789"
	stdin = strings.NewReader(slack + "\n")
	t.Cleanup(func() { stdin = os.Stdin })
	out, errOut, err = cli(t, env, "alert", "channel", "add", "chat", "-")
	if err != nil || strings.Contains(out+errOut, "xoxb") || !strings.Contains(out, "Created channel chat (slack://…)") {
		t.Fatalf("add from stdin: %q %q %v", out, errOut, err)
	}
	if ch, err := st.Channel(t.Context(), "chat"); err != nil || ch.URL != slack || ch.Secret != "" {
		t.Fatalf("stored %+v %v", ch, err)
	}

	table, _, err := cli(t, env, "alert", "channel", "list")
	if err != nil || !strings.Contains(table, "webhook") || !strings.Contains(table, "https://hooks.example.com/…") || !strings.Contains(table, "slack://…") {
		t.Fatalf("list: %q %v", table, err)
	}
	js, _, err := cli(t, env, "alert", "channel", "list", "--json")
	var page struct{ Channels []alert.Channel }
	if err != nil || json.Unmarshal([]byte(js), &page) != nil || len(page.Channels) != 2 || page.Channels[1].Name != "ops" || page.Channels[1].Kind != "webhook" {
		t.Fatalf("list --json: %q %v", js, err)
	}
	for _, out := range []string{table, js} {
		for _, cred := range []string{secret, "hookuser", "hookpass", "T0KEN", "qs-secret", "xoxb", "C0123456789", `"url"`, `"secret"`} {
			if strings.Contains(out, cred) {
				t.Errorf("channel list shows %q:\n%s", cred, out)
			}
		}
	}

	// Refused as the API refuses, without echoing the URL.
	_, _, err = cli(t, env, "alert", "channel", "add", "ops", "webhook+https://other.example.com/x")
	wantFailure(t, err, `a channel named "ops" exists`)
	_, _, err = cli(t, env, "alert", "channel", "add", "web", "https://user:pw-x@example.com/")
	wantFailure(t, err, "use webhook+https://")
	_, _, err = cli(t, env, "alert", "channel", "add", "bad", "nosuchservice://tok-x@host")
	wantFailure(t, err, "url: not a valid")
	_, _, err = cli(t, env, "alert", "channel", "add", "Bad Name", "ntfy://ntfy.sh/t")
	wantFailure(t, err, "name: required")
	if strings.Contains(err.Error(), "pw-x") {
		t.Errorf("error echoes the URL: %v", err)
	}
	_, _, err = cli(t, env, "alert", "channel", "add", "ops")
	wantUsage(t, err, "want <name> <url>")

	if out, _, err = cli(t, env, "alert", "channel", "rm", "ops"); err != nil || !strings.Contains(out, "Deleted channel ops") {
		t.Fatalf("rm: %q %v", out, err)
	}
	if _, err := st.Channel(t.Context(), "ops"); err == nil {
		t.Fatal("channel still stored after rm")
	}
	_, _, err = cli(t, env, "alert", "channel", "rm", "ops")
	wantFailure(t, err, "not found")
	out, _, err = cli(t, env, "alert", "channel", "list")
	if err != nil || strings.Contains(out, "ops") || !strings.Contains(out, "chat") {
		t.Fatalf("list after rm: %q %v", out, err)
	}
}

// TestAlertSilenceLifecycle: silence add builds the API's silence body
// from flags, checked by the same decoder; list and rm follow.
func TestAlertSilenceLifecycle(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)
	st := alertStore(t, env)
	before := time.Now()
	out, errOut, err := cli(t, env, "alert", "silence", "add", "--servers", "web-1, web-2", "--rules", "abc123,cpu high",
		"--for", "2h", "--comment", "kernel\nupgrade")
	if err != nil {
		t.Fatalf("add: %v %s", err, errOut)
	}
	id := strings.TrimSpace(out)
	all, err := st.Silences(t.Context(), time.Now())
	if err != nil || len(all) != 1 || all[0].ID != id {
		t.Fatalf("stored %+v %v, printed %q", all, err, out)
	}
	s := all[0]
	if strings.Join(s.Servers, "|") != "web-1|web-2" || strings.Join(s.Rules, "|") != "abc123|cpu high" || s.Comment != "kernel\nupgrade" {
		t.Fatalf("stored %+v", s)
	}
	// Generous bounds: only a wrong duration fails them.
	if lo, hi := before.Add(2*time.Hour-time.Minute), time.Now().Add(2*time.Hour+time.Minute); s.Until.Before(lo) || s.Until.After(hi) {
		t.Fatalf("until %v, want about 2h from now", s.Until)
	}

	until := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	out, _, err = cli(t, env, "alert", "silence", "add", "--servers", "*", "--until", until.Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	id2 := strings.TrimSpace(out)

	out, _, err = cli(t, env, "alert", "silence", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "kernel upgrade") || !strings.Contains(out, id2) ||
		!strings.Contains(out, until.Format(time.RFC3339)) {
		t.Fatalf("list: %q %v", out, err)
	}
	out, _, err = cli(t, env, "alert", "silence", "list", "--json")
	var page struct{ Silences []alert.Silence }
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Silences) != 2 || page.Silences[0].ID != id || !page.Silences[1].Until.Equal(until) {
		t.Fatalf("list --json: %q %v", out, err)
	}
	if out, _, err = cli(t, env, "alert", "silence", "rm", id); err != nil || !strings.Contains(out, "Ended silence "+id) {
		t.Fatalf("rm: %q %v", out, err)
	}
	_, _, err = cli(t, env, "alert", "silence", "rm", id)
	wantFailure(t, err, "not found")
	if all, _ := st.Silences(t.Context(), time.Now()); len(all) != 1 || all[0].ID != id2 {
		t.Fatalf("after rm: %+v", all)
	}

	_, _, err = cli(t, env, "alert", "silence", "add", "--servers", "web-1")
	wantUsage(t, err, "--until or --for is required")
	_, _, err = cli(t, env, "alert", "silence", "add", "--servers", "web-1", "--for", "1h", "--until", until.Format(time.RFC3339))
	wantUsage(t, err, "not both")
	_, _, err = cli(t, env, "alert", "silence", "add", "--servers", "web-1", "--until", "2020-01-01T00:00:00Z")
	wantUsage(t, err, "--until: must be in the future")
	_, _, err = cli(t, env, "alert", "silence", "add", "--for", "1h")
	wantUsage(t, err, "--servers: required")
	_, _, err = cli(t, env, "alert", "silence", "add", "--servers", "web 1", "--for", "1h")
	wantUsage(t, err, "--servers[0]")
	_, _, err = cli(t, env, "alert", "silence", "add", "--servers", "web-1", "--for", "soon")
	wantUsage(t, err, "--for")
	_, _, err = cli(t, env, "alert", "silence", "list", "--servers", "web-1")
	wantUsage(t, err, "flag provided but not defined")
}
