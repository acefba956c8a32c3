// Package e2e holds the reporter's end-to-end test: the real agent pushing to
// the real ingest handler, stored in a real Redis, read back over the real
// REST handler. It has no code of its own; it lives apart so that only this
// test starts a redis-server.
package e2e
