package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/liveswitch-exporter/liveswitch_exporter/collector/fleet"
)

// An answer is read in two steps. Its shape (JSON, an array or an object,
// at most maxBodyBytes) is checked whole: an answer that fails it fails the
// poll (*badAnswer). Its items are then read one by one: an item that
// breaks a rule is skipped (*itemError) and the others are kept, so that
// one bad media server does not blind the poll to the rest.

// badAnswer is an answer that cannot be read at all.
type badAnswer struct {
	kind string // for failureLog: the same for every answer of its sort
	text string
}

func (e *badAnswer) Error() string { return e.text }

// itemError is why an item was skipped: a reason of the bounded set of
// liveswitch_api_invalid_items_total, and words for the log.
type itemError struct {
	reason, detail string
}

func (e *itemError) Error() string { return e.detail }

// skippedItem is an item an answer held and a poll skipped (or, for
// reasonUsedCapacity, one fact of it).
type skippedItem struct {
	endpoint string
	*itemError
	// item names it in the log: its id (masked, printable) or, without a
	// readable one, its place in the list.
	item string
}

// The members of the answers, as LiveSwitch's own tools model them, each
// kept raw and read on its own (see itemReader): encoding/json matches
// member names case-insensitively, so camelCase and PascalCase both fit;
// unknown members are ignored; a member that is missing or null is
// unknown, not zero. ipAddresses and publicIPAddress are not read: no
// series uses them.
type mediaServerMembers struct {
	ID           json.RawMessage `json:"id"`
	Region       json.RawMessage `json:"region"`
	DeploymentID json.RawMessage `json:"deploymentId"`
	Version      json.RawMessage `json:"version"`
	CoreCount    json.RawMessage `json:"coreCount"`
	UsedCapacity json.RawMessage `json:"usedCapacity"`
	Available    json.RawMessage `json:"available"`
	Active       json.RawMessage `json:"active"`
	Draining     json.RawMessage `json:"draining"`
	OverCapacity json.RawMessage `json:"overCapacity"`
}

type applicationMembers struct {
	ID              json.RawMessage `json:"id"`
	ChannelCount    json.RawMessage `json:"channelCount"`
	ClientCount     json.RawMessage `json:"clientCount"`
	ConnectionCount json.RawMessage `json:"connectionCount"`
	UserCount       json.RawMessage `json:"userCount"`
	DeviceCount     json.RawMessage `json:"deviceCount"`
}

// maxUsedCapacity bounds a believable usedCapacity. LiveSwitch reports it
// as a fraction where 1 is full; a server may pass 1 while it is over
// capacity (and projected use decides that it is), for a while and not by
// much. A value above 2 is no such fraction (85 is a percentage), so it is
// not exported as one.
const maxUsedCapacity = 2

// decodeMediaServers reads the bare JSON array of GET /v1/mediaservers,
// keeping the valid media servers and listing what it skipped.
func decodeMediaServers(body []byte, mask keyMask) ([]fleet.MediaServerFacts, []skippedItem, error) {
	var out []fleet.MediaServerFacts
	var skipped []skippedItem
	seen := map[string]bool{}
	err := eachElement(body, func(i int, raw json.RawMessage) {
		m, dropped, err := decodeMediaServer(raw, mask)
		if err == nil && seen[m.ID] {
			err = &itemError{reasonDuplicateID, "listed twice"}
		}
		if err != nil {
			skipped = append(skipped, skippedItem{endpointMediaServers, err, itemName(m.ID, i, mask)})
			return
		}
		for _, d := range dropped {
			skipped = append(skipped, skippedItem{endpointMediaServers, d, itemName(m.ID, i, mask)})
		}
		seen[m.ID] = true
		out = append(out, m)
	})
	return out, skipped, err
}

