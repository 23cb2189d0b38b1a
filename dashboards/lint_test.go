package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// The checks of mixtool's `lint` and of Grafana's dashboard-linter, as Go
// tests, since neither builds here: the conventions reviewers of monitoring
// mixins hold alerts and dashboards to.

var (
	camelCase    = regexp.MustCompile(`^([A-Z]+[a-z0-9]+)+$`)
	goTemplate   = regexp.MustCompile(`\{\{.+\}\}`)
	sentence     = regexp.MustCompile(`^[A-Z].+\.$`)
	templatedVar = regexp.MustCompile(`\$labels\.(\w+)`)
)

// TestAlertLint is mixtool lint's alert guidelines: a CamelCase name; a
// severity of critical, warning or info; a templated description; a static
// summary that is a sentence. And, so that a page never shows an empty
// field: every label a description or summary templates is one the firing
// rule tests show the alert to carry (or is optional, inside `with`).
func TestAlertLint(t *testing.T) {
	cases := ruleTestCases(t)
	for _, g := range loadRules(t, "prometheus/alerts.yml").Groups {
		for _, r := range g.Rules {
			name := r.Alert
			if !camelCase.MatchString(name) {
				t.Errorf("[alert-name-camelcase] %s is not in CamelCase", name)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("[alert-severity-rule] %s: severity %q, want critical, warning or info", name, s)
			}
			desc, ok := r.Annotations["description"]
			if !ok || !goTemplate.MatchString(desc) {
				t.Errorf("[alert-description-templating] %s: description %q is not templated", name, desc)
			}
			summary, ok := r.Annotations["summary"]
			if !ok || goTemplate.MatchString(summary) || !sentence.MatchString(summary) {
				t.Errorf("[alert-summary-style] %s: summary %q must be a static sentence", name, summary)
			}
			if cases[name].undescribed > 0 {
				t.Errorf("%s: %d firing rule test cases do not state the rendered description (exp_annotations)", name, cases[name].undescribed)
			}
			for _, m := range templatedVar.FindAllStringSubmatch(withoutOptional(desc), -1) {
				if !cases[name].labels[m[1]] {
					t.Errorf("%s: the description templates $labels.%s, which no firing rule test shows on the alert (exp_labels)", name, m[1])
				}
			}
		}
	}
}

// optional is a `{{ with $labels.x }}...{{ end }}` block: text shown only
// when the label exists (namespace, under kube-prometheus).
var optional = regexp.MustCompile(`\{\{ with \$labels\.\w+ \}\}.*?\{\{ end \}\}`)

func withoutOptional(s string) string { return optional.ReplaceAllString(s, "") }

