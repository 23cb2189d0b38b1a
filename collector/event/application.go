package event

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// ApplicationEvent is one channel, client or connection event: what
// LiveSwitch's application webhooks send. It keeps only what the exporter
// counts; the many other members of those objects (roles, tags, memory,
// streams, ...) are not read, so their types do not matter.
type ApplicationEvent struct {
	// Timestamp is the event time in milliseconds since the Unix epoch.
	Timestamp int64
	// Type is the lower-cased event type, e.g. "connection.connected".
	Type string
	// ApplicationID is the application its objects name; empty when none
	// of them carries one.
	ApplicationID string
	// ConnectionID and ConnectionType come from the connection object
	// (its "id" and "type"), when the event has one.
	ConnectionID, ConnectionType string
	// ChannelID is the channel object's "id", ClientID the client
	// object's: what a channel's and a client's events are paired by.
	ChannelID, ClientID string
	// Error is what the connection object's "error" says, for its class
	// (never for a label): a string as sent, an object's text members
	// (code, message, ...) joined by spaces, the kind of any other value
	// ("number", ...); at most maxErrorLen bytes. Empty when the member is
	// missing, null or empty.
	Error string
}

// maxErrorLen bounds the text kept of a connection's error: enough to
// classify it, never exported.
const maxErrorLen = 256

// ErrNotApplications says that a body holds no application event: it is
// the fleet's (server events).
var ErrNotApplications = errors.New("no application event in the body")

// applicationObjects are the objects an application event may carry, in
// the order their applicationId is looked for.
var applicationObjects = []string{"connection", "client", "channel"}

