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
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// TestBundledRulesAndDashboardsAgainstPrometheus feeds the exporter a
// simulated fleet with one media server that never registers and one that
// registers without its Gateway listing it, has it poll the fleet's
// simulated Gateway, has a real Prometheus scrape it with the bundled
// rules, and checks that the alerts fire and that every dashboard query
// returns data.
//
// The test's copy of alerts.yml shortens the `for` of the alerts it waits
// for to 5s, so that they fire within the test; the rule unit tests
// (promtool test rules) check the real durations.
func TestBundledRulesAndDashboardsAgainstPrometheus(t *testing.T) {
	t.Parallel() // waits on other programs: overlaps with the other waiting tests
	promBin := requireTool(t, "prometheus")
	api := simulatedGateway(t, 300, simulate.GatewayConfig{Key: apiKey, Load: 0.5})
	p := startExporter(t, "--liveswitch.api-url="+api+"/admin/api", "--liveswitch.api-key-file="+writeKeyFile(t),
		"--liveswitch.api-interval=1s")
	feedSimulated(t, p, 300)
	ghost := func(action string) []byte {
		return fmt.Appendf(nil, `{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.%s",`+
			`"mediaserver":{"id":"ghost-1","machineName":"ms-ghost","region":"eu-west","deploymentId":"deployment-2","coreCount":8}}`,
			time.Now().UnixMilli(), action)
	}
	for _, action := range []string{"started", "registered"} {
		if code := post(t, p.url("/webhook"), ghost(action)); code != http.StatusNoContent {
			t.Fatalf("ghost media server %s: %d", action, code)
		}
	}
	feedSimulatedApplications(t, p, 1000)
	stuck := fmt.Sprintf(`{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.started",`+
		`"mediaserver":{"id":"stuck-1","machineName":"ms-stuck","region":"us-east","deploymentId":"deployment-1","coreCount":8}}`,
		time.Now().UnixMilli())
	if code := post(t, p.url("/webhook"), []byte(stuck)); code != http.StatusNoContent {
		t.Fatalf("stuck media server: %d", code)
	}
	rules := writeRules(t, "LiveSwitchMediaServerUnregistered", "LiveSwitchMediaServerOverCapacity", "LiveSwitchMediaServerNotListedByGateway")
	prom := startPrometheus(t, promBin, p.addr, rules)

	testenv.WaitFor(t, 90*time.Second, "LiveSwitchMediaServerUnregistered to fire for ms-stuck", func() bool {
		return alertFiring(prom, "LiveSwitchMediaServerUnregistered", map[string]string{
			"id": "stuck-1", "machine_name": "ms-stuck", "deployment_id": "deployment-1", "region": "us-east", "severity": "warning",
		})
	})
	testenv.WaitFor(t, 90*time.Second, "LiveSwitchMediaServerNotListedByGateway to fire for ms-ghost", func() bool {
		return alertFiring(prom, "LiveSwitchMediaServerNotListedByGateway", map[string]string{
			"id": "ghost-1", "machine_name": "ms-ghost", "deployment_id": "deployment-2", "region": "eu-west", "severity": "warning",
		})
	})
	testenv.WaitFor(t, 90*time.Second, "LiveSwitchMediaServerOverCapacity to fire", func() bool {
		return alertFiring(prom, "LiveSwitchMediaServerOverCapacity", map[string]string{"origin": "mediaserver", "severity": "warning"})
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
// the `for` of the named alerts shortened to 5s; their expressions are the
// bundled ones.
func writeRules(t *testing.T, shorten ...string) []string {
	t.Helper()
	dir := t.TempDir()
	alerts, err := dashboards.FS.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range shorten {
		section := regexp.MustCompile(`(?s)(alert: ` + name + `\n.*?)for: \d+m`)
		if !section.Match(alerts) {
			t.Fatalf("alerts.yml: %s has no `for`", name)
		}
		alerts = section.ReplaceAll(alerts, []byte("${1}for: 5s"))
	}
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
