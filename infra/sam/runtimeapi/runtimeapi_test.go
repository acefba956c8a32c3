package runtimeapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/infra/sam/runtimeapi"
)

// poll plays the function's side: one GET /invocation/next.
func poll(t *testing.T, api *runtimeapi.Server) (id string, event string, deadline string) {
	t.Helper()
	resp, err := http.Get("http://" + api.Addr() + "/2018-06-01/runtime/invocation/next")
	if err != nil {
		t.Error(err)
		return "", "", ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.Header.Get("Lambda-Runtime-Aws-Request-Id"), string(b), resp.Header.Get("Lambda-Runtime-Deadline-Ms")
}

func post(t *testing.T, api *runtimeapi.Server, path, body string) int {
	t.Helper()
	resp, err := http.Post("http://"+api.Addr()+"/2018-06-01/runtime/"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestInvokeResponseAndError(t *testing.T) {
	api, err := runtimeapi.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	for _, kind := range []string{"response", "error"} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			id, ev, deadline := poll(t, api)
			if ev != `{"n":1}` || id == "" || deadline == "" {
				t.Errorf("next: id %q, event %q, deadline %q", id, ev, deadline)
			}
			if code := post(t, api, "invocation/"+id+"/"+kind, `{"ok":true}`); code != http.StatusAccepted {
				t.Errorf("post %s: %d", kind, code)
			}
		}()
		res, err := api.Invoke(context.Background(), []byte(`{"n":1}`), 5*time.Second)
		<-done
		if err != nil || string(res.Body) != `{"ok":true}` || res.Error != (kind == "error") {
			t.Errorf("%s: result %+v, err %v", kind, res, err)
		}
	}
	if api.FirstPoll().IsZero() {
		t.Error("FirstPoll not recorded")
	}
	if code := post(t, api, "invocation/unknown/response", "{}"); code != http.StatusBadRequest {
		t.Errorf("response for an unknown request id: %d, want 400", code)
	}
}

func TestInvokeInitError(t *testing.T) {
	api, err := runtimeapi.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	post(t, api, "init/error", `{"errorMessage":"bad config"}`)
	_, err = api.Invoke(context.Background(), []byte(`{}`), 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "bad config") {
		t.Errorf("err = %v, want the init error", err)
	}
}

func TestCloseEndsWaits(t *testing.T) {
	api, err := runtimeapi.Start()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := api.Invoke(context.Background(), []byte(`{}`), 5*time.Second)
		errc <- err
	}()
	_ = api.Close()
	if err := <-errc; err == nil {
		t.Error("Invoke succeeded after Close")
	}
}
