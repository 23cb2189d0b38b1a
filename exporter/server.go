package exporter

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
)

// Timeouts of the HTTP servers. ReadHeader and Read cut off clients that send
// headers or bodies byte by byte (slowloris); Write is generous for scrapes of
// a large fleet.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// DefaultTimeouts are the timeouts used when the operator sets none.
var DefaultTimeouts = Timeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 60 * time.Second, Idle: 2 * time.Minute}

const shutdownTimeout = 30 * time.Second

// Endpoint is one HTTP surface: a handler on listeners bound beforehand
// (see Listen), with TLS and basic auth per its exporter-toolkit web
// config file (empty: plain HTTP).
type Endpoint struct {
	Handler       http.Handler
	Listeners     []net.Listener
	WebConfigFile string
}

// Listen binds a TCP listener to every address at once, so that a start
// that cannot listen (an address malformed, unknown or in use) is refused
// before anything else happens. On failure it closes what it bound.
func Listen(addresses []string) ([]net.Listener, error) {
	if len(addresses) == 0 {
		return nil, errors.New("no address to listen on")
	}
	listeners := make([]net.Listener, 0, len(addresses))
	for _, a := range addresses {
		l, err := listen(a)
		if err != nil {
			CloseListeners(listeners)
			return nil, err
		}
		listeners = append(listeners, l)
	}
	return listeners, nil
}

func listen(address string) (net.Listener, error) {
	if strings.TrimSpace(address) == "" {
		return nil, errors.New("an empty address")
	}
	return net.Listen("tcp", address)
}

// CloseListeners closes listeners that Serve will not serve.
func CloseListeners(listeners []net.Listener) {
	for _, l := range listeners {
		_ = l.Close()
	}
}

// Serve runs every endpoint until ctx is cancelled, then shuts them down
// gracefully, finishing requests in flight. If one listener fails, the
// others are shut down and its error is returned. Each listener has an
// http.Server of its own (exporter-toolkit wraps a server's handler when
// it serves TLS, which must not happen twice to one server).
func Serve(ctx context.Context, logger *slog.Logger, t Timeouts, endpoints ...Endpoint) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var servers []*http.Server
	n := 0
	for _, e := range endpoints {
		n += len(e.Listeners)
	}
	errc := make(chan error, n)
	systemd := false
	for _, e := range endpoints {
		flags := &web.FlagConfig{WebListenAddresses: &[]string{}, WebSystemdSocket: &systemd, WebConfigFile: &e.WebConfigFile}
		for _, l := range e.Listeners {
			server := &http.Server{
				Handler:           e.Handler,
				ReadHeaderTimeout: t.ReadHeader,
				ReadTimeout:       t.Read,
				WriteTimeout:      t.Write,
				IdleTimeout:       t.Idle,
				ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
			}
			servers = append(servers, server)
			go func() {
				err := web.Serve(l, server, flags, logger)
				if errors.Is(err, http.ErrServerClosed) {
					err = nil
				}
				errc <- err
				cancel()
			}()
		}
	}
	<-ctx.Done()
	logger.Info("Shutting down: finishing requests in flight")
	shutdownCtx, stop := context.WithTimeout(context.Background(), shutdownTimeout)
	defer stop()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Go(func() { _ = s.Shutdown(shutdownCtx) })
	}
	wg.Wait()
	var first error
	for range servers {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}
