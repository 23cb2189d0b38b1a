package gateway

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

func ptr[T any](v T) *T { return &v }

// TestPollReadsBothSpellings: camelCase and PascalCase answers give the
// same observation; unknown members are ignored and missing ones unknown.
func TestPollReadsBothSpellings(t *testing.T) {
	want := []fleet.MediaServerFacts{
		{ID: "ms-1", Region: "us-east", DeploymentID: "prod", Version: "1.24.2.0", CoreCount: 8,
			UsedCapacity: ptr(0.42), Available: ptr(true), Active: ptr(true), Draining: ptr(false), OverCapacity: ptr(false)},
		{ID: "ms-2", Region: "eu-west", Version: "1.24.2.0", CoreCount: 16,
			UsedCapacity: ptr(1.07), Available: ptr(false), Active: ptr(true), Draining: ptr(false), OverCapacity: ptr(true)},
		{ID: "ms-3", Region: "eu-west", Draining: ptr(true)},
	}
	wantApps := []fleet.ApplicationFacts{
		{ID: "app-meetings", Channels: ptr(int64(12)), Users: ptr(int64(40)), Devices: ptr(int64(44)), Clients: ptr(int64(45)), Connections: ptr(int64(90))},
		{ID: "app-webinars", Channels: ptr(int64(2)), Clients: ptr(int64(300)), Connections: ptr(int64(302))},
	}
	for _, pascal := range []bool{false, true} {
		r := newRig(t, nil)
		r.api.pascal = pascal
		obs, err := r.poller.Poll(context.Background())
		if err != nil {
			t.Fatalf("pascal=%v: %v", pascal, err)
		}
		if !reflect.DeepEqual(obs.MediaServers, want) || !reflect.DeepEqual(obs.Applications, wantApps) {
			t.Errorf("pascal=%v:\n%+v\n%+v", pascal, obs.MediaServers, obs.Applications)
		}
		if obs.IntervalMs != 15000 || obs.AtMs == 0 {
			t.Errorf("pascal=%v: stamped %d every %d ms", pascal, obs.AtMs, obs.IntervalMs)
		}
	}
}

// TestPollFeedsTheFleet: a tick writes the observation; the media servers
// become series with the fleet's labels, and the API counts as up.
func TestPollFeedsTheFleet(t *testing.T) {
	r := newRig(t, nil)
	r.tick()
	expo := r.exposition(t)
	for _, want := range []string{
		`liveswitch_api_up 1`,
		`liveswitch_mediaserver_used_capacity_ratio{deployment_id="prod",id="ms-1",origin="mediaserver",region="us-east"} 0.42`,
		`liveswitch_mediaserver_draining{deployment_id="",id="ms-3",origin="mediaserver",region="eu-west"} 1`,
		`liveswitch_server_gateway_listed{deployment_id="",id="ms-2",origin="mediaserver",region="eu-west"} 1`,
		`liveswitch_server_state{deployment_id="prod",id="ms-1",origin="mediaserver",region="us-east",state="registered"} 1`,
		`liveswitch_application_connections{application_id="app-webinars"} 302`,
		`liveswitch_api_requests_total{code="200",endpoint="application"} 2`,
		`liveswitch_exporter_reconciled_total{change="created"} 3`,
	} {
		if !strings.Contains(expo, want+"\n") {
			t.Errorf("no %s in:\n%s", want, expo)
		}
	}
	if strings.Contains(expo, `liveswitch_mediaserver_used_capacity_ratio{deployment_id="",id="ms-3"`) {
		t.Error("a capacity the API did not give is exported")
	}
}

// TestKeyIsSentAndNeverLogged: the key goes in X-API-Key and nowhere else;
// a wrong key is a failed poll whose log line names the cause, not the key.
func TestKeyIsSentAndNeverLogged(t *testing.T) {
	r := newRig(t, func(c *Config) { c.Key = "wrong-key-0123456789" })
	r.tick()
	logs := r.logs.String()
	if !strings.Contains(logs, "HTTP 401: the API key was refused") || strings.Contains(logs, "wrong-key-0123456789") {
		t.Fatalf("log after a refused key:\n%s", logs)
	}
	if expo := r.exposition(t); !strings.Contains(expo, "liveswitch_api_up 0\n") ||
		!strings.Contains(expo, `liveswitch_api_requests_total{code="401",endpoint="mediaservers"} 1`) {
		t.Fatalf("after a refused key:\n%s", expo)
	}
}

// TestRedirectNotFollowed: a redirect would carry X-API-Key to wherever it
// points; the poll fails instead, and the target never sees the key.
func TestRedirectNotFollowed(t *testing.T) {
	var leaked bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		leaked = leaked || r.Header.Get("X-API-Key") != ""
	}))
	defer elsewhere.Close()
	r := newRig(t, nil)
	r.api.answer(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, elsewhere.URL+req.URL.Path, http.StatusFound)
	})
	if _, err := r.poller.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "redirects are not followed") {
		t.Fatalf("poll through a redirect: %v", err)
	}
	if leaked {
		t.Fatal("the key was sent to the redirect's target")
	}
}

// TestPrivateCA: a Gateway with a certificate from a private CA is trusted
// through --liveswitch.api-ca-file, refused without it, and accepted by
// --liveswitch.api-insecure-skip-verify.
func TestPrivateCA(t *testing.T) {
	pki := testenv.NewPKI(t)
	api := &fixtureAPI{}
	cert, err := tls.LoadX509KeyPair(pki.CertFile, pki.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(api)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	for _, tc := range []struct {
		name   string
		cfg    func(*Config)
		wantOK bool
	}{
		{"private CA", func(c *Config) { c.CAPEM = ca }, true},
		{"system CAs only", func(*Config) {}, false},
		{"verification off", func(c *Config) { c.InsecureSkipVerify = true }, true},
	} {
		r := newRig(t, func(c *Config) { c.URL = srv.URL + "/admin/api"; tc.cfg(c) })
		_, err := r.poller.Poll(context.Background())
		if (err == nil) != tc.wantOK {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: the reason does not name the certificate: %v", tc.name, err)
		}
	}
}

func TestConfigRefusesBadURLs(t *testing.T) {
	for _, raw := range []string{"", "gateway:9090/admin/api", "ftp://gw/admin/api", "http:///admin/api",
		"http://user:secret-pass@gw/admin/api", "http://gw/admin/api?key=secret-q", "http://gw/admin/api#frag"} {
		cfg := Config{URL: raw, Interval: 1, Timeout: 1}
		err := cfg.validate()
		if err == nil {
			t.Errorf("%q accepted", raw)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error repeats the URL: %v", raw, err)
		}
	}
	if err := (&Config{URL: "https://gw:9443/admin/api/", Interval: 1, Timeout: 1}).validate(); err != nil {
		t.Errorf("a good URL: %v", err)
	}
}
