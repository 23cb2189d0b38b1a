// Package applications turns LiveSwitch's application webhooks (channel,
// client and connection events) into per-application series: events by
// type; connection failures by connection type, by the class of their
// error and by how far the connection had come; the time connections take
// to set up and stay up; how long channels (conferences) last and how many
// clients they hold; and the channels, clients and connections active now.
//
// Its entry point is Tracker.Ingest: it decodes a body (with the webhook
// decoder, event.DecodeApplications), lets the caller verify the
// applications the body names (the HTTP layer checks LiveSwitch's
// signature there, before anything is counted), refuses events too old or
// too far ahead and applications beyond the cap, then has a
// callstate.State pair each event with its start and tell whether it was
// counted already, and counts what is new.
//
// The counters and histograms are per replica: each counts what it
// received. The state that pairs ends and remembers events is this
// process's (callstate.NewMemory), or shared by the replicas in Redis
// (package redisstate), so that summed over instances replicas count as
// one exporter. No series has a per-channel, per-client or per-connection
// label: the applications are capped (and free their slot when idle), the
// event types, connection types, causes and phases are closed sets.
package applications
