package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
	"github.com/liveswitch-exporter/liveswitch_exporter/simulate"
)

// screenshotsEnv names a directory where TestStatusPageInChromium keeps
// its screenshots; without it they go to the test's artifact directory
// (kept with `go test -artifacts -outputdir DIR`, else removed).
const screenshotsEnv = "LIVESWITCH_TEST_SCREENSHOTS"

// Widths the page is looked at: a desktop, a tablet and a phone (iPhone
// 12 to 15).
var screens = []struct {
	name          string
	width, height int64
	scale         float64
}{
	{"desktop", 1280, 900, 1},
	{"tablet", 768, 1024, 1},
	{"phone", 390, 844, 2},
}

// TestStatusPageInChromium loads the status page of the real binary in
// headless Chromium, for a simulated fleet polled through a simulated
// Gateway, with application webhooks, one media server up but not
// registered, one delivery rejected and one accepted but not applied. At a desktop's and
// a phone's width it checks what the page shows and that nothing is wider
// than the screen, and saves screenshots; then the Gateway starts failing
// and the page must say why, without the URL's query or a file path.
func TestStatusPageInChromium(t *testing.T) {
	t.Parallel() // waits on other programs: overlaps with the other waiting tests
	chromium := testenv.RequireTool(t, "chromium", "chromium")
	gw := newFlakyGateway(t)
	p := startExporter(t, "--storage.in-memory", "--liveswitch.api-url="+gw.url+"/admin/api",
		"--liveswitch.api-key-file="+writeKeyFile(t), "--liveswitch.api-interval=1s")
	feedSimulated(t, p, 300)
	unregistered := startUnlistedMediaServer(t, p)
	reason := postRejected(t, p, `{"type":"mediaserver.registered","mediaserver":{"id":"x"}}`)
	postDuplicate(t, p)
	apps := feedGatewayApplications(t, p, gw, 600)
	waitForPage(t, p, `id="gateway-tile"`, `<div class="value">up</div>`)

	ctx := newBrowser(t, chromium)
	for _, screen := range screens {
		t.Run(screen.name, func(t *testing.T) {
			load(t, ctx, p.url("/"), screen.width, screen.height, screen.scale)
			checkHealthyPage(t, ctx, unregistered, reason, apps)
			checkFits(t, ctx)
			screenshot(t, ctx, "status-"+screen.name+".png")
		})
	}

	gw.fail.Store(true)
	waitForPage(t, p, `id="gateway-failure" class="failing"`)
	for _, screen := range screens {
		t.Run(screen.name+"-gateway-down", func(t *testing.T) {
			load(t, ctx, p.url("/"), screen.width, screen.height, screen.scale)
			var failure string
			if err := evaluate(ctx, `document.querySelector("#gateway-failure").innerText`, &failure); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(failure, "HTTP 503") || !strings.Contains(failure, "…/gw.log") {
				t.Errorf("the Gateway's failure reads %q; want its status and the file's name", failure)
			}
			if strings.Contains(failure, "secret-query") || strings.Contains(failure, "/var/log/") {
				t.Errorf("the failure shows a URL query or an absolute path: %q", failure)
			}
			checkFits(t, ctx)
			screenshot(t, ctx, "status-"+screen.name+"-gateway-down.png")
		})
	}
}

// flakyGateway is the simulated Gateway of the fleet feedSimulated
// describes, behind a proxy that answers 503 while fail is set, with a
// problem title naming a URL with a query and a log file.
type flakyGateway struct {
	url  string
	fail atomic.Bool
}

