package event

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DecodeOptions bound what one webhook body may hold.
type DecodeOptions struct {
	// MaxEvents caps the events of one batch; 0 means no cap.
	MaxEvents int
	// MaxFutureSkew is how far ahead of the exporter's clock an event may be
	// stamped. A far-future stamp would make every later event of that server
	// look out of order, so it is refused instead.
	MaxFutureSkew time.Duration
}

// DefaultDecodeOptions are the limits used when the operator sets none.
var DefaultDecodeOptions = DecodeOptions{MaxEvents: 1000, MaxFutureSkew: 5 * time.Minute}

// InvalidError says why a webhook body was rejected; the HTTP layer answers it
// with 400 and the reason as the body.
type InvalidError struct {
	// Index is the position of the offending event in a batch, -1 when the
	// body as a whole is at fault.
	Index  int
	Reason string
	// Events is how many events the rejected body held, for the invalid count.
	Events int
}

func (e *InvalidError) Error() string {
	if e.Index < 0 {
		return e.Reason
	}
	return fmt.Sprintf("event %d: %s", e.Index, e.Reason)
}

// applicationOrigins never denote server processes: their events are
// application-level and are ignored, whatever their action.
var applicationOrigins = map[string]bool{"client": true, "channel": true, "connection": true}

const (
	// maxDepth bounds JSON nesting; real events nest about five deep.
	maxDepth     = 32
	maxOriginLen = 32
	maxLabelLen  = 256
)

// MaxCoreCount is the most CPU cores a server may report: a larger
// coreCount is refused, from a webhook as from the Gateway's API.
const MaxCoreCount = 1 << 16

// Decode parses a webhook body: one event object, or a JSON array of them
// (LiveSwitch's Batch option). It rejects the body whole if any event is
// malformed, so that nothing is ever half applied.
func Decode(body []byte, opts DecodeOptions, now time.Time) ([]Event, error) {
	var events []Event
	err := eachEvent(body, opts, func(i, n int, raw []byte) error {
		if events == nil {
			events = make([]Event, n)
		}
		ev, err := decodeEvent(raw, opts, now)
		events[i] = ev
		return err
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// eachEvent makes the checks of a whole body (UTF-8, nesting, batch size,
// one object or an array of them), then calls fn with each event's raw JSON,
// its index and the number of events. Every decoder of webhook bodies goes
// through it, so that server and application webhooks are bounded alike.
// An error of fn rejects the body as an *InvalidError naming the event.
func eachEvent(body []byte, opts DecodeOptions, fn func(i, n int, raw []byte) error) error {
	if !utf8.Valid(body) {
		return &InvalidError{Index: -1, Reason: "body is not valid UTF-8", Events: 1}
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return &InvalidError{Index: -1, Reason: "empty body", Events: 1}
	}
	if trimmed[0] != '[' { // one event: the walker bounds its nesting
		if err := fn(0, 1, body); err != nil {
			return &InvalidError{Index: -1, Reason: err.Error(), Events: 1}
		}
		return nil
	}
	depth, elements := shape(trimmed)
	if depth > maxDepth {
		return &InvalidError{Index: -1, Reason: errTooDeep.Error(), Events: 1}
	}
	if opts.MaxEvents > 0 && elements > opts.MaxEvents {
		return &InvalidError{Index: -1, Events: elements,
			Reason: fmt.Sprintf("batch of %d events exceeds the limit of %d", elements, opts.MaxEvents)}
	}
	raws, err := arrayElements(body)
	if err != nil {
		return &InvalidError{Index: -1, Reason: err.Error(), Events: 1}
	}
	if len(raws) == 0 {
		return &InvalidError{Index: -1, Reason: "empty batch: no events", Events: 1}
	}
	for i, raw := range raws {
		if err := fn(i, len(raws), raw); err != nil {
			return &InvalidError{Index: i, Reason: err.Error(), Events: len(raws)}
		}
	}
	return nil
}

// shape walks the raw JSON once, outside strings, and returns its deepest
// nesting and the number of elements of a top-level array, so that hostile
// bodies are refused before anything is allocated for them. Strings are
// skipped with bytes.IndexByte (vectorised): most of a body is strings.
func shape(b []byte) (depth, elements int) {
	level, sawValue := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case '"':
			i = stringEnd(b, i+1)
		case '[', '{':
			level++
			depth = max(depth, level)
		case ']', '}':
			level--
		case ',':
			if level == 1 {
				elements++
			}
		}
		if level >= 1 && c != ' ' && c != '\t' && c != '\r' && c != '\n' && !(level == 1 && (c == '[' || c == ',')) {
			sawValue = true
		}
	}
	if sawValue {
		elements++
	}
	return depth, elements
}

// stringEnd returns the index of the quote that closes the string whose
// content starts at i (len(b) when it is not closed).
func stringEnd(b []byte, i int) int {
	for i < len(b) {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return len(b)
		}
		e := bytes.IndexByte(b[i:i+q], '\\')
		if e < 0 {
			return i + q
		}
		i += e + 2 // an escaped character, whatever it is
	}
	return len(b)
}

