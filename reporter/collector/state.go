package collector

import (
	"time"
)

// stateVersion changes whenever State's meaning changes, so a cron run after
// an upgrade starts from a fresh baseline instead of misreading old counters.
const stateVersion = 1

// State is the previous reading the next tick computes deltas against. It is
// plain JSON so that `reporter once` can keep it in its state directory
// between cron runs. Each group of counters carries its own timestamp where a
// rate needs elapsed time, because a collector that failed on one tick keeps
// its older reading.
type State struct {
	Version  int       `json:"version"`
	ServerID string    `json:"serverId"`
	At       time.Time `json:"at"`
	// UptimeSec detects reboots: counters restart from zero.
	UptimeSec float64 `json:"uptimeSec,omitempty"`

	CPU       *cpuTimes                `json:"cpu,omitempty"`
	PerCPU    []cpuTimes               `json:"perCpu,omitempty"`
	Net       *netState                `json:"net,omitempty"`
	Instances map[string]instanceState `json:"instances,omitempty"`
}

type netState struct {
	At time.Time `json:"at"`
	Rx uint64    `json:"rx"`
	Tx uint64    `json:"tx"`
}

// instanceState is one instance's CPU reading: cumulative CPU seconds for a
// cgroup or container, per-process seconds for a process group.
type instanceState struct {
	At    time.Time   `json:"at"`
	CPU   float64     `json:"cpu,omitempty"`
	Procs []procState `json:"procs,omitempty"`
}

type procState struct {
	procKey
	CPU float64 `json:"cpu"`
}

// usable reports whether s can serve as the previous reading at now.
func (s *State) usable(serverID string, now time.Time, maxAge time.Duration) bool {
	if s.Version != stateVersion || s.ServerID != serverID || s.At.IsZero() {
		return false
	}
	age := now.Sub(s.At)
	return age > 0 && age <= maxAge
}

// carryOver keeps prev's counters for every group this tick could not read.
// Instances are handled by their collector, which knows which ones still
// exist.
func (s *State) carryOver(prev *State) {
	if s.CPU == nil {
		s.CPU, s.PerCPU = prev.CPU, prev.PerCPU
	}
	if s.Net == nil {
		s.Net = prev.Net
	}
	if s.UptimeSec == 0 {
		s.UptimeSec = prev.UptimeSec
	}
}

func (p *instanceState) procMap() map[procKey]float64 {
	m := make(map[procKey]float64, len(p.Procs))
	for _, ps := range p.Procs {
		m[ps.procKey] = ps.CPU
	}
	return m
}
