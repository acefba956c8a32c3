package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/vitals-dev/vitals/shared/metric"
)

// InstanceConfig defines one workload reported as an instance. Name is
// required and exactly one selector (PID, Process, Cmdline, PIDFile, Cgroup)
// must be set.
type InstanceConfig struct {
	// Name is shown with the instance's metrics and, without ID, determines
	// its UUID: keep it stable.
	Name string `json:"name"`
	// ID is the instance's UUID; default metric.InstanceUUID(serverID, Name).
	ID string `json:"id,omitempty"`

	// PID selects one process by id (localdev reports itself this way).
	PID int `json:"pid,omitempty"`
	// Process selects every process whose kernel name (comm) or argv[0]
	// base name equals it, e.g. "nginx".
	Process string `json:"process,omitempty"`
	// Cmdline selects every process whose command line (arguments joined by
	// spaces) matches this regular expression.
	Cmdline string `json:"cmdline,omitempty"`
	// PIDFile selects the process whose pid the file holds, re-read every
	// tick so restarts are followed.
	PIDFile string `json:"pidFile,omitempty"`
	// Cgroup selects a control group by its path as /proc/<pid>/cgroup shows
	// it, e.g. "/system.slice/nginx.service" (cgroup v1, v2 and hybrid).
	Cgroup string `json:"cgroup,omitempty"`

	// DataPath, when set, adds the usage of the filesystem holding it
	// (diskUsedBytes/diskTotalBytes). Give the instance its own volume for a
	// per-instance figure: statfs is cheap, walking a directory tree every
	// tick is not.
	DataPath string `json:"dataPath,omitempty"`
}

// kind names the selector in use, for messages.
func (c InstanceConfig) kind() string {
	switch {
	case c.PID != 0:
		return "pid"
	case c.Process != "":
		return "process"
	case c.Cmdline != "":
		return "cmdline"
	case c.PIDFile != "":
		return "pidFile"
	case c.Cgroup != "":
		return "cgroup"
	}
	return ""
}

// Validate checks one instance definition and names the offending field.
func (c InstanceConfig) Validate() error {
	if strings.TrimSpace(c.Name) == "" {
		return fmt.Errorf("instance: name is required")
	}
	if len(c.Name) > 256 {
		return fmt.Errorf("instance %q: name must be at most 256 bytes", c.Name)
	}
	if c.ID != "" {
		if _, err := metric.ParseUUID(c.ID); err != nil {
			return fmt.Errorf("instance %q: id %q is not a UUID", c.Name, c.ID)
		}
	}
	n := 0
	for _, set := range []bool{c.PID != 0, c.Process != "", c.Cmdline != "", c.PIDFile != "", c.Cgroup != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("instance %q: set exactly one of pid, process, cmdline, pidFile, cgroup (got %d)", c.Name, n)
	}
	if c.PID < 0 {
		return fmt.Errorf("instance %q: pid must be positive", c.Name)
	}
	if c.Cmdline != "" {
		if _, err := regexp.Compile(c.Cmdline); err != nil {
			return fmt.Errorf("instance %q: cmdline is not a valid regular expression: %w", c.Name, err)
		}
	}
	return nil
}

// instance is a validated InstanceConfig ready to read.
type instance struct {
	cfg     InstanceConfig
	id      string
	matcher *processMatcher // for Process and Cmdline
}

// instanceCollector reads every configured instance, then any discovered
// Docker containers. One instance failing (its process gone, its cgroup
// removed) leaves it out of this sample and is logged once per change, not
// every tick.
type instanceCollector struct {
	opts    *Options
	paths   hostPaths
	logger  *slog.Logger
	list    []instance
	cgroups cgroupFS
	docker  *dockerClient
	self    int
	// warned remembers the last problem logged per instance, so a stopped
	// service does not flood the journal every ten seconds.
	warned map[string]string
	disks  *diskCollector // statfs with a timeout, for data paths
}

