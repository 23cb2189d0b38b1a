package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

func writeSecrets(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // as a configuration manager replaces a file
		t.Fatal(err)
	}
}

// TestApplicationSecretsFile: with the flag, application webhooks must be
// signed with their application's secret; the file is re-read when it is
// replaced, with no restart; no secret ever reaches the log.
func TestApplicationSecretsFile(t *testing.T) {
	const oldSecret, newSecret = "old-secret-7c1e-never-logged", "new-secret-93ad-never-logged"
	file := filepath.Join(t.TempDir(), "secrets.yml")
	writeSecrets(t, file, "app-1: "+oldSecret+"\n")
	p := startExporter(t, "--webhook.application-secrets-file="+file, "--log.level=debug")
	if strings.Contains(p.log(), "unverified") {
		t.Fatal("warned about unverified application webhooks although secrets are set")
	}
	n := 0
	postSigned := func(secret string) int {
		n++
		body := fmt.Sprintf(`{"timestamp":%d,"origin":"client","type":"client.registered","client":{"applicationId":"app-1","id":"c-%d"}}`,
			time.Now().UnixMilli(), n)
		header := http.Header{}
		if secret != "" {
			header.Set(appsig.Header, testenv.OpenSSLSignature(t, []byte(body), secret))
		}
		return do(t, http.DefaultClient, "POST", p.url("/webhook"), body, header).StatusCode
	}
	for _, tc := range []struct {
		secret string
		code   int
	}{{oldSecret, http.StatusNoContent}, {"", http.StatusUnauthorized}, {newSecret, http.StatusUnauthorized}} {
		if code := postSigned(tc.secret); code != tc.code {
			t.Fatalf("signed with %q: %d, want %d", tc.secret, code, tc.code)
		}
	}
	writeSecrets(t, file, "app-1: "+newSecret+"\n")
	testenv.WaitFor(t, 10*time.Second, "the new secret to be taken", func() bool { return postSigned(newSecret) == http.StatusNoContent })
	if code := postSigned(oldSecret); code != http.StatusUnauthorized {
		t.Fatalf("the old secret still signs: %d", code)
	}
	families := scrape(t, p)
	counted := sumByLabel(families["liveswitch_application_events_total"], "application_id")["app-1"]
	refused := sumByLabel(families["liveswitch_exporter_application_signature_refusals_total"], "reason")
	if counted < 2 || refused["missing"] != 1 || refused["mismatch"] < 2 {
		t.Fatalf("counted %v, refusals %v", counted, refused)
	}
	for _, secret := range []string{oldSecret, newSecret} {
		if strings.Contains(p.log(), secret) {
			t.Fatalf("a secret is in the log:\n%s", p.log())
		}
	}
}

// TestApplicationWebhooksUnverifiedWarning: without secrets the exporter
// says at start that application webhooks are unverified, and counts them.
func TestApplicationWebhooksUnverifiedWarning(t *testing.T) {
	p := startExporter(t)
	if !strings.Contains(p.log(), "Application webhooks are unverified") {
		t.Fatalf("no warning:\n%s", p.log())
	}
	body := fmt.Sprintf(`{"timestamp":%d,"origin":"client","type":"channel.client.joined","client":{"applicationId":"app-1","id":"c"},"channel":{"applicationId":"app-1","id":"ch"}}`,
		time.Now().UnixMilli())
	if code := post(t, p.url("/webhook"), []byte(body)); code != http.StatusNoContent {
		t.Fatalf("unsigned application webhook: %d", code)
	}
	if n := sumByLabel(scrape(t, p)["liveswitch_application_events_total"], "event")["channel.client.joined"]; n != 1 {
		t.Fatalf("counted %v channel.client.joined", n)
	}
}
