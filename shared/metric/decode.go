package metric

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
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
//
// Member names match exactly (JSON is case-sensitive, and so is every other
// parser a batch may meet); each struct's ",unknown" map collects the names
// it does not know, so a case variant of a known one ("CPUUsagePercent") is
// refused rather than silently ignored, while a field a newer reporter adds
// is skipped. Duplicate names are refused by the decoder itself.
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

	CPUs      []cpuJSON      `json:"cpus"`
	Disks     []diskJSON     `json:"disks"`
	Host      *hostJSON      `json:"host"`
	Instances []instanceJSON `json:"instances"`

	Unknown unknownNames `json:",unknown"`
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

	Unknown unknownNames `json:",unknown"`
}

// cpuJSON, diskJSON and hostJSON are CPU, Disk and HostInfo with the
// unknown-name catch-all; the conversion is a field-by-field copy.
type cpuJSON struct {
	CPU
	Unknown unknownNames `json:",unknown"`
}

type diskJSON struct {
	Disk
	Unknown unknownNames `json:",unknown"`
}

type hostJSON struct {
	HostInfo
	Unknown unknownNames `json:",unknown"`
}

// unknownNames records member names a struct does not define; their values
// are skipped, never kept.
type unknownNames map[string]skipped

type skipped struct{}

func (*skipped) UnmarshalJSONFrom(dec *jsontext.Decoder) error { return dec.SkipValue() }

// Known member names of each wire struct, for telling a case variant from
// a genuinely new field.
var (
	batchNames    = []string{"serverId", "samples", "interval"}
	sampleNames   = jsonNames(reflect.TypeFor[sampleJSON]())
	instanceNames = jsonNames(reflect.TypeFor[instanceJSON]())
	cpuNames      = jsonNames(reflect.TypeFor[CPU]())
	diskNames     = jsonNames(reflect.TypeFor[Disk]())
	hostNames     = jsonNames(reflect.TypeFor[HostInfo]())
)

func jsonNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" {
			names = append(names, name)
		}
	}
	return names
}

// caseVariant returns the known name that name differs from only in case.
func caseVariant(name string, known []string) (string, bool) {
	for _, k := range known {
		if strings.EqualFold(name, k) && name != k {
			return k, true
		}
	}
	return "", false
}

// checkUnknown fails v for the first (in sorted order, so the message is
// stable) unknown name that is a case variant of a known one.
func (v *validator) checkUnknown(field string, names unknownNames, known []string) {
	if len(names) == 0 {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		if k, ok := caseVariant(name, known); ok {
			prefix := field
			if prefix != "" {
				prefix += "."
			}
			v.fail(prefix+truncate(name), "unknown key; keys are case-sensitive, did you mean %q?", k)
			return
		}
	}
}

// DecodeBatch parses and validates an ingest body (already decompressed)
// signed for serverID, at receiver time now. See DecodeBatchFrom.
func DecodeBatch(body []byte, serverID string, now time.Time) (Batch, error) {
	return DecodeBatchFrom(bytes.NewReader(body), serverID, now)
}

// DecodeBatchFrom parses and validates an ingest body read from r (already
// decompressed) signed for serverID, at receiver time now. It reads r as a
// stream and converts each sample as soon as it is read, so the JSON is
// never held whole: what a batch costs is its decoded samples.
//
// Any problem is an ErrInvalid *Error whose message names the field, e.g.
// "samples[3].cpuUsagePercent: must be between 0 and 100"; that includes
// a duplicate key, a key that differs from a known one only in case, and
// invalid UTF-8, which other JSON parsers would read differently. Nothing
// is returned unless the whole batch is valid, so a store never sees half a
// batch. collectedAt is truncated to whole seconds: that is the idempotency
// key. A read error from r that is not about the JSON (a gzip stream that
// fails, a size limit) is returned as is, wrapped.
func DecodeBatchFrom(r io.Reader, serverID string, now time.Time) (Batch, error) {
	dec := jsontext.NewDecoder(r)
	b, err := decodeBatch(dec, serverID, now)
	if err != nil {
		return Batch{}, err
	}
	// Only a clean EOF proves the body was exactly one JSON value.
	if _, err := dec.ReadToken(); err != io.EOF { //nolint:errorlint // jsontext returns io.EOF itself at the end
		if err != nil && !isJSONError(err) {
			return Batch{}, fmt.Errorf("body: %w", err)
		}
		return Batch{}, Errorf(ErrInvalid, "body: unexpected data after the JSON object")
	}
	return b, nil
}

