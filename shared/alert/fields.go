package alert

import (
	"reflect"
	"slices"
	"strings"

	"github.com/vitals-dev/vitals/shared/metric"
)

// Field reads one numeric metric field; FieldOf finds it by JSON name.
type Field struct {
	Name  string
	index []int
}

// The tables are derived from the struct tags of metric.ServerMetric and
// metric.InstanceMetric, so a field added there is a rule metric at once
// and the names always match the API's.
var (
	serverFields   = numericFields(reflect.TypeFor[metric.ServerMetric]())
	instanceFields = numericFields(reflect.TypeFor[metric.InstanceMetric]())
)

func numericFields(t reflect.Type) map[string]Field {
	out := map[string]Field{}
	for i := range t.NumField() {
		f := t.Field(i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Float64, reflect.Uint64, reflect.Int:
		default:
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || name == "samples" {
			continue
		}
		out[name] = Field{Name: name, index: f.Index}
	}
	return out
}

// FieldOf returns the numeric field name of ServerMetric (or of
// InstanceMetric when instance is true).
func FieldOf(name string, instance bool) (Field, bool) {
	m := serverFields
	if instance {
		m = instanceFields
	}
	f, ok := m[name]
	return f, ok
}

// FieldNames lists the rule metrics of one kind, sorted.
func FieldNames(instance bool) []string {
	m := serverFields
	if instance {
		m = instanceFields
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Value reads the field from a *metric.ServerMetric or
// *metric.InstanceMetric; ok is false for an absent optional field.
func (f Field) Value(point any) (v float64, ok bool) {
	rv := reflect.ValueOf(point).Elem().FieldByIndex(f.index)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return 0, false
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Float64:
		return rv.Float(), true
	case reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Int:
		return float64(rv.Int()), true
	}
	return 0, false
}
