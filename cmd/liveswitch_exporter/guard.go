package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/liveswitch-exporter/liveswitch_exporter/exporter"
)

// writeGuard builds the webhook's guard from the flags, reading the token
// file.
func (s *serveCmd) writeGuard() (exporter.WriteGuard, error) {
	g, err := s.networks()
	if err != nil || s.WebhookTokenFile == "" {
		return g, err
	}
	raw, err := os.ReadFile(s.WebhookTokenFile)
	if err != nil {
		return g, fmt.Errorf("reading --webhook.token-file: %w", err)
	}
	g.Token = strings.TrimSpace(string(raw))
	if g.Token == "" {
		return g, errors.New("--webhook.token-file holds no token")
	}
	return g, nil
}

// networks reads the guard's networks from the flags.
func (s *serveCmd) networks() (exporter.WriteGuard, error) {
	var g exporter.WriteGuard
	var err error
	if g.AllowedNets, err = parsePrefixes("--webhook.allowed-cidrs", s.WebhookAllowedCIDRs); err != nil {
		return g, err
	}
	if g.TrustedProxies, err = parsePrefixes("--web.trusted-proxies", s.TrustedProxies); err != nil {
		return g, err
	}
	return g, nil
}

// parsePrefixes reads CIDRs; a bare address stands for itself alone.
func parsePrefixes(flag string, values []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		if !strings.Contains(v, "/") {
			a, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is neither a CIDR nor an address", flag, v)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