// decodeMediaServer reads one media server. Only an item without a usable
// id is skipped (err). A fact that cannot be read or used (a member of the
// wrong type, a label value the decoder would refuse, one holding the API
// key, a usedCapacity that is no fraction) is dropped and said in dropped:
// the server is kept, since the Gateway does list it and its other facts are
// true. Skipping it would show it unlisted (liveswitch_server_gateway_listed
// 0) and page for a server that is fine.
func decodeMediaServer(raw json.RawMessage, mask keyMask) (m fleet.MediaServerFacts, dropped []*itemError, err *itemError) {
	if raw[0] != '{' {
		return m, nil, &itemError{reasonNotObject, fmt.Sprintf("is a JSON %s, want an object", kindName(raw))}
	}
	var a mediaServerMembers
	if json.Unmarshal(raw, &a) != nil {
		return m, nil, &itemError{reasonNotObject, "is not a JSON object"}
	}
	var id itemReader
	m.ID = id.text(a.ID, "id")
	if err := id.checkID(m.ID); err != nil {
		return m, nil, err
	}
	if mask.holds(m.ID) {
		return m, nil, &itemError{reasonHoldsKey, `"id" holds part of the API key`}
	}
	if err := (&fleet.MediaServerFacts{ID: m.ID}).Validate(); err != nil {
		return m, nil, &itemError{reasonInvalidValue, err.Error()}
	}
	facts := factReader{mask: mask, id: m.ID}
	m.Region = facts.label(a.Region, "region", func(f *fleet.MediaServerFacts, v string) { f.Region = v })
	m.DeploymentID = facts.label(a.DeploymentID, "deploymentId", func(f *fleet.MediaServerFacts, v string) { f.DeploymentID = v })
	m.Version = facts.label(a.Version, "version", func(f *fleet.MediaServerFacts, v string) { f.Version = v })
	m.CoreCount = facts.cores(a.CoreCount)
	m.UsedCapacity = facts.capacity(a.UsedCapacity)
	m.Available = facts.flag(a.Available, "available")
	m.Active = facts.flag(a.Active, "active")
	m.Draining = facts.flag(a.Draining, "draining")
	m.OverCapacity = facts.flag(a.OverCapacity, "overCapacity")
	return m, facts.dropped, nil
}

// factReader reads the facts of one media server, each on its own, and
// lists those it dropped.
type factReader struct {
	mask    keyMask
	id      string
	dropped []*itemError
}

// read runs one itemReader step and keeps its complaint, if any.
func (f *factReader) read(step func(r *itemReader)) {
	var r itemReader
	step(&r)
	if r.err != nil {
		r.err.detail += keptWithout
		f.dropped = append(f.dropped, r.err)
	}
}

// keptWithout ends the detail of a dropped fact.
const keptWithout = "; the media server is kept without it"

func (f *factReader) drop(reason, detail string) {
	f.dropped = append(f.dropped, &itemError{reason, detail + keptWithout})
}

// label reads a fact that becomes a label value: a string the webhook
// decoder would accept, holding no part of the API key.
func (f *factReader) label(raw json.RawMessage, name string, set func(*fleet.MediaServerFacts, string)) (v string) {
	f.read(func(r *itemReader) { v = r.text(raw, name) })
	if v == "" {
		return ""
	}
	if f.mask.holds(v) {
		f.drop(reasonHoldsKey, fmt.Sprintf("%q holds part of the API key", name))
		return ""
	}
	check := fleet.MediaServerFacts{ID: f.id}
	set(&check, v)
	if err := check.Validate(); err != nil {
		f.drop(reasonInvalidValue, err.Error())
		return ""
	}
	return v
}

func (f *factReader) cores(raw json.RawMessage) int {
	var n *int64
	f.read(func(r *itemReader) { n = r.whole(raw, "coreCount") })
	if n == nil {
		return 0
	}
	check := fleet.MediaServerFacts{ID: f.id, CoreCount: int(max(min(*n, math.MaxInt32), math.MinInt32))}
	if err := check.Validate(); err != nil {
		f.drop(reasonInvalidValue, err.Error())
		return 0
	}
	return check.CoreCount
}

