package metric

import (
	"context"
	"strconv"
	"time"
)

// Store keeps series of server and instance metrics. Implementations are safe
// for concurrent use and hold no per-request state, so a handler may share
// one across requests (and Lambda invocations). Errors are *Error kinds
// (ErrInvalid, ErrNotFound, ErrUnavailable) or internal.
type Store interface {
	// Ingest stores a validated batch (see DecodeBatch) for serverID:
	// every tier of the server and of each instance, the latest snapshot,
	// the server/instance index, and one live update per new sample: the
	// raw ServerMetric (and each InstanceMetric) as JSON on the series'
	// pub/sub channel, which the streamer relays to browsers. A sample whose server and collectedAt second is
	// already stored counts as a duplicate and changes nothing, so a
	// re-sent batch is harmless. Redis unreachable: ErrUnavailable.
	Ingest(ctx context.Context, serverID string, samples []Sample) (IngestResult, error)

	// ServerMetrics returns the server's points over period p ending at now,
	// oldest first, at the resolution the period maps to. Unknown server:
	// ErrNotFound. A period no configured tier can serve: ErrInvalid.
	ServerMetrics(ctx context.Context, serverID string, p Period, now time.Time) ([]ServerMetric, error)
	// LatestServer returns the newest raw point. No data: ErrNotFound.
	LatestServer(ctx context.Context, serverID string) (ServerMetric, error)
	// Snapshot returns the newest full sample with its detail (per-CPU,
	// per-disk, swap, host). No data: ErrNotFound.
	Snapshot(ctx context.Context, serverID string) (Snapshot, error)

	// Instance resolves an instance id to its name and server.
	// Unknown: ErrNotFound.
	Instance(ctx context.Context, instanceID string) (InstanceInfo, error)
	// InstanceMetrics is ServerMetrics for an instance.
	InstanceMetrics(ctx context.Context, instanceID string, p Period, now time.Time) ([]InstanceMetric, error)
	// LatestInstance is LatestServer for an instance.
	LatestInstance(ctx context.Context, instanceID string) (InstanceMetric, error)

	// Servers lists the known servers, newest report first, with their
	// instances.
	Servers(ctx context.Context) ([]ServerInfo, error)

	// Periods lists the periods the configured tiers can serve.
	Periods() []Period

	// Ping reports whether the backend answers (ErrUnavailable if not).
	Ping(ctx context.Context) error
}

// HostKeys keeps each host's signing key. Keys are random, per server, and
// revocable; they are secrets and must never be logged.
type HostKeys interface {
	// HostKey returns the key of serverID. Unknown or revoked: ErrNotFound.
	HostKey(ctx context.Context, serverID string) ([]byte, error)
	// AddHost creates (or replaces, rotating it) the key of serverID and
	// returns it.
	AddHost(ctx context.Context, serverID string) ([]byte, error)
	// RevokeHost deletes the key; later requests signed with it fail.
	// Unknown: ErrNotFound.
	RevokeHost(ctx context.Context, serverID string) error
	// Hosts lists the enrolled hosts, sorted by id.
	Hosts(ctx context.Context) ([]Host, error)
}

// Host is an enrolled host, without its key.
type Host struct {
	ServerID string `json:"serverId"`
	// EnrolledAt is the first enrolment; a key rotation keeps it.
	EnrolledAt time.Time `json:"enrolledAt"`
	// KeyCreatedAt is when the current key was made (by the enrolment or
	// the last rotation), for key-age policies.
	KeyCreatedAt time.Time `json:"keyCreatedAt"`
}

// PointID is the stable id of the point of series seriesID at resolution res
// whose bucket starts at t: the same point always gets the same id.
func PointID(seriesID string, res time.Duration, t time.Time) string {
	return seriesID + "-" + strconv.FormatInt(int64(res/time.Second), 10) + "s-" + strconv.FormatInt(t.Unix(), 10)
}

// RawServerMetric is the point a single sample becomes at resolution res
// (…Max fields equal their gauges; Samples is 1).
func RawServerMetric(serverID string, s *Sample, res time.Duration) ServerMetric {
	m := ServerMetric{
		ID:                 PointID(serverID, res, s.CollectedAt.Truncate(res)),
		ServerID:           serverID,
		CollectedAt:        s.CollectedAt,
		CPUUsagePercent:    s.CPUUsagePercent,
		CPULoad1m:          s.CPULoad1m,
		CPULoad5m:          s.CPULoad5m,
		CPULoad15m:         s.CPULoad15m,
		RAMTotalBytes:      s.RAMTotalBytes,
		RAMUsedBytes:       s.RAMUsedBytes,
		RAMAvailableBytes:  s.RAMAvailableBytes,
		RAMUsagePercent:    s.RAMUsagePercent,
		DiskTotalBytes:     s.DiskTotalBytes,
		DiskUsedBytes:      s.DiskUsedBytes,
		DiskAvailableBytes: s.DiskAvailableBytes,
		DiskUsagePercent:   s.DiskUsagePercent,
		NetworkRxBytes:     s.NetworkRxBytes,
		NetworkTxBytes:     s.NetworkTxBytes,
		UptimeSeconds:      s.UptimeSeconds,
		SwapTotalBytes:     deref(s.SwapTotalBytes),
		SwapUsedBytes:      deref(s.SwapUsedBytes),
		Samples:            1,
	}
	if s.NetworkRxBytesPerSec != nil {
		m.NetworkRxBytesPerSec = *s.NetworkRxBytesPerSec
	}
	if s.NetworkTxBytesPerSec != nil {
		m.NetworkTxBytesPerSec = *s.NetworkTxBytesPerSec
	}
	m.CPUUsagePercentMax = m.CPUUsagePercent
	m.CPULoad1mMax = m.CPULoad1m
	m.RAMUsagePercentMax = m.RAMUsagePercent
	m.RAMUsedBytesMax = m.RAMUsedBytes
	m.DiskUsagePercentMax = m.DiskUsagePercent
	m.SwapUsedBytesMax = m.SwapUsedBytes
	m.NetworkRxBytesPerSecMax = m.NetworkRxBytesPerSec
	m.NetworkTxBytesPerSecMax = m.NetworkTxBytesPerSec
	return m
}

// RawInstanceMetric is the point one instance reading becomes at resolution res.
func RawInstanceMetric(serverID string, at time.Time, in *InstanceSample, res time.Duration) InstanceMetric {
	return InstanceMetric{
		ID:                    PointID(in.InstanceID, res, at.Truncate(res)),
		InstanceID:            in.InstanceID,
		ServerID:              serverID,
		Name:                  in.Name,
		CollectedAt:           at,
		CPUUsagePercent:       in.CPUUsagePercent,
		MemoryUsedBytes:       in.MemoryUsedBytes,
		MemoryLimitBytes:      in.MemoryLimitBytes,
		MemoryUsagePercent:    in.MemoryUsagePercent,
		DiskReadBytes:         in.DiskReadBytes,
		DiskWriteBytes:        in.DiskWriteBytes,
		DiskUsedBytes:         in.DiskUsedBytes,
		DiskTotalBytes:        in.DiskTotalBytes,
		Samples:               1,
		CPUUsagePercentMax:    in.CPUUsagePercent,
		MemoryUsedBytesMax:    in.MemoryUsedBytes,
		MemoryUsagePercentMax: in.MemoryUsagePercent,
	}
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
