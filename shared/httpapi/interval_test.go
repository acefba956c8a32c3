package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"
)

// TestIngestStoresInterval: the interval a reporter announces is kept
// beside the server's last-seen time, where the alert evaluator reads it.
func TestIngestStoresInterval(t *testing.T) {
	e := newEnv(t)
	var body map[string]any
	if err := json.Unmarshal(batch(t, 1, nil), &body); err != nil {
		t.Fatal(err)
	}
	body["interval"] = 60
	raw, _ := json.Marshal(body)
	w := httptest.NewRecorder()
	e.ingest.ServeHTTP(w, signed(e.server, e.key, raw, false))
	if w.Code != 202 {
		t.Fatalf("ingest: %d %s", w.Code, w.Body)
	}
	hbs, err := e.store.Heartbeats(context.Background())
	if err != nil || len(hbs) != 1 || hbs[0].ServerID != e.server || hbs[0].Interval != time.Minute {
		t.Fatalf("heartbeats %+v %v", hbs, err)
	}
}
