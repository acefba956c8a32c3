package redisstore

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vitals-dev/vitals/shared/metric"
)

// A point is stored as one sorted-set member, score = bucket start (unix
// seconds):
//
//	bucketStart|n|lastOffset|f1|f1max|f2|...
//
// n is how many samples the bucket aggregates, lastOffset is the timestamp of
// the newest of them minus the bucket start (it decides which counter value
// wins, so late samples cannot overwrite newer counters). Each field has a
// kind, one letter of the series' spec string, which the Lua script and the
// decoder below share:
//
//	A  averaged float gauge followed by its max (3 decimals)
//	B  averaged byte gauge followed by its max (integer, base 36)
//	a  averaged float gauge, no max
//	b  averaged byte gauge, no max (base 36)
//	L  last value: the string of the newest sample, kept verbatim (counters,
//	   totals; "" means absent)
//
// A max equal to its average is stored as "" (always the case for one
// sample), integers (bucket start, n, offset, bytes, counters) are written
// in base 36 and floats with at most three decimals, to keep members small:
// the member text is most of a series' memory (docs/PERFORMANCE.md). A
// single sample's gauges have two decimals (fmtFloat); the latest snapshot
// and the live points carry the same rounded values (storedSample), so a
// raw point reads alike everywhere.

// Server fields, in member order.
const serverSpec = "AAaaLBbALbbALLLLBAA"

// Instance fields, in member order.
const instanceSpec = "ABLALLLL"

// fmtFloat formats a gauge the way the script stores a single sample: two
// decimals, no trailing zeros. Rounding here makes a one-sample max equal to
// its average (so it is omitted).
func fmtFloat(v float64) string {
	return strconv.FormatFloat(roundGauge(v), 'f', -1, 64)
}

// roundGauge is the value a gauge is stored with (fmtFloat's digits).
func roundGauge(v float64) float64 { return math.Round(v*100) / 100 }

// storedSample is s with its series gauges rounded as stored, so the
// latest snapshot and the live point of a sample read exactly as its raw
// history point does. Detail (cpus, disks) is kept as sent.
func storedSample(s *metric.Sample) metric.Sample {
	c := *s
	c.CPUUsagePercent = roundGauge(c.CPUUsagePercent)
	c.CPULoad1m = roundGauge(c.CPULoad1m)
	c.CPULoad5m = roundGauge(c.CPULoad5m)
	c.CPULoad15m = roundGauge(c.CPULoad15m)
	c.RAMUsagePercent = roundGauge(c.RAMUsagePercent)
	c.DiskUsagePercent = roundGauge(c.DiskUsagePercent)
	if c.NetworkRxBytesPerSec != nil {
		v := roundGauge(*c.NetworkRxBytesPerSec)
		c.NetworkRxBytesPerSec = &v
	}
	if c.NetworkTxBytesPerSec != nil {
		v := roundGauge(*c.NetworkTxBytesPerSec)
		c.NetworkTxBytesPerSec = &v
	}
	return c
}

// storedInstance is storedSample for an instance reading.
func storedInstance(in *metric.InstanceSample) metric.InstanceSample {
	c := *in
	c.CPUUsagePercent = roundGauge(c.CPUUsagePercent)
	c.MemoryUsagePercent = roundGauge(c.MemoryUsagePercent)
	return c
}

func fmtUint(v uint64) string { return strconv.FormatUint(v, 36) }

func fmtOptUint(p *uint64) string {
	if p == nil {
		return ""
	}
	return fmtUint(*p)
}

func fmtOptFloat(p *float64) string {
	if p == nil {
		return "0"
	}
	return fmtFloat(*p)
}

// serverFields are a sample's values in serverSpec order.
func serverFields(s *metric.Sample) []string {
	swapTotal, swapUsed := "0", "0"
	if s.SwapTotalBytes != nil {
		swapTotal = fmtUint(*s.SwapTotalBytes)
	}
	if s.SwapUsedBytes != nil {
		swapUsed = fmtUint(*s.SwapUsedBytes)
	}
	return []string{
		fmtFloat(s.CPUUsagePercent),
		fmtFloat(s.CPULoad1m),
		fmtFloat(s.CPULoad5m),
		fmtFloat(s.CPULoad15m),
		fmtUint(s.RAMTotalBytes),
		fmtUint(s.RAMUsedBytes),
		fmtUint(s.RAMAvailableBytes),
		fmtFloat(s.RAMUsagePercent),
		fmtUint(s.DiskTotalBytes),
		fmtUint(s.DiskUsedBytes),
		fmtUint(s.DiskAvailableBytes),
		fmtFloat(s.DiskUsagePercent),
		fmtUint(s.NetworkRxBytes),
		fmtUint(s.NetworkTxBytes),
		fmtUint(s.UptimeSeconds),
		swapTotal,
		swapUsed,
		fmtOptFloat(s.NetworkRxBytesPerSec),
		fmtOptFloat(s.NetworkTxBytesPerSec),
	}
}

// instanceFields are an instance reading's values in instanceSpec order.
func instanceFields(in *metric.InstanceSample) []string {
	return []string{
		fmtFloat(in.CPUUsagePercent),
		fmtUint(in.MemoryUsedBytes),
		fmtUint(in.MemoryLimitBytes),
		fmtFloat(in.MemoryUsagePercent),
		fmtUint(in.DiskReadBytes),
		fmtUint(in.DiskWriteBytes),
		fmtOptUint(in.DiskUsedBytes),
		fmtOptUint(in.DiskTotalBytes),
	}
}

