package exporter

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/collector/writer"
	"github.com/liveswitch-exporter/liveswitch_exporter/exporter/appsig"
)

// Ingester applies webhook bodies to the fleet. writer.Writer is the
// implementation; the interface keeps this package free of how it is done.
type Ingester interface {
	Ingest(ctx context.Context, body []byte) (fleet.Result, error)
}

// DefaultMaxBodyBytes bounds one webhook body (LiveSwitch batches included).
const DefaultMaxBodyBytes = 1 << 20

// retryAfterSeconds is what a 503 asks LiveSwitch to wait before retrying.
const retryAfterSeconds = 5

// WebhookHandler returns the handler LiveSwitch posts server events to.
//
// It answers 204 when every event was applied, 202 when the body was valid
// but some events were deliberately not applied (duplicates, out of order,
// not about servers), 400 with a one-line reason for a malformed body (nothing
// applied), 413 past maxBody bytes, 415 for a compressed body (so no
// decompression bomb can be sent), 405 for methods other than POST and 503
// while the fleet is not ready or the store fails, so that LiveSwitch retries.
//
// Application webhooks (channel, client, connection events) go to apps
// instead, and are answered alike; 401 when their signature does not hold.
func WebhookHandler(in Ingester, apps *ApplicationRoute, ready func() bool, maxBody int64, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			reply(w, http.StatusMethodNotAllowed, "only POST is accepted")
			return
		}
		if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
			reply(w, http.StatusUnsupportedMediaType, "Content-Encoding "+clipHeader(enc)+" is not accepted; send plain JSON")
			return
		}
		if !ready() {
			unavailable(w, "not ready: the fleet is being restored or its store is unreachable")
			return
		}
		body, err := readBody(w, r, maxBody)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				reply(w, http.StatusRequestEntityTooLarge, "body exceeds "+strconv.FormatInt(maxBody, 10)+" bytes")
				return
			}
			reply(w, http.StatusBadRequest, "reading body: "+err.Error())
			return
		}
		keepBody(w, body)
		res, err := apps.ingest(r, body, in)
		answer(w, r, res, err, logger)
	})
}

// readBody reads a body of at most maxBody bytes: in one buffer of the
// declared length when there is one (LiveSwitch sends it), else growing.
func readBody(w http.ResponseWriter, r *http.Request, maxBody int64) ([]byte, error) {
	n := r.ContentLength
	switch {
	case n > maxBody:
		return nil, &http.MaxBytesError{Limit: maxBody}
	case n < 0:
		return io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.Body, body); err != nil {
		return nil, err
	}
	return body, nil
}

// webhookResult is what became of a webhook's events: fleet.Result, or
// the application tracker's, which also says why events were refused.
type webhookResult interface {
	AllApplied() bool
	Total() int
	String() string
}

// answer replies to a webhook with what became of its events, and logs it.
func answer(w http.ResponseWriter, r *http.Request, res webhookResult, err error, logger *slog.Logger) {
	if err != nil {
		answerError(w, r, err, logger)
		return
	}
	if r.Context().Err() != nil {
		logger.Info("The client went away before the answer; its events were taken all the same",
			"remote", r.RemoteAddr, "outcomes", res.String())
	}
	if res.AllApplied() {
		if logger.Enabled(r.Context(), slog.LevelDebug) {
			logger.Debug("Webhook applied", "remote", r.RemoteAddr, "events", res.Total())
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	outcomes := res.String()
	logger.Debug("Webhook accepted, not all applied", "remote", r.RemoteAddr, "outcomes", outcomes)
	reply(w, http.StatusAccepted, outcomes)
}

// answerError replies to a webhook that was not taken. A 503 names what
// happened and what to do, never a file or an address.
func answerError(w http.ResponseWriter, r *http.Request, err error, logger *slog.Logger) {
	var invalid *event.InvalidError
	var stored *writer.StorageError
	var unsigned *appsig.Error
	switch {
	case errors.As(err, &unsigned): // logged by the route, at most once per interval
		w.Header().Set("WWW-Authenticate", `HMAC-SHA256 header="`+appsig.Header+`"`)
		reply(w, http.StatusUnauthorized, unsigned.Error())
	case errors.As(err, &invalid):
		logger.Info("Webhook rejected", "remote", r.RemoteAddr, "reason", invalid.Error())
		reply(w, http.StatusBadRequest, invalid.Error())
	case errors.As(err, &stored):
		// The writer logs the store's failure, once per interval.
		logger.Debug("Webhook not applied: the store failed", "remote", r.RemoteAddr)
		unavailable(w, stored.Hint)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		logger.Info("The client went away before its events were taken; nothing applied", "remote", r.RemoteAddr)
		unavailable(w, "not applied: the request ended before its events were taken; retry")
	case errors.Is(err, writer.ErrClosed):
		unavailable(w, "not applied: the exporter is shutting down; retry later")
	default:
		logger.Warn("Webhook not applied", "remote", r.RemoteAddr, "err", err)
		unavailable(w, "not applied; retry later")
	}
}

// clipHeader bounds a client-sent value quoted back in a reply.
func clipHeader(s string) string {
	if len(s) > 32 {
		return strconv.Quote(s[:32]) + "…"
	}
	return strconv.Quote(s)
}

func reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	reply(w, http.StatusServiceUnavailable, msg)
}
