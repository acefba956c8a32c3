package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixtureOptions points every collector at testdata/<tick>: /proc, /sys and
// /etc trees recorded by hand, and statfs answers keyed by mount point.
func fixtureOptions(tb testing.TB, tick string, at time.Time) Options {
	tb.Helper()
	root := filepath.Join("..", "testdata", tick)
	const fakeRoot = "/fixture-root"
	sizes := map[string]diskUsage{
		"/":         {Total: 100e9, Used: 40e9, Free: 55e9},
		"/data":     {Total: 500e9, Used: 100e9, Free: 400e9},
		"/mnt/nfs":  {Total: 1e12, Used: 250e9, Free: 750e9},
		"/srv/www":  {Total: 20e9, Used: 5e9, Free: 15e9},
		"/run":      {Total: 1e9, Used: 1e6, Free: 1e9 - 1e6},
		"/dev":      {Total: 1e6},
		"/proc":     {},
		"/sys":      {},
		"/snap":     {Total: 1e8, Used: 1e8},
		"/not-real": {},
	}
	return Options{
		ServerID: "fixture-host",
		HostProc: filepath.Join(root, "proc"),
		HostSys:  filepath.Join(root, "sys"),
		HostEtc:  filepath.Join(root, "etc"),
		HostRoot: fakeRoot,
		Now:      func() time.Time { return at },
		Instances: []InstanceConfig{
			{Name: "nginx", Process: "nginx", DataPath: "/srv/www"},
			{Name: "postgres", Cmdline: `postgres -D /var/lib/postgresql`},
			{Name: "app", PIDFile: filepath.Join("..", "testdata", "app.pid")},
			{Name: "app-by-pid", PID: 300, ID: "0D6C1F1E-5A7B-4C3D-9E8F-0A1B2C3D4E5F"},
			{Name: "long-name", Process: "prometheus-node-exporter"},
			{Name: "java", Process: "java"},
			{Name: "web", Cgroup: "/system.slice/web.service"},
			{Name: "legacy", Cgroup: "system.slice/legacy.service"},
			{Name: "gone", Cgroup: "/system.slice/missing.service"},
		},
		usage: func(path string) (diskUsage, error) {
			rel, ok := strings.CutPrefix(path, fakeRoot)
			if !ok {
				return diskUsage{}, fmt.Errorf("statfs %s: outside the fixture root", path)
			}
			if rel == "" {
				rel = "/"
			}
			if u, ok := sizes[rel]; ok {
				return u, nil
			}
			return diskUsage{}, fmt.Errorf("statfs %s: no such fixture mount", rel)
		},
	}
}

// collectTwice reads tick1, then tick2 ten seconds later from a fresh Set
// restored with tick1's state: exactly what a cron run does between runs.
func collectTwice(t *testing.T) (first, second metric.Sample) {
	t.Helper()
	s1, err := New(fixtureOptions(t, "tick1", t0), nil)
	if err != nil {
		t.Fatal(err)
	}
	// First run: no previous state, so Collect takes a baseline and waits
	// BaselineWindow; with the fixture clock pinned the tree reads the same
	// twice and every delta is zero.
	s1.opts.BaselineWindow = time.Millisecond
	first, err = s1.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st := roundTripState(t, s1.State())

	s2, err := New(fixtureOptions(t, "tick2", t0.Add(10*time.Second)), nil)
	if err != nil {
		t.Fatal(err)
	}
	s2.Restore(st)
	second, err = s2.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return first, second
}