// maxFields bounds a spec's length, so a decoded member fits in fixed
// arrays and decoding a query's few hundred members allocates nothing.
const maxFields = 24

// member is a decoded point: one value per field, plus the max of A/B fields.
type member struct {
	bucket int64
	n      int
	offset int64 // newest sample's time minus bucket, seconds
	vals   [maxFields]string
	maxes  [maxFields]string // "" when the field has no max
}

// decodeMember parses s into m, reporting whether it has the shape spec
// describes. Values are substrings of s (no copies).
func decodeMember(s, spec string, m *member) bool {
	if len(spec) > maxFields {
		return false
	}
	pos, done := 0, false
	next := func() (string, bool) {
		if done {
			return "", false
		}
		i := strings.IndexByte(s[pos:], '|')
		if i < 0 {
			done = true
			return s[pos:], true
		}
		f := s[pos : pos+i]
		pos += i + 1
		return f, true
	}
	var head [3]string
	for i := range head {
		f, ok := next()
		if !ok {
			return false
		}
		head[i] = f
	}
	b, err1 := strconv.ParseInt(head[0], 36, 64)
	n, err2 := strconv.ParseInt(head[1], 36, 0)
	off, err3 := strconv.ParseInt(head[2], 36, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	m.bucket, m.n, m.offset = b, int(n), off
	for i := 0; i < len(spec); i++ {
		v, ok := next()
		if !ok {
			return false
		}
		m.vals[i], m.maxes[i] = v, ""
		if spec[i] == 'A' || spec[i] == 'B' {
			x, ok := next()
			if !ok {
				return false
			}
			if x == "" {
				x = v
			}
			m.maxes[i] = x
		}
	}
	return done
}

func pf(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

// pu parses an integer field (base 36).
func pu(s string) uint64 {
	v, _ := strconv.ParseUint(s, 36, 64)
	return v
}

func puOpt(s string) *uint64 {
	if s == "" {
		return nil
	}
	v := pu(s)
	return &v
}

// collectedAt is a point's time: its bucket's start, except for a point
// of the finest tier holding one sample, which is that raw sample and keeps
// its own time, the same collectedAt that latest and the live stream gave
// the same point (same id).
func (m *member) collectedAt(finest bool) time.Time {
	at := time.Unix(m.bucket, 0).UTC()
	if finest && m.n == 1 {
		return at.Add(time.Duration(m.offset) * time.Second)
	}
	return at
}

func (m *member) serverMetric(serverID string, res time.Duration, finest bool) metric.ServerMetric {
	v, x := &m.vals, &m.maxes
	return metric.ServerMetric{
		ID:                      metric.PointID(serverID, res, time.Unix(m.bucket, 0)),
		ServerID:                serverID,
		CollectedAt:             m.collectedAt(finest),
		CPUUsagePercent:         pf(v[0]),
		CPUUsagePercentMax:      pf(x[0]),
		CPULoad1m:               pf(v[1]),
		CPULoad1mMax:            pf(x[1]),
		CPULoad5m:               pf(v[2]),
		CPULoad15m:              pf(v[3]),
		RAMTotalBytes:           pu(v[4]),
		RAMUsedBytes:            pu(v[5]),
		RAMUsedBytesMax:         pu(x[5]),
		RAMAvailableBytes:       pu(v[6]),
		RAMUsagePercent:         pf(v[7]),
		RAMUsagePercentMax:      pf(x[7]),
		DiskTotalBytes:          pu(v[8]),
		DiskUsedBytes:           pu(v[9]),
		DiskAvailableBytes:      pu(v[10]),
		DiskUsagePercent:        pf(v[11]),
		DiskUsagePercentMax:     pf(x[11]),
		NetworkRxBytes:          pu(v[12]),
		NetworkTxBytes:          pu(v[13]),
		UptimeSeconds:           pu(v[14]),
		SwapTotalBytes:          pu(v[15]),
		SwapUsedBytes:           pu(v[16]),
		SwapUsedBytesMax:        pu(x[16]),
		NetworkRxBytesPerSec:    pf(v[17]),
		NetworkRxBytesPerSecMax: pf(x[17]),
		NetworkTxBytesPerSec:    pf(v[18]),
		NetworkTxBytesPerSecMax: pf(x[18]),
		Samples:                 m.n,
	}
}

func (m *member) instanceMetric(info metric.InstanceInfo, res time.Duration, finest bool) metric.InstanceMetric {
	v, x := &m.vals, &m.maxes
	return metric.InstanceMetric{
		ID:                    metric.PointID(info.ID, res, time.Unix(m.bucket, 0)),
		InstanceID:            info.ID,
		ServerID:              info.ServerID,
		Name:                  info.Name,
		CollectedAt:           m.collectedAt(finest),
		CPUUsagePercent:       pf(v[0]),
		CPUUsagePercentMax:    pf(x[0]),
		MemoryUsedBytes:       pu(v[1]),
		MemoryUsedBytesMax:    pu(x[1]),
		MemoryLimitBytes:      pu(v[2]),
		MemoryUsagePercent:    pf(v[3]),
		MemoryUsagePercentMax: pf(x[3]),
		DiskReadBytes:         pu(v[4]),
		DiskWriteBytes:        pu(v[5]),
		DiskUsedBytes:         puOpt(v[6]),
		DiskTotalBytes:        puOpt(v[7]),
		Samples:               m.n,
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
