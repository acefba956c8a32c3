package sam_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vitals-dev/vitals/infra/sam"
	"github.com/vitals-dev/vitals/shared/config"
	"github.com/vitals-dev/vitals/shared/httpapi"
	"github.com/vitals-dev/vitals/shared/lambdahttp"
	"github.com/vitals-dev/vitals/shared/metric"
	"github.com/vitals-dev/vitals/shared/redisstore"
)

// TestTemplateFunctions checks what every function must have for the
// provided.al2023 runtime and the Makefile build.
func TestTemplateFunctions(t *testing.T) {
	tpl := loadTemplate(t)
	if got := tpl.Doc["Transform"]; got != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %v, want AWS::Serverless-2016-10-31", got)
	}
	resources := sam.Map(tpl.Doc["Resources"])
	for _, f := range tpl.Functions {
		t.Run(f.LogicalID, func(t *testing.T) {
			p := f.Properties
			want := map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "CodeUri": "."}
			for k, v := range want {
				if p[k] != v {
					t.Errorf("%s = %v, want %v", k, p[k], v)
				}
			}
			if a, _ := p["Architectures"].([]any); !slices.Equal(a, []any{"arm64"}) {
				t.Errorf("Architectures = %v, want [arm64] (the Makefile builds GOARCH=arm64)", p["Architectures"])
			}
			if f.Metadata["BuildMethod"] != "makefile" {
				t.Errorf("Metadata.BuildMethod = %v, want makefile", f.Metadata["BuildMethod"])
			}
			if _, err := os.Stat(filepath.Join(repoRoot, "functions", f.Name, "main.go")); err != nil {
				t.Errorf("no main package for %s: %v", f.LogicalID, err)
			}
			// HTTP API gives up after 30 s: a longer timeout would only hide
			// a stuck Redis behind a gateway 503 without our JSON body.
			if to, ok := p["Timeout"].(int); !ok || to < 1 || to > 29 {
				t.Errorf("Timeout = %v, want 1..29 seconds", p["Timeout"])
			}
			if p["MemorySize"] == nil {
				t.Error("MemorySize is not set")
			}
			if p["ReservedConcurrentExecutions"] == nil {
				t.Error("ReservedConcurrentExecutions is not set (a parameter with -1 = none is fine)")
			}
			if sam.IntrinsicName(p["VpcConfig"]) != "Fn::If" {
				t.Errorf("VpcConfig = %v, want !If on the VPC condition (optional VPC)", p["VpcConfig"])
			}
			lg, _ := sam.Map(sam.Map(p["LoggingConfig"])["LogGroup"])["Ref"].(string)
			res := sam.Map(resources[lg])
			if res["Type"] != "AWS::Logs::LogGroup" || sam.Map(res["Properties"])["RetentionInDays"] == nil {
				t.Errorf("LoggingConfig.LogGroup = %v, want !Ref to an AWS::Logs::LogGroup with RetentionInDays", p["LoggingConfig"])
			}
			for _, k := range []string{"VITALS_REDIS_URL", "VITALS_LOG_FORMAT"} {
				if f.Env()[k] == nil {
					t.Errorf("Environment.Variables.%s is not set", k)
				}
			}
		})
	}
	for id, r := range resources {
		if sam.Map(r)["Type"] == "AWS::Logs::LogGroup" && sam.Map(sam.Map(r)["Properties"])["RetentionInDays"] == nil {
			t.Errorf("log group %s keeps logs forever: set RetentionInDays", id)
		}
	}
}

// secretish names environment variables whose values must never be literals.
var secretish = regexp.MustCompile(`SECRET|PASSWORD|TOKEN|KEY|REDIS_URL`)

