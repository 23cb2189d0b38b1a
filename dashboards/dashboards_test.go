package dashboards

import (
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/applications"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/gateway"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// dashboard is the part of Grafana's dashboard model the conventions bind.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int         `json:"id"`
	Type        string      `json:"type"`
	Title       string      `json:"title"`
	Description string      `json:"description"`
	Datasource  *datasource `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		RefID      string      `json:"refId"`
		Expr       string      `json:"expr"`
		Datasource *datasource `json:"datasource"`
	} `json:"targets"`
}

// loadDashboards reads every shipped dashboard.
func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	files, err := fs.Glob(FS, "grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	out := map[string]dashboard{}
	for _, f := range files {
		raw, err := FS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = d
	}
	return out
}

// Queries returns every PromQL expression of a dashboard's panels.
func (d dashboard) queries() []string {
	var out []string
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			out = append(out, t.Expr)
		}
	}
	return out
}

// queryVariables are the dashboard's query variables (job, instance, ...).
func (d dashboard) queryVariables() []string {
	var out []string
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			out = append(out, v.Name)
		}
	}
	return out
}

var fixedRange = regexp.MustCompile(`\[\d+[smhdwy]\]`)

func TestDashboardConventions(t *testing.T) {
	wantUIDs := map[string]string{
		"grafana/liveswitch-fleet.json":        "liveswitch-fleet",
		"grafana/liveswitch-exporter.json":     "liveswitch-exporter",
		"grafana/liveswitch-applications.json": "liveswitch-applications",
	}
	for file, d := range loadDashboards(t) {
		t.Run(file, func(t *testing.T) {
			if d.UID != wantUIDs[file] {
				t.Errorf("uid %q, want the stable %q", d.UID, wantUIDs[file])
			}
			vars := map[string]string{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v.Type
				if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
					t.Errorf("variable %s: datasource %+v, want ${datasource}", v.Name, v.Datasource)
				}
			}
			if vars["datasource"] != "datasource" {
				t.Error("no datasource variable")
			}
			for _, want := range []string{"job", "instance"} {
				if vars[want] != "query" {
					t.Errorf("no %s variable", want)
				}
			}
			if file == "grafana/liveswitch-fleet.json" && (vars["deployment_id"] != "query" || vars["region"] != "query") {
				t.Error("the fleet dashboard lacks the deployment_id or region variable")
			}
			ids := map[int]bool{}
			for _, p := range d.Panels {
				checkPanel(t, p, d.queryVariables())
				if ids[p.ID] {
					t.Errorf("panel id %d used twice", p.ID)
				}
				ids[p.ID] = true
			}
		})
	}
}

func checkPanel(t *testing.T, p panel, vars []string) {
	t.Helper()
	if p.Type == "row" { // a heading: no query of its own
		if p.Title == "" || len(p.Targets) > 0 {
			t.Errorf("row %d: a row has a title and no query", p.ID)
		}
		return
	}
	if p.Title == "" || p.Description == "" || p.FieldConfig.Defaults.Unit == "" {
		t.Errorf("panel %d %q: title, description and unit are all required", p.ID, p.Title)
	}
	if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
		t.Errorf("panel %q: datasource %+v, want ${datasource}", p.Title, p.Datasource)
	}
	if len(p.Targets) == 0 {
		t.Errorf("panel %q has no query", p.Title)
	}
	for _, tg := range p.Targets {
		if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q query %s: hard-coded datasource %+v", p.Title, tg.RefID, tg.Datasource)
		}
		for _, v := range vars {
			if !strings.Contains(tg.Expr, "$"+v) {
				t.Errorf("panel %q query %s does not use $%s: %s", p.Title, tg.RefID, v, tg.Expr)
			}
		}
		if (strings.Contains(tg.Expr, "rate(") || strings.Contains(tg.Expr, "increase(")) && fixedRange.MatchString(tg.Expr) {
			t.Errorf("panel %q query %s: rate/increase must use $__rate_interval: %s", p.Title, tg.RefID, tg.Expr)
		}
	}
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T, file string) ruleFile {
	t.Helper()
	raw, err := FS.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return rf
}

// exporterMetrics returns the names of every metric family the exporter
// serves once it has seen a simulated fleet, and polled its simulated
// Gateway's REST API.
func exporterMetrics(t *testing.T) map[string]bool {
	t.Helper()
	f := fleet.New()
	w := writer.New(f, nil, writer.Options{Decode: event.DefaultDecodeOptions})
	defer w.Close()
	gen := simulate.NewGenerator(simulate.DefaultFleetConfig, nil)
	for range 300 {
		if _, err := w.Ingest(context.Background(), gen.Next().Body); err != nil {
			t.Fatal(err)
		}
	}
	apps := simulatedApplications(t)
	reg := exporter.NewRegistry(collector.NewCollector(f, collector.WithGatewayAPI(nil)).CountAlso(apps.Outcomes()), apps,
		exporter.StartedEmpty(false))
	pollOnce(t, gen, w, reg)
	if _, err := exporter.NewHandlers(exporter.Config{TelemetryPath: "/metrics", Ingester: w, Forgetter: w, Fleet: f,
		Ready: func() bool { return true }, Registry: reg, Logger: slog.New(slog.DiscardHandler), Applications: apps}); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range families {
		names[mf.GetName()] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM { // queried through its series
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+suffix] = true
			}
		}
	}
	return names
}

// simulatedApplications counts the application webhooks of simulated
// applications, so that their series exist.
func simulatedApplications(t *testing.T) *applications.Tracker {
	t.Helper()
	apps := applications.New(applications.Options{Decode: event.DefaultDecodeOptions, MaxApplications: 10, MaxPending: 1000})
	gen := simulate.NewAppGenerator(simulate.AppConfig{Seed: 1, IDs: []string{"app-1", "app-2"}}, nil)
	for range 8000 { // enough for channels to end and connections to fail of every cause
		if _, err := apps.Ingest(context.Background(), gen.Next().Body, nil); err != nil {
			t.Fatal(err)
		}
	}
	return apps
}

// pollOnce has a real poller read gen's simulated Gateway once, on a
// loopback listener, so that the API's series exist.
func pollOnce(t *testing.T, gen *simulate.Generator, w *writer.Writer, reg prometheus.Registerer) {
	t.Helper()
	api := httptest.NewServer(simulate.NewGateway(gen, simulate.GatewayConfig{Load: 0.5}))
	defer api.Close()
	p, err := gateway.New(gateway.Config{URL: api.URL + "/admin/api", Interval: time.Second, Timeout: 5 * time.Second}, w, reg)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Observe(context.Background(), obs); err != nil {
		t.Fatal(err)
	}
}

// prometheusMetrics are series Prometheus itself makes, not the exporter.
var prometheusMetrics = []string{"ALERTS", "ALERTS_FOR_STATE", "up", "scrape_duration_seconds"}

// TestEveryMetricExists: a metric renamed in the exporter breaks this test,
// not a dashboard or an alert in production.
func TestEveryMetricExists(t *testing.T) {
	known := exporterMetrics(t)
	for _, m := range prometheusMetrics {
		known[m] = true
	}
	recorded := map[string]bool{}
	check := func(where, expr string) {
		for _, m := range metricNames(expr) {
			if !known[m] && !recorded[m] {
				t.Errorf("%s: metric %s is not exported (query: %s)", where, m, expr)
			}
		}
	}
	for _, rule := range loadRules(t, "prometheus/rules.yml").Groups[0].Rules {
		check("recording rule "+rule.Record, rule.Expr)
		recorded[rule.Record] = true
	}
	for _, g := range loadRules(t, "prometheus/alerts.yml").Groups {
		for _, rule := range g.Rules {
			check("alert "+rule.Alert, rule.Expr)
		}
	}
	for file, d := range loadDashboards(t) {
		for _, q := range d.queries() {
			check(file, q)
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				check(file+" variable "+v.Name, v.Definition)
			}
		}
	}
}

var (
	stringLit   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matchers    = regexp.MustCompile(`\{[^}]*\}`)
	ranges      = regexp.MustCompile(`\[[^\]]*\]`)
	grouping    = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	variables   = regexp.MustCompile(`\$\w+`)
	labelValues = regexp.MustCompile(`label_values\(([^,)]*),[^)]*\)`)
	identifiers = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	keywords    = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
		"group_left", "group_right", "inf", "nan"}
)

// metricNames returns the metric names a PromQL expression (or a Grafana
// label_values query) selects: the identifiers left once strings, matchers,
// ranges, grouping clauses and variables are removed, that are neither
// keywords nor function calls.
func metricNames(expr string) []string {
	s := stringLit.ReplaceAllString(expr, `""`)
	s = matchers.ReplaceAllString(s, " ")
	s = labelValues.ReplaceAllString(s, "$1")
	s = ranges.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	s = variables.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range identifiers.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(keywords, strings.ToLower(name)) {
			continue
		}
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // the exponent or unit of a number
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (origin) (max without (instance) (liveswitch_server_up{job=~"$job"}))`, []string{"liveswitch_server_up"}},
		{`rate(a_total{x="y{z}"}[$__rate_interval]) / on (id) group_left (machine_name) b_info * 1e3`, []string{"a_total", "b_info"}},
		{`max_over_time(sum by (r) (x)[1h:1m]) > 0 and on (r) y unless z`, []string{"x", "y", "z"}},
		{`label_values(liveswitch_servers{job=~"$job"}, region)`, []string{"liveswitch_servers"}},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.expr, got, tc.want)
		}
	}
}

