package simulate

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/gateway"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
)

// TestGatewayServesItsFleet reads the simulated Gateway with the exporter's
// own poller, in both spellings: it lists exactly the registered media
// servers of the fleet, one draining and one over capacity, and three
// applications with channels and connections.
func TestGatewayServesItsFleet(t *testing.T) {
	gen := NewGenerator(DefaultFleetConfig, nil)
	registered := map[string]bool{}
	for range 300 {
		evs, err := event.Decode(gen.Next().Body, event.DefaultDecodeOptions, time.Now().Add(time.Hour))
		if err == nil && evs[0].Origin == "mediaserver" && evs[0].Kind == event.KindLifecycle {
			registered[evs[0].Server.ID] = evs[0].Action == event.ActionRegistered
		}
	}
	for _, pascal := range []bool{false, true} {
		srv := httptest.NewServer(NewGateway(gen, GatewayConfig{Key: "sim-key-0123456789", PascalCase: pascal, Load: 0.6}))
		defer srv.Close()
		obs := poll(t, srv.URL, "sim-key-0123456789")
		listed := map[string]bool{}
		var draining, over int
		for _, m := range obs.MediaServers {
			listed[m.ID] = true
			if m.UsedCapacity == nil || m.CoreCount == 0 || m.Region == "" || m.DeploymentID == "" {
				t.Errorf("pascal=%v: facts missing: %+v", pascal, m)
			}
			draining += boolInt(*m.Draining)
			over += boolInt(*m.OverCapacity && *m.UsedCapacity > 1)
		}
		for id, reg := range registered {
			if reg != listed[id] {
				t.Errorf("pascal=%v: %s registered %v, listed %v", pascal, id, reg, listed[id])
			}
		}
		if draining != 1 || over != 1 || len(obs.Applications) != 3 || *obs.Applications[0].Connections == 0 {
			t.Errorf("pascal=%v: %d draining, %d over capacity, applications %+v", pascal, draining, over, obs.Applications)
		}
	}
}

// TestGatewayRequiresTheKey: without the key, a 401 problem.
func TestGatewayRequiresTheKey(t *testing.T) {
	srv := httptest.NewServer(NewGateway(NewGenerator(DefaultFleetConfig, nil), GatewayConfig{Key: "right"}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/admin/api/v1/mediaservers")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("without a key: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func poll(t *testing.T, base, key string) *fleet.Observation {
	t.Helper()
	w := writer.New(fleet.New(), nil, writer.Options{})
	t.Cleanup(w.Close)
	p, err := gateway.New(gateway.Config{URL: base + "/admin/api", Key: key, Interval: time.Second, Timeout: 5 * time.Second},
		w, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	obs, err := p.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return obs
}

// TestGatewayListsTheGivenApplications: the Gateway lists the applications
// it is given, those whose webhooks are simulated, and counts each of them;
// given none, the three of ApplicationIDs, which are also the webhooks'
// default.
func TestGatewayListsTheGivenApplications(t *testing.T) {
	gen := NewGenerator(DefaultFleetConfig, nil)
	for range 100 {
		gen.Next()
	}
	for _, tc := range []struct{ given, want []string }{
		{[]string{"app-x", "app-y", "app-z", "app-w"}, []string{"app-x", "app-y", "app-z", "app-w"}},
		{nil, []string{"sim-meetings", "sim-webinars", "sim-support"}},
	} {
		srv := httptest.NewServer(NewGateway(gen, GatewayConfig{Load: 0.5, Applications: tc.given}))
		defer srv.Close()
		var ids []string
		getJSON(t, srv.URL+"/admin/api/v1.0/applications", http.StatusOK, &ids)
		if !slices.Equal(ids, tc.want) {
			t.Errorf("given %v, the Gateway lists %v", tc.given, ids)
		}
		for _, id := range ids {
			var app struct {
				ID              string
				ConnectionCount int
			}
			getJSON(t, srv.URL+"/admin/api/v1.0/applications/"+id, http.StatusOK, &app)
			if app.ID != id || app.ConnectionCount == 0 {
				t.Errorf("%s: %+v", id, app)
			}
		}
		getJSON(t, srv.URL+"/admin/api/v1.0/applications/not-listed", http.StatusNotFound, nil)
	}
	if got := NewAppGenerator(AppConfig{}, nil).cfg.IDs; !slices.Equal(got, ApplicationIDs(1)) {
		t.Errorf("the webhooks' default application is %v", got)
	}
}

func getJSON(t *testing.T, url string, status int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %d, want %d", url, resp.StatusCode, status)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
}
