package exporter

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
)

// WriteGuard decides who may write to the fleet (the webhook and the delete
// API). LiveSwitch does not sign server webhooks and is configured with a
// plain URL, so the credentials it can carry are a token in the URL (or an
// Authorization header from a proxy), and its network address.
type WriteGuard struct {
	// Token, when not empty, must come as "Authorization: Bearer <token>"
	// or as the "token" query parameter.
	Token string
	// AllowedNets, when not empty, are the only source networks accepted.
	AllowedNets []netip.Prefix
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
}

// Wrap returns next behind the guard: 401 without the right token, 403 from
// a source address outside AllowedNets.
func (g WriteGuard) Wrap(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(g.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.Token != "" && !tokenMatches(presentedToken(r), want) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="liveswitch_exporter"`)
			reply(w, http.StatusUnauthorized, "missing or wrong token")
			return
		}
		if len(g.AllowedNets) > 0 {
			if addr, ok := clientAddr(r, g.TrustedProxies); !ok || !containsAddr(g.AllowedNets, addr) {
				reply(w, http.StatusForbidden, "source address not allowed")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// presentedToken is the bearer token of the request, else its token query
// parameter.
func presentedToken(r *http.Request) string {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if scheme, token, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(token)
		}
		return ""
	}
	return r.URL.Query().Get("token")
}

// tokenMatches compares in constant time: both sides are hashed first, so
// neither the content nor the length of the token leaks through timing.
func tokenMatches(presented string, want [sha256.Size]byte) bool {
	got := sha256.Sum256([]byte(presented))
	return presented != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// clientAddr is the address of the client: the peer, or, when the peer is a
// trusted proxy, the right-most address of X-Forwarded-For that is not a
// trusted proxy itself.
func clientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	addr := peer.Addr().Unmap()
	if !containsAddr(trusted, addr) {
		return addr, true
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		a, err := netip.ParseAddr(hop)
		if err != nil {
			return netip.Addr{}, false
		}
		addr = a.Unmap()
		if !containsAddr(trusted, addr) {
			return addr, true
		}
	}
	return addr, true
}

func containsAddr(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// LimitInFlight answers 503 with Retry-After once n requests are being
// served, so that a flood of webhooks cannot exhaust memory or starve the
// scrapes served beside them. n <= 0 means no limit.
func LimitInFlight(n int, next http.Handler) http.Handler {
	if n <= 0 {
		return next
	}
	var inFlight atomic.Int64 // one atomic add each way: cheaper than a channel
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer inFlight.Add(-1)
		if inFlight.Add(1) > int64(n) {
			unavailable(w, "too many webhook requests in flight")
			return
		}
		next.ServeHTTP(w, r)
	})
}
