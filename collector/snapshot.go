package collector

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// snapshotData is a replica's fleet as saved in the shared store: the servers,
// the counters and the Gateway view that every replica derives from the log
// alike.
type snapshotData struct {
	Servers        []Server                  `json:"servers"`
	Outcomes       [numOutcomes]uint64       `json:"outcomes"`
	Forgotten      [numReasons]uint64        `json:"forgotten"`
	DataLoss       [storage.NumLosses]uint64 `json:"data_loss"`
	LastReceivedMs int64                     `json:"last_received_ms"`
	Gateway        *GatewayView              `json:"gateway,omitempty"`
}

// sharedState is what a snapshot holds besides the servers.
type sharedState struct {
	Stats
	Gateway *GatewayView
}

func encodeSnapshot(snap *Snapshot) ([]byte, error) {
	d := snapshotData{Servers: snap.Servers, Outcomes: snap.Stats.Outcomes,
		Forgotten: snap.Stats.Forgotten, DataLoss: snap.Stats.DataLoss, LastReceivedMs: snap.Stats.LastReceivedMs,
		Gateway: snap.Gateway}
	d.Outcomes[OutcomeInvalid] = 0 // counted by the replica that received them
	return json.Marshal(&d)
}

// decodeSnapshot reads a saved snapshot; no data is the empty fleet. A server
// that cannot be read is an error, as in a local store.
func decodeSnapshot(data []byte) (map[Key]*Server, *sharedState, error) {
	servers := make(map[Key]*Server)
	shared := &sharedState{}
	if len(data) == 0 {
		return servers, shared, nil
	}
	var d snapshotData
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, nil, fmt.Errorf("not a fleet snapshot: %w", err)
	}
	for i := range d.Servers {
		s := &d.Servers[i]
		if s.Info.ID == "" || s.Origin == "" {
			return nil, nil, fmt.Errorf("server %d of the snapshot has no origin or id", i)
		}
		servers[s.Key()] = s
	}
	if d.Gateway != nil {
		if err := d.Gateway.Validate(); err != nil {
			return nil, nil, fmt.Errorf("snapshot's Gateway view: %w", err)
		}
	}
	shared.Outcomes, shared.Forgotten, shared.DataLoss, shared.LastReceivedMs = d.Outcomes, d.Forgotten, d.DataLoss, d.LastReceivedMs
	shared.Gateway = d.Gateway
	return servers, shared, nil
}

// maybeSave saves a snapshot of the fleet as of the position just folded, if
// one is due and no other replica claimed the duty. It runs in the follower,
// where the fleet and the position agree; the writing happens aside.
func (r *replica) maybeSave(ctx context.Context) {
	now := r.w.opts.Now()
	if r.saving.Load() || now.Sub(r.lastSave) < snapshotInterval {
		return
	}
	r.lastSave = now
	if !r.claim(ctx, "snapshot", snapshotInterval) {
		return
	}
	snap, through := r.w.fleet.sharedSnapshot(), r.position
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
			r.w.logger.Warn("Saving a fleet snapshot failed; the log grows until the next one", "err", err)
			return
		}
		r.w.logger.Debug("Fleet snapshot saved", "through", through, "servers", len(snap.Servers), "bytes", len(data))
	}()
}