// roundTripState passes state through JSON, as `once` mode persists it.
func roundTripState(t *testing.T, st State) State {
	t.Helper()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var out State
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// validate runs a sample through the ingest validator, as the server will.
func validate(t *testing.T, s metric.Sample) metric.Sample {
	t.Helper()
	body, err := json.Marshal(metric.Batch{Samples: []metric.Sample{s}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := metric.DecodeBatch(body, "fixture-host", s.CollectedAt.Add(time.Second))
	if err != nil {
		t.Fatalf("DecodeBatch rejects the sample: %v\n%s", err, body)
	}
	return b.Samples[0]
}

func TestCollectFixtureHost(t *testing.T) {
	first, s := collectTwice(t)
	validate(t, first)
	validate(t, s)

	if !s.CollectedAt.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("collectedAt = %v", s.CollectedAt)
	}
	// CPU: 2000 ticks passed over both cores, 500 of them busy.
	checkFloat(t, "cpuUsagePercent", s.CPUUsagePercent, 25)
	if len(s.CPUs) != 2 {
		t.Fatalf("cpus = %+v", s.CPUs)
	}
	checkFloat(t, "cpu0 usage", s.CPUs[0].Usage, 40)
	checkFloat(t, "cpu1 usage", s.CPUs[1].Usage, 10)
	if s.CPUs[0].Name != "cpu0" || s.CPUs[1].Model != "Fixture CPU @ 2.00GHz" {
		t.Errorf("cpu names/models = %+v", s.CPUs)
	}
	checkFloat(t, "cpuLoad1m", s.CPULoad1m, 0.5)
	checkFloat(t, "cpuLoad5m", s.CPULoad5m, 0.4)
	checkFloat(t, "cpuLoad15m", s.CPULoad15m, 0.3)

	// Memory: used = total - available.
	checkUint(t, "ramTotalBytes", s.RAMTotalBytes, 8000000*1024)
	checkUint(t, "ramAvailableBytes", s.RAMAvailableBytes, 6000000*1024)
	checkUint(t, "ramUsedBytes", s.RAMUsedBytes, 2000000*1024)
	checkFloat(t, "ramUsagePercent", s.RAMUsagePercent, 25)
	if s.RAMFreeBytes == nil || s.SwapTotalBytes == nil {
		t.Fatalf("optional memory fields missing: %+v", s)
	}
	checkUint(t, "ramFreeBytes", *s.RAMFreeBytes, 2000000*1024)
	checkUint(t, "swapTotalBytes", *s.SwapTotalBytes, 1000000*1024)
	checkUint(t, "swapUsedBytes", *s.SwapUsedBytes, 250000*1024)
	checkUint(t, "swapFreeBytes", *s.SwapFreeBytes, 750000*1024)

	// Main disk and the list of real filesystems.
	checkUint(t, "diskTotalBytes", s.DiskTotalBytes, 100e9)
	checkUint(t, "diskUsedBytes", s.DiskUsedBytes, 40e9)
	checkUint(t, "diskAvailableBytes", s.DiskAvailableBytes, 55e9)
	checkFloat(t, "diskUsagePercent", s.DiskUsagePercent, 40.0/95*100)
	var mounts []string
	for _, d := range s.Disks {
		mounts = append(mounts, d.Name+" "+d.Mountpoint+" "+d.Fstype)
	}
	want := "/dev/vda1 / ext4|/dev/vdb /data xfs|fileserver:/export /mnt/nfs nfs4"
	if got := strings.Join(mounts, "|"); got != want {
		t.Errorf("disks = %s\nwant    %s", got, want)
	}

	// Network: eth0 only (lo, docker0 and veth are left out).
	checkUint(t, "networkRxBytes", s.NetworkRxBytes, 1010000)
	checkUint(t, "networkTxBytes", s.NetworkTxBytes, 505000)
	if s.NetworkRxBytesPerSec == nil || s.NetworkTxBytesPerSec == nil {
		t.Fatal("network rates missing")
	}
	checkFloat(t, "networkRxBytesPerSec", *s.NetworkRxBytesPerSec, 1000)
	checkFloat(t, "networkTxBytesPerSec", *s.NetworkTxBytesPerSec, 500)

	checkUint(t, "uptimeSeconds", s.UptimeSeconds, 1010)
	if h := s.Host; h == nil || h.Hostname != "fixture-host" || h.Kernel != "6.1.0-fixture-amd64" || h.Platform != "debian" || h.PlatformVersion != "12" || h.OS != "linux" {
		t.Errorf("host = %+v", s.Host)
	}
}

func TestCollectFixtureInstances(t *testing.T) {
	first, s := collectTwice(t)
	byName := map[string]metric.InstanceSample{}
	for _, in := range s.Instances {
		byName[in.Name] = in
	}
	if _, ok := byName["gone"]; ok {
		t.Error("an instance whose cgroup does not exist was reported")
	}
	if len(first.Instances) != len(s.Instances) {
		t.Errorf("first sample has %d instances, second %d", len(first.Instances), len(s.Instances))
	}
	ramTotal := uint64(8000000 * 1024)

	// nginx: pids 100 and 101 ran 0.5 s + 1.5 s, pid 102 started after the
	// first reading and ran 0.5 s: 2.5 s of 20 CPU-seconds.
	ng := byName["nginx"]
	checkFloat(t, "nginx cpu", ng.CPUUsagePercent, 12.5)
	checkUint(t, "nginx mem", ng.MemoryUsedBytes, (10000+20000+5000)*1024)
	checkUint(t, "nginx limit", ng.MemoryLimitBytes, ramTotal)
	checkUint(t, "nginx read", ng.DiskReadBytes, 4096)
	checkUint(t, "nginx write", ng.DiskWriteBytes, 8192+3000)
	if ng.DiskUsedBytes == nil || *ng.DiskUsedBytes != 5e9 || *ng.DiskTotalBytes != 20e9 {
		t.Errorf("nginx data path usage = %v/%v", ng.DiskUsedBytes, ng.DiskTotalBytes)
	}
	if ng.InstanceID != metric.InstanceUUID("fixture-host", "nginx") {
		t.Errorf("nginx id = %s, want the derived UUIDv5", ng.InstanceID)
	}

	pg := byName["postgres"]
	checkFloat(t, "postgres cpu", pg.CPUUsagePercent, 5) // 1 s of 20
	checkUint(t, "postgres write", pg.DiskWriteBytes, 300000)
	if pg.DiskUsedBytes != nil {
		t.Error("postgres has no data path but reports disk usage")
	}

	for _, name := range []string{"app", "app-by-pid"} {
		checkFloat(t, name+" cpu", byName[name].CPUUsagePercent, 10) // 2 s of 20
		checkUint(t, name+" mem", byName[name].MemoryUsedBytes, 30000*1024)
	}
	if id := byName["app-by-pid"].InstanceID; id != "0d6c1f1e-5a7b-4c3d-9e8f-0a1b2c3d4e5f" {
		t.Errorf("configured id = %s, want it lowercased as given", id)
	}
	if _, ok := byName["long-name"]; !ok {
		t.Error("a process name longer than comm's 15 bytes was not matched through argv[0]")
	}
	checkUint(t, "java mem", byName["java"].MemoryUsedBytes, 40000*1024)

	// Hybrid cgroup: CPU from the v2 tree (1 s of 20), memory and I/O from v1.
	web := byName["web"]
	checkFloat(t, "web cpu", web.CPUUsagePercent, 5)
	checkUint(t, "web mem", web.MemoryUsedBytes, 200<<20)
	checkUint(t, "web limit", web.MemoryLimitBytes, 1<<30)
	checkFloat(t, "web mem%", web.MemoryUsagePercent, 200.0/1024*100)
	checkUint(t, "web read", web.DiskReadBytes, 1500)
	checkUint(t, "web write", web.DiskWriteBytes, 2000)

	// v1-only group: cpuacct nanoseconds, an "unlimited" limit, and the
	// non-throttle blkio file when the throttle one has no devices.
	lg := byName["legacy"]
	checkFloat(t, "legacy cpu", lg.CPUUsagePercent, 2.5) // 0.5 s of 20
	checkUint(t, "legacy limit", lg.MemoryLimitBytes, ramTotal)
	checkUint(t, "legacy read", lg.DiskReadBytes, 7)
	checkUint(t, "legacy write", lg.DiskWriteBytes, 9)
}

func TestCollectStateFromAnotherHostIsIgnored(t *testing.T) {
	s1, err := New(fixtureOptions(t, "tick1", t0), nil)
	if err != nil {
		t.Fatal(err)
	}
	s1.opts.BaselineWindow = time.Millisecond
	if _, err := s1.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s1.State()
	for name, mutate := range map[string]func(*State){
		"other server": func(s *State) { s.ServerID = "other" },
		"old format":   func(s *State) { s.Version = 0 },
		"too old":      func(s *State) { s.At = s.At.Add(-2 * time.Hour) },
		"from future":  func(s *State) { s.At = s.At.Add(time.Hour) },
	} {
		t.Run(name, func(t *testing.T) {
			bad := st
			mutate(&bad)
			if bad.usable("fixture-host", t0.Add(10*time.Second), time.Hour) {
				t.Fatal("state considered usable")
			}
		})
	}
	if !st.usable("fixture-host", t0.Add(10*time.Second), time.Hour) {
		t.Fatal("good state considered unusable")
	}
}

func TestCollectAfterReboot(t *testing.T) {
	// tick2's counters, then tick1's (smaller uptime): a reboot. The previous
	// reading must not be used, so no absurd delta comes out.
	s2, err := New(fixtureOptions(t, "tick2", t0), nil)
	if err != nil {
		t.Fatal(err)
	}
	s2.opts.BaselineWindow = time.Millisecond
	if _, err := s2.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	s1, err := New(fixtureOptions(t, "tick1", t0.Add(10*time.Second)), nil)
	if err != nil {
		t.Fatal(err)
	}
	s1.Restore(s2.State())
	s, err := s1.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	validate(t, s)
	if s.CPUUsagePercent != 0 || s.NetworkRxBytesPerSec != nil {
		t.Errorf("deltas across a reboot: cpu %v, rx rate %v", s.CPUUsagePercent, s.NetworkRxBytesPerSec)
	}
}

func TestCollectFailingCollectorIsSkipped(t *testing.T) {
	opts := fixtureOptions(t, "tick1", t0)
	opts.HostProc = t.TempDir() // an empty /proc: cpu, mem, net, uptime fail
	opts.Instances = nil
	var logs strings.Builder
	s, err := New(opts, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.opts.BaselineWindow = time.Millisecond
	for range 3 {
		sample, err := s.Collect(context.Background())
		if err != nil {
			t.Fatalf("Collect failed although the disk collector works: %v", err)
		}
		if sample.DiskTotalBytes != 100e9 {
			t.Errorf("diskTotalBytes = %d, want the main disk still read", sample.DiskTotalBytes)
		}
	}
	// Logged when it broke, not on every tick.
	if n := strings.Count(logs.String(), "collector=cpu"); n != 1 {
		t.Errorf("cpu failure logged %d times over 3 ticks (and a baseline), want once:\n%s", n, logs.String())
	}
}

func TestNewRejectsBadInstances(t *testing.T) {
	for name, ic := range map[string]InstanceConfig{
		"no name":       {Process: "nginx"},
		"no selector":   {Name: "x"},
		"two selectors": {Name: "x", Process: "nginx", PID: 3},
		"bad regexp":    {Name: "x", Cmdline: "("},
		"bad uuid":      {Name: "x", PID: 1, ID: "not-a-uuid"},
		"negative pid":  {Name: "x", PID: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(Options{ServerID: "h", Instances: []InstanceConfig{ic}}, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	dup := []InstanceConfig{{Name: "a", PID: 1}, {Name: "a", PID: 2}}
	if _, err := New(Options{ServerID: "h", Instances: dup}, nil); err == nil {
		t.Fatal("accepted two instances with one name")
	}
	if _, err := New(Options{ServerID: "bad id!"}, nil); err == nil {
		t.Fatal("accepted a bad server id")
	}
}

func TestCollectLiveHost(t *testing.T) {
	// The real machine, end to end: whatever it runs, the sample must pass
	// ingest validation.
	s, err := New(Options{
		ServerID:       "live-test",
		BaselineWindow: 200 * time.Millisecond,
		Instances:      []InstanceConfig{{Name: "self", PID: osGetpid()}},
		Docker:         true,
		DockerSocket:   filepath.Join(t.TempDir(), "no-docker.sock"),
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sample, err := s.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := validate(t, sample)
	if got.RAMTotalBytes == 0 || got.DiskTotalBytes == 0 || len(got.CPUs) == 0 || len(got.Instances) != 1 {
		t.Errorf("live sample looks empty: %+v", got)
	}
}

func checkFloat(t *testing.T, name string, got, want float64) {
	t.Helper()
	if !near(got, want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

func checkUint(t *testing.T, name string, got, want uint64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, want %d", name, got, want)
	}
}
