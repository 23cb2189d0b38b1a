// Command baseline is the bound the ingest benchmark compares the exporter
// with: a bare net/http server, with the exporter's timeouts, whose handler
// only drains the body and answers 204. Nothing can acknowledge a webhook
// faster over HTTP on the same machine.
//
//	go run ./exporter/testdata/baseline -listen 127.0.0.1:19900
package main

import (
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("listen", "err", err)
		os.Exit(1)
	}
	logger.Info("Listening on", "address", l.Addr().String())
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusNoContent)
		}),
	}
	if err := srv.Serve(l); err != nil {
		logger.Error("serve", "err", err)
		os.Exit(1)
	}
}
