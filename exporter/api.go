package exporter

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// FleetReader is what the read API and the status page need from the fleet;
// fleet.Fleet is the implementation. Both only read consistent copies.
type FleetReader interface {
	Snapshot() fleet.Snapshot
	Server(k fleet.Key) (fleet.Server, []fleet.AppliedEvent, bool)
}

// ServerJSON is a server as the API shows it.
type ServerJSON struct {
	Origin       string `json:"origin"`
	ID           string `json:"id"`
	State        string `json:"state"`
	Up           bool   `json:"up"`
	Since        Time   `json:"since"`
	Region       string `json:"region"`
	DeploymentID string `json:"deployment_id"`
	MachineName  string `json:"machine_name"`
	Version      string `json:"version"`
	Cores        int    `json:"cores"`
	// LastEvent is the event time of the last applied event, heartbeats
	// included.
	LastEvent Time   `json:"last_event"`
	Flaps     uint64 `json:"registration_flaps"`
	// Events are the server's last applied lifecycle events, newest first;
	// only in the answer about one server.
	Events []EventJSON `json:"events,omitempty"`
}

// EventJSON is one applied lifecycle event.
type EventJSON struct {
	Type         string `json:"type"`
	Kind         string `json:"kind"`
	EventTime    Time   `json:"event_time"`
	ReceivedTime Time   `json:"received_time"`
}

// Time is a millisecond timestamp shown as RFC 3339 in UTC (null when zero).
type Time int64

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t == 0 {
		return []byte("null"), nil
	}
	return json.Marshal(t.Time())
}

// UnmarshalJSON implements json.Unmarshaler, for Go clients of the API.
func (t *Time) UnmarshalJSON(b []byte) error {
	var v *time.Time
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*t = 0
	if v != nil {
		*t = Time(v.UnixMilli())
	}
	return nil
}

// Time converts t to a time.Time in UTC.
func (t Time) Time() time.Time { return time.UnixMilli(int64(t)).UTC() }

func serverJSON(s *fleet.Server) ServerJSON {
	return ServerJSON{
		Origin: s.Origin, ID: s.Info.ID, State: s.State.String(), Up: s.Up(), Since: Time(s.SinceMs()),
		Region: s.Info.Region, DeploymentID: s.Info.DeploymentID, MachineName: s.Info.MachineName,
		Version: s.Info.Version, Cores: s.Info.CoreCount, LastEvent: Time(s.LastEventMs), Flaps: s.Flaps,
	}
}

// serverFilter selects servers by the API's query parameters.
type serverFilter struct{ origin, state, region, deployment string }

func parseServerFilter(r *http.Request) (serverFilter, string) {
	q := r.URL.Query()
	f := serverFilter{q.Get("origin"), q.Get("state"), q.Get("region"), q.Get("deployment_id")}
	if _, ok := fleet.ParseState(f.state); f.state != "" && !ok {
		return f, "state must be one of running, registered, unregistered, stopped"
	}
	return f, ""
}

func (f serverFilter) match(s *fleet.Server) bool {
	return (f.origin == "" || f.origin == s.Origin) && (f.state == "" || f.state == s.State.String()) &&
		(f.region == "" || f.region == s.Info.Region) && (f.deployment == "" || f.deployment == s.Info.DeploymentID)
}

// ServersHandler answers GET /api/v1/servers: every tracked server, sorted by
// origin and id, filtered by ?origin=, ?state=, ?region=, ?deployment_id=.
func ServersHandler(reader FleetReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		filter, problem := parseServerFilter(r)
		if problem != "" {
			writeJSONError(w, http.StatusBadRequest, problem)
			return
		}
		snap := reader.Snapshot()
		out := struct {
			Count   int          `json:"count"`
			Servers []ServerJSON `json:"servers"`
		}{Servers: []ServerJSON{}}
		for i := range snap.Servers {
			if filter.match(&snap.Servers[i]) {
				out.Servers = append(out.Servers, serverJSON(&snap.Servers[i]))
			}
		}
		out.Count = len(out.Servers)
		writeJSON(w, http.StatusOK, out)
	})
}

// ServerHandler answers GET /api/v1/servers/{origin}/{id}: one server with
// its last applied lifecycle events, or 404.
func ServerHandler(reader FleetReader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, events, ok := reader.Server(fleet.Key{Origin: r.PathValue("origin"), ID: r.PathValue("id")})
		if !ok {
			writeJSONError(w, http.StatusNotFound, "no such server")
			return
		}
		out := serverJSON(&s)
		out.Events = make([]EventJSON, 0, len(events))
		for _, e := range events {
			out.Events = append(out.Events, EventJSON{
				Type: s.Origin + "." + e.Action.String(), Kind: e.Action.String(),
				EventTime: Time(e.EventMs), ReceivedTime: Time(e.ReceivedMs),
			})
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// EventsHandler answers GET /api/v1/events: the last webhook deliveries this
// exporter received, newest first.
func EventsHandler(log *DeliveryLog) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, struct {
			Deliveries []Delivery `json:"deliveries"`
		}{log.Recent()})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}