func newFlakyGateway(t *testing.T) *flakyGateway {
	t.Helper()
	target, err := url.Parse(simulatedGateway(t, 300, simulate.GatewayConfig{Key: apiKey, Load: 0.5}))
	if err != nil {
		t.Fatal(err)
	}
	g := &flakyGateway{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.fail.Load() {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"title":"see https://gw.example/s?token=secret-query or /var/log/ls/gw.log","status":503}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// feedGatewayApplications posts n application events of the applications
// the Gateway lists, and returns their ids.
func feedGatewayApplications(t *testing.T, p *process, gw *flakyGateway, n int) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, gw.url+"/admin/api/v1.0/applications", nil)
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ids []string
	if err := json.NewDecoder(resp.Body).Decode(&ids); err != nil || len(ids) == 0 {
		t.Fatalf("the simulated Gateway lists no application: %v", err)
	}
	clock := time.Now().Add(-time.Minute)
	gen := simulate.NewAppGenerator(simulate.AppConfig{Seed: 1, IDs: ids},
		func() time.Time { clock = clock.Add(50 * time.Millisecond); return clock })
	for range n {
		if code := post(t, p.url("/webhook"), gen.Next().Body); code != http.StatusNoContent {
			t.Fatalf("application event answered %d", code)
		}
	}
	return ids
}

// postDuplicate posts one server event twice: the second is a 202.
func postDuplicate(t *testing.T, p *process) {
	t.Helper()
	ev := fmt.Appendf(nil, `{"timestamp":%d,"origin":"sipconnector","type":"sipconnector.started","sipconnector":{"id":"sip-twice"}}`,
		time.Now().UnixMilli())
	post(t, p.url("/webhook"), ev)
	if code := post(t, p.url("/webhook"), ev); code != http.StatusAccepted {
		t.Fatalf("the same event again answered %d, want 202", code)
	}
}

// waitForPage waits until the status page holds every one of wants.
func waitForPage(t *testing.T, p *process, wants ...string) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("the status page to show %q", wants), func() bool {
		code, page := get(p.url("/"))
		for _, w := range wants {
			if !strings.Contains(page, w) {
				return false
			}
		}
		return code == http.StatusOK
	})
}

// newBrowser starts headless Chromium for the test.
func newBrowser(t *testing.T, chromium string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelBrowser := chromedp.NewContext(ctx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatal(err)
	}
	return ctx
}

// load opens address at the given screen size.
func load(t *testing.T, ctx context.Context, address string, width, height int64, scale float64) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(scale)}
	if width < 1000 {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height, opts...), chromedp.Navigate(address)); err != nil {
		t.Fatal(err)
	}
}

// checkHealthyPage checks what the page says of the fleet, the Gateway,
// the applications and the deliveries.
func checkHealthyPage(t *testing.T, ctx context.Context, unregistered, reason string, apps []string) {
	t.Helper()
	var page struct {
		First                     struct{ ID, Class, State string }
		Gateway, Rejected, Status string
		NotApplied                string
		Capacities                int
		Apps                      []struct{ ID, Events, Connections string }
	}
	err := evaluate(ctx, `(() => {
		const r = document.querySelector("#servers tr.server");
		const text = sel => (document.querySelector(sel) || {innerText: ""}).innerText;
		return {
			First: {ID: r.dataset.id, Class: r.className, State: r.querySelector("td.state").innerText},
			Gateway: text("#gateway"),
			Rejected: text("#rejected tr.rejected td.reason"),
			NotApplied: text("#not-applied tr.not-applied"),
			Capacities: [...document.querySelectorAll("#servers .capacity")].filter(e => e.offsetParent !== null && e.innerText.endsWith("%")).length,
			Apps: [...document.querySelectorAll("#apps tr.app")].map(tr => ({
				ID: tr.dataset.id, Events: tr.cells[1].innerText, Connections: tr.cells[7] ? tr.cells[7].innerText : ""})),
		}; })()`, &page)
	if err != nil {
		t.Fatal(err)
	}
	if page.First.ID != unregistered || !strings.Contains(page.First.Class, "attention") || !strings.Contains(page.First.State, "not registered") {
		t.Errorf("first server row %+v; want %s, marked as not registered", page.First, unregistered)
	}
	if !strings.Contains(page.Gateway, "up") || !strings.Contains(page.Gateway, "media servers listed") || page.Capacities == 0 {
		t.Errorf("the Gateway section reads %q, with %d capacities", page.Gateway, page.Capacities)
	}
	if !strings.Contains(page.Rejected, reason) {
		t.Errorf("the rejected delivery shows %q, want its reason %q", page.Rejected, reason)
	}
	if !strings.Contains(page.NotApplied, "202") || !strings.Contains(page.NotApplied, "duplicate=1") {
		t.Errorf("the accepted but not applied delivery reads %q", page.NotApplied)
	}
	withBoth := 0
	for _, a := range page.Apps {
		if a.Events != "" && a.Events != "0" && a.Connections != "" && a.Connections != "0" {
			withBoth++
		}
	}
	if len(page.Apps) != len(apps) || withBoth != len(apps) {
		t.Errorf("applications %+v; want %v, each with events and the Gateway's connections", page.Apps, apps)
	}
}

