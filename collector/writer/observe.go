package writer

import (
	"context"
	"fmt"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// Observe applies what the Gateway's REST API said. Like Ingest, it returns
// once the observation is durable and folded, or an error wrapping
// ErrStorage with nothing applied. An observation that fails Validate is
// refused before anything is written.
func (w *Writer) Observe(ctx context.Context, obs *fleet.Observation) error {
	if err := obs.Validate(); err != nil {
		return fmt.Errorf("invalid observation: %w", err)
	}
	_, err := w.submit(ctx, Command{Observation: obs})
	return err
}

// Claim reports whether this exporter should do a periodic duty now, such as
// polling the Gateway: alone it always should; replicas sharing a log take
// turns, so that one of them does it for all.
func (w *Writer) Claim(ctx context.Context, duty string, ttl time.Duration) bool {
	return w.backend.Claim(ctx, duty, ttl)
}

// PollFailed records that this exporter's poll of the Gateway's API failed
// at t. Nothing is written: the fleet keeps its last good observation, and
// liveswitch_api_up of this exporter turns 0 until a later poll succeeds.
func (w *Writer) PollFailed(t time.Time) { w.fleet.PollFailed(t) }
