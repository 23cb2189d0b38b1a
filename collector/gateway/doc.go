// Package gateway polls the LiveSwitch Gateway's admin REST API: the media
// servers it lists (GET {base}/v1/mediaservers) and the applications in use
// (GET {base}/v1.0/applications and /v1.0/applications/{id}).
//
// It is the only place that speaks HTTP to LiveSwitch. Each successful poll
// is translated into a fleet.Observation and handed to the fleet's
// writer, the same writer webhooks go through, so observations are durable,
// ordered with the events and folded alike by every replica; a failed poll
// writes nothing. The entry point is New, then Poller.Run.
//
// An answer that cannot be read as a whole (no answer, a status other than
// 200, not JSON, not the expected shape) fails the poll. An item without a
// usable id (missing, listed twice, unfit for a label) is skipped, counted
// and logged, and the others are kept: one bad media server does not blind
// the poll to the rest. A media server whose id is good but one of whose
// facts is not (a member of the wrong type, a usedCapacity that is no
// fraction) is kept without that fact, since the Gateway does list it. Nothing this package logs, returns or exports holds a run of more
// than five of the API key's characters, whatever the Gateway echoes.
package gateway
