// Package gateway polls the LiveSwitch Gateway's admin REST API: the media
// servers it lists (GET {base}/v1/mediaservers) and the applications in use
// (GET {base}/v1.0/applications and /v1.0/applications/{id}).
//
// It is the only place that speaks HTTP to LiveSwitch. Each successful poll
// is translated into a fleet.Observation and handed to the fleet's
// writer, the same writer webhooks go through, so observations are durable,
// ordered with the events and folded alike by every replica; a failed poll
// writes nothing. The entry point is New, then Poller.Run.
package gateway
