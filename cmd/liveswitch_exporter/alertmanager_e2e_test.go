package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// bundledAlertmanagerConfig is the quickstart's Alertmanager configuration.
const bundledAlertmanagerConfig = "../../dashboards/quickstart/alertmanager.yml"

// notification is one alert of an Alertmanager webhook notification.
type notification struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// pager is the webhook receiver a person's pager would be: it keeps what
// Alertmanager sends it.
type pager struct {
	mu     sync.Mutex
	alerts []notification
}

func (p *pager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Alerts []notification `json:"alerts"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	p.alerts = append(p.alerts, body.Alerts...)
	p.mu.Unlock()
}

// received returns the first firing alert named name whose labels include
// want, if one arrived.
func (p *pager) received(name string, want map[string]string) (notification, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.alerts {
		match := a.Status == "firing" && a.Labels["alertname"] == name
		for k, v := range want {
			match = match && a.Labels[k] == v
		}
		if match {
			return a, true
		}
	}
	return notification{}, false
}

// startAlertmanager runs Debian's prometheus-alertmanager with the bundled
// routes and receivers, the receiver's url pointed at pagerURL and the
// grouping waits shortened to a second, and returns its address.
func startAlertmanager(t *testing.T, pagerURL string) string {
	t.Helper()
	bin := testenv.RequireTool(t, "prometheus-alertmanager", "prometheus-alertmanager")
	cfg, err := os.ReadFile(bundledAlertmanagerConfig)
	if err != nil {
		t.Fatal(err)
	}
	url := regexp.MustCompile(`url: http://\S+`)
	if len(url.FindAll(cfg, -1)) != 1 {
		t.Fatal("the bundled alertmanager.yml must have exactly one receiver url")
	}
	cfg = url.ReplaceAll(cfg, []byte("url: "+pagerURL))
	cfg = regexp.MustCompile(`group_(wait|interval): \w+`).ReplaceAll(cfg, []byte("group_$1: 1s"))
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	runReady(t, "Alertmanager", addr, bin, "--config.file="+filepath.Join(dir, "alertmanager.yml"),
		"--storage.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--cluster.listen-address=")
	return addr
}

// TestAlertsReachAPerson: the bundled rules, evaluated by a real Prometheus
// over the exporter, page through a real Alertmanager with the bundled
// routes: a media server stuck unregistered and a region near full capacity
// arrive at the pager with their labels and runbook links. The `for` of the
// two alerts is shortened to 5s; their expressions are the bundled ones.
func TestAlertsReachAPerson(t *testing.T) {
	t.Parallel() // waits on other programs: overlaps with the other waiting tests
	promBin := requireTool(t, "prometheus")
	pg := &pager{}
	pagerSrv := httptest.NewServer(pg)
	t.Cleanup(pagerSrv.Close)
	am := startAlertmanager(t, pagerSrv.URL+"/liveswitch-alerts")

	api := simulatedGateway(t, 300, simulate.GatewayConfig{Key: apiKey, Load: 0.95})
	p := startExporter(t, "--liveswitch.api-url="+api+"/admin/api", "--liveswitch.api-key-file="+writeKeyFile(t),
		"--liveswitch.api-interval=1s")
	feedSimulated(t, p, 300)
	stuck := fmt.Sprintf(`{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.started",`+
		`"mediaserver":{"id":"stuck-2","machineName":"ms-stuck","region":"ap-south","deploymentId":"deployment-2","coreCount":8}}`,
		time.Now().UnixMilli())
	if code := post(t, p.url("/webhook"), []byte(stuck)); code != http.StatusNoContent {
		t.Fatalf("stuck media server: %d", code)
	}
	rules := writeRules(t, "LiveSwitchMediaServerUnregistered", "LiveSwitchRegionCapacityHigh")
	runPrometheus(t, promBin, prometheusConfig(p.addr, rules)+
		fmt.Sprintf("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['%s']\n", am))

	runbook := "https://github.com/liveswitch-exporter/liveswitch_exporter/blob/main/dashboards/RUNBOOK.md#"
	for _, want := range []struct {
		alert  string
		labels map[string]string
	}{
		{"LiveSwitchMediaServerUnregistered", map[string]string{"id": "stuck-2", "machine_name": "ms-stuck",
			"deployment_id": "deployment-2", "region": "ap-south", "severity": "warning", "job": "liveswitch"}},
		{"LiveSwitchRegionCapacityHigh", map[string]string{"deployment_id": "deployment-2", "severity": "warning", "job": "liveswitch"}},
	} {
		var got notification
		testenv.WaitFor(t, 120*time.Second, want.alert+" at the pager", func() bool {
			var ok bool
			got, ok = pg.received(want.alert, want.labels)
			return ok
		})
		if got.Annotations["runbook_url"] != runbook+strings.ToLower(want.alert) || got.Annotations["summary"] == "" ||
			!strings.Contains(got.Annotations["description"], got.Labels["region"]) {
			t.Errorf("%s arrived as %+v", want.alert, got)
		}
		t.Logf("%s paged: %v", want.alert, got.Labels)
	}
}

// TestBundledAlertmanagerConfig: amtool accepts the quickstart's
// configuration as shipped.
func TestBundledAlertmanagerConfig(t *testing.T) {
	amtool := testenv.RequireTool(t, "amtool", "prometheus-alertmanager")
	out, err := exec.Command(amtool, "check-config", bundledAlertmanagerConfig).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}
