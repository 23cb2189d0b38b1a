package writer

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
	"github.com/liveswitch-exporter/liveswitch_exporter/internal/ratelog"
)

// Backend is where a Writer's groups of commands go: it makes each group
// durable, folds it into the fleet and answers its requests. The writer's
// own backend commits to a storage.Store (New); collector/replica shares
// the fleet with other exporters through a storage.Log, and is the reason
// this interface is exported. A backend folds with a Folder and
// reports a store's failures with Failures, so that every backend applies
// the same rules and answers alike.
type Backend interface {
	// Restore loads the fleet; it must finish before the exporter is ready.
	Restore(ctx context.Context) error
	// Commit makes a group durable and applies it. It answers every
	// request of the group exactly once, now or later. The writer calls it
	// for one group at a time, and reuses the slice once it returns.
	Commit(group []*Request)
	// Claim reports whether this exporter should run a periodic duty now;
	// replicas take turns.
	Claim(ctx context.Context, duty string, ttl time.Duration) bool
	// Healthy reports whether the store accepts writes.
	Healthy() bool
	// Close answers what the backend still holds and releases it; the
	// writer calls it once, when no Commit is under way or will follow.
	Close()
}

// Request is one command submitted to the writer, waiting for its answer.
// A backend answers it exactly once and does not touch it afterwards: the
// writer reuses it.
type Request struct {
	cmd    Command
	result chan outcomeOrErr
	// received is when the request reached the writer, by the real clock.
	received time.Time
}

type outcomeOrErr struct {
	res fleet.Result
	err error
	// commit tells a waiting request to commit the groups that wait, its
	// own included, instead of an answer.
	commit bool
}

// Command is the work the request carries.
func (r *Request) Command() *Command { return &r.cmd }

// Received is when the request reached the writer, by the real clock: a
// replica answers it within its timeout from then.
func (r *Request) Received() time.Time { return r.received }

// Answer gives the request its outcome: a result, or the error it failed
// with (then nothing of it was applied).
func (r *Request) Answer(res fleet.Result, err error) { r.result <- outcomeOrErr{res: res, err: err} }

// requests are reused: a webhook allocates none.
var requests = sync.Pool{New: func() any { return &Request{result: make(chan outcomeOrErr, 1)} }}

func newRequest(cmd Command) *Request {
	r := requests.Get().(*Request)
	r.cmd, r.received = cmd, time.Now()
	return r
}

// release returns a request whose answer was read; no one else holds it.
func (r *Request) release() {
	r.cmd = Command{}
	requests.Put(r)
}

// Commands lists the commands of group, in a new slice: what a backend
// that keeps them past Commit (to append to a log) holds.
func Commands(group []*Request) []*Command {
	cmds := make([]*Command, len(group))
	for i, r := range group {
		cmds[i] = &r.cmd
	}
	return cmds
}

// Folder stages groups of commands on the fleet, one command after the
// other, and publishes what they changed, reporting what the limits did.
// It reuses its memory from one group to the next: whoever folds groups
// one after the other (the request committing, a replica's follower) keeps
// one. What it returns is valid until its next fold.
type Folder struct {
	fleet   *fleet.Fleet
	opts    Options
	st      fleet.Staging
	results []fleet.Result
	cmds    []*Command
	limits  limitLog
}

// NewFolder returns a Folder of fleet f, under the limits of opts.
func NewFolder(f *fleet.Fleet, opts Options) *Folder {
	return &Folder{fleet: f, opts: opts.WithDefaults()}
}

// Apply folds cmds, durable already, and publishes them at once: what a
// backend does with each group once its store holds it. It returns the
// result of each command.
func (fd *Folder) Apply(cmds []*Command) []fleet.Result {
	st, results := fd.stage(cmds)
	fd.publish(st)
	return results
}

// stage folds cmds without publishing them, for a backend that commits the
// changes to its store first.
func (fd *Folder) stage(cmds []*Command) (*fleet.Staging, []fleet.Result) {
	st := &fd.st
	st.Reset(fd.fleet, fd.opts.Limits)
	fd.results = append(fd.results[:0], make([]fleet.Result, len(cmds))...)
	for i, c := range cmds {
		fd.results[i] = c.apply(st)
	}
	return st, fd.results
}

// commands lists the commands of group, in the folder's memory.
func (fd *Folder) commands(group []*Request) []*Command {
	fd.cmds = fd.cmds[:0]
	for _, r := range group {
		fd.cmds = append(fd.cmds, &r.cmd)
	}
	return fd.cmds
}

// publish makes a folded group visible and reports what the limits did.
func (fd *Folder) publish(st *fleet.Staging) {
	fd.fleet.Publish(st)
	fd.logLimits(st.Stats())
}

// limitLog gathers evictions and refusals between two log lines.
type limitLog struct {
	last             time.Time
	evicted, refused uint64
}

// logLimits reports evictions and refusals, at most once a minute.
func (fd *Folder) logLimits(delta *fleet.Stats) {
	l := &fd.limits
	l.evicted += delta.Forgotten[fleet.ForgetEvicted]
	l.refused += delta.Outcomes[fleet.OutcomeRefused]
	if l.evicted+l.refused == 0 || fd.opts.Now().Sub(l.last) < limitLogInterval {
		return
	}
	fd.opts.Logger.Warn("Fleet is at --server.max: stopped servers evicted, new servers refused",
		"max", fd.opts.Limits.MaxServers, "evicted", l.evicted, "refused", l.refused, "since", l.last)
	l.last, l.evicted, l.refused = fd.opts.Now(), 0, 0
}

// Failures answers the requests a store failed to take, for a backend:
// each failure is counted (liveswitch_exporter_storage_errors_total), the
// store is marked down, the log gets one line per interval however many
// webhooks fail, and each request gets a StorageError whose hint suits the
// failure.
type Failures struct {
	fleet  *fleet.Fleet
	logger *slog.Logger
	log    *ratelog.Limiter
}

// NewFailures returns the Failures of fleet f, logging with opts.Logger.
func NewFailures(f *fleet.Fleet, opts Options) *Failures {
	opts = opts.WithDefaults()
	return &Failures{fleet: f, logger: opts.Logger, log: ratelog.New(errorLogInterval, opts.Now)}
}

// Refuse counts and logs the store's failure err to take group, and
// answers each of its requests with it: nothing of them was applied.
func (f *Failures) Refuse(err error, group ...*Request) {
	f.fleet.Count(&fleet.Stats{StorageErrors: 1})
	f.fleet.SetStorageUp(false)
	f.log.Log(f.logger, slog.LevelError, "Storing fleet changes failed; nothing applied, webhooks answered 503",
		"err", err, "requests", len(group))
	answer := storageError(err)
	for _, r := range group {
		r.Answer(fleet.Result{}, answer)
	}
}
