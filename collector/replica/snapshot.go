package replica

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// The fleet counts losses by storage.Loss in an array of its own size;
// the two must agree (a negative array length otherwise).
var (
	_ [fleet.NumLosses - storage.NumLosses]struct{}
	_ [storage.NumLosses - fleet.NumLosses]struct{}
)

// snapshotData is a replica's fleet as saved in the shared store: the servers,
// the counters and the Gateway view that every replica derives from the log
// alike.
type snapshotData struct {
	Servers        []fleet.Server                 `json:"servers"`
	Outcomes       [fleet.NumOutcomes]uint64      `json:"outcomes"`
	Forgotten      [fleet.NumForgetReasons]uint64 `json:"forgotten"`
	DataLoss       [fleet.NumLosses]uint64        `json:"data_loss"`
	LastReceivedMs int64                          `json:"last_received_ms"`
	Gateway        *fleet.GatewayView             `json:"gateway,omitempty"`
}

func encodeSnapshot(snap *fleet.Snapshot) ([]byte, error) {
	d := snapshotData{Servers: snap.Servers, Outcomes: snap.Stats.Outcomes,
		Forgotten: snap.Stats.Forgotten, DataLoss: snap.Stats.DataLoss, LastReceivedMs: snap.Stats.LastReceivedMs,
		Gateway: snap.Gateway}
	d.Outcomes[fleet.OutcomeInvalid] = 0 // counted by the replica that received them
	return json.Marshal(&d)
}

// replaceFleet replaces the fleet with a saved snapshot; no data is the
// empty fleet. A server that cannot be read is an error, as in a local
// store, and leaves the fleet as it was.
func replaceFleet(f *fleet.Fleet, data []byte) error {
	servers := make(map[fleet.Key]*fleet.Server)
	if len(data) == 0 {
		f.Replace(servers, &fleet.Stats{}, nil)
		return nil
	}
	var d snapshotData
	if err := json.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("not a fleet snapshot: %w", err)
	}
	for i := range d.Servers {
		s := &d.Servers[i]
		if s.Info.ID == "" || s.Origin == "" {
			return fmt.Errorf("server %d of the snapshot has no origin or id", i)
		}
		servers[s.Key()] = s
	}
	if d.Gateway != nil {
		if err := d.Gateway.Validate(); err != nil {
			return fmt.Errorf("snapshot's Gateway view: %w", err)
		}
	}
	folded := fleet.Stats{Outcomes: d.Outcomes, Forgotten: d.Forgotten, DataLoss: d.DataLoss, LastReceivedMs: d.LastReceivedMs}
	f.Replace(servers, &folded, d.Gateway)
	return nil
}

// maybeSave saves a snapshot of the fleet as of the position just folded, if
// one is due and no other replica claimed the duty. It runs in the follower,
// where the fleet and the position agree; the writing happens aside.
func (r *replica) maybeSave(ctx context.Context) {
	now := r.now()
	if r.saving.Load() || now.Sub(r.lastSave) < snapshotInterval {
		return
	}
	r.lastSave = now
	if !r.Claim(ctx, "snapshot", snapshotInterval) {
		return
	}
	snap, through := r.fleet.FoldedSnapshot(), r.position
	r.saving.Store(true)
	r.saves.Add(1)
	go func() {
		defer r.saves.Done()
		defer r.saving.Store(false)
		data, err := encodeSnapshot(&snap)
		if err == nil {
			err = r.log.SaveSnapshot(ctx, through, data)
		}
		if err != nil && ctx.Err() == nil {
			r.logger.Warn("Saving a fleet snapshot failed; the log grows until the next one", "err", err)
			return
		}
		r.logger.Debug("Fleet snapshot saved", "through", through, "servers", len(snap.Servers), "bytes", len(data))
	}()
}
