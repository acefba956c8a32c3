// Package sam reads Vitals' AWS SAM template (template.yaml at the repository
// root) so that Go tests and tools can hold it to the Go code: its tests fail
// when a template route has no handler in shared/httpapi (or the other way
// round), when a function's build-<LogicalId> Makefile target is missing, or
// when a recorded API Gateway event does not get the right answer through the
// Lambda proxy that main hands to lambda.Start. The SAM CLI cannot run in CI,
// so these tests are the template's check.
//
// The template is YAML with CloudFormation's short-form tags (!Ref, !Sub,
// !If, …). Parse turns it into the equivalent JSON form ({"Ref": "X"},
// {"Fn::Sub": "…"}), the form CloudFormation itself documents, so callers
// walk plain maps and slices.
package sam

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a parsed SAM template.
type Template struct {
	// Doc is the whole template in CloudFormation's JSON form.
	Doc map[string]any
	// Functions are the AWS::Serverless::Function resources, sorted by
	// logical id, with Globals.Function merged into their properties.
	Functions []Function
}

// Function is one AWS::Serverless::Function.
type Function struct {
	// LogicalID is the resource name, e.g. "IngestFunction".
	LogicalID string
	// Name is the Go package under functions/ that the function runs:
	// the logical id without "Function", lowercased ("ingest").
	Name string
	// Properties are the resource's properties with Globals.Function merged
	// in as SAM merges them (see mergeGlobals).
	Properties map[string]any
	// Metadata is the resource's Metadata (BuildMethod…).
	Metadata map[string]any
	// Routes are the function's HttpApi events.
	Routes []Route
}

// DefaultRoute and DefaultMethod are the Path and Method of an HttpApi
// event that names neither: SAM makes it API Gateway's $default route,
// which gets every request no other route matches, whatever its method.
const (
	DefaultRoute  = "$default"
	DefaultMethod = "ANY"
)

// Route is one HttpApi event of a function.
type Route struct {
	// Event is the event's name in the template.
	Event string
	// Method is upper case ("GET"); Path uses API Gateway's {param} syntax,
	// the same as Go 1.22 ServeMux patterns. The catch-all event is
	// DefaultMethod DefaultRoute.
	Method, Path string
	// APIID is the logical id the event's ApiId refers to ("" if none).
	APIID string
	// PayloadFormatVersion as written ("" if absent; SAM's default is 2.0).
	PayloadFormatVersion string
}

