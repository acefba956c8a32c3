package sam_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vitals-dev/vitals/infra/sam"
	"github.com/vitals-dev/vitals/shared/config"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/lambdahttp"
	"github.com/vitals-dev/vitals/shared/metric"
)

// TestDefaultRoute: the HTTP API has exactly one $default route, and it
// belongs to the query function, whose router answers every path and
// method in JSON. Without it API Gateway answers unknown paths and wrong
// methods itself, with {"message":"Not Found"}.
func TestDefaultRoute(t *testing.T) {
	tpl := loadTemplate(t)
	var owners []string
	for _, f := range tpl.Functions {
		for _, r := range f.Routes {
			if r.Path == sam.DefaultRoute {
				owners = append(owners, f.Name)
				if r.Method != sam.DefaultMethod {
					t.Errorf("%s %s: the $default route takes any method, got %s", f.LogicalID, r.Event, r.Method)
				}
			}
		}
	}
	if !slices.Equal(owners, []string{httpapi.FunctionQuery}) {
		t.Fatalf("$default route on %v, want exactly one, on the query function", owners)
	}
}

// gatewayRoute is API Gateway's choice for a request: the function of the
// template route that matches method and path ({x} matches one segment),
// else the $default route's; ok is false when API Gateway would answer
// {"message":"Not Found"} itself.
func gatewayRoute(tpl *sam.Template, method, path string) (fn, routeKey string, ok bool) {
	for _, f := range tpl.Functions {
		for _, r := range f.Routes {
			if r.Path != sam.DefaultRoute && r.Method == method && pathMatches(r.Path, path) {
				return f.Name, r.Method + " " + r.Path, true
			}
		}
	}
	for _, f := range tpl.Functions {
		for _, r := range f.Routes {
			if r.Path == sam.DefaultRoute {
				return f.Name, sam.DefaultRoute, true
			}
		}
	}
	return "", "", false
}

func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") && strings.HasSuffix(ps[i], "}") {
			if xs[i] == "" {
				return false
			}
			continue
		}
		if ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// TestGatewayRouting plays API Gateway: every method on every path of the