// TestTemplateSecrets: secrets come from NoEcho parameters or Secrets
// Manager dynamic references, never from literals, and never leave through
// Outputs or parameter defaults.
func TestTemplateSecrets(t *testing.T) {
	tpl := loadTemplate(t)
	params := sam.Map(tpl.Doc["Parameters"])
	noEcho := map[string]bool{}
	for name, p := range params {
		if sam.Map(p)["NoEcho"] == true {
			noEcho[name] = true
			if d, ok := sam.Map(p)["Default"]; ok && d != "" {
				t.Errorf("NoEcho parameter %s has a non-empty Default: a secret in the template", name)
			}
		}
	}
	for _, must := range []string{"JwtSecret", "RedisUrl"} {
		if !noEcho[must] {
			t.Errorf("parameter %s must be NoEcho", must)
		}
	}
	// check accepts a Ref to a NoEcho parameter, a dynamic reference to
	// Secrets Manager / SSM SecureString, an empty string, or intrinsics
	// (If) made only of those.
	var check func(path string, v any)
	check = func(path string, v any) {
		switch x := v.(type) {
		case string:
			if x != "" {
				t.Errorf("%s is the literal %q; use a NoEcho parameter or a Secrets Manager reference", path, x)
			}
		case map[string]any:
			switch sam.IntrinsicName(x) {
			case "Ref":
				if name, _ := x["Ref"].(string); !noEcho[name] {
					t.Errorf("%s refers to parameter %s, which is not NoEcho", path, name)
				}
			case "Fn::Sub":
				s, _ := x["Fn::Sub"].(string)
				if !strings.HasPrefix(s, "{{resolve:secretsmanager:") && !strings.HasPrefix(s, "{{resolve:ssm-secure:") {
					t.Errorf("%s = !Sub %q: want a {{resolve:secretsmanager:…}} dynamic reference", path, s)
				}
			case "Fn::If":
				args, _ := x["Fn::If"].([]any)
				if len(args) != 3 {
					t.Errorf("%s: malformed !If", path)
					return
				}
				check(path+"(then)", args[1])
				check(path+"(else)", args[2])
			default:
				t.Errorf("%s = %v: want a NoEcho parameter or a dynamic reference", path, x)
			}
		default:
			t.Errorf("%s = %v (%T): want a NoEcho parameter or a dynamic reference", path, v, v)
		}
	}
	found := 0
	for _, f := range tpl.Functions {
		for k, v := range f.Env() {
			if secretish.MatchString(k) {
				found++
				check(f.LogicalID+".Environment."+k, v)
			}
		}
	}
	if found == 0 {
		t.Error("no secret-bearing environment variable found: the check checks nothing")
	}
	walk(tpl.Doc["Outputs"], func(v any) {
		if ref, _ := sam.Map(v)["Ref"].(string); noEcho[ref] {
			t.Errorf("Outputs expose NoEcho parameter %s", ref)
		}
		if s, _ := sam.Map(v)["Fn::Sub"].(string); s != "" {
			for _, m := range subRef.FindAllStringSubmatch(s, -1) {
				if noEcho[m[1]] {
					t.Errorf("Outputs expose NoEcho parameter %s", m[1])
				}
			}
		}
	})
}

// walk calls fn on v and everything inside it.
func walk(v any, fn func(any)) {
	fn(v)
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			walk(x[k], fn)
		}
	case []any:
		for _, e := range x {
			walk(e, fn)
		}
	}
}

// subRef matches ${Name} and ${Name.Attr} in a !Sub string (not ${!Literal}).
var subRef = regexp.MustCompile(`\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z0-9.]+)?\}`)

var pseudo = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true, "AWS::Partition": true,
	"AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true, "AWS::URLSuffix": true,
}