// DecodeApplications parses a webhook body of application events (channel,
// client, connection), one or a batch, with the same bounds as Decode. It
// returns ErrNotApplications when no event of the body is an application
// event, and an *InvalidError, rejecting the body whole, when one is
// malformed or when server events come with them: LiveSwitch sends the two
// families from separate webhooks, and one body must not be half counted
// and half applied.
func DecodeApplications(body []byte, opts DecodeOptions, now time.Time) ([]ApplicationEvent, error) {
	if !mayHoldApplicationEvents(body) {
		return nil, ErrNotApplications
	}
	var envs []envelope
	var bad *InvalidError // the first event whose type could not be read
	err := eachEvent(body, opts, func(i, n int, raw []byte) error {
		env, err := splitEnvelope(raw)
		if err == nil {
			_, err = applicationType(env)
		}
		if err != nil && bad == nil {
			bad = &InvalidError{Index: i, Reason: err.Error(), Events: n}
		}
		envs = append(envs, env)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return decodeApplicationEnvelopes(envs, bad, opts, now)
}

// decodeApplicationEnvelopes decodes the events of a body once each one's
// type is known: the body is the fleet's when none is an application event.
func decodeApplicationEnvelopes(envs []envelope, bad *InvalidError, opts DecodeOptions, now time.Time) ([]ApplicationEvent, error) {
	apps := 0
	for _, env := range envs {
		if typ, _ := applicationType(env); typ != "" {
			apps++
		}
	}
	switch {
	case apps == 0:
		return nil, ErrNotApplications
	case bad != nil:
		bad.Index = eventIndex(bad.Index, len(envs))
		return nil, bad
	case apps < len(envs):
		return nil, &InvalidError{Index: -1, Events: len(envs),
			Reason: "the body mixes server events and application events; send them from separate webhooks"}
	}
	events := make([]ApplicationEvent, len(envs))
	for i, env := range envs {
		ev, err := decodeApplicationEvent(env, opts, now)
		if err != nil {
			return nil, &InvalidError{Index: eventIndex(i, len(envs)), Reason: err.Error(), Events: len(envs)}
		}
		events[i] = ev
	}
	return events, nil
}

// eventIndex is how an *InvalidError names event i of n: -1 when the body
// is a single event, as Decode does.
func eventIndex(i, n int) int {
	if n == 1 {
		return -1
	}
	return i
}

// applicationType returns the lower-cased type of an application event,
// or "" for any other event (with the error of a malformed one). The origin is not compared with the type:
// LiveSwitch's own sample of channel.client.joined has origin "client".
func applicationType(env envelope) (string, error) {
	typ, err := textMember(env, "type", false)
	if err != nil {
		return "", err
	}
	if typ == "" {
		return "", errors.New(`missing "type"`)
	}
	lower := strings.ToLower(typ)
	prefix, action, found := strings.Cut(lower, ".")
	if !found || prefix == "" || action == "" {
		return "", fmt.Errorf("type %q is not of the form <origin>.<event>", clip(typ))
	}
	if !applicationOrigins[prefix] {
		return "", nil
	}
	if _, err := textMember(env, "origin", false); err != nil {
		return lower, err // an application event, malformed
	}
	if len(lower) > maxLabelLen || strings.ContainsFunc(lower, isControl) {
		return "", fmt.Errorf("type %q is too long or contains control characters", clip(typ))
	}
	return lower, nil
}

func decodeApplicationEvent(env envelope, opts DecodeOptions, now time.Time) (ApplicationEvent, error) {
	var ev ApplicationEvent
	var err error
	if ev.Timestamp, err = decodeTimestamp(env.timestamp, opts, now); err != nil {
		return ev, err
	}
	ev.Type, _ = applicationType(env)
	for _, name := range applicationObjects {
		raw, ok := env.get(name)
		if !ok || string(raw) == "null" {
			continue
		}
		obj, err := decodeApplicationObject(name, raw)
		if err != nil {
			return ev, fmt.Errorf("%q object: %w", name, err)
		}
		if err := ev.merge(name, obj); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

// applicationObject is what the exporter reads of a connection, client or
// channel object.
type applicationObject struct{ applicationID, id, typ, err string }

func decodeApplicationObject(name string, raw []byte) (applicationObject, error) {
	var obj applicationObject
	err := eachMember(raw, func(member, value []byte) error {
		var at *string
		switch {
		case equalFold(member, "applicationid"):
			at = &obj.applicationID
		case equalFold(member, "id"):
			at = &obj.id
		case name == "connection" && equalFold(member, "type"):
			at = &obj.typ
		case name == "connection" && equalFold(member, "error"):
			obj.err = errorText(value)
			return nil
		default:
			return nil
		}
		s, err := jsonString(value)
		if err != nil {
			return fmt.Errorf("%q has the wrong type (%s)", clip(string(member)), kindName(value))
		}
		if len(s) > maxLabelLen || strings.ContainsFunc(s, isControl) {
			return fmt.Errorf("%q is longer than %d bytes or contains control characters", clip(string(member)), maxLabelLen)
		}
		*at = s
		return nil
	})
	return obj, err
}

// merge takes obj, the object called name, into ev. Objects of one event
// that name different applications contradict each other.
func (ev *ApplicationEvent) merge(name string, obj applicationObject) error {
	switch {
	case obj.applicationID == "":
	case ev.ApplicationID == "":
		ev.ApplicationID = obj.applicationID
	case ev.ApplicationID != obj.applicationID:
		return fmt.Errorf("the %q object names another application than the event's other objects", name)
	}
	switch name {
	case "connection":
		ev.ConnectionID, ev.ConnectionType, ev.Error = obj.id, obj.typ, obj.err
	case "channel":
		ev.ChannelID = obj.id
	case "client":
		ev.ClientID = obj.id
	}
	return nil
}

// errorTextMembers are the members of an error object that say what
// failed, in the order their text is joined.
var errorTextMembers = []string{"code", "name", "type", "reason", "message", "description"}

// errorText is the text of a connection's "error", whatever its shape:
// LiveSwitch documents the member, not its type. It never fails: an error
// that cannot be read is still an error, of class "other".
func errorText(value []byte) string {
	switch kindName(value) {
	case "null":
		return ""
	case "string":
		s, err := jsonString(value)
		if err != nil {
			return "string"
		}
		return clipError(s)
	case "object":
		found := make([]string, len(errorTextMembers))
		_ = eachMember(value, func(member, v []byte) error {
			for i, name := range errorTextMembers {
				if equalFold(member, name) && kindName(v) == "string" {
					found[i], _ = jsonString(v)
				}
			}
			return nil
		})
		text := strings.Join(slices.DeleteFunc(found, func(s string) bool { return strings.TrimSpace(s) == "" }), " ")
		if text == "" {
			return "object"
		}
		return clipError(text)
	default:
		return kindName(value)
	}
}

// clipError cuts an error's text to maxErrorLen bytes, on a character
// boundary.
func clipError(s string) string {
	if len(s) <= maxErrorLen {
		return s
	}
	cut := maxErrorLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// applicationPrefixes start the type of every application event.
var applicationPrefixes = []string{"channel.", "client.", "connection."}

// mayHoldApplicationEvents tells, without parsing, whether a body may hold
// an application event: whether a string in it starts with one of their
// type prefixes (in any case). Server webhooks, by far the most common
// bodies, are thus handed to the fleet at the cost of a byte scan. A type
// spelled with JSON escapes is missed: that event then reaches the fleet,
// which ignores it, as it ignores every application event.
func mayHoldApplicationEvents(body []byte) bool {
	for i := 0; i+1 < len(body); i++ {
		if body[i] != '"' || body[i+1]|0x20 != 'c' {
			continue
		}
		for _, p := range applicationPrefixes {
			if hasPrefixFold(body[i+1:], p) {
				return true
			}
		}
	}
	return false
}

// hasPrefixFold reports whether b starts with lower, an ASCII lower-case
// prefix, in any case.
func hasPrefixFold(b []byte, lower string) bool {
	if len(b) < len(lower) {
		return false
	}
	for i := range len(lower) {
		if c := b[i]; c != lower[i] && c|0x20 != lower[i] {
			return false
		}
	}
	return true
}
