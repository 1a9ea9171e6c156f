package sgemm

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestMain powers the machine off after the tests when the test binary runs
// as init (PID 1), as it does in emulate_avx512.sh's emulated AVX-512 CPU:
// init must not exit (the kernel would panic before the console drains).
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Getpid() == 1 {
		os.Stdout.Sync()
		time.Sleep(2 * time.Second)
		syscall.Sync()
		_ = syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	}
	os.Exit(code)
}
