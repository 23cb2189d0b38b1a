package exporter

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
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

// Endpoint is one HTTP server: a handler on the listeners of flags, with TLS
// and basic auth per its exporter-toolkit web config file.
type Endpoint struct {
	Handler http.Handler
	Flags   *web.FlagConfig
}

// Serve runs every endpoint until ctx is cancelled, then shuts them down
// gracefully, finishing requests in flight. If one endpoint fails, the others
// are shut down and its error is returned.
func Serve(ctx context.Context, logger *slog.Logger, t Timeouts, endpoints ...Endpoint) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(endpoints))
	servers := make([]*http.Server, len(endpoints))
	for i, e := range endpoints {
		servers[i] = &http.Server{
			Handler:           e.Handler,
			ReadHeaderTimeout: t.ReadHeader,
			ReadTimeout:       t.Read,
			WriteTimeout:      t.Write,
			IdleTimeout:       t.Idle,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		}
		go func() {
			err := web.ListenAndServe(servers[i], e.Flags, logger)
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			}
			errc <- err
			cancel()
		}()
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
	for range endpoints {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}
