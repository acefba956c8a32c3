package metric

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Limits on one ingest batch. They bound the work one request can cause.
const (
	MaxSamplesPerBatch    = 1000
	MaxInstancesPerSample = 256 // and distinct instance ids per batch
	MaxCPUsPerSample      = 1024
	MaxDisksPerSample     = 256
	maxNameLen            = 256
)

// MaxGauge bounds every float field that has no natural bound (load
// averages, byte rates). No host comes near it (10^12 bytes/s is 8 Tbit/s),
// and it keeps rollup sums of a full bucket far from overflowing to +Inf,
// which would make every history query of the series fail.
const MaxGauge = 1e12

// MaxClockSkew is how far a timestamp may be ahead of the receiver's clock
// (request signatures and sample collectedAt alike).
const MaxClockSkew = 5 * time.Minute

// The wire shapes: num keeps a number's text, so integers stay exact
// (counters can pass 2^53), and an empty num means the field was absent or
// null, so "missing" and "0" are told apart without a pointer per field.
type batchJSON struct {
	ServerID *string       `json:"serverId"`
	Samples  *[]sampleJSON `json:"samples"`
	Interval num           `json:"interval"`
}

type sampleJSON struct {
	CollectedAt *string `json:"collectedAt"`

	CPUUsagePercent num `json:"cpuUsagePercent"`
	CPULoad1m       num `json:"cpuLoad1m"`
	CPULoad5m       num `json:"cpuLoad5m"`
	CPULoad15m      num `json:"cpuLoad15m"`

	RAMTotalBytes     num `json:"ramTotalBytes"`
	RAMUsedBytes      num `json:"ramUsedBytes"`
	RAMAvailableBytes num `json:"ramAvailableBytes"`
	RAMUsagePercent   num `json:"ramUsagePercent"`
	RAMFreeBytes      num `json:"ramFreeBytes"`

	SwapTotalBytes num `json:"swapTotalBytes"`
	SwapUsedBytes  num `json:"swapUsedBytes"`
	SwapFreeBytes  num `json:"swapFreeBytes"`

	DiskTotalBytes     num `json:"diskTotalBytes"`
	DiskUsedBytes      num `json:"diskUsedBytes"`
	DiskAvailableBytes num `json:"diskAvailableBytes"`
	DiskUsagePercent   num `json:"diskUsagePercent"`

	NetworkRxBytes       num `json:"networkRxBytes"`
	NetworkTxBytes       num `json:"networkTxBytes"`
	NetworkRxBytesPerSec num `json:"networkRxBytesPerSec"`
	NetworkTxBytesPerSec num `json:"networkTxBytesPerSec"`

	UptimeSeconds num `json:"uptimeSeconds"`

	CPUs      []CPU          `json:"cpus"`
	Disks     []Disk         `json:"disks"`
	Host      *HostInfo      `json:"host"`
	Instances []instanceJSON `json:"instances"`
}

type instanceJSON struct {
	InstanceID *string `json:"instanceId"`
	Name       *string `json:"name"`

	CPUUsagePercent    num `json:"cpuUsagePercent"`
	MemoryUsedBytes    num `json:"memoryUsedBytes"`
	MemoryLimitBytes   num `json:"memoryLimitBytes"`
	MemoryUsagePercent num `json:"memoryUsagePercent"`
	DiskReadBytes      num `json:"diskReadBytes"`
	DiskWriteBytes     num `json:"diskWriteBytes"`
	DiskUsedBytes      num `json:"diskUsedBytes"`
	DiskTotalBytes     num `json:"diskTotalBytes"`
}