// requireTool is testenv.RequireTool for Prometheus' binaries.
func requireTool(t testing.TB, tool string) string {
	t.Helper()
	return testenv.RequireTool(t, tool, "prometheus")
}

// TestPromtool runs Prometheus' own checks and the rule unit tests of
// prometheus/tests/ over the shipped files.
func TestPromtool(t *testing.T) {
	promtool := requireTool(t, "promtool")
	tests := ruleTestFiles(t)
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml", "prometheus/rules.yml"},
		{"check", "config", "prometheus/prometheus.yml"},
		append([]string{"test", "rules"}, tests...),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestEveryAlertIsDocumented: each alert has the labels and annotations the
// runbook and routing rely on, and its runbook section exists.
func TestEveryAlertIsDocumented(t *testing.T) {
	runbook, err := os.ReadFile("RUNBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	cases := ruleTestCases(t)
	for _, g := range loadRules(t, "prometheus/alerts.yml").Groups {
		for _, r := range g.Rules {
			anchor := strings.ToLower(r.Alert)
			switch {
			case r.Labels["severity"] == "":
				t.Errorf("%s: no severity", r.Alert)
			case r.Annotations["summary"] == "" || strings.Contains(r.Annotations["summary"], "{{"):
				t.Errorf("%s: summary must be static", r.Alert)
			case !strings.Contains(r.Annotations["description"], "{{ $labels."):
				t.Errorf("%s: description is not templated", r.Alert)
			case !strings.HasSuffix(r.Annotations["runbook_url"], "RUNBOOK.md#"+anchor):
				t.Errorf("%s: runbook_url %q", r.Alert, r.Annotations["runbook_url"])
			case !strings.Contains(string(runbook), "## "+r.Alert+"\n"):
				t.Errorf("%s: no section in RUNBOOK.md", r.Alert)
			case cases[r.Alert].firing == 0:
				t.Errorf("%s: no rule test expects it to fire (an alert_rule_test with exp_alerts)", r.Alert)
			case cases[r.Alert].silent == 0:
				t.Errorf("%s: no rule test expects it not to fire yet or not to page (an alert_rule_test with exp_alerts: [])", r.Alert)
			}
			delete(cases, r.Alert)
		}
	}
	for alert := range cases {
		t.Errorf("the rule tests check %s, which alerts.yml does not define", alert)
	}
}

// ruleTestFiles lists the promtool rule test files; there must be some.
func ruleTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("prometheus/tests/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests: %v", err)
	}
	return files
}