func decodeBatch(dec *jsontext.Decoder, serverID string, now time.Time) (Batch, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return Batch{}, jsonError(err, "")
	}
	if tok.Kind() != '{' {
		return Batch{}, Errorf(ErrInvalid, "body: expected a JSON object, got %s", kindName(tok.Kind()))
	}
	b := Batch{ServerID: serverID}
	sawSamples := false
	// Each distinct instance id is a series of its own in the store; bound
	// how many one request can create as the per-sample limit does.
	ids, names := map[string]string{}, map[string]string{}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return Batch{}, jsonError(err, "")
		}
		switch name := tok.String(); name {
		case "serverId":
			tok, err := dec.ReadToken()
			if err != nil {
				return Batch{}, jsonError(err, "")
			}
			switch tok.Kind() {
			case 'n': // same as absent
			case '"':
				if got := tok.String(); got != serverID {
					return Batch{}, Errorf(ErrInvalid, "serverId: %s does not match the signed X-Vitals-Server %s", Bounded(got), Bounded(serverID))
				}
			default:
				if err := skipRest(dec, tok); err != nil {
					return Batch{}, jsonError(err, "")
				}
				return Batch{}, Errorf(ErrInvalid, "serverId: expected a string, got JSON %s", kindName(tok.Kind()))
			}
		case "samples":
			tok, err := dec.ReadToken()
			if err != nil {
				return Batch{}, jsonError(err, "")
			}
			switch tok.Kind() {
			case 'n':
				continue // same as absent: "required" below
			case '[':
			default:
				return Batch{}, Errorf(ErrInvalid, "samples: expected an array, got JSON %s", kindName(tok.Kind()))
			}
			sawSamples = true
			for dec.PeekKind() != ']' {
				i := len(b.Samples)
				if i == MaxSamplesPerBatch {
					return Batch{}, Errorf(ErrInvalid, "samples: at most %d per batch, got more", MaxSamplesPerBatch)
				}
				path := "samples[" + strconv.Itoa(i) + "]"
				var w sampleJSON
				if err := json.UnmarshalDecode(dec, &w); err != nil {
					return Batch{}, jsonError(err, path)
				}
				v := validator{path: path}
				smp := v.sample(&w, now)
				if v.err != nil {
					return Batch{}, v.err
				}
				for j := range smp.Instances {
					in := &smp.Instances[j]
					// One copy of each id and name per batch: a batch
					// repeats them in every sample, and a long one holds
					// tens of thousands.
					if id, ok := ids[in.InstanceID]; ok {
						in.InstanceID = id
					} else {
						ids[in.InstanceID] = in.InstanceID
					}
					if name, ok := names[in.Name]; ok {
						in.Name = name
					} else if len(names) < MaxInstancesPerSample {
						names[in.Name] = in.Name
					}
					if len(ids) > MaxInstancesPerSample {
						return Batch{}, Errorf(ErrInvalid, "samples[%d].instances[%d].instanceId: at most %d distinct instances per batch", i, j, MaxInstancesPerSample)
					}
				}
				b.Samples = append(b.Samples, smp)
			}
			if _, err := dec.ReadToken(); err != nil { // ']'
				return Batch{}, jsonError(err, "")
			}
		case "interval":
			var n num
			if err := json.UnmarshalDecode(dec, &n); err != nil {
				return Batch{}, jsonError(err, "")
			}
			if b.Interval, err = interval(n); err != nil {
				return Batch{}, err
			}
		default:
			if k, ok := caseVariant(name, batchNames); ok {
				return Batch{}, Errorf(ErrInvalid, "body: unknown key %s; keys are case-sensitive, did you mean %q?", Bounded(name), k)
			}
			if err := dec.SkipValue(); err != nil {
				return Batch{}, jsonError(err, "")
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil { // '}'
		return Batch{}, jsonError(err, "")
	}
	switch {
	case !sawSamples:
		return Batch{}, Errorf(ErrInvalid, "samples: required")
	case len(b.Samples) == 0:
		return Batch{}, Errorf(ErrInvalid, "samples: must not be empty")
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
		return 0, Errorf(ErrInvalid, "interval: must be whole seconds between 1 and %d, got %s", int64(MaxInterval/time.Second), truncate(string(n)))
	}
	return time.Duration(v) * time.Second, nil
}

// skipRest consumes the rest of a value whose first token was tok.
func skipRest(dec *jsontext.Decoder, tok jsontext.Token) error {
	if k := tok.Kind(); k != '{' && k != '[' {
		return nil
	}
	for depth := 1; depth > 0; {
		t, err := dec.ReadToken()
		if err != nil {
			return err
		}
		switch t.Kind() {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		}
	}
	return nil
}

// isJSONError says whether err came from the JSON layer rather than from
// reading the stream (gzip, limits), which the caller reports itself.
func isJSONError(err error) bool {
	var se *jsontext.SyntacticError
	var me *json.SemanticError
	return errors.As(err, &se) || errors.As(err, &me) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// jsonError turns the JSON decoder's errors into client messages that name
// the offending field (the decoder knows where it was; path is the sample
// being decoded, whose own pointer is relative to the body).
func jsonError(err error, path string) error {
	if !isJSONError(err) {
		// The reader failed (gzip, a size limit): not the JSON's fault,
		// so not necessarily a 400; the caller decides.
		return fmt.Errorf("body: %w", err)
	}
	var me *json.SemanticError
	if errors.As(err, &me) {
		field := pointerPath(me.JSONPointer)
		var wt *wrongType
		switch {
		case errors.As(me.Err, &wt):
			return Errorf(ErrInvalid, "%s: expected a number, got JSON %s", field, wt.got)
		case me.JSONKind == '0' && me.GoType != nil && isNumber(me.GoType):
			// A number the Go type cannot hold: -1 or 1.5 for a count,
			// 1e999 for a float.
			want := "a finite number"
			if k := goKind(me.GoType); k != "a number" {
				want = k
			}
			got := "a number out of range"
			if me.JSONValue != nil {
				got = truncate(string(me.JSONValue))
			}
			return Errorf(ErrInvalid, "%s: must be %s, got %s", field, want, got)
		case me.GoType != nil && me.JSONKind != 0:
			return Errorf(ErrInvalid, "%s: expected %s, got JSON %s", field, goKind(me.GoType), kindName(me.JSONKind))
		case me.GoType != nil && me.JSONValue != nil:
			return Errorf(ErrInvalid, "%s: %s out of range for %s", field, truncate(string(me.JSONValue)), goKind(me.GoType))
		}
		return Errorf(ErrInvalid, "%s: %s", field, errText(me.Err))
	}
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		field := pointerPath(se.JSONPointer)
		switch {
		case errors.Is(se.Err, jsontext.ErrDuplicateName):
			if first, _ := firstToken(se.JSONPointer); !slices.Contains(batchNames, first) {
				// Under a top-level key of the client's own: named inside
				// the message, so every message starts with a known field.
				return Errorf(ErrInvalid, "body: duplicate key %s (each key may appear once per object)", Bounded(field))
			}
			return Errorf(ErrInvalid, "%s: duplicate key (each key may appear once per object)", field)
		case errors.Is(se.Err, io.ErrUnexpectedEOF):
			return Errorf(ErrInvalid, "body: truncated JSON at byte %d", se.ByteOffset)
		}
		return Errorf(ErrInvalid, "body: malformed JSON at byte %d (%s): %s", se.ByteOffset, field, errText(se.Err))
	}
	if errors.Is(err, io.EOF) {
		return Errorf(ErrInvalid, "body: empty")
	}
	return Errorf(ErrInvalid, "body: truncated JSON")
}

// errText is the decoder's message without its package prefix.
func errText(err error) string {
	if err == nil {
		return "invalid"
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "jsontext: ")
	msg = strings.TrimPrefix(msg, "json: ")
	return truncate(msg)
}

// pointerPath turns a JSON Pointer ("/samples/3/cpus/0/usage") into the
// field path the messages use ("samples[3].cpus[0].usage"); "body" for the
// root. Names come from the client, so each is bounded.
func pointerPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.ParseUint(tok, 10, 32); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(truncate(tok))
		if b.Len() > 512 {
			break
		}
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}

