package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

func mediaEvent(id, action string, ts int64) string {
	return fmt.Sprintf(`{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.%s","mediaserver":{"id":%q,"region":"eu"}}`, ts, action, id)
}

func do(t *testing.T, client *http.Client, method, url, body string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp
}

// TestWebhookToken: the token is required in a Bearer header or the token
// query parameter, wrong or missing ones get 401 (counted), the delete API
// needs it too, and no token ever reaches the log.
func TestWebhookToken(t *testing.T) {
	const token = "tok-5f1c2a9e-never-logged"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startExporter(t, "--webhook.token-file="+file, "--log.level=debug")
	if strings.Contains(p.log(), "unauthenticated") {
		t.Fatal("warned about an unauthenticated webhook although a token is set")
	}
	now := time.Now().UnixMilli()
	c := http.DefaultClient
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	for _, tc := range []struct {
		name, method, path, body string
		header                   http.Header
		code                     int
	}{
		{"bearer header", "POST", "/webhook", mediaEvent("a", "started", now), bearer, 204},
		{"query parameter", "POST", "/webhook?token=" + token, mediaEvent("b", "started", now), nil, 204},
		{"wrong token", "POST", "/webhook?token=wrong-guess-123", mediaEvent("c", "started", now), nil, 401},
		{"missing token", "POST", "/webhook", mediaEvent("c", "started", now), nil, 401},
		{"wrong bearer", "POST", "/webhook", mediaEvent("c", "started", now), http.Header{"Authorization": {"Bearer wrong-guess-456"}}, 401},
		{"delete without token", "DELETE", "/api/v1/servers/mediaserver/a", "", nil, 401},
		{"delete with token", "DELETE", "/api/v1/servers/mediaserver/a", "", bearer, 204},
	} {
		if resp := do(t, c, tc.method, p.url(tc.path), tc.body, tc.header); resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
	}
	_, metrics := get(p.url("/metrics"))
	for _, want := range []string{`liveswitch_exporter_webhook_requests_total{code="401"} 3`, `liveswitch_server_up{deployment_id="",id="b"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, `id="c"`) {
		t.Error("an unauthenticated event was applied")
	}
	for _, secret := range []string{token, "wrong-guess-123", "wrong-guess-456"} {
		if strings.Contains(p.log(), secret) {
			t.Errorf("the log holds %q:\n%s", secret, p.log())
		}
	}
}

func TestUnauthenticatedWebhookWarns(t *testing.T) {
	p := startExporter(t)
	if !strings.Contains(p.log(), "The webhook is unauthenticated") {
		t.Fatalf("no warning:\n%s", p.log())
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTLSAndBasicAuth: a web config with TLS, a bcrypt basic-auth user and
// security headers applies to every endpoint of the main listener; the
// webhook listener (TLS only) serves LiveSwitch and the probes without
// basic auth, guarded by the token.
func TestTLSAndBasicAuth(t *testing.T) {
	pk := testenv.NewPKI(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("scrape-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	main := writeFile(t, "web.yml", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n"+
		"basic_auth_users:\n  prometheus: %s\n"+
		"http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=31536000\n    X-Frame-Options: deny\n",
		pk.CertFile, pk.KeyFile, hash))
	hook := writeFile(t, "webhook-web.yml", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", pk.CertFile, pk.KeyFile))
	token := writeFile(t, "token", "hook-token")
	hookAddr := testenv.FreeAddr(t)
	p := startExporter(t, "--web.config.file="+main, "--webhook.listen-address="+hookAddr,
		"--webhook.web-config.file="+hook, "--webhook.token-file="+token)
	addrs := p.listeners(t, 2)
	mainAddr := addrs[0]
	if mainAddr == hookAddr {
		mainAddr = addrs[1]
	}
	mainURL, hookURL := "https://"+mainAddr, "https://"+hookAddr
	c := pk.Client(false)
	auth := http.Header{"Authorization": {"Basic " + basic("prometheus", "scrape-pass")}}
	now := time.Now().UnixMilli()
	for _, tc := range []struct {
		name, method, url, body string
		header                  http.Header
		code                    int
	}{
		{"metrics without credentials", "GET", mainURL + "/metrics", "", nil, 401},
		{"metrics with a wrong password", "GET", mainURL + "/metrics", "", http.Header{"Authorization": {"Basic " + basic("prometheus", "nope")}}, 401},
		{"metrics with credentials", "GET", mainURL + "/metrics", "", auth, 200},
		{"health on the main listener needs credentials", "GET", mainURL + "/-/healthy", "", nil, 401},
		{"status page without credentials", "GET", mainURL + "/", "", nil, 401},
		{"status page with credentials", "GET", mainURL + "/", "", auth, 200},
		{"servers API without credentials", "GET", mainURL + "/api/v1/servers", "", nil, 401},
		{"servers API with credentials", "GET", mainURL + "/api/v1/servers", "", auth, 200},
		{"deliveries API without credentials", "GET", mainURL + "/api/v1/events", "", nil, 401},
		{"deliveries API with credentials", "GET", mainURL + "/api/v1/events", "", auth, 200},
		{"webhook listener serves no read API", "GET", hookURL + "/api/v1/events", "", nil, 404},
		{"health on the webhook listener", "GET", hookURL + "/-/healthy", "", nil, 200},
		{"ready on the webhook listener", "GET", hookURL + "/-/ready", "", nil, 200},
		{"webhook listener serves no metrics", "GET", hookURL + "/metrics", "", nil, 404},
		{"webhook with the token", "POST", hookURL + "/webhook?token=hook-token", mediaEvent("tls", "started", now), nil, 204},
		{"webhook without the token", "POST", hookURL + "/webhook", mediaEvent("tls", "stopped", now+1), nil, 401},
	} {
		resp := do(t, c, tc.method, tc.url, tc.body, tc.header)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.code)
		}
		if strings.HasPrefix(tc.url, mainURL) && resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("%s: no security headers", tc.name)
		}
	}
	if code, _ := get("http://" + mainAddr + "/metrics"); code == http.StatusOK {
		t.Error("plain HTTP served metrics on a TLS listener")
	}
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestClientCertificates: with client_auth_type RequireAndVerifyClientCert a
// client without a certificate from the CA is refused at the handshake.
func TestClientCertificates(t *testing.T) {
	pk := testenv.NewPKI(t)
	cfg := writeFile(t, "web.yml", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n"+
		"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %s\n", pk.CertFile, pk.KeyFile, pk.CAFile))
	p := startExporter(t, "--web.config.file="+cfg)
	if _, err := pk.Client(false).Get("https://" + p.addr + "/metrics"); err == nil {
		t.Fatal("served a client without a certificate")
	}
	resp, err := pk.Client(true).Get("https://" + p.addr + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("client with a certificate: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestSourceAddressAllowList: only allowed networks may post; a trusted
// proxy's X-Forwarded-For names the client.
func TestSourceAddressAllowList(t *testing.T) {
	p := startExporter(t, "--webhook.allowed-cidrs=10.20.0.0/16", "--web.trusted-proxies=127.0.0.1")
	now := time.Now().UnixMilli()
	for _, tc := range []struct {
		xff  string
		code int
	}{
		{"", 403},                     // the loopback peer itself is not allowed
		{"10.20.3.4", 204},            // the trusted proxy forwards an allowed client
		{"192.0.2.1", 403},            // ... or one that is not
		{"10.20.3.4, 192.0.2.1", 403}, // the right-most untrusted hop decides
	} {
		h := http.Header{}
		if tc.xff != "" {
			h.Set("X-Forwarded-For", tc.xff)
		}
		if resp := do(t, http.DefaultClient, "POST", p.url("/webhook"), mediaEvent("x", "started", now), h); resp.StatusCode != tc.code {
			t.Errorf("X-Forwarded-For %q: %d, want %d", tc.xff, resp.StatusCode, tc.code)
		}
		now++
	}
	if _, m := get(p.url("/metrics")); !strings.Contains(m, `liveswitch_exporter_webhook_requests_total{code="403"} 3`) {
		t.Error("403s are not counted")
	}
}

// TestSlowloris holds 200 connections that send their headers or their body
// one byte at a time: a normal client still gets its event applied, and the
// server cuts every slow connection off by its timeouts.
func TestSlowloris(t *testing.T) {
	t.Parallel() // waits on other programs: overlaps with the other waiting tests
	p := startExporter(t, "--web.read-header-timeout=8s", "--web.read-timeout=10s")
	const slow = 200
	var open atomic.Int32
	var wg sync.WaitGroup
	stop := make(chan struct{})
	defer close(stop)
	for i := range slow {
		conn, err := net.Dial("tcp", p.addr)
		if err != nil {
			t.Fatal(err)
		}
		open.Add(1)
		prefix := "POST /webhook HTTP/1.1\r\nHost: x\r\nX-Slow: "
		if i%2 == 1 { // complete headers, endless body
			prefix = "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"
		}
		if _, err := conn.Write([]byte(prefix)); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { dripUntilCut(conn, stop, &open) })
	}
	if n := open.Load(); n != slow {
		t.Fatalf("%d slow connections open, want %d", n, slow)
	}
	resp := do(t, &http.Client{Timeout: 5 * time.Second}, "POST", p.url("/webhook"), mediaEvent("normal", "registered", time.Now().UnixMilli()), nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("normal client: %d", resp.StatusCode)
	}
	if held := open.Load(); held < slow {
		t.Logf("%d of %d slow connections were already cut when the normal request finished", slow-held, slow)
	}
	if _, m := get(p.url("/metrics")); !strings.Contains(m, `id="normal"`) {
		t.Fatal("the normal client's event was not applied")
	}
	testenv.WaitFor(t, 60*time.Second, "the server to cut every slow connection", func() bool { return open.Load() == 0 })
	wg.Wait()
}

// dripUntilCut sends one byte every 100ms until the server closes the
// connection (a write or the reader fails).
func dripUntilCut(conn net.Conn, stop <-chan struct{}, open *atomic.Int32) {
	defer open.Add(-1)
	defer conn.Close()
	closed := make(chan struct{})
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				close(closed)
				return
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			return
		case <-stop:
			return
		case <-tick.C:
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
		}
	}
}