// Load reads and parses the template at path.
func Load(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses a SAM template.
func Parse(data []byte) (*Template, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if len(root.Content) != 1 {
		return nil, errors.New("template: want exactly one YAML document")
	}
	v, err := toJSONForm(root.Content[0])
	if err != nil {
		return nil, err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("template: the document is not a mapping")
	}
	t := &Template{Doc: doc}
	globals := Map(Map(doc["Globals"])["Function"])
	resources := Map(doc["Resources"])
	for _, id := range slices.Sorted(maps.Keys(resources)) {
		res := Map(resources[id])
		if res["Type"] != "AWS::Serverless::Function" {
			continue
		}
		f, err := newFunction(id, res, globals)
		if err != nil {
			return nil, err
		}
		t.Functions = append(t.Functions, f)
	}
	return t, nil
}

func newFunction(id string, res, globals map[string]any) (Function, error) {
	name, ok := strings.CutSuffix(id, "Function")
	if !ok || name == "" {
		return Function{}, fmt.Errorf("resource %s: function logical ids must be <Name>Function (the Makefile target is build-<LogicalId> and the code is functions/<name>)", id)
	}
	f := Function{
		LogicalID:  id,
		Name:       strings.ToLower(name),
		Properties: mergeGlobals(globals, Map(res["Properties"])),
		Metadata:   Map(res["Metadata"]),
	}
	events := Map(f.Properties["Events"])
	for _, ev := range slices.Sorted(maps.Keys(events)) {
		e := Map(events[ev])
		if e["Type"] != "HttpApi" {
			continue
		}
		p := Map(e["Properties"])
		method, _ := p["Method"].(string)
		path, _ := p["Path"].(string)
		_, hasMethod := p["Method"]
		_, hasPath := p["Path"]
		switch {
		case !hasMethod && !hasPath:
			// SAM's catch-all: API Gateway's $default route, any method.
			method, path = DefaultMethod, DefaultRoute
		case method == "" || path == "":
			return Function{}, fmt.Errorf("resource %s: event %s: HttpApi events need a literal Method and Path, or neither (the $default route)", id, ev)
		}
		r := Route{Event: ev, Method: strings.ToUpper(method), Path: path}
		if ref, ok := Map(p["ApiId"])["Ref"].(string); ok {
			r.APIID = ref
		}
		r.PayloadFormatVersion, _ = p["PayloadFormatVersion"].(string)
		f.Routes = append(f.Routes, r)
	}
	return f, nil
}

// Env returns the function's Environment.Variables (globals merged).
func (f Function) Env() map[string]any {
	return Map(Map(f.Properties["Environment"])["Variables"])
}

// mergeGlobals applies SAM's Globals rules: a key only in one side is kept;
// two maps are merged recursively; two lists are concatenated, globals
// first; otherwise (scalars, intrinsics) the resource's own value wins.
func mergeGlobals(global, local map[string]any) map[string]any {
	out := maps.Clone(global)
	if out == nil {
		out = map[string]any{}
	}
	for k, lv := range local {
		gm, gok := out[k].(map[string]any)
		lm, lok := lv.(map[string]any)
		if gok && lok && !isIntrinsic(gm) && !isIntrinsic(lm) {
			out[k] = mergeGlobals(gm, lm)
			continue
		}
		gl, gok := out[k].([]any)
		ll, lok := lv.([]any)
		if gok && lok {
			out[k] = append(slices.Clone(gl), ll...)
			continue
		}
		out[k] = lv
	}
	return out
}

// Map returns v as a mapping, or nil.
func Map(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// IntrinsicName returns the function of a one-key intrinsic map
// ("Ref", "Fn::If"…) or "".
func IntrinsicName(v any) string {
	m := Map(v)
	if len(m) != 1 || !isIntrinsic(m) {
		return ""
	}
	for k := range m {
		return k
	}
	return ""
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

// shortForms maps CloudFormation's YAML tags to their JSON-form keys.
var shortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr", "!FindInMap": "Fn::FindInMap",
	"!GetAtt": "Fn::GetAtt", "!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue",
	"!Join": "Fn::Join", "!Select": "Fn::Select", "!Split": "Fn::Split", "!Sub": "Fn::Sub",
	"!Transform": "Fn::Transform", "!And": "Fn::And", "!Equals": "Fn::Equals",
	"!If": "Fn::If", "!Not": "Fn::Not", "!Or": "Fn::Or", "!ToJsonString": "Fn::ToJsonString",
	"!Length": "Fn::Length",
}

// toJSONForm converts a YAML node into maps, slices and scalars, turning
// tagged nodes into their intrinsic-function maps. Scalars stay strings
// unless YAML resolves them to booleans or numbers (as CloudFormation does).
func toJSONForm(n *yaml.Node) (any, error) {
	var v any
	switch n.Kind {
	case yaml.AliasNode:
		return toJSONForm(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping keys must be scalars", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			val, err := toJSONForm(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k.Value] = val
		}
		v = m
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := toJSONForm(c)
			if err != nil {
				return nil, err
			}
			s = append(s, val)
		}
		v = s
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!bool", "!!int", "!!float", "!!null":
			var x any
			if err := n.Decode(&x); err != nil {
				return nil, fmt.Errorf("line %d: %w", n.Line, err)
			}
			return x, nil
		}
		v = n.Value
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	if !strings.HasPrefix(n.Tag, "!") || strings.HasPrefix(n.Tag, "!!") {
		return v, nil
	}
	fn, ok := shortForms[n.Tag]
	if !ok {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	if fn == "Fn::GetAtt" {
		// !GetAtt Resource.Attribute is the short form of [Resource, Attribute].
		if s, ok := v.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, s)
			}
			v = []any{res, attr}
		}
	}
	return map[string]any{fn: v}, nil
}
