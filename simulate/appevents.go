package simulate

import (
	"encoding/json"
	"strings"
)

// appEvent is what the senders, and the report, know of an application
// event beyond its body.
type appEvent struct {
	app, typ string
	// conn and connType identify the connection of a connection event;
	// channel and client the channel and the client of the events that
	// name them.
	conn, connType, channel, client string
	// setupMs is, for a connected, the time since its initializing; upMs,
	// for a closed or failed, the time since its connected (-1: it had
	// not connected); spanMs, for a channel.deactivated, the time since
	// its activation.
	setupMs, upMs, spanMs int64
	// cause is a failed connection's cause, by the exporter's documented
	// mapping of its error.
	cause   string
	objects map[string]any
}

// event returns an event of a's of type typ carrying objects; its body is
// rendered when it is stamped.
func (a *simApp) event(typ string, objects map[string]any) Event {
	return Event{Key: "app/" + a.id, app: &appEvent{app: a.id, typ: typ, objects: objects, upMs: -1, spanMs: -1}}
}

// clientEvent is an event of client cl.
func (a *simApp) clientEvent(typ string, cl map[string]any) Event {
	ev := a.event(typ, map[string]any{"client": cl})
	ev.app.client = cl["id"].(string)
	return ev
}

// channelEvent is channel.activated or .deactivated of ch.
func (a *simApp) channelEvent(what string, ch *simChannel) Event {
	ev := a.event("channel."+what, channelObj(a, ch))
	ev.app.channel = ch.id
	return ev
}

// joinedOrLeft is a channel.client.joined or .left of cl in ch.
func (a *simApp) joinedOrLeft(what string, cl map[string]any, ch *simChannel) Event {
	objects := channelObj(a, ch)
	objects["client"] = cl
	ev := a.event("channel.client."+what, objects)
	ev.app.channel, ev.app.client = ch.id, cl["id"].(string)
	return ev
}

func channelObj(app *simApp, ch *simChannel) map[string]any {
	return map[string]any{"channel": map[string]any{"id": ch.id, "applicationId": app.id}}
}

// simConnection is one connection of a client in a channel.
type simConnection struct {
	id, typ, media string
	app            *simApp
	channel        *simChannel
	client         map[string]any
}

// event is the connection's event of entering state.
func (c *simConnection) event(state string, setupMs int64) Event {
	obj := map[string]any{
		"id": c.id, "applicationId": c.app.id, "channelId": c.channel.id, "clientId": c.client["id"],
		"userId": c.client["userId"], "deviceId": c.client["deviceId"], "clientRoles": c.client["roles"],
		"type": c.typ, "state": state, "mediaId": c.media, "recording": false,
		"audioStreams": []map[string]any{{"direction": "sendrecv"}},
		"videoStreams": []map[string]any{{"direction": "sendrecv"}},
	}
	if _, ok := c.client["tag"]; ok {
		obj["tag"] = "camera"
	} else {
		obj["clientTag"] = "web"
	}
	ev := c.app.event("connection."+state, map[string]any{"connection": obj})
	ev.app.conn, ev.app.connType, ev.app.setupMs = c.id, c.typ, setupMs
	return ev
}

// stamped renders an application event's body at event time ms.
func (e Event) stamped(ms int64) Event {
	origin, _, _ := strings.Cut(e.app.typ, ".")
	if strings.HasPrefix(e.app.typ, "channel.client.") {
		origin = "client" // as in LiveSwitch's own sample
	}
	envelope := map[string]any{"timestamp": ms, "origin": origin, "type": e.app.typ}
	for k, v := range e.app.objects {
		envelope[k] = v
	}
	e.Body, _ = json.Marshal(envelope)
	e.ms = ms
	return e
}
