// Package collector reads one host's health into a metric.Sample: CPU, load,
// memory, swap, disks, network, uptime, host identity and the configured
// instances (processes, cgroups, Docker containers).
//
// It follows node_exporter's shape: one file per concern, each a collector in
// a fixed list run together every tick; a failing collector is logged and
// skipped and the sample still goes out. gopsutil types stay inside the
// collector files; the arithmetic between two readings lives in calc.go as
// pure functions.
//
// Counters that need two readings (CPU, network rates, instance CPU) keep the
// previous reading in a State. A long-running agent keeps it in memory; a
// cron run persists it between runs (see State), so no sleep is needed; with
// no usable previous reading, Collect takes a baseline, waits a short window,
// and reads again.
package collector

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/vitals-dev/vitals/shared/metric"
)

// Options configure a Set. The zero value of every field but ServerID has a
// working default.
type Options struct {
	// ServerID names this host; instance ids are derived from it.
	ServerID string
	// MainDisk is the path whose filesystem fills the sample's disk* fields
	// (default "/").
	MainDisk string
	// Instances are the workloads to report besides the host itself.
	Instances []InstanceConfig
	// Docker enables auto-discovery of running Docker containers.
	Docker bool
	// DockerSocket is the Docker Engine API socket (default
	// /var/run/docker.sock).
	DockerSocket string
	// HostProc, HostSys, HostEtc and HostRoot relocate /proc, /sys, /etc and
	// / (for a reporter in a container watching its host, and for fixture
	// trees in tests). They go to gopsutil through its context EnvMap, so no
	// process-global environment is touched.
	HostProc, HostSys, HostEtc, HostRoot string
	// BaselineWindow is how long Collect waits between the two readings it
	// takes when it has no previous one (default 1s).
	BaselineWindow time.Duration
	// MaxStateAge is the oldest previous reading still used for deltas
	// (default 1h); older ones are replaced by a fresh baseline, because an
	// average over hours says little about "now".
	MaxStateAge time.Duration
	// ReporterVersion is reported in the host info.
	ReporterVersion string
	// Now is the clock (default time.Now); tests pin it.
	Now func() time.Time

	// usage reads a filesystem's usage; tests replace statfs with fixtures.
	usage usageFunc
}

// Set is the fixed list of collectors for one host plus the previous reading
// they compute deltas against. It is not safe for concurrent use: one tick at
// a time.
type Set struct {
	opts       Options
	logger     *slog.Logger
	ctxEnv     common.EnvMap
	collectors []collector
	state      State
	instances  *instanceCollector
	// failing holds the last error logged per collector: a source that
	// stays broken is logged when it breaks, changes or recovers, not
	// every tick.
	failing map[string]string
}

// collector is one concern's reader. update fills its part of t.sample and
// t.next (the state the next tick will compare against), reading t.prev.
type collector interface {
	name() string
	update(ctx context.Context, t *tick) error
}

// tick is the shared scratchpad of one collection.
type tick struct {
	now    time.Time
	prev   *State // nil when there is no usable previous reading
	next   *State
	sample *metric.Sample
	// uptimeSec is the host's uptime at this tick (0 if unknown); process
	// start times are relative to boot.
	uptimeSec float64
	// ncpu is the number of logical CPUs, for machine shares: the CPU
	// collector's count, else the Go runtime's.
	ncpu int
	// memTotal is the machine's RAM, the memory limit of unlimited instances.
	memTotal uint64
}

