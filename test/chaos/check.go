package chaos

import "github.com/flotilla/flotilla/test/chaos/checker"

// check runs the checker over a run's history and final states. The
// durable consumers ran to the end, so each must have every acknowledged
// message; the run's seed also picks the checker's random window.
func check(res *Result, durables []string) *checker.Report {
	return checker.Check(res.History, res.Final, checker.Options{
		DurableConsumers: durables,
		Seed:             int64(res.Schedule.Seed),
	})
}