func newInstanceCollector(opts *Options, paths hostPaths, logger *slog.Logger) (*instanceCollector, error) {
	c := &instanceCollector{
		opts: opts, paths: paths, logger: logger,
		cgroups: detectCgroups(paths.sys),
		self:    os.Getpid(),
		warned:  map[string]string{},
		disks:   &diskCollector{opts: opts, paths: paths},
	}
	ids := map[string]string{}
	for _, ic := range opts.Instances {
		if err := ic.Validate(); err != nil {
			return nil, err
		}
		in := instance{cfg: ic, id: metric.InstanceUUID(opts.ServerID, ic.Name)}
		if ic.ID != "" {
			in.id, _ = metric.ParseUUID(ic.ID)
		}
		if other, dup := ids[in.id]; dup {
			return nil, fmt.Errorf("instance %q: same id %s as instance %q (names must be unique)", ic.Name, in.id, other)
		}
		ids[in.id] = ic.Name
		switch {
		case ic.Process != "":
			in.matcher = &processMatcher{name: ic.Process}
		case ic.Cmdline != "":
			in.matcher = &processMatcher{re: regexp.MustCompile(ic.Cmdline)}
		}
		c.list = append(c.list, in)
	}
	if len(c.list) > metric.MaxInstancesPerSample {
		return nil, fmt.Errorf("instances: at most %d, got %d", metric.MaxInstancesPerSample, len(c.list))
	}
	if opts.Docker {
		c.docker = newDockerClient(opts.DockerSocket)
	}
	return c, nil
}

func (c *instanceCollector) name() string { return "instances" }

// reading is what every instance kind yields before deltas.
type reading struct {
	procs   map[procKey]float64 // process groups: CPU seconds per process
	group   *cgroupReading      // cgroups and containers
	memUsed uint64
	memLim  uint64
	ioRead  uint64
	ioWrite uint64
}