func (f *factReader) capacity(raw json.RawMessage) *float64 {
	var c *float64
	f.read(func(r *itemReader) { c = r.number(raw, "usedCapacity") })
	if c != nil && (*c < 0 || *c > maxUsedCapacity) {
		f.drop(reasonUsedCapacity, fmt.Sprintf(`"usedCapacity" %s is not a fraction from 0 to %d (1 is full)`, clipNumber(raw), maxUsedCapacity))
		return nil
	}
	return c
}

func (f *factReader) flag(raw json.RawMessage, name string) (b *bool) {
	f.read(func(r *itemReader) { b = r.flag(raw, name) })
	return b
}

// decodeApplicationIDs reads GET /v1.0/applications: an array of ids, each
// a string or an object with an id (the format is not documented). It
// keeps the first maxApplications valid ids, and counts the elements that
// follow them, unread.
func decodeApplicationIDs(body []byte, mask keyMask) (ids []string, skipped []skippedItem, unread int, err error) {
	seen := map[string]bool{}
	err = eachElement(body, func(i int, raw json.RawMessage) {
		if len(ids) == maxApplications {
			unread++
			return
		}
		id, err := decodeApplicationID(raw, mask)
		if err == nil && seen[id] {
			err = &itemError{reasonDuplicateID, "listed twice"}
		}
		if err != nil {
			skipped = append(skipped, skippedItem{endpointApplications, err, itemName(id, i, mask)})
			return
		}
		seen[id] = true
		ids = append(ids, id)
	})
	return ids, skipped, unread, err
}

func decodeApplicationID(raw json.RawMessage, mask keyMask) (string, *itemError) {
	var r itemReader
	var id string
	switch raw[0] {
	case '"':
		id = r.text(raw, "id")
	case '{':
		var obj struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(raw, &obj) == nil {
			id = r.text(obj.ID, "id")
		}
	default:
		return "", &itemError{reasonWrongType, fmt.Sprintf("is a JSON %s, want an id or an object with an id", kindName(raw))}
	}
	if err := r.checkID(id); err != nil {
		return id, err
	}
	if mask.holds(id) {
		return id, &itemError{reasonHoldsKey, `"id" holds part of the API key`}
	}
	app := fleet.ApplicationFacts{ID: id}
	if err := app.Validate(); err != nil {
		return id, &itemError{reasonInvalidValue, err.Error()}
	}
	return id, nil
}

// decodeApplication reads GET /v1.0/applications/{id}. An answer that is no
// JSON object fails the poll; one with a bad member, or the id of another
// application, is an item to skip.
func decodeApplication(body []byte, id string) (fleet.ApplicationFacts, *itemError, error) {
	if err := checkShape(body, '{'); err != nil {
		return fleet.ApplicationFacts{}, nil, err
	}
	var a applicationMembers
	if err := json.Unmarshal(body, &a); err != nil {
		return fleet.ApplicationFacts{}, nil, syntaxError(err)
	}
	var r itemReader
	app := fleet.ApplicationFacts{ID: id,
		Channels: r.whole(a.ChannelCount, "channelCount"), Clients: r.whole(a.ClientCount, "clientCount"),
		Connections: r.whole(a.ConnectionCount, "connectionCount"), Users: r.whole(a.UserCount, "userCount"),
		Devices: r.whole(a.DeviceCount, "deviceCount")}
	if answered := r.text(a.ID, "id"); r.err == nil && answered != "" && answered != id {
		return app, &itemError{reasonOtherID, `the answer's "id" is not the application asked for`}, nil
	}
	if r.err != nil {
		return app, r.err, nil
	}
	if err := app.Validate(); err != nil {
		return app, &itemError{reasonInvalidValue, err.Error()}, nil
	}
	return app, nil, nil
}

// itemReader reads the members of one item, each on its own, keeping the
// first that has the wrong type: reading them all at once would leave a
// member of the wrong type set to a zero value as if the API had said so.
type itemReader struct {
	err *itemError
}

