package collector

import (
	"context"
	"encoding/json"
	"errors"
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
		s, err := decodeServerRecord(key, value)
		if err != nil {
			return fmt.Errorf("storage record %q is not a valid server record: %w", key, err)
		}
		servers[s.Key()] = s
		return nil
	})
	if err != nil {
		return err
	}
	l.w.fleet.publish(servers, nil, &Stats{})
	return nil
}

// CheckRecord reads a record of the store as restoring the fleet does, and
// says why it cannot be restored: storage.Options.CheckRecord, so that the
// store counts such a record as damage when it opens, rather than a
// restore that fails at every start.
func CheckRecord(key string, value []byte) error {
	if key == gatewayRecordKey {
		_, err := decodeGatewayView(value)
		return err
	}
	_, err := decodeServerRecord(key, value)
	return err
}

// decodeServerRecord reads the record of one server, stored under key.
func decodeServerRecord(key string, value []byte) (*Server, error) {
	var s Server
	switch err := json.Unmarshal(value, &s); {
	case err != nil:
		return nil, err
	case s.Info.ID == "":
		return nil, errors.New("it names no server")
	case recordKey(s.Key()) != key:
		return nil, fmt.Errorf("it holds server %q", recordKey(s.Key()))
	}
	return &s, nil
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
