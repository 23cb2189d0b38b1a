package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// TestStatusPageInChromium loads the status page of the real binary in
// headless Chromium for a simulated fleet in which one media server is
// unregistered and one delivery was rejected. Screenshots (desktop and
// phone) go to the test's artifact directory: keep them with
// `go test ./cmd/liveswitch_exporter -run StatusPage -artifacts -outputdir DIR`.
func TestStatusPageInChromium(t *testing.T) {
	chromium := testenv.RequireTool(t, "chromium", "chromium")
	p := startExporter(t, "--storage.in-memory")
	feedSimulated(t, p, 300)
	unregistered := unregisterOneMediaServer(t, p)
	reason := postRejected(t, p, `{"type":"mediaserver.registered","mediaserver":{"id":"x"}}`)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(ctx)
	defer cancelBrowser()

	if err := chromedp.Do(ctx, chromedp.Navigate(p.url("/"))); err != nil {
		t.Fatal(err)
	}
	var first struct {
		ID, Class, State string
	}
	if err := evaluate(ctx, `(() => { const r = document.querySelector("#servers tr.server");
		return {ID: r.dataset.id, Class: r.className, State: r.querySelector("td.state").innerText}; })()`, &first); err != nil {
		t.Fatal(err)
	}
	if first.ID != unregistered || !strings.Contains(first.Class, "attention") || !strings.Contains(first.State, "not registered") {
		t.Errorf("first server row %+v; want %s, marked as not registered", first, unregistered)
	}
	var shown string
	if err := evaluate(ctx, `document.querySelector("#deliveries tr.delivery.rejected td.reason").innerText`, &shown); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(shown, reason) {
		t.Errorf("the rejected delivery shows %q, want its reason %q", shown, reason)
	}
	screenshot(t, ctx, "status.png")

	// On a phone-sized screen nothing but the tables' own scrolling is wider
	// than the screen.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	var overflow bool
	if err := evaluate(ctx, `document.documentElement.scrollWidth > window.innerWidth`, &overflow); err != nil {
		t.Fatal(err)
	}
	if overflow {
		var wide []string
		_ = evaluate(ctx, `[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest(".wrap")).slice(0, 5).map(e => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))`, &wide)
		t.Errorf("the page is wider than a phone's screen: %v", wide)
	}
	screenshot(t, ctx, "status-phone.png")
}

func evaluate(ctx context.Context, expr string, out any) error {
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// unregisterOneMediaServer sends unregistered for a registered media server
// and returns its id.
func unregisterOneMediaServer(t *testing.T, p *process) string {
	t.Helper()
	code, body := get(p.url("/api/v1/servers?origin=mediaserver&state=registered"))
	var list struct {
		Servers []struct {
			ID string `json:"id"`
		} `json:"servers"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != http.StatusOK || len(list.Servers) == 0 {
		t.Fatalf("no registered media server: %d %v\n%s", code, err, body)
	}
	id := list.Servers[len(list.Servers)/2].ID
	ev := fmt.Appendf(nil, `{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.unregistered","mediaserver":{"id":%q}}`,
		time.Now().Add(time.Second).UnixMilli(), id)
	if code := post(t, p.url("/webhook"), ev); code != http.StatusNoContent {
		t.Fatalf("unregistering %s: %d", id, code)
	}
	return id
}

// postRejected posts a body the exporter must reject and returns the reason
// it answered.
func postRejected(t *testing.T, p *process, body string) string {
	t.Helper()
	resp, err := http.Post(p.url("/webhook"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	reason, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("%s answered %d, want 400", body, resp.StatusCode)
	}
	return strings.TrimSpace(string(reason))
}
