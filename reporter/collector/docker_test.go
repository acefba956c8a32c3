package collector

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// fakeDocker serves the recorded Docker Engine API answers in
// testdata/docker, with the web container's CPU counter replaced by *webCPU
// (nanoseconds) when it is set.
func fakeDocker(t *testing.T, webCPU *string) http.Handler {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "docker", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/json", func(w http.ResponseWriter, r *http.Request) {
		w.Write(read("containers.json"))
	})
	mux.HandleFunc("GET /containers/{id}/stats", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("stream") != "false" || r.URL.Query().Get("one-shot") != "true" {
			http.Error(w, "want a one-shot snapshot", http.StatusBadRequest)
			return
		}
		switch id := r.PathValue("id"); {
		case strings.HasPrefix(id, "8dfa"):
			b := read("stats-web.json")
			if webCPU != nil {
				b = []byte(strings.Replace(string(b), `"total_usage":2000000000`, `"total_usage":`+*webCPU, 1))
			}
			w.Write(b)
		case strings.HasPrefix(id, "1a2b"):
			w.Write(read("stats-db.json"))
		default:
			http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
		}
	})
	return mux
}

func TestDockerStatsReading(t *testing.T) {
	srv := httptest.NewServer(fakeDocker(t, nil))
	defer srv.Close()
	d := &dockerClient{http: srv.Client(), base: srv.URL}
	list, err := d.containers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].name() != "web" || list[1].name() != "db" {
		t.Fatalf("containers = %+v, want web and db (the exited one left out)", list)
	}
	web, err := d.stats(context.Background(), list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	// cgroup v2 host: lowercase ops, inactive_file.
	if got, want := web.reading(), (cgroupReading{cpuSec: 2, hasCPU: true, memUsed: 40 << 20, memLimit: 256 << 20, ioRead: 4096, ioWrite: 12288}); got != want {
		t.Errorf("web = %+v\nwant  %+v", got, want)
	}
	db, err := d.stats(context.Background(), list[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	// cgroup v1 host: capitalised ops with Sync/Total noise, total_inactive_file.
	if got, want := db.reading(), (cgroupReading{cpuSec: 5, hasCPU: true, memUsed: 150 << 20, memLimit: 9223372036854771712, ioRead: 1000, ioWrite: 2000}); got != want {
		t.Errorf("db = %+v\nwant %+v", got, want)
	}
	if _, err := d.stats(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown container: %v", err)
	}
}

func TestDockerContainerName(t *testing.T) {
	for _, tt := range []struct {
		c    dockerContainer
		want string
	}{
		{dockerContainer{ID: "abc", Names: []string{"/web"}}, "web"},
		{dockerContainer{ID: "abc", Names: []string{"/app/db", "/db"}}, "db"},
		{dockerContainer{ID: "0123456789abcdef", Names: nil}, "0123456789ab"},
	} {
		if got := tt.c.name(); got != tt.want {
			t.Errorf("name(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
}

// TestDockerOverUnixSocket runs the discovery through the real socket dialer
// and two ticks, checking container CPU deltas and stable ids.
func TestDockerOverUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("unix sockets unavailable: %v", err)
	}
	cpu := "2000000000"
	srv := httptest.NewUnstartedServer(fakeDocker(t, &cpu))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	opts := fixtureOptions(t, "tick1", t0)
	opts.Instances = nil
	opts.Docker, opts.DockerSocket = true, sock
	s, err := New(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.opts.BaselineWindow = time.Millisecond
	if _, err := s.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	cpu = "4000000000" // 2 more CPU-seconds in the 10 s to the next tick
	s.opts.Now = func() time.Time { return t0.Add(10 * time.Second) }
	sample, err := s.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	validate(t, sample)
	if len(sample.Instances) != 2 {
		t.Fatalf("instances = %+v", sample.Instances)
	}
	web := sample.Instances[0]
	if web.Name != "docker/web" || web.InstanceID != metric.InstanceUUID("fixture-host", "docker/web") {
		t.Errorf("web = %+v", web)
	}
	// 2 CPU-seconds over 10 s on the fixture's 2 CPUs.
	checkFloat(t, "docker/web cpu", web.CPUUsagePercent, 10)
	// db's "unlimited" v1 limit becomes the machine's RAM.
	if db := sample.Instances[1]; db.MemoryLimitBytes != 8000000*1024 {
		t.Errorf("db limit = %d", db.MemoryLimitBytes)
	}
}

func TestDockerAbsentDegradesCleanly(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	opts := fixtureOptions(t, "tick1", t0)
	opts.Instances = []InstanceConfig{{Name: "app", PID: 300}}
	opts.Docker, opts.DockerSocket = true, filepath.Join(t.TempDir(), "absent.sock")
	s, err := New(opts, logger)
	if err != nil {
		t.Fatal(err)
	}
	s.opts.BaselineWindow = time.Millisecond
	for range 3 {
		sample, err := s.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(sample.Instances) != 1 {
			t.Fatalf("instances = %+v, want the configured one only", sample.Instances)
		}
	}
	if n := strings.Count(logs.String(), "docker socket not found"); n != 1 {
		t.Errorf("absent Docker logged %d times in 3 ticks, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "collector failed") {
		t.Errorf("absent Docker failed the collector:\n%s", logs.String())
	}
}
