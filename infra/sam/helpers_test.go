package sam_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/infra/sam"
	"github.com/vitals-dev/vitals/shared/auth"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/redisstore"
	"github.com/vitals-dev/vitals/shared/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// repoRoot is where template.yaml and the Makefile live.
const repoRoot = "../.."

func loadTemplate(tb testing.TB) *sam.Template {
	tb.Helper()
	t, err := sam.Load(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(t.Functions) == 0 {
		tb.Fatal("template.yaml has no AWS::Serverless::Function")
	}
	return t
}

// stack is what a deployed function sees: a real Redis store, the host key
// of one enrolled server, and the JWT secret its tokens are signed with.
type stack struct {
	redis    *redistest.Redis
	store    *redisstore.Store
	secret   []byte
	serverID string
	hostKey  []byte
	// handlers by function name ("ingest", "query"), built exactly as the
	// mains build them.
	handlers map[string]http.Handler
}

func newStack(tb testing.TB) *stack {
	tb.Helper()
	r := redistest.New(tb)
	ctx := context.Background()
	cfg := redisstore.DefaultConfig()
	cfg.URL, cfg.Prefix = r.URL, r.Prefix
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := redisstore.Open(ctx, cfg, logger)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	s := &stack{redis: r, store: store, secret: []byte(auth.NewSecret()), serverID: "web-1"}
	if s.hostKey, err = store.AddHost(ctx, s.serverID); err != nil {
		tb.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Secret: s.secret, Leeway: 30 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	s.handlers = map[string]http.Handler{
		httpapi.FunctionIngest: httpapi.NewIngest(httpapi.IngestDeps{Store: store, Keys: store, Logger: logger, Now: time.Now}),
		httpapi.FunctionQuery:  httpapi.NewQuery(httpapi.QueryDeps{Store: store, Verifier: verifier, Logger: logger, Now: time.Now}),
	}
	return s
}

// token mints a user token for servers.
func (s *stack) token(tb testing.TB, servers ...string) string {
	tb.Helper()
	tok, err := auth.IssueToken(s.secret, servers, time.Hour, "", "", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}