// route table, and paths outside it, go where the template's routes send
// them, through the Lambda proxy main uses, to the real handlers on a real
// Redis. Each gets the documented JSON answer, derived here from the route
// table alone: its handler for a route of that function; 405 with Allow
// (the table's methods for that path) for a method no function serves there,
// GET /api/ingest included; 404 naming the right function for a method
// another function serves (the streamer's routes are not on the API); 404
// "no such route" for any other path.
func TestGatewayRouting(t *testing.T) {
	tpl := loadTemplate(t)
	st := newStack(t)
	instanceID := metric.InstanceUUID(st.serverID, "nginx")
	concrete := func(pattern string) string {
		if strings.HasPrefix(pattern, "/api/instances/") {
			return strings.ReplaceAll(pattern, "{id}", instanceID)
		}
		return strings.ReplaceAll(pattern, "{id}", st.serverID)
	}
	table := httpapi.Routes()
	var paths []string
	for _, r := range table {
		if p := concrete(r.Path); !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	paths = append(paths, "/", "/api", "/api/nope", "/api/servers/", "/index.html", "/api/servers/web-1/metrics/latest/x")
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}

	for _, path := range paths {
		for _, method := range methods {
			t.Run(method+" "+path, func(t *testing.T) {
				fn, routeKey, ok := gatewayRoute(tpl, method, path)
				if !ok {
					t.Fatalf("no template route matches: API Gateway would answer {\"message\":\"Not Found\"}")
				}
				// What the route table says about this request.
				owner := map[string]string{} // method → function, for the table path matching path
				for _, r := range table {
					if pathMatches(r.Path, path) {
						owner[r.Method] = r.Function
						if r.Method == http.MethodGet {
							owner[http.MethodHead] = r.Function
						}
					}
				}
				h := st.handlers[fn]
				if h == nil {
					t.Fatalf("routed to %q, which has no Go handler", fn)
				}
				ev := sam.HTTPEvent(method, routeKey, path, "", map[string]string{"user-agent": "gateway-test"}, nil, false)
				resp := invoke(t, lambdahttp.Proxy(h), ev)
				var body map[string]any
				if method != http.MethodHead {
					if resp.Headers["Content-Type"] != "application/json" || json.Unmarshal([]byte(resp.Body), &body) != nil {
						t.Fatalf("→ %d %q (Content-Type %q), want a JSON object", resp.StatusCode, resp.Body, resp.Headers["Content-Type"])
					}
				}
				errMsg, _ := body["error"].(string)
				switch served, known := owner[method], len(owner) > 0; {
				case served == fn:
					if resp.StatusCode == http.StatusMethodNotAllowed || strings.Contains(errMsg, "no such route") || strings.Contains(errMsg, "served by") {
						t.Fatalf("→ %d %s, want %s's handler", resp.StatusCode, resp.Body, fn)
					}
				case served != "":
					if resp.StatusCode != http.StatusNotFound || (method != http.MethodHead && !strings.Contains(errMsg, "served by the "+served)) {
						t.Fatalf("→ %d %s, want 404 saying the %s serves it", resp.StatusCode, resp.Body, served)
					}
				case known:
					allow := slices.Sorted(maps.Keys(owner))
					if resp.StatusCode != http.StatusMethodNotAllowed || resp.Headers["Allow"] != strings.Join(allow, ", ") {
						t.Fatalf("→ %d Allow %q %s, want 405 Allow %q", resp.StatusCode, resp.Headers["Allow"], resp.Body, strings.Join(allow, ", "))
					}
				default:
					if resp.StatusCode != http.StatusNotFound || (method != http.MethodHead && !strings.Contains(errMsg, "no such route")) {
						t.Fatalf("→ %d %s, want 404 no such route", resp.StatusCode, resp.Body)
					}
				}
			})
		}
	}
}

// ruleFuncs are the functions CloudFormation allows in Rules.
var ruleFuncs = map[string]bool{
	"Ref": true, "Fn::And": true, "Fn::Contains": true, "Fn::EachMemberEquals": true, "Fn::EachMemberIn": true,
	"Fn::Equals": true, "Fn::If": true, "Fn::Not": true, "Fn::Or": true, "Fn::RefAll": true, "Fn::ValueOf": true, "Fn::ValueOfAll": true,
}

// eval evaluates the subset of rule and condition functions the template
// uses (Ref, Fn::Equals, Fn::Not, Fn::And, Fn::Or) for the given parameter
// values; anything else is an error, so a rule this test cannot evaluate
// fails it instead of passing unchecked.
func eval(v any, params map[string]string) (any, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	m := sam.Map(v)
	args, _ := m[sam.IntrinsicName(m)].([]any)
	bools := func(min, max int) ([]bool, error) {
		if len(args) < min || len(args) > max {
			return nil, fmt.Errorf("%s takes %d to %d arguments, got %d", sam.IntrinsicName(m), min, max, len(args))
		}
		var out []bool
		for _, a := range args {
			x, err := eval(a, params)
			if err != nil {
				return nil, err
			}
			b, ok := x.(bool)
			if !ok {
				return nil, fmt.Errorf("%s: %v is not a condition", sam.IntrinsicName(m), a)
			}
			out = append(out, b)
		}
		return out, nil
	}
	switch sam.IntrinsicName(m) {
	case "Ref":
		name, _ := m["Ref"].(string)
		val, ok := params[name]
		if !ok {
			return nil, fmt.Errorf("Ref %q: not a parameter", name)
		}
		return val, nil
	case "Fn::Equals":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Equals takes 2 arguments, got %v", args)
		}
		a, err := eval(args[0], params)
		if err != nil {
			return nil, err
		}
		b, err := eval(args[1], params)
		if err != nil {
			return nil, err
		}
		return fmt.Sprint(a) == fmt.Sprint(b), nil
	case "Fn::Not":
		bs, err := bools(1, 1)
		if err != nil {
			return nil, err
		}
		return !bs[0], nil
	case "Fn::And", "Fn::Or":
		bs, err := bools(2, 10)
		if err != nil {
			return nil, err
		}
		if sam.IntrinsicName(m) == "Fn::And" {
			return !slices.Contains(bs, false), nil
		}
		return slices.Contains(bs, true), nil
	}
	return nil, fmt.Errorf("cannot evaluate %v", v)
}

