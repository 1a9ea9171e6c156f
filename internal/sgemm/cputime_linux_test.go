package sgemm_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time this process has used, user and system: unlike
// wall time it does not run on while other programs have the cores, so
// rates over it stay comparable on a shared machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