// DecodeBatch parses and validates an ingest body (already decompressed)
// signed for serverID, at receiver time now. Any problem is an ErrInvalid
// *Error whose message names the field, e.g.
// "samples[3].cpuUsagePercent: must be between 0 and 100". Nothing is
// returned unless the whole batch is valid, so a store never sees half a batch.
// collectedAt is truncated to whole seconds: that is the idempotency key.
func DecodeBatch(body []byte, serverID string, now time.Time) (Batch, error) {
	var w batchJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return Batch{}, jsonError(err)
	}
	// dec.More would miss a stray closing '}' or ']'; only a clean EOF
	// proves the body was exactly one JSON value.
	if _, err := dec.Token(); err != io.EOF {
		return Batch{}, Errorf(ErrInvalid, "body: unexpected data after the JSON object")
	}
	if w.ServerID != nil && *w.ServerID != serverID {
		return Batch{}, Errorf(ErrInvalid, "serverId: %q does not match the signed X-Vitals-Server %q", *w.ServerID, serverID)
	}
	if w.Samples == nil {
		return Batch{}, Errorf(ErrInvalid, "samples: required")
	}
	n := len(*w.Samples)
	if n == 0 {
		return Batch{}, Errorf(ErrInvalid, "samples: must not be empty")
	}
	if n > MaxSamplesPerBatch {
		return Batch{}, Errorf(ErrInvalid, "samples: at most %d per batch, got %d", MaxSamplesPerBatch, n)
	}
	iv, err := interval(w.Interval)
	if err != nil {
		return Batch{}, err
	}
	b := Batch{ServerID: serverID, Samples: make([]Sample, n), Interval: iv}
	// Each distinct instance id is a series of its own in the store; bound
	// how many one request can create as the per-sample limit does.
	ids := map[string]bool{}
	for i := range *w.Samples {
		v := validator{path: fmt.Sprintf("samples[%d]", i)}
		b.Samples[i] = v.sample(&(*w.Samples)[i], now)
		if v.err != nil {
			return Batch{}, v.err
		}
		for j, in := range b.Samples[i].Instances {
			ids[in.InstanceID] = true
			if len(ids) > MaxInstancesPerSample {
				return Batch{}, Errorf(ErrInvalid, "samples[%d].instances[%d].instanceId: at most %d distinct instances per batch", i, j, MaxInstancesPerSample)
			}
		}
	}
	return b, nil
}

// MaxInterval bounds the reporting interval a batch may announce.
const MaxInterval = 24 * time.Hour

// interval reads the optional "interval" field: whole seconds, 1 s to a day.
func interval(n num) (time.Duration, error) {
	if n == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || v < 1 || time.Duration(v)*time.Second > MaxInterval {
		return 0, Errorf(ErrInvalid, "interval: must be whole seconds between 1 and %d, got %s", int64(MaxInterval/time.Second), string(n))
	}
	return time.Duration(v) * time.Second, nil
}

// jsonError turns encoding/json's errors into client messages that name the
// offending field where the decoder knows it.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "body"
		}
		want := jsonKind(te.Type.Kind().String())
		if te.Type == reflect.TypeFor[num]() {
			want = "a number" // num is a string underneath
		}
		return Errorf(ErrInvalid, "%s: expected %s, got JSON %s", field, want, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return Errorf(ErrInvalid, "body: malformed JSON at byte %d: %v", se.Offset, se)
	}
	if errors.Is(err, io.EOF) {
		return Errorf(ErrInvalid, "body: empty")
	}
	return Errorf(ErrInvalid, "body: %v", err)
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "ptr", "map":
		return "an object"
	default:
		return "a number"
	}
}

// num is a JSON number kept as its text. Unlike json.Number, which
// encoding/json also fills from a quoted number ("1"), it refuses every
// other JSON type: a reporter sending numbers as strings has a bug worth a
// 400, not a silent conversion.
type num string

func (n *num) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case 'n': // null: same as absent
		*n = ""
		return nil
	case '"':
		return &json.UnmarshalTypeError{Value: "string", Type: reflect.TypeFor[num]()}
	case 't', 'f':
		return &json.UnmarshalTypeError{Value: "bool", Type: reflect.TypeFor[num]()}
	case '{':
		return &json.UnmarshalTypeError{Value: "object", Type: reflect.TypeFor[num]()}
	case '[':
		return &json.UnmarshalTypeError{Value: "array", Type: reflect.TypeFor[num]()}
	}
	*n = num(b)
	return nil
}

// validator accumulates the first error found while converting a wire sample.
type validator struct {
	path string
	err  error
}

func (v *validator) fail(field, format string, args ...any) {
	if v.err == nil {
		v.err = Errorf(ErrInvalid, "%s.%s: %s", v.path, field, fmt.Sprintf(format, args...))
	}
}

