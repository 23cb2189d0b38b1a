package writer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// local is the backend of an exporter that owns its fleet: each group is
// folded here and its changed records committed to the store (if any) before
// they are published.
type local struct {
	fleet    *fleet.Fleet
	store    storage.Store // nil: in memory only
	folder   *Folder       // serves the request committing (one at a time)
	failures *Failures
}

func newLocal(f *fleet.Fleet, store storage.Store, opts Options) *local {
	return &local{fleet: f, store: store, folder: NewFolder(f, opts), failures: NewFailures(f, opts)}
}

func (l *local) Restore(ctx context.Context) error {
	if l.store == nil {
		return nil
	}
	servers := make(map[fleet.Key]*fleet.Server)
	var view *fleet.GatewayView
	err := l.store.Load(ctx, func(key string, value []byte) (err error) {
		if key == gatewayRecordKey {
			view, err = decodeGatewayView(value)
			return err
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
	l.fleet.Restore(servers, view)
	return nil
}

// CheckRecord reads a record of the store as restoring the fleet does, and
// says why it cannot be restored: embedded.Options.CheckRecord, so that the
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
func decodeServerRecord(key string, value []byte) (*fleet.Server, error) {
	var s fleet.Server
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

func (l *local) Commit(group []*Request) {
	st, results := l.folder.stage(l.folder.commands(group))
	if err := l.persist(st); err != nil {
		l.failures.Refuse(err, group...)
		return
	}
	l.fleet.SetStorageUp(true)
	l.folder.publish(st)
	for i, r := range group {
		r.Answer(results[i], nil)
	}
}

func (l *local) persist(st *fleet.Staging) error {
	changes := st.Changes()
	if l.store == nil || (len(changes) == 0 && st.Gateway() == nil) {
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
	if err := putGateway(b, st.Gateway()); err != nil {
		return err
	}
	return l.store.Commit(context.Background(), b)
}

// Claim: an exporter alone does every duty itself.
func (*local) Claim(context.Context, string, time.Duration) bool { return true }

// Healthy: a local store is retried by the next webhook, and taking the
// exporter out of a load balancer would stop the webhooks that retry it.
func (*local) Healthy() bool { return true }

func (*local) Close() {}

// recordKey names a server's record in the store. Origins never hold a '/',
// so the key is unambiguous whatever the id holds.
func recordKey(k fleet.Key) string { return k.Origin + "/" + k.ID }

// gatewayRecordKey names the view's record in a Store. Server records are
// named "<origin>/<id>" with origins of [a-z0-9_], so a key starting with
// '#' can never be a server's.
const gatewayRecordKey = "#gateway"

// decodeGatewayView reads the view stored under gatewayRecordKey; a view
// that does not pass the observation's rules is an error, never skipped, as
// a server record is.
func decodeGatewayView(data []byte) (*fleet.GatewayView, error) {
	var v fleet.GatewayView
	err := json.Unmarshal(data, &v)
	if err != nil {
		err = fmt.Errorf("not a Gateway view: %w", err)
	} else if err = v.Validate(); err != nil {
		err = fmt.Errorf("Gateway view: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("storage record %q: %w", gatewayRecordKey, err)
	}
	return &v, nil
}

// putGateway adds the staged view, if the group changed it (view not nil),
// to b: it is committed with the servers it changed, in one batch.
func putGateway(b *storage.Batch, view *fleet.GatewayView) error {
	if view == nil {
		return nil
	}
	value, err := json.Marshal(view)
	if err != nil {
		return err
	}
	b.Puts[gatewayRecordKey] = value
	return nil
}
