package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// local is the backend of an exporter that owns its fleet: each group is
// folded here and its changed records committed to the store (if any) before
// they are published.
type local struct {
	w     *Writer
	store storage.Store // nil: in memory only
	// folder serves the request committing (one at a time).
	folder folder
}

func (l *local) restore(ctx context.Context) error {
	if l.store == nil {
		return nil
	}
	servers := make(map[Key]*Server)
	err := l.store.Load(ctx, func(key string, value []byte) error {
		if key == gatewayRecordKey {
			return l.w.fleet.restoreGateway(value)
		}
		var s Server
		if err := json.Unmarshal(value, &s); err != nil || s.Info.ID == "" || recordKey(s.Key()) != key {
			return fmt.Errorf("storage record %q is not a valid server record", key)
		}
		servers[s.Key()] = &s
		return nil
	})
	if err != nil {
		return err
	}
	l.w.fleet.publish(servers, nil, &Stats{})
	return nil
}

func (l *local) commit(group []*request) {
	st, results, delta := l.folder.fold(l.w.fleet, l.w.opts.Limits, l.folder.commands(group))
	if err := l.persist(st); err != nil {
		answerAll(group, Result{}, l.w.storageFailed(err, len(group)))
		return
	}
	l.w.fleet.setStorageUp(true)
	l.w.publish(st, &delta)
	for i, r := range group {
		r.answer(results[i], nil)
	}
}

func (l *local) persist(st *staging) error {
	changes := st.changes
	if l.store == nil || (len(changes) == 0 && st.gateway == nil) {
		return nil
	}
	b := &storage.Batch{Puts: make(map[string][]byte, len(changes))}
	for k, s := range changes {
		if s == nil {
			b.Deletes = append(b.Deletes, recordKey(k))
			continue
		}
		value, err := json.Marshal(s)
		if err != nil {
			return err
		}
		b.Puts[recordKey(k)] = value
	}
	if err := st.putGateway(b); err != nil {
		return err
	}
	return l.store.Commit(context.Background(), b)
}

// claim: an exporter alone does every duty itself.
func (*local) claim(context.Context, string, time.Duration) bool { return true }

// healthy: a local store is retried by the next webhook, and taking the
// exporter out of a load balancer would stop the webhooks that retry it.
func (*local) healthy() bool { return true }

func (*local) close() {}

// gatewayRecordKey names the view's record in a Store. Server records are
// named "<origin>/<id>" with origins of [a-z0-9_], so a key starting with
// '#' can never be a server's.
const gatewayRecordKey = "#gateway"

// decodeGatewayView reads a stored view; a view that does not pass the
// observation's rules is an error, never skipped, as a server record is.
func decodeGatewayView(data []byte) (*GatewayView, error) {
	var v GatewayView
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("not a Gateway view: %w", err)
	}
	if err := v.Validate(); err != nil {
		return nil, fmt.Errorf("Gateway view: %w", err)
	}
	return &v, nil
}

// restoreGateway loads the view stored under gatewayRecordKey.
func (f *Fleet) restoreGateway(data []byte) error {
	v, err := decodeGatewayView(data)
	if err != nil {
		return fmt.Errorf("storage record %q: %w", gatewayRecordKey, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gateway = v
	return nil
}

// putGateway adds the staged view, if the group changed it, to b: it is
// committed with the servers it changed, in one batch.
func (st *staging) putGateway(b *storage.Batch) error {
	if st.gateway == nil {
		return nil
	}
	value, err := json.Marshal(st.gateway)
	if err != nil {
		return err
	}
	b.Puts[gatewayRecordKey] = value
	return nil
}
