package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// The answers, as LiveSwitch's own tools model them. encoding/json matches
// member names case-insensitively, so camelCase and PascalCase both fit;
// unknown members are ignored; a member that is missing or null stays nil:
// unknown, not zero. ipAddresses and publicIPAddress are not read: no series
// uses them.
type mediaServerAnswer struct {
	ID           *string  `json:"id"`
	Region       *string  `json:"region"`
	DeploymentID *string  `json:"deploymentId"`
	Version      *string  `json:"version"`
	CoreCount    *int     `json:"coreCount"`
	UsedCapacity *float64 `json:"usedCapacity"`
	Available    *bool    `json:"available"`
	Active       *bool    `json:"active"`
	Draining     *bool    `json:"draining"`
	OverCapacity *bool    `json:"overCapacity"`
}

type applicationAnswer struct {
	ID              *string `json:"id"`
	ChannelCount    *int64  `json:"channelCount"`
	ClientCount     *int64  `json:"clientCount"`
	ConnectionCount *int64  `json:"connectionCount"`
	UserCount       *int64  `json:"userCount"`
	DeviceCount     *int64  `json:"deviceCount"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// decodeMediaServers reads the bare JSON array of GET /v1/mediaservers.
func decodeMediaServers(body []byte) ([]fleet.MediaServerFacts, error) {
	var answers []mediaServerAnswer
	if err := decode(body, '[', &answers); err != nil {
		return nil, err
	}
	out := make([]fleet.MediaServerFacts, len(answers))
	for i, a := range answers {
		out[i] = fleet.MediaServerFacts{
			ID: str(a.ID), Region: str(a.Region), DeploymentID: str(a.DeploymentID), Version: str(a.Version),
			UsedCapacity: a.UsedCapacity, Available: a.Available, Active: a.Active, Draining: a.Draining, OverCapacity: a.OverCapacity,
		}
		if a.CoreCount != nil {
			out[i].CoreCount = *a.CoreCount
		}
	}
	return out, nil
}

// decodeApplicationIDs reads GET /v1.0/applications: an array of ids, each
// a string or an object with an id (the format is not documented).
func decodeApplicationIDs(body []byte) ([]string, error) {
	var raw []json.RawMessage
	if err := decode(body, '[', &raw); err != nil {
		return nil, err
	}
	if len(raw) > maxApplications {
		return nil, fmt.Errorf("lists %d applications, more than the %d one poll reads", len(raw), maxApplications)
	}
	ids := make([]string, len(raw))
	for i, r := range raw {
		var id string
		if err := json.Unmarshal(r, &id); err != nil {
			var obj struct {
				ID string `json:"id"`
			}
			if r[0] != '{' || json.Unmarshal(r, &obj) != nil {
				return nil, fmt.Errorf("application %d is neither an id nor an object with an id", i)
			}
			id = obj.ID
		}
		ids[i] = id
	}
	return ids, nil
}

// decodeApplication reads GET /v1.0/applications/{id}; an id in the answer
// must be the one asked for.
func decodeApplication(body []byte, id string) (fleet.ApplicationFacts, error) {
	var a applicationAnswer
	if err := decode(body, '{', &a); err != nil {
		return fleet.ApplicationFacts{}, err
	}
	if a.ID != nil && *a.ID != id {
		return fleet.ApplicationFacts{}, errors.New(`the answer's "id" is not the application asked for`)
	}
	return fleet.ApplicationFacts{ID: id, Channels: a.ChannelCount, Clients: a.ClientCount,
		Connections: a.ConnectionCount, Users: a.UserCount, Devices: a.DeviceCount}, nil
}

// decode unmarshals body into v after checking that it opens as wanted (an
// array or an object), with reasons fit for a log line.
func decode(body []byte, open byte, v any) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return errors.New("the answer is empty")
	case trimmed[0] == '<':
		return errors.New("the answer is not JSON but markup (an HTML error page?)")
	case trimmed[0] != open:
		return fmt.Errorf("the answer is not a JSON %s", map[byte]string{'[': "array", '{': "object"}[open])
	}
	err := json.Unmarshal(body, v)
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return fmt.Errorf("%q is a JSON %s, of the wrong type", printable(typeErr.Field, 64), printable(typeErr.Value, 32))
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("the answer is not valid JSON (at byte %d)", syntaxErr.Offset)
	case err != nil:
		return errors.New("the answer is not valid JSON")
	}
	return nil
}
