// Package drivertest checks that a driver keeps the contract of
// driver.Driver. It is for driver authors; to run drivers, see the agent
// package.
//
// One call in a test of the driver's package runs the whole suite:
//
//	func TestConformance(t *testing.T) {
//		drivertest.Run(t, newDriver, driver.Config{})
//	}
//
// Run makes one driver with the factory and the configuration given, then
// checks, each in a subtest named after it, that the driver returns valid
// measurements (filling Host and Time first where the driver leaves them
// to the agent), can be called again and again, returns promptly when its
// ctx is cancelled or its deadline passes, closes cleanly if it is an
// io.Closer, and leaves no goroutine running. A failure message says what
// the driver did and what the contract asks for.
//
// The configuration must work where the test runs: point the driver at a
// fixture directory, an httptest server or a fake device rather than at
// real infrastructure. Run is not for parallel tests (t.Parallel), since
// its goroutine check would see the other tests' goroutines.
//
// A push source (driver.Pusher) is checked with RunPush instead, given a
// Trigger that makes the source receive something: it checks deliveries,
// acknowledgements given late or with an error, back-pressure (deliver
// blocking until ctx ends) and leaks; with WithRedelivery, for a source
// whose upstream redelivers (a message queue), that what was never
// acknowledged as durable comes again: the source acknowledged upstream
// only after the agent's ack.
//
// This package is what meterkit runs on its own drivers (see
// github.com/meterkit/meter/driver/host).
package drivertest