// TestTemplateReferences is the part of `sam validate` that can be done
// without AWS: every Ref, GetAtt, ${…} and condition names something that
// exists, and every parameter and condition is used.
func TestTemplateReferences(t *testing.T) {
	tpl := loadTemplate(t)
	params := sam.Map(tpl.Doc["Parameters"])
	resources := sam.Map(tpl.Doc["Resources"])
	conditions := sam.Map(tpl.Doc["Conditions"])
	usedParam, usedCond := map[string]bool{}, map[string]bool{}
	ref := func(where, name string) {
		switch {
		case params[name] != nil:
			usedParam[name] = true
		case resources[name] != nil, pseudo[name]:
		default:
			t.Errorf("%s: %q is not a parameter, resource or pseudo parameter", where, name)
		}
	}
	cond := func(where string, v any) {
		name, _ := v.(string)
		if conditions[name] == nil {
			t.Errorf("%s: condition %v is not defined", where, v)
		}
		usedCond[name] = true
	}
	for _, section := range []string{"Conditions", "Globals", "Resources", "Outputs"} {
		walk(tpl.Doc[section], func(v any) {
			m := sam.Map(v)
			switch sam.IntrinsicName(m) {
			case "Ref":
				name, _ := m["Ref"].(string)
				ref(section, name)
			case "Fn::GetAtt":
				args, _ := m["Fn::GetAtt"].([]any)
				if len(args) != 2 || resources[fmt.Sprint(args[0])] == nil {
					t.Errorf("%s: !GetAtt %v names no resource", section, args)
				}
			case "Fn::Sub":
				s, _ := m["Fn::Sub"].(string)
				for _, sm := range subRef.FindAllStringSubmatch(s, -1) {
					ref(section+": !Sub "+s, sm[1])
				}
			case "Fn::If":
				args, _ := m["Fn::If"].([]any)
				if len(args) != 3 {
					t.Errorf("%s: !If needs [condition, then, else], got %v", section, args)
					return
				}
				cond(section, args[0])
			case "Condition":
				cond(section, m["Condition"])
			}
		})
	}
	for id, r := range resources {
		if c, ok := sam.Map(r)["Condition"]; ok {
			cond("resource "+id, c)
		}
	}
	for name := range params {
		if !usedParam[name] {
			t.Errorf("parameter %s is never used", name)
		}
	}
	for name := range conditions {
		if !usedCond[name] {
			t.Errorf("condition %s is never used", name)
		}
	}
	// The console's parameter groups must name real parameters, each once.
	seen := map[string]bool{}
	for _, g := range sam.Map(sam.Map(tpl.Doc["Metadata"])["AWS::CloudFormation::Interface"])["ParameterGroups"].([]any) {
		for _, p := range sam.Map(g)["Parameters"].([]any) {
			name := fmt.Sprint(p)
			if params[name] == nil || seen[name] {
				t.Errorf("ParameterGroups: %s is unknown or listed twice", name)
			}
			seen[name] = true
		}
	}
	if len(seen) != len(params) {
		t.Errorf("ParameterGroups list %d of %d parameters", len(seen), len(params))
	}
}

// TestTemplateAPI: one HTTP API (payload v2) that every route belongs to,
// and the URL in the outputs.
func TestTemplateAPI(t *testing.T) {
	tpl := loadTemplate(t)
	var apis []string
	for id, r := range sam.Map(tpl.Doc["Resources"]) {
		if sam.Map(r)["Type"] == "AWS::Serverless::HttpApi" {
			apis = append(apis, id)
		}
	}
	if len(apis) != 1 {
		t.Fatalf("want exactly one AWS::Serverless::HttpApi, got %v", apis)
	}
	for _, f := range tpl.Functions {
		if len(f.Routes) == 0 && !scheduled(f) {
			t.Errorf("%s has no HttpApi event (and no Schedule)", f.LogicalID)
		}
		for _, r := range f.Routes {
			if r.APIID != apis[0] {
				t.Errorf("%s %s: ApiId = %q, want !Ref %s (else SAM creates a second, implicit API)", f.LogicalID, r.Event, r.APIID, apis[0])
			}
			if r.PayloadFormatVersion != "2.0" {
				t.Errorf("%s %s: PayloadFormatVersion = %q, want \"2.0\" (lambdahttp speaks v2)", f.LogicalID, r.Event, r.PayloadFormatVersion)
			}
		}
	}
	url, _ := sam.Map(sam.Map(sam.Map(tpl.Doc["Outputs"])["ApiUrl"])["Value"])["Fn::Sub"].(string)
	if !strings.HasPrefix(url, "https://${"+apis[0]+"}.execute-api.") {
		t.Errorf("Outputs.ApiUrl = %q, want the execute-api URL of %s", url, apis[0])
	}
}