func decodeEvent(raw []byte, opts DecodeOptions, now time.Time) (Event, error) {
	var ev Event
	var members [smallEnvelope]member // on the stack: the envelope is not kept
	env, err := splitEnvelopeInto(members[:0], raw)
	if err != nil {
		return ev, err
	}
	if ev.Timestamp, err = decodeTimestamp(env.timestamp, opts, now); err != nil {
		return ev, err
	}
	if err := ev.classify(env); err != nil {
		return ev, err
	}
	body, ok := env.get(ev.Origin)
	if ev.Kind == KindIgnored || (!ok && ev.Kind == KindHeartbeat) {
		return ev, nil
	}
	if !ok {
		return ev, fmt.Errorf("missing the %q object that %q events carry", ev.Origin, ev.Type)
	}
	info, err := decodeInfo(body)
	if ev.Kind == KindHeartbeat {
		// The payload of stats events is not documented: take the server
		// if it is recognisable, otherwise treat the heartbeat as anonymous.
		if err == nil {
			ev.Server = info
		}
		return ev, nil
	}
	if err != nil {
		return ev, fmt.Errorf("%q object: %w", ev.Origin, err)
	}
	ev.Server = info
	return ev, nil
}

// envelope holds the top-level members of one event, by lower-cased name
// (the spec itself is inconsistent about case), as slices of the body.
type envelope struct {
	members   []member
	timestamp []byte
}

type member struct {
	name  []byte // as sent; compared without case
	value []byte
}

// get returns the raw value of the member named name (lower case).
func (env *envelope) get(name string) ([]byte, bool) {
	for _, m := range env.members {
		if equalFold(m.name, name) {
			return m.value, true
		}
	}
	return nil, false
}

