package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/dashboards"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// TestBundledRulesAndDashboardsAgainstPrometheus feeds the exporter a
// simulated fleet with one media server that never registers, has a real
// Prometheus scrape it with the bundled rules, and checks that the alert
// fires and that every dashboard query returns data.
//
// The test's copy of alerts.yml shortens the `for` of
// LiveSwitchMediaServerUnregistered from 5m to 5s, so that it fires within
// the test; the rule unit tests (promtool test rules) check the real 5m.
func TestBundledRulesAndDashboardsAgainstPrometheus(t *testing.T) {
	promBin := requireTool(t, "prometheus")
	p := startExporter(t)
	feedSimulated(t, p, 300)
	feedSimulatedApplications(t, p, 1000)
	stuck := fmt.Sprintf(`{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.started",`+
		`"mediaserver":{"id":"stuck-1","machineName":"ms-stuck","region":"us-east","deploymentId":"deployment-1","coreCount":8}}`,
		time.Now().UnixMilli())
	if code := post(t, p.url("/webhook"), []byte(stuck)); code != http.StatusNoContent {
		t.Fatalf("stuck media server: %d", code)
	}
	rules := writeRules(t)
	prom := startPrometheus(t, promBin, p.addr, rules)

	testenv.WaitFor(t, 90*time.Second, "LiveSwitchMediaServerUnregistered to fire for ms-stuck", func() bool {
		return alertFiring(prom, "LiveSwitchMediaServerUnregistered", map[string]string{
			"id": "stuck-1", "machine_name": "ms-stuck", "deployment_id": "deployment-1", "region": "us-east", "severity": "warning",
		})
	})
	vars := strings.NewReplacer("$__rate_interval", "20s", "$job", ".*", "$instance", ".*", "$deployment_id", ".*", "$region", ".*",
		"$application_id", ".*")
	files, err := fs.Glob(dashboards.FS, "grafana/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards to check (grafana/*.json): %d files, %v", len(files), err)
	}
	for _, file := range files {
		raw, err := dashboards.FS.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		for _, panel := range d.Panels {
			for _, target := range panel.Targets {
				q := vars.Replace(target.Expr)
				if n := promResultCount(prom, q); n == 0 {
					t.Errorf("%s, panel %q: no data for %s", file, panel.Title, q)
				}
			}
		}
	}
}

// writeRules copies the bundled rule files into a temporary directory, with
// the 5m `for` of LiveSwitchMediaServerUnregistered shortened to 5s.
func writeRules(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	alerts, err := dashboards.FS.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	section := regexp.MustCompile(`(?s)(alert: LiveSwitchMediaServerUnregistered\n.*?)for: 5m`)
	if !section.Match(alerts) {
		t.Fatal("alerts.yml: LiveSwitchMediaServerUnregistered has no `for: 5m`")
	}
	alerts = section.ReplaceAll(alerts, []byte("${1}for: 5s"))
	recording, err := dashboards.FS.ReadFile("prometheus/rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for name, content := range map[string][]byte{"alerts.yml": alerts, "rules.yml": recording} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

func alertFiring(prom, name string, labels map[string]string) bool {
	code, body := get(prom + "/api/v1/alerts")
	if code != http.StatusOK {
		return false
	}
	var resp struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(body), &resp) != nil {
		return false
	}
	for _, a := range resp.Data.Alerts {
		if a.Labels["alertname"] != name || a.State != "firing" {
			continue
		}
		match := true
		for k, v := range labels {
			match = match && a.Labels[k] == v
		}
		if match {
			return true
		}
	}
	return false
}

// promResultCount returns how many series an instant query returns.
func promResultCount(base, query string) int {
	code, body := get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if code != http.StatusOK {
		return 0
	}
	var resp struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(body), &resp) != nil {
		return 0
	}
	return len(resp.Data.Result)
}