// checkFits fails when the page, or any element in it, is wider than the
// screen, or scrolls sideways inside it: no horizontal scrolling, of the
// page or of a table. (Text cut with an ellipsis is not scrolling.)
func checkFits(t *testing.T, ctx context.Context) {
	t.Helper()
	var fit struct {
		ScrollWidth, ClientWidth int
		Wide, Narrowest          []string
	}
	err := evaluate(ctx, `(() => {
		const d = document.documentElement;
		const wide = [...document.querySelectorAll("body *")]
			.filter(e => e.getBoundingClientRect().right > d.clientWidth + 0.5 || e.scrollWidth > e.clientWidth + 1 && ["auto", "scroll"].includes(getComputedStyle(e).overflowX))
			.slice(0, 8).map(e => e.tagName + "#" + e.id + "." + e.className + " " + Math.round(e.getBoundingClientRect().right));
		const columns = [...document.querySelectorAll("table")].filter(t => t.getBoundingClientRect().right > d.clientWidth + 0.5)
			.map(t => "#" + t.id + " columns " + [...t.querySelectorAll("thead th")].map(th => th.innerText + "=" + Math.round(th.getBoundingClientRect().width)).join(" "));
		const narrowest = [...document.querySelectorAll("table")].map(t => {
			t.style.width = "min-content"; t.style.minWidth = "0";
			const w = Math.round(t.getBoundingClientRect().width);
			t.style.width = ""; t.style.minWidth = "";
			return "#" + t.id + " " + w;
		});
		return {ScrollWidth: d.scrollWidth, ClientWidth: d.clientWidth, Wide: wide.concat(columns), Narrowest: narrowest}; })()`, &fit)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("screen %d px; narrowest the tables can be (px): %v", fit.ClientWidth, fit.Narrowest)
	if fit.ScrollWidth > fit.ClientWidth || len(fit.Wide) > 0 {
		t.Errorf("the page is %d px wide on a screen of %d px; too wide: %v", fit.ScrollWidth, fit.ClientWidth, fit.Wide)
	}
}

func evaluate(ctx context.Context, expr string, out any) error {
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// screenshot saves the whole page as name in $LIVESWITCH_TEST_SCREENSHOTS,
// or in the test's artifact directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		dir = t.ArtifactDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes; set %s=DIR to keep it elsewhere)", path, len(png), screenshotsEnv)
}

// startUnlistedMediaServer posts the start of a media server that never
// registers, which the Gateway does not list (reconciliation leaves it
// alone), and returns its id.
func startUnlistedMediaServer(t *testing.T, p *process) string {
	t.Helper()
	const id = "ms-never-registered"
	ev := fmt.Appendf(nil, `{"timestamp":%d,"origin":"mediaserver","type":"mediaserver.started","mediaserver":`+
		`{"id":%q,"machineName":"media-7","region":"us-east","deploymentId":"prod","coreCount":8,"version":"1.24.2.0"}}`,
		time.Now().UnixMilli(), id)
	if code := post(t, p.url("/webhook"), ev); code != http.StatusNoContent {
		t.Fatalf("starting %s: %d", id, code)
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