func (v *validator) sample(s *sampleJSON, now time.Time) Sample {
	var out Sample
	if s.CollectedAt == nil {
		v.fail("collectedAt", "required")
	} else if t, err := time.Parse(time.RFC3339Nano, *s.CollectedAt); err != nil {
		v.fail("collectedAt", "must be an RFC 3339 timestamp, got %q", *s.CollectedAt)
	} else {
		// Checked in UTC: the year limit must not depend on the sender's
		// offset, or a stored sample could fail validation when re-read.
		t = t.UTC()
		switch {
		case t.After(now.Add(MaxClockSkew)):
			v.fail("collectedAt", "%s is in the future (more than %s ahead of the server clock)", *s.CollectedAt, MaxClockSkew)
		case t.Year() < 2000:
			v.fail("collectedAt", "%s is before the year 2000", *s.CollectedAt)
		default:
			out.CollectedAt = t.Truncate(time.Second)
		}
	}
	out.CPUUsagePercent = v.percent("cpuUsagePercent", s.CPUUsagePercent)
	out.CPULoad1m = v.nonNeg("cpuLoad1m", s.CPULoad1m)
	out.CPULoad5m = v.nonNeg("cpuLoad5m", s.CPULoad5m)
	out.CPULoad15m = v.nonNeg("cpuLoad15m", s.CPULoad15m)
	out.RAMTotalBytes = v.bytes("ramTotalBytes", s.RAMTotalBytes)
	out.RAMUsedBytes = v.bytes("ramUsedBytes", s.RAMUsedBytes)
	out.RAMAvailableBytes = v.bytes("ramAvailableBytes", s.RAMAvailableBytes)
	out.RAMUsagePercent = v.percent("ramUsagePercent", s.RAMUsagePercent)
	out.RAMFreeBytes = v.optBytes("ramFreeBytes", s.RAMFreeBytes)
	out.SwapTotalBytes = v.optBytes("swapTotalBytes", s.SwapTotalBytes)
	out.SwapUsedBytes = v.optBytes("swapUsedBytes", s.SwapUsedBytes)
	out.SwapFreeBytes = v.optBytes("swapFreeBytes", s.SwapFreeBytes)
	out.DiskTotalBytes = v.bytes("diskTotalBytes", s.DiskTotalBytes)
	out.DiskUsedBytes = v.bytes("diskUsedBytes", s.DiskUsedBytes)
	out.DiskAvailableBytes = v.bytes("diskAvailableBytes", s.DiskAvailableBytes)
	out.DiskUsagePercent = v.percent("diskUsagePercent", s.DiskUsagePercent)
	out.NetworkRxBytes = v.bytes("networkRxBytes", s.NetworkRxBytes)
	out.NetworkTxBytes = v.bytes("networkTxBytes", s.NetworkTxBytes)
	out.NetworkRxBytesPerSec = v.optNonNeg("networkRxBytesPerSec", s.NetworkRxBytesPerSec)
	out.NetworkTxBytesPerSec = v.optNonNeg("networkTxBytesPerSec", s.NetworkTxBytesPerSec)
	out.UptimeSeconds = v.bytes("uptimeSeconds", s.UptimeSeconds)

	if len(s.CPUs) > MaxCPUsPerSample {
		v.fail("cpus", "at most %d entries", MaxCPUsPerSample)
	}
	for i, c := range s.CPUs {
		f := fmt.Sprintf("cpus[%d]", i)
		if len(c.Name) > maxNameLen || len(c.Model) > maxNameLen {
			v.fail(f, "name and model must be at most %d bytes", maxNameLen)
		}
		if !(c.Usage >= 0 && c.Usage <= 100) {
			v.fail(f+".usage", "must be between 0 and 100")
		}
	}
	out.CPUs = s.CPUs
	if len(s.Disks) > MaxDisksPerSample {
		v.fail("disks", "at most %d entries", MaxDisksPerSample)
	}
	for i, d := range s.Disks {
		if len(d.Name) > maxNameLen || len(d.Mountpoint) > maxNameLen || len(d.Fstype) > maxNameLen {
			v.fail(fmt.Sprintf("disks[%d]", i), "name, mountpoint and fstype must be at most %d bytes", maxNameLen)
		}
	}
	out.Disks = s.Disks
	if h := s.Host; h != nil {
		for _, f := range []string{h.Hostname, h.OS, h.Platform, h.PlatformVersion, h.Kernel, h.Arch, h.ReporterVersion} {
			if len(f) > maxNameLen {
				v.fail("host", "fields must be at most %d bytes", maxNameLen)
			}
		}
	}
	out.Host = s.Host

	if len(s.Instances) > MaxInstancesPerSample {
		v.fail("instances", "at most %d entries", MaxInstancesPerSample)
		return out
	}
	seen := make(map[string]bool, len(s.Instances))
	for i := range s.Instances {
		iv := validator{path: fmt.Sprintf("%s.instances[%d]", v.path, i)}
		in := iv.instance(&s.Instances[i])
		if iv.err == nil && seen[in.InstanceID] {
			iv.fail("instanceId", "%s appears twice in one sample", in.InstanceID)
		}
		seen[in.InstanceID] = true
		if iv.err != nil && v.err == nil {
			v.err = iv.err
		}
		out.Instances = append(out.Instances, in)
	}
	return out
}