// equalFold compares a member name with a lower-case ASCII name, without
// case, as LiveSwitch's own (.NET) serialisers match names.
func equalFold(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func splitEnvelope(raw []byte) (envelope, error) {
	return splitEnvelopeInto(make([]member, 0, 8), raw)
}

// splitEnvelopeInto is splitEnvelope appending the members to members.
func splitEnvelopeInto(members []member, raw []byte) (envelope, error) {
	env := envelope{members: members}
	var seen map[string]bool // lower-cased names, once there are many members
	err := eachMember(raw, func(name, value []byte) error {
		if duplicate(env.members, &seen, name) {
			return fmt.Errorf("member %q is given twice (names are compared without case)", clip(string(name)))
		}
		env.members = append(env.members, member{name, value})
		return nil
	})
	if errors.Is(err, errNull) {
		return env, errors.New("event is null, want an object")
	}
	if err != nil {
		return env, err
	}
	env.timestamp, _ = env.get("timestamp")
	return env, nil
}

// smallEnvelope is how many members are compared one by one; a real event
// has about ten. Past it, names go into a map, so that a body of a million
// made-up members costs linear time, not quadratic.
const smallEnvelope = 16

// duplicate reports whether name repeats (without case) one of members.
func duplicate(members []member, seen *map[string]bool, name []byte) bool {
	if len(members) < smallEnvelope {
		for _, m := range members {
			if bytes.EqualFold(m.name, name) {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]bool, 2*len(members))
		for _, m := range members {
			(*seen)[strings.ToLower(string(m.name))] = true
		}
	}
	lower := strings.ToLower(string(name))
	if (*seen)[lower] {
		return true
	}
	(*seen)[lower] = true
	return false
}

// classify fills Type, Origin, Kind and Action from the envelope and checks
// that type, origin and the object key agree.
func (ev *Event) classify(env envelope) error {
	typ, err := textMember(env, "type", true)
	if err != nil {
		return err
	}
	if typ == "" {
		return errors.New(`missing "type"`)
	}
	prefix, action, found := strings.Cut(strings.ToLower(typ), ".")
	if !found || prefix == "" || action == "" {
		return fmt.Errorf("type %q is not of the form <origin>.<event>", clip(typ))
	}
	origin, err := textMember(env, "origin", true)
	if err != nil {
		return err
	}
	origin = strings.ToLower(origin)
	if origin == "" {
		origin = prefix
	}
	if origin != prefix {
		return fmt.Errorf("origin %q does not match type %q", clip(origin), clip(typ))
	}
	if !validOrigin(origin) {
		return fmt.Errorf("origin %q is not a valid origin ([a-z0-9_]{1,%d})", clip(origin), maxOriginLen)
	}
	ev.Type, ev.Origin = typ, origin
	switch a, ok := parseAction(action); {
	case applicationOrigins[origin]:
		ev.Kind = KindIgnored
	case ok:
		ev.Kind, ev.Action = KindLifecycle, a
	case action == "stats":
		ev.Kind = KindHeartbeat
	default:
		ev.Kind = KindIgnored
	}
	return nil
}

// textMember reads the string member name (empty when absent or null),
// interned (see Intern) when intern is set.
func textMember(env envelope, name string, intern bool) (string, error) {
	raw, ok := env.get(name)
	if !ok || string(raw) == "null" {
		return "", nil
	}
	text, err := unquote(raw)
	if err != nil {
		return "", fmt.Errorf("%q must be a string", name)
	}
	if intern {
		return Intern(text), nil
	}
	return string(text), nil
}

// minTimestampMs is 10^12 ms, September 2001: anything earlier is taken for
// a time in seconds (10^9 s is 2001 too), which would otherwise be applied as
// January 1970 and lose to every real event.
const minTimestampMs = 1_000_000_000_000

func decodeTimestamp(raw []byte, opts DecodeOptions, now time.Time) (int64, error) {
	if raw == nil || string(raw) == "null" {
		return 0, errors.New(`missing "timestamp"`)
	}
	text := string(raw)
	if unquoted, err := strconv.Unquote(text); err == nil {
		text = unquoted
	}
	ms, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f < 0 || f > 1<<62 || f != float64(int64(f)) {
			return 0, fmt.Errorf(`"timestamp" %s is not a whole number of milliseconds`, clip(string(raw)))
		}
		ms = int64(f)
	}
	switch {
	case ms <= 0:
		return 0, fmt.Errorf(`"timestamp" %d is not after the Unix epoch`, ms)
	case ms < minTimestampMs:
		return 0, fmt.Errorf(`"timestamp" %d looks like seconds; LiveSwitch sends milliseconds since the epoch`, ms)
	}
	if opts.MaxFutureSkew > 0 && ms > now.Add(opts.MaxFutureSkew).UnixMilli() {
		return 0, fmt.Errorf(`"timestamp" %d is more than %s ahead of the exporter's clock`, ms, opts.MaxFutureSkew)
	}
	return ms, nil
}

// coreCount accepts a whole number, also quoted, within a sane range.
type coreCount int

func (c *coreCount) UnmarshalJSON(b []byte) error {
	text := string(b)
	if text == "null" {
		return nil
	}
	if unquoted, err := strconv.Unquote(text); err == nil {
		text = unquoted
	}
	n, err := strconv.Atoi(text)
	if err != nil || n < 0 || n > MaxCoreCount {
		return fmt.Errorf(`"coreCount" %s is not a whole number from 0 to %d`, clip(string(b)), MaxCoreCount)
	}
	*c = coreCount(n)
	return nil
}

// Validate keeps every string that becomes a label value short and
// printable, so that no payload can produce an unbounded or unreadable
// series. The decoder applies it to every server object; the Gateway's
// observations are held to it too.
func (i Info) Validate() error {
	for _, f := range []struct{ name, value string }{
		{"id", i.ID}, {"version", i.Version}, {"machineName", i.MachineName},
		{"operatingSystem", i.OperatingSystem}, {"operatingSystemVersion", i.OperatingSystemVersion},
		{"architecture", i.Architecture}, {"deploymentId", i.DeploymentID}, {"region", i.Region},
	} {
		if len(f.value) > maxLabelLen {
			return fmt.Errorf("%q is longer than %d bytes", f.name, maxLabelLen)
		}
		if strings.ContainsFunc(f.value, isControl) {
			return fmt.Errorf("%q contains control characters", f.name)
		}
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

func validOrigin(s string) bool {
	if len(s) == 0 || len(s) > maxOriginLen {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

// clip makes attacker-controlled text fit in a one-line reason: white space
// and control characters fold into single spaces, and it is cut (on a
// character boundary) after 64 bytes.
func clip(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || isControl(r) }), " ")
	const n = 64
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
