package exporter

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// Forgetter removes servers from the fleet on an operator's word.
type Forgetter interface {
	Forget(ctx context.Context, k fleet.Key) (bool, error)
}

// DeleteServerHandler forgets one server at once: an operator retiring a
// machine that never sent stopped. It answers 204 when the server was
// forgotten, 404 when it was not tracked, 503 when the store failed.
// It is mounted as DELETE /api/v1/servers/{origin}/{id}.
func DeleteServerHandler(f Forgetter, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := fleet.Key{Origin: r.PathValue("origin"), ID: r.PathValue("id")}
		found, err := f.Forget(r.Context(), k)
		switch {
		case err != nil:
			logger.Warn("Deleting server failed", "origin", k.Origin, "id", k.ID, "err", err)
			unavailable(w, "not deleted, retry later: "+err.Error())
		case !found:
			reply(w, http.StatusNotFound, "no such server")
		default:
			logger.Info("Server deleted on request", "origin", k.Origin, "id", k.ID, "remote", r.RemoteAddr)
			w.WriteHeader(http.StatusNoContent)
		}
	})
}
