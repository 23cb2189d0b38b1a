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
// probes, follows the log, keeps the log's keys (no eviction) and has room.
type health struct {
	fleet  *fleet.Fleet
	logger *slog.Logger

	mu        sync.Mutex
	lastProbe time.Time // last probe the store answered
	following bool      // the follower read the log without error last
	evicts    string    // the eviction policy, when it may evict the log
	full      bool      // the store refuses writes for lack of memory
	reason    string    // why not ready, as last logged
}

func (h *health) init(f *fleet.Fleet, logger *slog.Logger) {
	h.fleet, h.logger, h.following = f, logger, true
}

// ok reports whether the replica is ready.
func (h *health) ok() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.whyNot() == ""
}

// whyNot says why the replica is not ready; empty when it is.
func (h *health) whyNot() string {
	switch {
	case time.Since(h.lastProbe) > 2*probeInterval+probeTimeout:
		return "the shared store does not answer"
	case !h.following:
		return "this replica cannot follow the shared log"
	case h.evicts != "":
		return "Redis may evict the exporter's keys (maxmemory-policy " + h.evicts +
			"): set maxmemory-policy to noeviction (or a volatile-* policy)"
	case h.full:
		return "Redis is out of memory and refuses writes"
	}
	return ""
}

// update applies change and logs when readiness changes.
func (h *health) update(change func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	change()
	why := h.whyNot()
	h.fleet.SetStorageUp(why == "")
	switch {
	case why == h.reason:
	case why == "":
		h.logger.Info("Shared store usable again; replica ready", "servers", h.fleet.Len())
	default:
		h.logger.Error("Replica not ready; webhooks are answered 503 until this is resolved", "reason", why)
	}
	h.reason = why
}

func (h *health) probed(err error) {
	h.update(func() {
		if err == nil {
			h.lastProbe = time.Now()
		}
	})
}

func (h *health) followed()          { h.update(func() { h.following = true }) }
func (h *health) followFailed(error) { h.update(func() { h.following = false }) }
func (h *health) memory(m storage.Memory) {
	h.update(func() {
		h.evicts, h.full = "", m.Full()
		if m.Evicts() {
			h.evicts = m.Policy
		}
	})
}

// appendFailed notes that the store refuses writes for lack of memory.
func (h *health) appendFailed(err error) {
	if err != nil && strings.Contains(err.Error(), "OOM") {
		h.update(func() { h.full = true })
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
		pos := ""
		if p := r.at.Load(); p != nil {
			pos = *p
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		st, err := r.log.Probe(pctx, pos)
		if err == nil && time.Since(lastMemory) >= memoryInterval {
			err = r.checkMemory(pctx)
			lastMemory = time.Now()
		}
		cancel()
		r.health.probed(err)
		if err == nil && (st.Loss != storage.LossNone || !st.Current || st.Lost) && !st.Rebuilding {
			r.raiseAlarm()
		}
	}
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
