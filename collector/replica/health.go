package replica

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

// health is what a replica knows of its shared store, for /-/ready and
// liveswitch_exporter_storage_up: it is ready while the store answers
// probes, takes writes, holds a whole log that no replica is rebuilding,
// keeps the log's keys (no eviction) and has room, and while this replica
// follows the log. Whatever makes it refuse appends makes it not ready, at
// the first append refused or the first probe that finds it.
type health struct {
	fleet  *fleet.Fleet
	logger *slog.Logger

	mu        sync.Mutex
	lastProbe time.Time // last probe the store answered
	probeErr  error     // why the last probe failed
	following bool      // the follower read the log without error last
	followErr error
	evicts    string // the eviction policy, when it may evict the log
	full      bool   // the store says it is out of memory (INFO)
	refused   string // what the store answered when it refused a write
	oom       bool   // and that answer was that it is out of memory
	broken    string // why the log refuses appends (lost data, a rebuild)
	brokenBy  string // what said so
	reason    string // why not ready, as last logged
	// starting is set until the fleet is restored: a starting replica is
	// not ready anyway, and says why it waits in lines of its own.
	starting bool
}

func (h *health) init(f *fleet.Fleet, logger *slog.Logger) {
	h.fleet, h.logger, h.following, h.starting = f, logger, true, true
}

// started notes that the fleet is restored: from now on, each change of
// readiness is logged.
func (h *health) started() {
	h.update(func() { h.starting, h.following, h.followErr = false, true, nil })
}

// ok reports whether the replica is ready.
func (h *health) ok() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	why, _ := h.whyNot()
	return why == ""
}

// whyNot says why the replica is not ready (empty when it is), and what the
// store answered or what failed, for the log.
func (h *health) whyNot() (reason, detail string) {
	switch {
	case time.Since(h.lastProbe) > 2*probeInterval+probeTimeout && errors.Is(h.probeErr, storage.ErrRefused):
		return "Redis refuses the replica's probes", errText(h.probeErr)
	case time.Since(h.lastProbe) > 2*probeInterval+probeTimeout:
		return "the shared store does not answer", errText(h.probeErr)
	case h.evicts != "":
		return "Redis may evict the exporter's keys (maxmemory-policy " + h.evicts +
			"): set maxmemory-policy to noeviction (or a volatile-* policy)", ""
	case h.full || h.oom:
		return "Redis is out of memory and refuses writes", h.refused
	case h.broken != "":
		return h.broken, h.brokenBy
	case h.refused != "":
		return "Redis refuses writes", h.refused
	case !h.following:
		return "this replica cannot follow the shared log", errText(h.followErr)
	}
	return "", ""
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// update applies change and logs when readiness changes.
func (h *health) update(change func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	change()
	why, detail := h.whyNot()
	h.fleet.SetStorageUp(why == "")
	switch {
	case h.starting:
		return
	case why == h.reason:
	case why == "":
		h.logger.Info("Shared store usable again; replica ready", "servers", h.fleet.Len())
	case detail != "":
		h.logger.Error("Replica not ready; webhooks are answered 503 until this is resolved", "reason", why, "answer", detail)
	default:
		h.logger.Error("Replica not ready; webhooks are answered 503 until this is resolved", "reason", why)
	}
	h.reason = why
}

// probed notes a probe's outcome: the store answered (or not), took its
// write (or said why not), and holds a whole log (or not).
func (h *health) probed(st storage.State, err error) {
	h.update(func() {
		h.probeErr = err
		if err != nil {
			return
		}
		h.lastProbe = time.Now()
		h.refused, h.oom = st.WriteRefused, strings.HasPrefix(st.WriteRefused, "OOM")
		switch {
		case st.Rebuilding:
			h.broken, h.brokenBy = "a replica is rebuilding the shared log; appends are refused until it is done", ""
		case st.Loss != storage.LossNone:
			h.broken, h.brokenBy = "the shared log lost data ("+st.Loss.String()+"); appends are refused until a replica rebuilds it", st.Detail
		case st.Lost:
			h.broken, h.brokenBy = "entries this replica folded are gone from the shared log; it must be rebuilt", st.Detail
		default:
			h.broken, h.brokenBy = "", ""
		}
	})
}

// rebuilt notes that this replica made the log whole again.
func (h *health) rebuilt() { h.update(func() { h.broken, h.brokenBy = "", "" }) }

func (h *health) followed() { h.update(func() { h.following, h.followErr = true, nil }) }
func (h *health) followFailed(err error) {
	h.update(func() { h.following, h.followErr = false, err })
}
func (h *health) memory(m storage.Memory) {
	h.update(func() {
		h.evicts, h.full = "", m.Full()
		if m.Evicts() {
			h.evicts = m.Policy
		}
	})
}

// appendFailed notes what a refused append says of the store: it is full,
// its log is broken or being rebuilt, or it refuses writes. The replica is
// not ready from this append on, until a probe finds the store usable.
func (h *health) appendFailed(err error) {
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrBroken):
		h.update(func() {
			h.broken, h.brokenBy = "the shared log lost data; appends are refused until a replica rebuilds it", err.Error()
		})
	case errors.Is(err, storage.ErrRebuilding):
		h.update(func() {
			h.broken, h.brokenBy = "a replica is rebuilding the shared log; appends are refused until it is done", ""
		})
	case errors.Is(err, storage.ErrRefused):
		h.update(func() {
			h.refused, h.oom = err.Error(), strings.Contains(err.Error(), "OOM")
		})
	}
}

// monitor probes the store every probeInterval until ctx ends: a store
// that stops answering makes the replica not ready within a probe's
// timeout, and a store that lost part of the log raises the alarm for the
// follower, with or without traffic.
func (r *replica) monitor(ctx context.Context) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	lastMemory := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		st, err := r.probe(pctx, r.presence())
		if err == nil && time.Since(lastMemory) >= memoryInterval {
			err = r.checkMemory(pctx)
			lastMemory = time.Now()
		}
		cancel()
		disagrees := err == nil && r.compare(st)
		if err == nil && ((st.Loss != storage.LossNone || !st.Current || st.Lost) && !st.Rebuilding || disagrees) {
			r.raiseAlarm()
		}
	}
}

// probe probes the store, publishing self, and notes what it found: the
// store's health, the other replicas, what the probe repaired.
func (r *replica) probe(ctx context.Context, self storage.Presence) (storage.State, error) {
	st, err := r.log.Probe(ctx, self)
	r.health.probed(st, err)
	if err != nil {
		return st, err
	}
	r.peers.note(st)
	for _, what := range st.Repaired {
		r.logger.Warn("Repaired a key of the shared store", "what", what)
	}
	return st, nil
}

// checkMemory reads the store's memory policy into the replica's health.
func (r *replica) checkMemory(ctx context.Context) error {
	m, err := r.log.Memory(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return err
		}
		r.logger.Debug("Reading the store's memory policy failed", "err", err)
		return nil
	}
	r.health.memory(m)
	return nil
}

// raiseAlarm asks the follower to inspect the log, interrupting the read it
// may be waiting in.
func (r *replica) raiseAlarm() {
	select {
	case r.alarm <- struct{}{}:
	default:
	}
	if cancel := r.interrupt.Load(); cancel != nil {
		(*cancel)()
	}
}

// alarmed reports, once, whether an alarm was raised.
func (r *replica) alarmed() bool {
	select {
	case <-r.alarm:
		return true
	default:
		return false
	}
}