// lintDashboard is the part of a Grafana dashboard dashboard-linter reads.
type lintDashboard struct {
	UID        string   `json:"uid"`
	Title      string   `json:"title"`
	Tags       []string `json:"tags"`
	Editable   *bool    `json:"editable"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Label      string          `json:"label"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Refresh    int             `json:"refresh"`
			Multi      bool            `json:"multi"`
			IncludeAll bool            `json:"includeAll"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

var (
	rangeCall   = regexp.MustCompile(`\b(rate|irate|increase|delta|idelta|deriv|[a-z]+_over_time)\s*\(`)
	rangeVector = regexp.MustCompile(`\[([^\]:]*)\]`)
	counter     = regexp.MustCompile(`([A-Za-z_:][A-Za-z0-9_:]*_total)\b(\{[^}]*\})?(\[[^\]]*\])?`)
)

// TestDashboardLint is dashboard-linter's rules (and mixtool's uid and title
// checks): a uid, a title and tags; editable false; a "datasource" variable
// labelled "Data source" for Prometheus; job and instance query variables
// on $datasource, multi-valued with All, reloaded on time range change;
// every rate over $__rate_interval; every counter (_total) read through
// rate, irate or increase.
func TestDashboardLint(t *testing.T) {
	files, err := fs.Glob(FS, "grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	for _, file := range files {
		raw, err := FS.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var d lintDashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		t.Run(file, func(t *testing.T) {
			if d.UID == "" || d.Title == "" || len(d.Tags) == 0 {
				t.Errorf("uid %q, title %q, tags %v: all are required", d.UID, d.Title, d.Tags)
			}
			if d.Editable == nil || *d.Editable {
				t.Error("[uneditable-dashboard] editable must be false: changes belong in the shipped file")
			}
			vars := map[string]int{}
			for i, v := range d.Templating.List {
				vars[v.Name] = i
			}
			ds, ok := vars["datasource"]
			if !ok || d.Templating.List[ds].Type != "datasource" || string(d.Templating.List[ds].Query) != `"prometheus"` ||
				d.Templating.List[ds].Label != "Data source" {
				t.Error(`[template-datasource-rule] a variable "datasource" of type datasource, query prometheus, label "Data source"`)
			}
			for _, name := range []string{"job", "instance"} {
				i, ok := vars[name]
				if !ok {
					t.Errorf("[template-%s-rule] no %s variable", name, name)
					continue
				}
				v := d.Templating.List[i]
				if v.Type != "query" || v.Datasource == nil || v.Datasource.UID != "${datasource}" || !v.Multi || !v.IncludeAll {
					t.Errorf("[template-%s-rule] %s: a multi-valued query variable with All, on ${datasource}: %+v", name, name, v)
				}
			}
			for _, v := range d.Templating.List {
				if v.Type == "query" && v.Refresh != 2 {
					t.Errorf("[template-on-time-change-reload-rule] %s: refresh %d, want 2 (on time range change)", v.Name, v.Refresh)
				}
			}
			for _, p := range loadDashboards(t)[file].Panels {
				for _, tg := range p.Targets {
					for _, problem := range lintExpr(tg.Expr) {
						t.Errorf("panel %q query %s: %s: %s", p.Title, tg.RefID, problem, tg.Expr)
					}
				}
			}
		})
	}
}

// lintExpr returns what breaks the rate-interval and counter rules in one
// dashboard query.
func lintExpr(expr string) []string {
	var problems []string
	for _, loc := range rangeCall.FindAllStringIndex(expr, -1) {
		call := expr[loc[0] : loc[1]-1]
		m := rangeVector.FindStringSubmatch(expr[loc[1]:])
		if m != nil && m[1] != "$__rate_interval" && !strings.HasSuffix(call, "_over_time") {
			problems = append(problems, fmt.Sprintf("[target-rate-interval-rule] %s over [%s], want [$__rate_interval]", call, m[1]))
		}
	}
	for _, loc := range counter.FindAllStringSubmatchIndex(expr, -1) {
		before := strings.TrimRight(expr[:loc[0]], " \t\n")
		if loc[6] < 0 || !(strings.HasSuffix(before, "rate(") || strings.HasSuffix(before, "increase(")) {
			problems = append(problems, fmt.Sprintf("[target-counter-agg-rule] counter %s not read through rate, irate or increase", expr[loc[2]:loc[3]]))
		}
	}
	return problems
}

// TestLintRulesCatch: the query rules fail queries that break them, and
// pass one that keeps them.
func TestLintRulesCatch(t *testing.T) {
	for _, bad := range []string{
		`sum(rate(liveswitch_server_events_total{job=~"$job"}[5m]))`,
		`sum(liveswitch_server_events_total{job=~"$job"})`,
		`sum(increase(liveswitch_exporter_webhook_requests_total[1h]))`,
		`sum(delta(liveswitch_cores[10m]))`,
	} {
		if len(lintExpr(bad)) == 0 {
			t.Errorf("the lint passes %s", bad)
		}
	}
	good := `sum(rate(liveswitch_server_events_total{job=~"$job"}[$__rate_interval])) / max_over_time(liveswitch_cores[1h])`
	if p := lintExpr(good); len(p) > 0 {
		t.Errorf("the lint fails %s: %v", good, p)
	}
}

// TestDashboardQueriesParse has promtool parse every dashboard query, its
// variables replaced by values, as a recording rule would be.
func TestDashboardQueriesParse(t *testing.T) {
	promtool := requireTool(t, "promtool")
	vars := strings.NewReplacer("$__rate_interval", "1m", "${datasource}", "x", "$job", ".*", "$instance", ".*",
		"$deployment_id", ".*", "$region", ".*", "$application_id", ".*")
	var rules []map[string]string
	for file, d := range loadDashboards(t) {
		for i, q := range d.queries() {
			rules = append(rules, map[string]string{"record": fmt.Sprintf("dashboard:%s:q%d", strings.ReplaceAll(strings.TrimSuffix(filepath.Base(file), ".json"), "-", "_"), i),
				"expr": vars.Replace(q)})
		}
	}
	raw, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Errorf("[target-promql-rule] promtool check rules: %v\n%s", err, out)
	}
}

// renderMixin evaluates expr with dashboards/mixin.libsonnet bound to m, by
// real jsonnet.
func renderMixin(t *testing.T, expr string) map[string]any {
	t.Helper()
	jsonnet := testenv.RequireGoTool(t, "jsonnet", "github.com/google/go-jsonnet/cmd/jsonnet@v0.22.0")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, jsonnet, "-e", "local m = import 'mixin.libsonnet'; "+expr).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("jsonnet: %v\n%s", err, stderr)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// asJSON reads a YAML or JSON file of this package as JSON would hold it.
func asJSON(t *testing.T, file string) any {
	t.Helper()
	raw, err := FS.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

const mixinRender = `{alerts: m.prometheusAlerts, rules: m.prometheusRules, dashboards: m.grafanaDashboards}`

// TestMixin renders the mixin with its default _config and compares it with
// the shipped files: they are one source of truth.
func TestMixin(t *testing.T) {
	got := renderMixin(t, mixinRender)
	if !reflect.DeepEqual(got["alerts"], asJSON(t, "prometheus/alerts.yml")) {
		t.Error("the mixin's prometheusAlerts differ from prometheus/alerts.yml")
	}
	if !reflect.DeepEqual(got["rules"], asJSON(t, "prometheus/rules.yml")) {
		t.Error("the mixin's prometheusRules differ from prometheus/rules.yml")
	}
	files, _ := fs.Glob(FS, "grafana/*.json")
	dashboards, _ := got["dashboards"].(map[string]any)
	var names []string
	for name := range dashboards {
		names = append(names, name)
	}
	slices.Sort(names)
	var want []string
	for _, f := range files {
		want = append(want, filepath.Base(f))
		if !reflect.DeepEqual(dashboards[filepath.Base(f)], asJSON(t, f)) {
			t.Errorf("the mixin's %s differs from %s", filepath.Base(f), f)
		}
	}
	if !slices.Equal(names, want) {
		t.Errorf("the mixin's grafanaDashboards are %v; grafana/ has %v (list every file in mixin.libsonnet)", names, want)
	}
}

// TestMixinConfig: _config changes what it says, and only that.
func TestMixinConfig(t *testing.T) {
	def := renderMixin(t, mixinRender)
	got := renderMixin(t, `local c = m { _config+:: { jobSelector: 'job="ls-prod"', runbookURLBase: 'https://wiki.example.com/liveswitch#',
		dashboardTags: ['liveswitch', 'prod'] } }; `+strings.ReplaceAll(mixinRender, "m.", "c."))
	groups := func(v map[string]any) []any { return v["alerts"].(map[string]any)["groups"].([]any) }
	changedExprs := 0
	for gi, g := range groups(got) {
		for ri, r := range g.(map[string]any)["rules"].([]any) {
			rule, defRule := r.(map[string]any), groups(def)[gi].(map[string]any)["rules"].([]any)[ri].(map[string]any)
			name := rule["alert"].(string)
			if url := rule["annotations"].(map[string]any)["runbook_url"]; url != "https://wiki.example.com/liveswitch#"+strings.ToLower(name) {
				t.Errorf("%s: runbook_url %v", name, url)
			}
			expr, defExpr := rule["expr"].(string), defRule["expr"].(string)
			if strings.Contains(expr, `job="liveswitch"`) {
				t.Errorf("%s still selects the default job: %s", name, expr)
			}
			if expr != defExpr {
				changedExprs++
				if strings.ReplaceAll(expr, `job="ls-prod"`, `job="liveswitch"`) != defExpr {
					t.Errorf("%s: the job selector changed more than the selector: %s", name, expr)
				}
			}
		}
	}
	if changedExprs < 2 {
		t.Errorf("jobSelector changed %d alerts, want at least LiveSwitchExporterDown and LiveSwitchExporterReplicaDown", changedExprs)
	}
	for name, d := range got["dashboards"].(map[string]any) {
		if tags := fmt.Sprint(d.(map[string]any)["tags"]); tags != "[liveswitch prod]" {
			t.Errorf("%s: tags %s", name, tags)
		}
	}
	if !reflect.DeepEqual(got["rules"], def["rules"]) {
		t.Error("_config changed the recording rules")
	}
}