// TestRoutesMatchRouter is the route drift test: the template's routes and
// shared/httpapi.Routes() (what the Lambda handlers and localdev mount) must
// be the same set, function for function. Streamer routes are served by the
// long-running streamer, never by Lambda. The $default catch-all is not a
// table route; TestDefaultRoute checks it.
func TestRoutesMatchRouter(t *testing.T) {
	tpl := loadTemplate(t)
	router := map[string]string{} // "GET /api/…" → function
	streamer := map[string]bool{} // paths, whatever the method
	for _, r := range httpapi.Routes() {
		key := r.Method + " " + r.Path
		if r.Function == httpapi.FunctionStreamer {
			streamer[r.Path] = true
			continue
		}
		router[key] = r.Function
	}
	template := map[string]string{}
	for _, f := range tpl.Functions {
		for _, r := range f.Routes {
			if r.Path == sam.DefaultRoute {
				continue
			}
			key := r.Method + " " + r.Path
			if streamer[r.Path] {
				t.Errorf("template routes %s to Lambda, but %s is a streamer route (long-lived connection)", key, r.Path)
			}
			if prev, dup := template[key]; dup {
				t.Errorf("%s is routed to two functions: %s and %s", key, prev, f.Name)
			}
			template[key] = f.Name
		}
	}
	for _, key := range slices.Sorted(maps.Keys(template)) {
		fn := template[key]
		switch {
		case router[key] == "":
			t.Errorf("template routes %s to %s, but the Go router has no handler for it", key, fn)
		case router[key] != fn:
			t.Errorf("template routes %s to %s, but the Go router serves it from %s", key, fn, router[key])
		}
	}
	for _, key := range slices.Sorted(maps.Keys(router)) {
		if template[key] == "" {
			t.Errorf("the Go router serves %s (%s), but template.yaml has no route for it", key, router[key])
		}
	}
	if len(streamer) == 0 {
		t.Error("httpapi.Routes() lists no streamer route: the exception above is untested")
	}
}

// TestRoutesAnswer drives the real handlers, through the Lambda proxy main
// uses, with a request to every template route: each must reach a handler
// (anything but the router's "no such route" 404 or a 405).
func TestRoutesAnswer(t *testing.T) {
	tpl := loadTemplate(t)
	st := newStack(t)
	instanceID := metric.InstanceUUID(st.serverID, "nginx")
	for _, f := range tpl.Functions {
		h := st.handlers[f.Name]
		if h == nil && len(f.Routes) == 0 && scheduled(f) {
			continue // no HTTP handler: TestEvaluatorBootstrap runs it
		}
		if h == nil {
			t.Errorf("%s: no Go handler for function %q", f.LogicalID, f.Name)
			continue
		}
		proxy := lambdahttp.Proxy(h)
		for _, r := range f.Routes {
			if r.Path == sam.DefaultRoute {
				continue // TestGatewayRouting sends it what it gets
			}
			t.Run(f.LogicalID+"/"+r.Event, func(t *testing.T) {
				path := strings.ReplaceAll(r.Path, "{id}", st.serverID)
				if strings.HasPrefix(r.Path, "/api/instances/") {
					path = strings.ReplaceAll(r.Path, "{id}", instanceID)
				}
				resp := invoke(t, proxy, routeEvent(r, path))
				if resp.StatusCode == http.StatusMethodNotAllowed || (resp.StatusCode == http.StatusNotFound && strings.Contains(resp.Body, "no such route")) {
					t.Fatalf("%s %s → %d %s: the handler does not serve the template's route", r.Method, path, resp.StatusCode, resp.Body)
				}
				if ct := resp.Headers["Content-Type"]; ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var body map[string]any
				if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
					t.Errorf("body is not a JSON object: %q", resp.Body)
				}
			})
		}
	}
	// The control: a path no function serves gets the router's 404, so the
	// check above would catch a route the handlers do not know.
	resp := invoke(t, lambdahttp.Proxy(st.handlers[httpapi.FunctionQuery]), routeEvent(sam.Route{Method: "GET"}, "/api/nope"))
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(resp.Body, "no such route") {
		t.Errorf("unknown route → %d %s, want the router's 404", resp.StatusCode, resp.Body)
	}
}

