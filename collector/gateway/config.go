package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config says where the Gateway's API is and how to reach it.
type Config struct {
	// URL is the base of the admin REST API, e.g.
	// http://gateway:9090/admin/api.
	URL string
	// Key is sent as X-API-Key; empty sends none. It is never logged.
	Key string
	// Interval spaces the polls; Timeout bounds each request.
	Interval, Timeout time.Duration
	// CAPEM holds PEM certificates trusted besides the system's, for a
	// Gateway whose certificate a private CA issued.
	CAPEM []byte
	// InsecureSkipVerify accepts any certificate: for tests only.
	InsecureSkipVerify bool
	// MaxMediaServers refuses a list longer than this (0: no cap), so that
	// the API cannot grow an observation past what the fleet may track.
	MaxMediaServers int
	Logger          *slog.Logger
	// Now is the exporter's clock; tests may inject another.
	Now func() time.Time
}

// Limits of what one poll accepts.
const (
	// maxBodyBytes bounds each answer, read or not.
	maxBodyBytes = 16 << 20
	// maxApplications bounds the applications of one poll: each costs a
	// request and five series.
	maxApplications = 1000
	// fetchConcurrency is how many application snapshots are requested at
	// once.
	fetchConcurrency = 4
)

// baseURL checks the configured URL. Its errors never repeat the URL, which
// an operator may have given with a secret in it.
func baseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	switch {
	case err != nil:
		return nil, errors.New("--liveswitch.api-url is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("--liveswitch.api-url must start with http:// or https://")
	case u.Host == "":
		return nil, errors.New("--liveswitch.api-url has no host")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("--liveswitch.api-url must have no user info, query or fragment (the key goes in --liveswitch.api-key-file)")
	}
	return u, nil
}

// Validate checks the configuration as New does, without contacting the
// Gateway (the URL, the durations, the key, the CA certificates), so that
// the program can refuse a bad one before it opens its store.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return err
	}
	_, err := c.httpClient()
	return err
}

func (c *Config) validate() error {
	if c.Interval <= 0 || c.Timeout <= 0 {
		return errors.New("--liveswitch.api-interval and --liveswitch.api-timeout must be positive")
	}
	if strings.ContainsAny(c.Key, "\r\n") {
		return errors.New("the API key holds a line break")
	}
	_, err := baseURL(c.URL)
	return err
}

// httpClient is the client of the API: the configured TLS, and no
// redirects, since following one would send the key to wherever it points.
func (c *Config) httpClient() (*http.Client, error) {
	tlsConfig := &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // an explicit, warned-about flag
	if len(c.CAPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(c.CAPEM) {
			return nil, fmt.Errorf("no PEM certificate in --liveswitch.api-ca-file")
		}
		tlsConfig.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.MaxIdleConnsPerHost = fetchConcurrency
	return &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