func (v *validator) instance(s *instanceJSON) InstanceSample {
	var out InstanceSample
	switch {
	case s.InstanceID == nil:
		v.fail("instanceId", "required")
	default:
		id, err := ParseUUID(*s.InstanceID)
		if err != nil {
			v.fail("instanceId", "must be a UUID, got %q", *s.InstanceID)
		}
		out.InstanceID = id
	}
	switch {
	case s.Name == nil || strings.TrimSpace(*s.Name) == "":
		v.fail("name", "required")
	case len(*s.Name) > maxNameLen:
		v.fail("name", "must be at most %d bytes", maxNameLen)
	default:
		out.Name = *s.Name
	}
	out.CPUUsagePercent = v.percent("cpuUsagePercent", s.CPUUsagePercent)
	out.MemoryUsedBytes = v.bytes("memoryUsedBytes", s.MemoryUsedBytes)
	out.MemoryLimitBytes = v.bytes("memoryLimitBytes", s.MemoryLimitBytes)
	out.MemoryUsagePercent = v.percent("memoryUsagePercent", s.MemoryUsagePercent)
	out.DiskReadBytes = v.bytes("diskReadBytes", s.DiskReadBytes)
	out.DiskWriteBytes = v.bytes("diskWriteBytes", s.DiskWriteBytes)
	out.DiskUsedBytes = v.optBytes("diskUsedBytes", s.DiskUsedBytes)
	out.DiskTotalBytes = v.optBytes("diskTotalBytes", s.DiskTotalBytes)
	return out
}

func (v *validator) float(field string, n num) (float64, bool) {
	if n == "" {
		v.fail(field, "required")
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		v.fail(field, "must be a finite number, got %s", n)
		return 0, false
	}
	return f, true
}

func (v *validator) nonNeg(field string, n num) float64 {
	f, ok := v.float(field, n)
	switch {
	case ok && f < 0:
		v.fail(field, "must not be negative, got %s", n)
	case ok && f > MaxGauge:
		v.fail(field, "must be at most %g, got %s", MaxGauge, n)
	}
	return f
}

func (v *validator) optNonNeg(field string, n num) *float64 {
	if n == "" {
		return nil
	}
	f := v.nonNeg(field, n)
	return &f
}

func (v *validator) percent(field string, n num) float64 {
	f, ok := v.float(field, n)
	if ok && !(f >= 0 && f <= 100) {
		v.fail(field, "must be between 0 and 100, got %s", n)
	}
	return f
}

func (v *validator) bytes(field string, n num) uint64 {
	if n == "" {
		v.fail(field, "required")
		return 0
	}
	u, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil {
		switch {
		case strings.HasPrefix(string(n), "-"):
			v.fail(field, "must not be negative, got %s", n)
		case errors.Is(err, strconv.ErrRange):
			v.fail(field, "must be at most %d, got %s", uint64(math.MaxUint64), n)
		default:
			v.fail(field, "must be a non-negative whole number, got %s", n)
		}
	}
	return u
}

func (v *validator) optBytes(field string, n num) *uint64 {
	if n == "" {
		return nil
	}
	u := v.bytes(field, n)
	return &u
}