// unknown: the member is missing or null.
func unknown(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

func (r *itemReader) wrongType(raw json.RawMessage, name, want string) {
	if r.err != nil {
		return
	}
	is := "a JSON " + kindName(raw)
	if raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') {
		if want != "a string" && want != "true or false" {
			is = clipNumber(raw) // a number, of the wrong kind: say which
		}
	}
	r.err = &itemError{reasonWrongType, fmt.Sprintf("%q is %s, want %s", name, is, want)}
}

// member reads raw as a T, or nil when it is unknown or of the wrong type
// (then r says so, with want).
func member[T any](r *itemReader, raw json.RawMessage, name, want string) *T {
	if unknown(raw) {
		return nil
	}
	v := new(T)
	if json.Unmarshal(raw, v) != nil {
		r.wrongType(raw, name, want)
		return nil
	}
	return v
}

func (r *itemReader) text(raw json.RawMessage, name string) string {
	if s := member[string](r, raw, name, "a string"); s != nil {
		return *s
	}
	return ""
}

func (r *itemReader) flag(raw json.RawMessage, name string) *bool {
	return member[bool](r, raw, name, "true or false")
}

func (r *itemReader) number(raw json.RawMessage, name string) *float64 {
	return member[float64](r, raw, name, "a number")
}

// whole reads a whole number; one written with a fraction of zero (8.0,
// 8e0) is whole too.
func (r *itemReader) whole(raw json.RawMessage, name string) *int64 {
	if unknown(raw) {
		return nil
	}
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		return &n
	}
	var f float64
	if json.Unmarshal(raw, &f) != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		r.wrongType(raw, name, "a whole number")
		return nil
	}
	n = int64(f)
	return &n
}

// checkID returns the first member of the wrong type, or the want of an id.
func (r *itemReader) checkID(id string) *itemError {
	switch {
	case r.err != nil:
		return r.err
	case id == "":
		return &itemError{reasonMissingID, `missing "id"`}
	}
	return nil
}

// itemName names an item for the log: its id, or without one its place
// in the list.
func itemName(id string, i int, mask keyMask) string {
	if id == "" {
		return "element " + strconv.Itoa(i)
	}
	return mask.mask(printable(mask.mask(id), 64))
}

// clipNumber is a JSON number as the answer wrote it, cut for a log line.
func clipNumber(raw json.RawMessage) string {
	return printable(string(raw), 32)
}

// kindName names the JSON type of a valid JSON value.
func kindName(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// eachElement calls fn with each element of the JSON array body, one at a
// time: an answer of many elements costs one element's memory more than
// its body. raw is valid JSON, and valid only during the call.
func eachElement(body []byte, fn func(i int, raw json.RawMessage)) error {
	if err := checkShape(body, '['); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // the '[' checkShape saw
		return syntaxError(err)
	}
	var raw json.RawMessage
	for i := 0; dec.More(); i++ {
		if err := dec.Decode(&raw); err != nil {
			return syntaxError(err)
		}
		fn(i, raw)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &badAnswer{"invalid JSON", "the answer is not valid JSON (more follows its end)"}
	}
	return nil
}

// checkShape checks that body opens as wanted (an array or an object),
// with reasons fit for a log line.
func checkShape(body []byte, open byte) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return &badAnswer{"empty", "the answer is empty"}
	case trimmed[0] == '<':
		return &badAnswer{"markup", "the answer is not JSON but markup (an HTML error page?)"}
	case trimmed[0] != open:
		shape := map[byte]string{'[': "array", '{': "object"}[open]
		return &badAnswer{"not a JSON " + shape, "the answer is not a JSON " + shape}
	}
	return nil
}

// syntaxError says where an answer stops being JSON.
func syntaxError(err error) error {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return &badAnswer{"invalid JSON", fmt.Sprintf("the answer is not valid JSON (at byte %d)", syntaxErr.Offset)}
	}
	return &badAnswer{"invalid JSON", "the answer is not valid JSON"}
}
