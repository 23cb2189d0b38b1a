package storage

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Timings of the probe's housekeeping.
const (
	// orphanLockTTL is the expiry a probe gives a rebuild lock that has
	// none (left by hand, or by a version that set none): its holder, if
	// it lives, has that long to finish (a rebuild takes milliseconds).
	orphanLockTTL = 3 * time.Second
	// presenceKept is how long a replica's presence stays in Redis after
	// its last probe; a probe drops older ones.
	presenceKept = time.Minute
)

// probeFixed is how many values the probe script returns before the peers.
const probeFixed = 14

// Probe implements Log. It also learns how far Redis's clock is from this
// process's, for the deadlines of appends.
func (r *Redis) Probe(ctx context.Context, self Presence) (State, error) {
	posEpoch, posID := splitPosition(self.Position)
	sent := time.Now()
	vals, err := probeScript.Run(ctx, r.client, []string{r.epoch, r.snapshot, r.log, r.rebuild, r.replicas},
		r.owner, posID, strings.Join([]string{self.Position, self.Checked, self.Digest}, "|"),
		orphanLockTTL.Milliseconds(), presenceKept.Milliseconds()).StringSlice()
	if err != nil {
		return State{}, refusal("probing the log", err)
	}
	if len(vals) < probeFixed || (len(vals)-probeFixed)%3 != 0 {
		return State{}, fmt.Errorf("probe answered %d values", len(vals))
	}
	now, _ := strconv.ParseInt(vals[7], 10, 64)
	mid := sent.Add(time.Since(sent) / 2)
	r.offsetMs.Store(now - mid.UnixMilli())
	p := probed{epoch: vals[0], snapEpoch: vals[1], snapThrough: vals[2], last: vals[3], lastEpoch: vals[4],
		epochKind: vals[8], snapKind: vals[9], logKind: vals[10]}
	p.fromStart = p.epoch != "" && vals[11] == p.epoch
	st := State{Now: now, Epoch: p.epoch, Present: vals[5] == "1", Rebuilding: vals[6] == "1",
		Current: posEpoch != "" && posEpoch == p.epoch, WriteRefused: vals[12]}
	if vals[13] != "" {
		st.Repaired = strings.Split(vals[13], "\n")
	}
	st.Loss, st.Detail = p.loss(r)
	st.Lost = st.Loss == LossNone && st.Current && posID != "" && !st.Present && idAfter(posID, p.snapThrough)
	if st.Lost {
		st.Detail = fmt.Sprintf("entry %s, which this replica folded, is gone from the log, which ends at %s", posID, p.last)
	}
	snapshot := position(p.snapEpoch, p.snapThrough)
	for i := probeFixed; i+2 < len(vals); i += 3 {
		st.Peers = append(st.Peers, parsePeer(vals[i], vals[i+1], vals[i+2] == "1", snapshot))
	}
	return st, nil
}

// parsePeer reads a presence as the probe script returns it:
// "<ms>|<position>|<checked>|<digest>".
func parsePeer(name, value string, inLog bool, snapshot string) Peer {
	parts := strings.SplitN(value, "|", 4)
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	ms, _ := strconv.ParseInt(parts[0], 10, 64)
	p := Peer{Name: name, PublishedMs: ms, Presence: Presence{Position: parts[1], Checked: parts[2], Digest: parts[3]}}
	p.Covered = inLog || Covered(snapshot, p.Position)
	return p
}

// probed is the raw state of the log's keys; a key of another type than the
// log put there reads as absent, and its kind is kept to say so.
type probed struct {
	epoch, snapEpoch, snapThrough, last, lastEpoch string
	epochKind, snapKind, logKind                   string
	// fromStart: the snapshot says the epoch's stream exists from its
	// start, so that a missing stream is a loss even before the first
	// snapshot (versions before this one did not create it).
	fromStart bool
}

var streamIDRE = regexp.MustCompile(`^\d+-\d+$`)

// loss says which part of the log is missing, if any.
func (p probed) loss(r *Redis) (Loss, string) {
	wrong := func(key, kind, want string) string {
		return fmt.Sprintf("%s holds a %s, not a %s (overwritten by something other than the exporter)", key, kind, want)
	}
	logWrong := p.logKind != "none" && p.logKind != "stream"
	switch {
	case p.epoch == "" && p.snapEpoch == "" && p.last == "":
		if p.epochKind != "none" || p.snapKind != "none" || logWrong {
			return LossAll, fmt.Sprintf("none of the log's keys holds what the exporter put there (%s is a %s, %s a %s, %s a %s)",
				r.epoch, p.epochKind, r.snapshot, p.snapKind, r.log, p.logKind)
		}
		return LossAll, "Redis holds none of the log's keys (flushed, evicted, or a failover to an empty Redis)"
	case p.epoch == "" && p.epochKind != "none":
		return LossEpoch, wrong(r.epoch, p.epochKind, "string") + ": the log's epoch is lost"
	case p.epoch == "":
		return LossEpoch, "the key naming the log's epoch is gone"
	case p.snapEpoch == "" && p.snapKind != "none" && p.snapKind != "hash":
		return LossSnapshot, wrong(r.snapshot, p.snapKind, "hash") + ": the log's snapshot is lost"
	case p.snapEpoch == "":
		return LossSnapshot, "the log's snapshot is gone"
	case p.snapEpoch != p.epoch:
		return LossSnapshot, "the snapshot belongs to another epoch of the log"
	case p.snapThrough != "" && !streamIDRE.MatchString(p.snapThrough):
		return LossSnapshot, fmt.Sprintf("the snapshot names no entry of the log (through %q)", p.snapThrough)
	case logWrong:
		return LossLog, wrong(r.log, p.logKind, "stream") + ": the log's entries are lost"
	case p.logKind == "none" && (p.snapThrough != "" || p.fromStart):
		return LossLog, "the log's entries are gone"
	case p.last == "" && p.snapThrough != "":
		return LossLog, "the log's entries are gone"
	case p.last != "" && p.lastEpoch != p.epoch:
		return LossLog, "the log holds entries of another epoch"
	}
	return LossNone, ""
}