// routeEvent is the v2 event API Gateway sends for r with a concrete path.
func routeEvent(r sam.Route, path string) events.APIGatewayV2HTTPRequest {
	ev := events.APIGatewayV2HTTPRequest{
		Version:  "2.0",
		RouteKey: r.Method + " " + r.Path,
		RawPath:  path,
		Headers:  map[string]string{"user-agent": "sam-route-test", "host": "abc123.execute-api.eu-west-1.amazonaws.com"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			DomainName: "abc123.execute-api.eu-west-1.amazonaws.com",
			Stage:      "$default",
			RequestID:  "route-test",
			HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.10"},
		},
	}
	if r.Method == http.MethodPost {
		ev.Body = "{}"
		ev.Headers["content-type"] = "application/json"
	}
	return ev
}

type proxyFunc = func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

func invoke(tb testing.TB, proxy proxyFunc, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	tb.Helper()
	resp, err := proxy(context.Background(), ev)
	if err != nil {
		tb.Fatalf("proxy: %v", err)
	}
	return resp
}

// TestMakefileBuildTargets: `sam build` runs build-<LogicalId> for each
// function; each must exist and compile the function's package for
// linux/arm64 exactly as the issue specifies, and every build-*Function
// target must belong to a template function.
func TestMakefileBuildTargets(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	tpl := loadTemplate(t)
	for _, f := range tpl.Functions {
		t.Run(f.LogicalID, func(t *testing.T) {
			cmd := exec.Command("make", "--no-print-directory", "-n", "-C", repoRoot, "build-"+f.LogicalID, "ARTIFACTS_DIR=/artifacts/"+f.Name)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n build-%s: %v\n%s (SAM's BuildMethod: makefile needs this target)", f.LogicalID, err, out)
			}
			recipe := string(out)
			for _, want := range []string{
				"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", " build ", "-tags lambda.norpc", "-trimpath",
				`-ldflags "-s -w"`, "-o /artifacts/" + f.Name + "/bootstrap", "./functions/" + f.Name,
			} {
				if !strings.Contains(recipe, want) {
					t.Errorf("build-%s does not contain %q:\n%s", f.LogicalID, want, recipe)
				}
			}
		})
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, f := range tpl.Functions {
		known[f.LogicalID] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^build-([A-Za-z0-9]+Function):`).FindAllStringSubmatch(string(mk), -1) {
		if !known[m[1]] {
			t.Errorf("Makefile has build-%s but template.yaml has no %s", m[1], m[1])
		}
	}
}

// TestEnvLocal: `sam local --env-vars` only overrides variables the template
// declares, for functions it has; a typo would silently do nothing.
func TestEnvLocal(t *testing.T) {
	tpl := loadTemplate(t)
	b, err := os.ReadFile("env.local.json")
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("env.local.json: %v", err)
	}
	byID := map[string]sam.Function{}
	for _, f := range tpl.Functions {
		byID[f.LogicalID] = f
		if env[f.LogicalID] == nil {
			t.Errorf("env.local.json has no entry for %s", f.LogicalID)
		}
	}
	for id, vars := range env {
		f, ok := byID[id]
		if !ok {
			t.Errorf("env.local.json: %s is not a function of template.yaml", id)
			continue
		}
		for k := range vars {
			if _, ok := f.Env()[k]; !ok {
				t.Errorf("env.local.json: %s.%s is not declared in the template's Environment, so sam local ignores it", id, k)
			}
			if secretish.MatchString(k) && k != "VITALS_REDIS_URL" {
				t.Errorf("env.local.json: %s.%s: secrets are passed by make sam-local, not kept in the repository", id, k)
			}
		}
		if u := vars["VITALS_REDIS_URL"]; !strings.Contains(u, "host.docker.internal") {
			t.Errorf("env.local.json: %s.VITALS_REDIS_URL = %q, want a host.docker.internal URL (the function runs in Docker)", id, u)
		}
	}
}

// TestTemplateDefaultsLoad: each function's environment, with every
// parameter at its default, is a configuration the function starts with
// (tiers, periods and sample age agree), and every default matches its
// parameter's AllowedPattern, so a stack deployed with defaults comes up.
func TestTemplateDefaultsLoad(t *testing.T) {
	tpl := loadTemplate(t)
	params := sam.Map(tpl.Doc["Parameters"])
	for name, p := range params {
		pat, _ := sam.Map(p)["AllowedPattern"].(string)
		d, has := sam.Map(p)["Default"]
		if pat == "" || !has {
			continue
		}
		if !regexp.MustCompile(pat).MatchString(fmt.Sprint(d)) {
			t.Errorf("parameter %s: default %q does not match its AllowedPattern %s", name, d, pat)
		}
	}
	// A longer tier and the period it serves pass the patterns too.
	for name, v := range map[string]string{"Tiers": "10s:1h,1m:6h,5m:24h,30m:7d,6h:90d", "Periods": "1h,6h,24h,7d,90d", "MaxSampleAge": "30d"} {
		if pat, _ := sam.Map(params[name])["AllowedPattern"].(string); !regexp.MustCompile(pat).MatchString(v) {
			t.Errorf("parameter %s: %q does not match its AllowedPattern %s", name, v, pat)
		}
	}
	for _, f := range tpl.Functions {
		t.Run(f.LogicalID, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range f.Env() {
				switch {
				case k == "VITALS_REDIS_URL":
					// No default: a closed local port, so Open only checks
					// the configuration and starts lazily.
					env[k] = "redis://127.0.0.1:1"
				case sam.IntrinsicName(v) == "Ref":
					if d, ok := sam.Map(params[fmt.Sprint(sam.Map(v)["Ref"])])["Default"]; ok {
						env[k] = fmt.Sprint(d)
					}
				case sam.IntrinsicName(v) == "":
					env[k] = fmt.Sprint(v)
				}
			}
			c, err := config.Load(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("defaults %v: %v", env, err)
			}
			sc, err := c.StoreConfig()
			if err != nil {
				t.Fatal(err)
			}
			sc.Lazy = true
			s, err := redisstore.Open(context.Background(), sc, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatalf("store with the default tiers and periods: %v", err)
			}
			_ = s.Close()
		})
	}
}

func TestParseShortForms(t *testing.T) {
	tpl, err := sam.Parse([]byte(`
Resources:
  XFunction:
    Type: AWS::Serverless::Function
    Properties:
      A: !GetAtt Log.Arn
      B: !If [C, !Ref P, !Sub "x-${P}"]
      N: 3
      T: true
      Events:
        E:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: get, Path: "/x/{id}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	f := tpl.Functions[0]
	if f.Name != "x" || f.Routes[0].Method != "GET" || f.Routes[0].APIID != "Api" {
		t.Errorf("function = %+v", f)
	}
	got, _ := json.Marshal(map[string]any{"A": f.Properties["A"], "B": f.Properties["B"], "N": f.Properties["N"], "T": f.Properties["T"]})
	want := `{"A":{"Fn::GetAtt":["Log","Arn"]},"B":{"Fn::If":["C",{"Ref":"P"},{"Fn::Sub":"x-${P}"}]},"N":3,"T":true}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, bad := range []string{"a: !Nope x", "a: 1\na: 2", "Resources:\n  Foo:\n    Type: AWS::Serverless::Function"} {
		if _, err := sam.Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", bad)
		}
	}
}

// scheduled reports whether f runs on an EventBridge schedule (the alert
// evaluator) rather than behind the HTTP API.
func scheduled(f sam.Function) bool {
	for _, ev := range sam.Map(f.Properties["Events"]) {
		if sam.Map(ev)["Type"] == "Schedule" {
			return true
		}
	}
	return false
}
