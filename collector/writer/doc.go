// Package writer is the fleet's single writer: every change to the fleet
// (a webhook's events, a forget, a sweep, an observation of the Gateway's
// REST API) is a Command that passes through it. It gathers the commands
// of concurrent requests into groups, has a Backend make each group durable
// and fold it into the fleet, and answers each request only then, so that
// an acknowledged event is never lost and a failed commit leaves nothing
// behind. Its own backend commits the changed records to a storage.Store
// (or keeps them in memory); collector/replica is the other, which shares
// the fleet with other exporters through a storage.Log. Backend, Request,
// Folder and Failures are the small seam such a backend is built on.
package writer