// alertCases counts the alert_rule_tests of one alert by what they expect.
type alertCases struct {
	firing, silent int
	labels         map[string]bool // of the alerts expected to fire
	undescribed    int             // firing alerts whose rendered description is not stated
}

// ruleTestCases reads every promtool rule test file and counts, per
// alertname, the evaluations that expect alerts (firing) and those that
// expect none (pending, or a case that must not page).
func ruleTestCases(t *testing.T) map[string]alertCases {
	t.Helper()
	out := map[string]alertCases{}
	for _, file := range ruleTestFiles(t) {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []struct {
						ExpLabels      map[string]string `yaml:"exp_labels"`
						ExpAnnotations map[string]string `yaml:"exp_annotations"`
					} `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for _, test := range doc.Tests {
			for _, art := range test.AlertRuleTest {
				c := out[art.Alertname]
				if len(art.ExpAlerts) > 0 {
					c.firing++
				} else {
					c.silent++
				}
				for _, a := range art.ExpAlerts {
					if c.labels == nil {
						c.labels = map[string]bool{}
					}
					for k := range a.ExpLabels {
						c.labels[k] = true
					}
					if a.ExpAnnotations["description"] == "" {
						c.undescribed++
					}
				}
				out[art.Alertname] = c
			}
		}
	}
	return out
}
