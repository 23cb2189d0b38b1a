package fleet

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/event"
)

// Observation is what the LiveSwitch Gateway's REST API said at one poll:
// the media servers it lists and the applications in use. It is the
// exporter's second witness of the fleet, beside the webhooks, and it
// travels as a command through the same writer: durable, ordered with the
// events, folded alike by every replica. Facts the API did not give are
// left unknown (nil or empty), never taken as zero.
type Observation struct {
	// AtMs is the exporter's clock when the poll began; what the
	// observation changes is stamped with it.
	AtMs int64 `json:"t"`
	// IntervalMs is the poller's interval. It travels with the observation
	// so that every replica applies the same reconciliation rule.
	IntervalMs   int64              `json:"i"`
	MediaServers []MediaServerFacts `json:"m,omitempty"`
	Applications []ApplicationFacts `json:"a,omitempty"`
}

// MediaServerFacts is one media server as the Gateway lists it. A nil
// pointer (or an empty string, or a zero core count) means the API did not
// say.
type MediaServerFacts struct {
	ID           string   `json:"id"`
	Region       string   `json:"region,omitempty"`
	DeploymentID string   `json:"deployment_id,omitempty"`
	Version      string   `json:"version,omitempty"`
	CoreCount    int      `json:"cores,omitempty"`
	UsedCapacity *float64 `json:"used_capacity,omitempty"`
	Available    *bool    `json:"available,omitempty"`
	Active       *bool    `json:"active,omitempty"`
	Draining     *bool    `json:"draining,omitempty"`
	OverCapacity *bool    `json:"over_capacity,omitempty"`
}

// ApplicationFacts is one application's snapshot from the API.
type ApplicationFacts struct {
	ID          string `json:"id"`
	Channels    *int64 `json:"channels,omitempty"`
	Clients     *int64 `json:"clients,omitempty"`
	Connections *int64 `json:"connections,omitempty"`
	Users       *int64 `json:"users,omitempty"`
	Devices     *int64 `json:"devices,omitempty"`
}

// maxUsedCapacity bounds a believable usedCapacity: LiveSwitch reports a
// fraction of 1 that may pass 1 for a while, not by orders of magnitude.
const maxUsedCapacity = 100

// info is what the facts tell about the server, in the fleet's terms.
func (m *MediaServerFacts) info() event.Info {
	return event.Info{ID: m.ID, Region: m.Region, DeploymentID: m.DeploymentID, Version: m.Version, CoreCount: m.CoreCount}
}

// Validate checks that every id and fact may become a label or a sample
// value, with the webhook decoder's rules for label values: an answer that
// breaks them is refused whole, like a malformed webhook body.
func (o *Observation) Validate() error {
	if o.AtMs <= 0 || o.IntervalMs <= 0 {
		return errors.New("observation without a time or an interval")
	}
	seen := make(map[string]bool, len(o.MediaServers))
	for i := range o.MediaServers {
		if err := o.MediaServers[i].validate(seen); err != nil {
			return fmt.Errorf("media server %d: %w", i, err)
		}
	}
	clear(seen)
	for i := range o.Applications {
		if err := o.Applications[i].validate(seen); err != nil {
			return fmt.Errorf("application %d: %w", i, err)
		}
	}
	return nil
}

// Validate checks one media server by the rules of Observation.Validate,
// but for an id listed twice, which only the whole list shows. A poller
// skips the items that fail it and keeps the rest (Observation.Validate
// then passes), so that one bad item does not blind the others.
func (m *MediaServerFacts) Validate() error { return m.validate(map[string]bool{}) }

// Validate checks one application as MediaServerFacts.Validate does.
func (a *ApplicationFacts) Validate() error { return a.validate(map[string]bool{}) }

func validateID(id string, seen map[string]bool) error {
	switch {
	case id == "":
		return errors.New(`missing "id"`)
	case seen[id]:
		return errors.New("listed twice")
	}
	seen[id] = true
	return nil
}

func (m *MediaServerFacts) validate(seen map[string]bool) error {
	if err := validateID(m.ID, seen); err != nil {
		return err
	}
	if err := m.info().Validate(); err != nil {
		return err
	}
	if m.CoreCount < 0 || m.CoreCount > event.MaxCoreCount {
		return fmt.Errorf(`"coreCount" is not from 0 to %d`, event.MaxCoreCount)
	}
	if c := m.UsedCapacity; c != nil && (math.IsNaN(*c) || *c < 0 || *c > maxUsedCapacity) {
		return fmt.Errorf(`"usedCapacity" is not from 0 to %d`, maxUsedCapacity)
	}
	return nil
}

func (a *ApplicationFacts) validate(seen map[string]bool) error {
	if err := validateID(a.ID, seen); err != nil {
		return err
	}
	if err := (event.Info{ID: a.ID}).Validate(); err != nil {
		return err
	}
	for _, n := range []*int64{a.Channels, a.Clients, a.Connections, a.Users, a.Devices} {
		if n != nil && *n < 0 {
			return errors.New("a count is negative")
		}
	}
	return nil
}

// sorted returns a copy of the observation's lists ordered by id, so that
// views, snapshots and scrapes built from it are deterministic.
func (o *Observation) sorted() (servers []MediaServerFacts, apps []ApplicationFacts) {
	servers = slices.Clone(o.MediaServers)
	slices.SortFunc(servers, func(a, b MediaServerFacts) int { return cmp.Compare(a.ID, b.ID) })
	apps = slices.Clone(o.Applications)
	slices.SortFunc(apps, func(a, b ApplicationFacts) int { return cmp.Compare(a.ID, b.ID) })
	return servers, apps
}