// rulesRefuse returns the names of the rules whose assertions fail for
// params (a rule whose RuleCondition is false does not apply).
func rulesRefuse(t *testing.T, rules map[string]any, params map[string]string) []string {
	t.Helper()
	var refused []string
	for _, name := range slices.Sorted(maps.Keys(rules)) {
		rule := sam.Map(rules[name])
		if c, ok := rule["RuleCondition"]; ok {
			applies, err := eval(c, params)
			if err != nil {
				t.Fatalf("rule %s: RuleCondition: %v", name, err)
			}
			if applies != true {
				continue
			}
		}
		for _, a := range rule["Assertions"].([]any) {
			ok, err := eval(sam.Map(a)["Assert"], params)
			if err != nil {
				t.Fatalf("rule %s: %v", name, err)
			}
			if ok != true {
				refused = append(refused, name)
				break
			}
		}
	}
	return refused
}

// resolveEnv is a function's environment as CloudFormation would set it
// for params: Refs and !If resolved, a Secrets Manager reference resolved
// to smSecret (what the secret holds).
func resolveEnv(t *testing.T, tpl *sam.Template, f sam.Function, params map[string]string, smSecret string) map[string]string {
	t.Helper()
	conditions := sam.Map(tpl.Doc["Conditions"])
	var resolve func(v any) string
	resolve = func(v any) string {
		m := sam.Map(v)
		switch sam.IntrinsicName(m) {
		case "":
			return fmt.Sprint(v)
		case "Ref":
			return params[fmt.Sprint(m["Ref"])]
		case "Fn::If":
			args := m["Fn::If"].([]any)
			c, err := eval(conditions[fmt.Sprint(args[0])], params)
			if err != nil {
				t.Fatalf("condition %v: %v", args[0], err)
			}
			if c == true {
				return resolve(args[1])
			}
			return resolve(args[2])
		case "Fn::Sub":
			if s := fmt.Sprint(m["Fn::Sub"]); strings.HasPrefix(s, "{{resolve:secretsmanager:") {
				return smSecret
			}
		}
		t.Fatalf("cannot resolve %v", v)
		return ""
	}
	env := map[string]string{}
	for k, v := range f.Env() {
		env[k] = resolve(v)
	}
	return env
}

// jwksServer serves a one-key EC P-256 JWKS on loopback.
func jwksServer(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	set := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","use":"sig","alg":"ES256","x":%q,"y":%q}]}`, enc(b[1:33]), enc(b[33:65]))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(set))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/jwks.json"
}

