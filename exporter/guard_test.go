package exporter

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/internal/testenv"
)

// okHandler stands behind the guard in these tests: it says the request
// got through.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })

func TestWriteGuardToken(t *testing.T) {
	srv := httptest.NewServer(WriteGuard{Token: "s3cret-token"}.Wrap(okHandler))
	defer srv.Close()
	for _, tc := range []struct {
		name, query, header string
		code                int
	}{
		{"bearer header", "", "Bearer s3cret-token", http.StatusNoContent},
		{"bearer, other case", "", "bearer s3cret-token", http.StatusNoContent},
		{"query parameter", "?token=s3cret-token", "", http.StatusNoContent},
		{"missing", "", "", http.StatusUnauthorized},
		{"wrong header", "", "Bearer s3cret-tokeN", http.StatusUnauthorized},
		{"prefix of the token", "?token=s3cret", "", http.StatusUnauthorized},
		{"token plus more", "?token=s3cret-token-and-more", "", http.StatusUnauthorized},
		{"basic scheme", "", "Basic s3cret-token", http.StatusUnauthorized},
		{"wrong header wins over right query", "?token=s3cret-token", "Bearer nope", http.StatusUnauthorized},
		{"empty query", "?token=", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+WebhookPath+tc.query, strings.NewReader("{}"))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, tc.code)
			}
			if tc.code == http.StatusUnauthorized && (resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(string(body), "s3cret")) {
				t.Fatalf("401 without challenge, or echoing the token: %q", body)
			}
		})
	}
}

func TestTokenMatches(t *testing.T) {
	want := sha256.Sum256([]byte("abc"))
	for presented, ok := range map[string]bool{"abc": true, "": false, "ab": false, "abcd": false, "ABC": false} {
		if tokenMatches(presented, want) != ok {
			t.Errorf("tokenMatches(%q) = %v", presented, !ok)
		}
	}
	// No token configured means an empty want never matches an empty token.
	if tokenMatches("", sha256.Sum256(nil)) {
		t.Error("an empty token matched")
	}
}

func TestWriteGuardSourceAddress(t *testing.T) {
	prefixes := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		guard  WriteGuard
		remote string
		xff    []string
		code   int
	}{
		{"allowed peer", WriteGuard{AllowedNets: prefixes("10.1.0.0/16")}, "10.1.2.3:5000", nil, http.StatusNoContent},
		{"other peer", WriteGuard{AllowedNets: prefixes("10.1.0.0/16")}, "10.2.2.3:5000", nil, http.StatusForbidden},
		{"IPv6 peer", WriteGuard{AllowedNets: prefixes("2001:db8::/32")}, "[2001:db8::1]:5000", nil, http.StatusNoContent},
		{"X-Forwarded-For from an untrusted peer is ignored", WriteGuard{AllowedNets: prefixes("10.1.0.0/16")},
			"192.0.2.9:5000", []string{"10.1.2.3"}, http.StatusForbidden},
		{"X-Forwarded-For from a trusted proxy", WriteGuard{AllowedNets: prefixes("10.1.0.0/16"), TrustedProxies: prefixes("192.0.2.0/24")},
			"192.0.2.9:5000", []string{"10.1.2.3"}, http.StatusNoContent},
		{"spoofed left-most hop is not believed", WriteGuard{AllowedNets: prefixes("10.1.0.0/16"), TrustedProxies: prefixes("192.0.2.0/24")},
			"192.0.2.9:5000", []string{"10.1.2.3, 198.51.100.7"}, http.StatusForbidden},
		{"chain of trusted proxies", WriteGuard{AllowedNets: prefixes("10.1.0.0/16"), TrustedProxies: prefixes("192.0.2.0/24")},
			"192.0.2.9:5000", []string{"10.1.2.3", "192.0.2.50"}, http.StatusNoContent},
		{"garbage in X-Forwarded-For", WriteGuard{AllowedNets: prefixes("10.1.0.0/16"), TrustedProxies: prefixes("192.0.2.0/24")},
			"192.0.2.9:5000", []string{"not-an-ip"}, http.StatusForbidden},
		{"trusted proxy without header is the client", WriteGuard{AllowedNets: prefixes("192.0.2.0/24"), TrustedProxies: prefixes("192.0.2.0/24")},
			"192.0.2.9:5000", nil, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, WebhookPath, nil)
			req.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			rec := httptest.NewRecorder()
			tc.guard.Wrap(okHandler).ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("%d, want %d", rec.Code, tc.code)
			}
		})
	}
}

// TestInFlightCap holds the only two webhook slots with requests whose body
// never finishes: a third webhook is answered 503 with Retry-After, and
// scrapes keep being served.
func TestInFlightCap(t *testing.T) {
	srv := newTestServerWith(t, func(c *Config) { c.MaxInFlight = 2 })
	held := make([]*io.PipeWriter, 2)
	t.Cleanup(func() { // before the server's own cleanup, which waits for these requests
		for _, pw := range held {
			if pw != nil {
				pw.CloseWithError(io.ErrUnexpectedEOF)
			}
		}
	})
	done := make(chan int, 2)
	for i := range held {
		pr, pw := io.Pipe()
		held[i] = pw
		go func() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+WebhookPath, pr)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		if _, err := pw.Write([]byte(`{"timestamp":`)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 10*time.Second, "both slots held", func() bool { return srv.inFlight() == 2 })
	resp, err := http.Post(srv.URL+WebhookPath, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third webhook: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code, _ := srv.do(t, "GET", "/metrics", ""); code != http.StatusOK {
		t.Fatalf("/metrics while saturated: %d", code)
	}
	for _, pw := range held {
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}
	for range held {
		<-done
	}
}

// TestLimitInFlight: n requests are served at once and more are answered
// 503; n = 0 (--webhook.max-in-flight=0) is no limit, even past the default
// of 256.
func TestLimitInFlight(t *testing.T) {
	for _, tc := range []struct {
		limit, concurrent, served int
	}{
		{limit: 0, concurrent: 300, served: 300},
		{limit: 3, concurrent: 5, served: 3},
	} {
		t.Run(fmt.Sprintf("limit %d", tc.limit), func(t *testing.T) {
			var active, rejected atomic.Int64
			release := make(chan struct{})
			h := LimitInFlight(tc.limit, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				active.Add(1)
				<-release
				w.WriteHeader(http.StatusNoContent)
			}))
			codes := make(chan int, tc.concurrent)
			for range tc.concurrent {
				go func() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, WebhookPath, nil))
					if rec.Code == http.StatusServiceUnavailable {
						rejected.Add(1)
					}
					codes <- rec.Code
				}()
			}
			testenv.WaitFor(t, 10*time.Second, "every request served or rejected", func() bool {
				return active.Load()+rejected.Load() == int64(tc.concurrent)
			})
			close(release)
			count := map[int]int{}
			for range tc.concurrent {
				count[<-codes]++
			}
			if count[http.StatusNoContent] != tc.served || count[http.StatusServiceUnavailable] != tc.concurrent-tc.served {
				t.Fatalf("answers %v; want %d served at once, the rest 503", count, tc.served)
			}
		})
	}
}