func firstToken(p jsontext.Pointer) (string, bool) {
	for tok := range p.Tokens() {
		return tok, true
	}
	return "", false
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

func isNumber(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Pointer, reflect.Map:
		return "an object"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative whole number"
	default:
		return "a number"
	}
}

// num is a JSON number kept as its text. It refuses every other JSON type:
// a reporter sending numbers as strings ("1") has a bug worth a 400, not a
// silent conversion.
type num string

type wrongType struct{ got string }

func (e *wrongType) Error() string { return "expected a number, got JSON " + e.got }

func (n *num) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch k := v.Kind(); k {
	case 'n': // null: same as absent
		*n = ""
	case '0':
		*n = num(v)
	default:
		return &wrongType{got: kindName(k)}
	}
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
	// First: a case variant of a required key would otherwise be
	// reported as that key missing.
	v.checkUnknown("", s.Unknown, sampleNames)
	if s.CollectedAt == nil {
		v.fail("collectedAt", "required")
	} else if t, err := time.Parse(time.RFC3339Nano, *s.CollectedAt); err != nil {
		v.fail("collectedAt", "must be an RFC 3339 timestamp, got %s", Bounded(*s.CollectedAt))
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
	if len(s.CPUs) > 0 {
		out.CPUs = make([]CPU, len(s.CPUs))
	}
	for i, c := range s.CPUs {
		f := fmt.Sprintf("cpus[%d]", i)
		v.checkUnknown(f, c.Unknown, cpuNames)
		if len(c.Name) > maxNameLen || len(c.Model) > maxNameLen {
			v.fail(f, "name and model must be at most %d bytes", maxNameLen)
		}
		if !(c.Usage >= 0 && c.Usage <= 100) {
			v.fail(f+".usage", "must be between 0 and 100")
		}
		out.CPUs[i] = c.CPU
	}
	if len(s.Disks) > MaxDisksPerSample {
		v.fail("disks", "at most %d entries", MaxDisksPerSample)
	}
	if len(s.Disks) > 0 {
		out.Disks = make([]Disk, len(s.Disks))
	}
	for i, d := range s.Disks {
		f := fmt.Sprintf("disks[%d]", i)
		v.checkUnknown(f, d.Unknown, diskNames)
		if len(d.Name) > maxNameLen || len(d.Mountpoint) > maxNameLen || len(d.Fstype) > maxNameLen {
			v.fail(f, "name, mountpoint and fstype must be at most %d bytes", maxNameLen)
		}
		out.Disks[i] = d.Disk
	}
	if h := s.Host; h != nil {
		v.checkUnknown("host", h.Unknown, hostNames)
		for _, f := range []string{h.Hostname, h.OS, h.Platform, h.PlatformVersion, h.Kernel, h.Arch, h.ReporterVersion} {
			if len(f) > maxNameLen {
				v.fail("host", "fields must be at most %d bytes", maxNameLen)
			}
		}
		out.Host = &h.HostInfo
	}

	if len(s.Instances) > MaxInstancesPerSample {
		v.fail("instances", "at most %d entries", MaxInstancesPerSample)
		return out
	}
	seen := make(map[string]bool, len(s.Instances))
	if len(s.Instances) > 0 {
		out.Instances = make([]InstanceSample, 0, len(s.Instances))
	}
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
	v.checkUnknown("", s.Unknown, instanceNames)
	switch {
	case s.InstanceID == nil:
		v.fail("instanceId", "required")
	default:
		id, err := ParseUUID(*s.InstanceID)
		if err != nil {
			v.fail("instanceId", "must be a UUID, got %s", Bounded(*s.InstanceID))
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
		v.fail(field, "must be a finite number, got %s", truncate(string(n)))
		return 0, false
	}
	return f, true
}

func (v *validator) nonNeg(field string, n num) float64 {
	f, ok := v.float(field, n)
	switch {
	case ok && f < 0:
		v.fail(field, "must not be negative, got %s", truncate(string(n)))
	case ok && f > MaxGauge:
		v.fail(field, "must be at most %g, got %s", MaxGauge, truncate(string(n)))
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
		v.fail(field, "must be between 0 and 100, got %s", truncate(string(n)))
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
			v.fail(field, "must not be negative, got %s", truncate(string(n)))
		case errors.Is(err, strconv.ErrRange):
			v.fail(field, "must be at most %d, got %s", uint64(math.MaxUint64), truncate(string(n)))
		default:
			v.fail(field, "must be a non-negative whole number, got %s", truncate(string(n)))
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