// TestTemplateRules: the Rules section uses only rule functions on real
// parameters, and, evaluated for every combination of the JWT parameters,
// refuses the deploy exactly when the query function would stop at start
// (no way to check tokens; a secret and a JWKS URL together). A value that
// breaks its parameter's AllowedPattern (a short JwtSecret, a bad
// JwtMaxTtl) is refused by CloudFormation before the rules run.
func TestTemplateRules(t *testing.T) {
	tpl := loadTemplate(t)
	params := sam.Map(tpl.Doc["Parameters"])
	rules := sam.Map(tpl.Doc["Rules"])
	for _, want := range []string{"JwtConfigured", "JwtOneKind"} {
		if rules[want] == nil {
			t.Errorf("Rules.%s is missing", want)
		}
	}
	for name, r := range rules {
		rule := sam.Map(r)
		as, _ := rule["Assertions"].([]any)
		if len(as) == 0 {
			t.Errorf("rule %s has no Assertions", name)
		}
		for _, a := range as {
			if d, _ := sam.Map(a)["AssertDescription"].(string); d == "" {
				t.Errorf("rule %s: an assertion without AssertDescription (the deployer sees only that)", name)
			}
		}
		walk(rule, func(v any) {
			fn := sam.IntrinsicName(v)
			if fn == "" {
				return
			}
			if !ruleFuncs[fn] {
				t.Errorf("rule %s: %s is not a rule function", name, fn)
			}
			if fn == "Ref" && params[fmt.Sprint(sam.Map(v)["Ref"])] == nil {
				t.Errorf("rule %s: Ref %v is not a parameter", name, sam.Map(v)["Ref"])
			}
		})
	}

	var query sam.Function
	for _, f := range tpl.Functions {
		if f.Name == httpapi.FunctionQuery {
			query = f
		}
	}
	const good = "0123456789abcdef0123456789abcdef"
	jwks := jwksServer(t)
	type combo struct{ secret, name, jwks, maxTTL string }
	var combos []combo
	for _, secret := range []string{"", "short", good} {
		for _, name := range []string{"", "vitals/jwt"} {
			for _, url := range []string{"", jwks} {
				combos = append(combos, combo{secret, name, url, ""})
			}
		}
	}
	combos = append(combos, combo{good, "", "", "7d"}, combo{good, "", "", "7 days"}, combo{"", "", jwks, "12h"})
	for _, c := range combos {
		t.Run(fmt.Sprintf("secret=%q name=%q jwks=%v maxTTL=%q", c.secret, c.name, c.jwks != "", c.maxTTL), func(t *testing.T) {
			values := map[string]string{"RedisUrl": "redis://127.0.0.1:1"}
			for name, p := range params {
				if d, ok := sam.Map(p)["Default"]; ok {
					values[name] = fmt.Sprint(d)
				}
			}
			values["JwtSecret"], values["JwtSecretName"], values["JwtJwksUrl"], values["JwtMaxTtl"] = c.secret, c.name, c.jwks, c.maxTTL
			var badPattern []string
			for name, p := range params {
				if pat, _ := sam.Map(p)["AllowedPattern"].(string); pat != "" && !regexp.MustCompile(pat).MatchString(values[name]) {
					badPattern = append(badPattern, name)
				}
			}
			refused := rulesRefuse(t, rules, values)

			env := resolveEnv(t, tpl, query, values, good)
			cfg, err := config.Load(func(k string) string { return env[k] })
			if err == nil {
				_, err = cfg.Verifier(t.Context())
			}
			starts := err == nil

			switch {
			case len(badPattern) > 0:
				// CloudFormation refuses the value itself; the function must
				// not be the only check (a secret from Secrets Manager may win
				// over a bad JwtSecret, so it may still start).
				if c.name == "" && starts {
					t.Errorf("AllowedPattern refuses %v, but the function would start with them", badPattern)
				}
			case len(refused) > 0 && starts:
				t.Errorf("rules %v refuse a deploy whose query function starts", refused)
			case len(refused) == 0 && !starts:
				t.Errorf("the rules let this deploy through, but the query function stops at start: %v", err)
			}
			if c.secret == "" && c.name == "" && c.jwks == "" && !slices.Contains(refused, "JwtConfigured") {
				t.Errorf("no JWT setting: JwtConfigured does not refuse the deploy (refused: %v)", refused)
			}
			if (c.secret != "" || c.name != "") && c.jwks != "" && !slices.Contains(refused, "JwtOneKind") {
				t.Errorf("a secret and a JWKS URL: JwtOneKind does not refuse the deploy (refused: %v)", refused)
			}
		})
	}
}