// New builds the collector list. It fails only on configuration errors (a
// bad instance definition); unreadable sources are reported per tick.
func New(opts Options, logger *slog.Logger) (*Set, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := metric.CheckServerID(opts.ServerID); err != nil {
		return nil, err
	}
	if opts.MainDisk == "" {
		opts.MainDisk = "/"
	}
	if opts.DockerSocket == "" {
		opts.DockerSocket = "/var/run/docker.sock"
	}
	if opts.BaselineWindow <= 0 {
		opts.BaselineWindow = time.Second
	}
	if opts.MaxStateAge <= 0 {
		opts.MaxStateAge = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.usage == nil {
		opts.usage = statfsUsage
	}
	env := common.EnvMap{}
	for k, v := range map[common.EnvKeyType]string{
		common.HostProcEnvKey: opts.HostProc,
		common.HostSysEnvKey:  opts.HostSys,
		common.HostEtcEnvKey:  opts.HostEtc,
		common.HostRootEnvKey: opts.HostRoot,
	} {
		if v != "" {
			env[k] = v
		}
	}
	s := &Set{opts: opts, logger: logger, ctxEnv: env}
	ic, err := newInstanceCollector(&s.opts, s.paths(), logger)
	if err != nil {
		return nil, err
	}
	s.instances = ic
	// Order matters: uptime, cpu and mem fill tick fields that the
	// instance collector reads.
	s.collectors = []collector{
		&uptimeCollector{paths: s.paths()},
		&cpuCollector{},
		&loadCollector{},
		&memCollector{},
		&diskCollector{opts: &s.opts, paths: s.paths()},
		&netCollector{},
		&hostCollector{version: opts.ReporterVersion, paths: s.paths()},
		ic,
	}
	return s, nil
}

// paths resolves the host's pseudo filesystems for the readers that do not go
// through gopsutil.
func (s *Set) paths() hostPaths {
	return hostPaths{
		proc: orDefault(s.opts.HostProc, "/proc"),
		sys:  orDefault(s.opts.HostSys, "/sys"),
		etc:  orDefault(s.opts.HostEtc, "/etc"),
		root: orDefault(s.opts.HostRoot, "/"),
	}
}

type hostPaths struct{ proc, sys, etc, root string }

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// State returns the previous reading, for persisting between cron runs.
func (s *Set) State() State { return s.state }

// Restore installs a previous reading loaded from disk. A reading from
// another host's state directory or an older format is ignored by Collect
// (see State.usable), so restoring garbage cannot produce bad deltas.
func (s *Set) Restore(st State) { s.state = st }

// Collect reads every collector into a sample stamped now. Collectors that
// fail are logged and skipped; the error is non-nil only when the context
// ends or nothing at all could be read.
func (s *Set) Collect(ctx context.Context) (metric.Sample, error) {
	ctx = context.WithValue(ctx, common.EnvKey, s.ctxEnv)
	if !s.state.usable(s.opts.ServerID, s.opts.Now(), s.opts.MaxStateAge) {
		// No previous reading to compare with: take one now and wait a
		// little, so even the first sample has real percentages.
		if _, err := s.collect(ctx, nil); err != nil {
			return metric.Sample{}, err
		}
		select {
		case <-ctx.Done():
			return metric.Sample{}, ctx.Err()
		case <-time.After(s.opts.BaselineWindow):
		}
	}
	prev := s.state
	return s.collect(ctx, &prev)
}

func (s *Set) collect(ctx context.Context, prev *State) (metric.Sample, error) {
	now := s.opts.Now().UTC()
	sample := metric.Sample{CollectedAt: now}
	next := State{Version: stateVersion, ServerID: s.opts.ServerID, At: now}
	t := &tick{now: now, prev: prev, next: &next, sample: &sample, ncpu: runtime.NumCPU()}
	var failed []string
	for _, c := range s.collectors {
		err := c.update(ctx, t)
		if err != nil && ctx.Err() != nil {
			return metric.Sample{}, ctx.Err()
		}
		s.report(c.name(), err)
		if err != nil {
			failed = append(failed, c.name())
		}
	}
	if len(failed) == len(s.collectors) {
		return metric.Sample{}, fmt.Errorf("collect: every collector failed (%v)", failed)
	}
	// A collector that failed leaves its previous counters out of next;
	// carry them over so one bad tick does not cost the following one its
	// delta.
	if prev != nil {
		next.carryOver(prev)
	}
	s.state = next
	return sample, nil
}

// report logs a collector's failure or recovery when its state changes.
func (s *Set) report(name string, err error) {
	if s.failing == nil {
		s.failing = map[string]string{}
	}
	prev, wasFailing := s.failing[name]
	switch {
	case err != nil && (!wasFailing || prev != err.Error()):
		s.failing[name] = err.Error()
		s.logger.Warn("collector failed; samples go out without it", "collector", name, "err", err)
	case err == nil && wasFailing:
		delete(s.failing, name)
		s.logger.Info("collector recovered", "collector", name)
	}
}