func (c *instanceCollector) update(ctx context.Context, t *tick) error {
	if len(c.list) == 0 && c.docker == nil {
		return nil
	}
	t.next.Instances = map[string]instanceState{}
	matched := c.matchProcesses()
	for _, in := range c.list {
		r, err := c.read(in, matched)
		if err != nil {
			c.warn(in.cfg.Name, fmt.Sprintf("%s: %v", in.cfg.kind(), err))
			// Keep its previous reading, so the next tick after it comes
			// back still has a baseline (bounded by MaxStateAge).
			if t.prev != nil {
				if st, ok := t.prev.Instances[in.id]; ok && t.now.Sub(st.At) <= c.opts.MaxStateAge {
					t.next.Instances[in.id] = st
				}
			}
			continue
		}
		c.clearWarning(in.cfg.Name)
		c.add(ctx, t, in.id, in.cfg.Name, in.cfg.DataPath, r)
	}
	if c.docker != nil {
		if err := c.updateDocker(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// add turns a reading into an InstanceSample and records its state.
func (c *instanceCollector) add(ctx context.Context, t *tick, id, name, dataPath string, r reading) {
	if len(t.sample.Instances) >= metric.MaxInstancesPerSample {
		return
	}
	st := instanceState{At: t.now}
	var prev *instanceState
	if t.prev != nil {
		if p, ok := t.prev.Instances[id]; ok {
			prev = &p
		}
	}
	var cpuPct float64
	switch {
	case r.procs != nil:
		for k, v := range r.procs {
			st.Procs = append(st.Procs, procState{procKey: k, CPU: v})
		}
		if prev != nil {
			elapsed := t.now.Sub(prev.At).Seconds()
			prevUptime := t.uptimeSec - elapsed
			cpuPct = machineSharePercent(procCPUDelta(prev.procMap(), r.procs, prevUptime, clockTicks), elapsed, t.ncpu)
		}
	case r.group != nil && r.group.hasCPU:
		st.CPU = r.group.cpuSec
		if prev != nil && r.group.cpuSec >= prev.CPU {
			cpuPct = machineSharePercent(r.group.cpuSec-prev.CPU, t.now.Sub(prev.At).Seconds(), t.ncpu)
		}
	}
	t.next.Instances[id] = st

	// An instance without a memory limit may use the whole machine.
	limit := r.memLim
	if limit == 0 || (t.memTotal > 0 && limit > t.memTotal) {
		limit = t.memTotal
	}
	s := metric.InstanceSample{
		InstanceID:         id,
		Name:               name,
		CPUUsagePercent:    cpuPct,
		MemoryUsedBytes:    r.memUsed,
		MemoryLimitBytes:   limit,
		MemoryUsagePercent: percentOf(r.memUsed, limit),
		DiskReadBytes:      r.ioRead,
		DiskWriteBytes:     r.ioWrite,
	}
	if dataPath != "" {
		if u, err := c.disks.usage(ctx, dataPath); err == nil {
			used, total := u.Used, u.Total
			s.DiskUsedBytes, s.DiskTotalBytes = &used, &total
		} else {
			c.warn(name+" data path", err.Error())
		}
	}
	t.sample.Instances = append(t.sample.Instances, s)
}

// matchProcesses scans the process table once per tick for every instance
// that selects by name or command line, returning pids per instance id.
func (c *instanceCollector) matchProcesses() map[string][]int {
	var needList, needCmdline bool
	for _, in := range c.list {
		if in.matcher != nil {
			needList = true
			needCmdline = needCmdline || in.matcher.needsCmdline()
		}
	}
	if !needList {
		return nil
	}
	pids, err := listPIDs(c.paths.proc)
	if err != nil {
		c.warn("process table", err.Error())
		return nil
	}
	out := map[string][]int{}
	for _, pid := range pids {
		if pid == c.self {
			// A pattern given on the reporter's own command line would
			// otherwise always match the reporter.
			continue
		}
		id, err := readIdentity(c.paths.proc, pid, needCmdline)
		if err != nil {
			continue // exited since the listing
		}
		for _, in := range c.list {
			if in.matcher != nil && in.matcher.match(id) {
				out[in.id] = append(out[in.id], pid)
			}
		}
	}
	return out
}

var errNoProcess = errors.New("no matching process")

func (c *instanceCollector) read(in instance, matched map[string][]int) (reading, error) {
	switch {
	case in.cfg.Cgroup != "":
		g, err := c.cgroups.read(in.cfg.Cgroup)
		if err != nil {
			return reading{}, err
		}
		return reading{group: &g, memUsed: g.memUsed, memLim: g.memLimit, ioRead: g.ioRead, ioWrite: g.ioWrite}, nil
	case in.cfg.PID != 0:
		return c.readProcs([]int{in.cfg.PID})
	case in.cfg.PIDFile != "":
		pid, err := readPIDFile(in.cfg.PIDFile)
		if err != nil {
			return reading{}, err
		}
		return c.readProcs([]int{pid})
	default:
		return c.readProcs(matched[in.id])
	}
}

// readProcs aggregates a group of processes. Resident memory is summed, so
// pages shared between them count once per process (as ps and top show).
func (c *instanceCollector) readProcs(pids []int) (reading, error) {
	r := reading{procs: map[procKey]float64{}}
	for _, pid := range pids {
		p, err := readProc(c.paths.proc, pid)
		if err != nil {
			continue
		}
		r.procs[p.key] = p.cpuSec
		r.memUsed += p.rss
		r.ioRead += p.ioRead
		r.ioWrite += p.ioWrite
	}
	if len(r.procs) == 0 {
		return reading{}, errNoProcess
	}
	return r, nil
}

// updateDocker adds one instance per running container, named
// "docker/<container name>" so its id survives the container being
// recreated under the same name (a redeploy).
func (c *instanceCollector) updateDocker(ctx context.Context, t *tick) error {
	ctx, cancel := context.WithTimeout(ctx, dockerTimeout)
	defer cancel()
	list, err := c.docker.containers(ctx)
	if errors.Is(err, errNoDocker) {
		c.warn("docker", fmt.Sprintf("%s: %s; container discovery waits for it", errNoDocker, c.docker.socket))
		return nil
	}
	if err != nil {
		return err
	}
	c.clearWarning("docker")
	for _, ct := range list {
		st, err := c.docker.stats(ctx, ct.ID)
		if err != nil {
			c.logger.Debug("docker container stats", "container", ct.name(), "err", err)
			continue
		}
		g := st.reading()
		name := "docker/" + ct.name()
		id := metric.InstanceUUID(c.opts.ServerID, name)
		if _, clash := t.next.Instances[id]; clash {
			continue // a configured instance already has this name
		}
		c.add(ctx, t, id, name, "", reading{group: &g, memUsed: g.memUsed, memLim: g.memLimit, ioRead: g.ioRead, ioWrite: g.ioWrite})
	}
	return nil
}

// warn logs a problem with one instance when it differs from the last one
// logged for it.
func (c *instanceCollector) warn(key, msg string) {
	if c.warned[key] == msg {
		return
	}
	c.warned[key] = msg
	c.logger.Warn("instance not readable; left out of samples until it is", "instance", key, "err", msg)
}

func (c *instanceCollector) clearWarning(key string) {
	if _, ok := c.warned[key]; ok {
		delete(c.warned, key)
		c.logger.Info("instance readable again", "instance", key)
	}
}
