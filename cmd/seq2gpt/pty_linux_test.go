package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// syncBuffer is a buffer a child's output goroutine writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// openPTY opens a pseudo-terminal pair: the controlling side and the
// terminal a child reads.
func openPTY(t *testing.T) (ctl, tty *os.File) {
	ctl, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlSetPointerInt(int(ctl.Fd()), unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetUint32(int(ctl.Fd()), unix.TIOCGPTN)
	require.NoError(t, err)
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	return ctl, tty
}

// TestGenerateInteractive: on a terminal, lm generate asks for prompts
// with "> ", continues each, takes settings, reports a bad one and goes
// on, and ends at Ctrl-D.
func TestGenerateInteractive(t *testing.T) {
	dir := t.TempDir()
	_, args := tinyRun(t, dir)
	out := filepath.Join(dir, "run")
	stdout, err := run(t, append(args, "--out", out, "--steps", "2")...)
	require.NoError(t, err, stdout)
	best := filepath.Join(out, "best")
	want, err := run(t, "lm", "generate", "--model", best, "--prompt", "The people", "--temperature", "0", "--max-new-tokens", "4")
	require.NoError(t, err)

	ctl, tty := openPTY(t)
	defer ctl.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join([]string{"lm", "generate", "--model", best, "--max-new-tokens", "4"}, "\x1f"))
	so := &syncBuffer{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, so, tty
	require.NoError(t, cmd.Start())
	tty.Close()
	var term bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&term, ctl); close(done) }()
	for _, line := range []string{":temperature NaN", ":temperature 0", "The people"} {
		_, err := ctl.WriteString(line + "\n")
		require.NoError(t, err)
	}
	// Ctrl-D once the last continuation is out.
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(so.String(), want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_, err = ctl.Write([]byte{4})
	require.NoError(t, err)
	require.NoError(t, cmd.Wait())
	ctl.Close()
	<-done
	assert.Equal(t, want, so.String())
	assert.Contains(t, term.String(), "Type a prompt and Enter to continue it")
	assert.Contains(t, term.String(), "error: :temperature NaN: want a finite number ≥ 0", "reported, and the session goes on")
	assert.GreaterOrEqual(t, strings.Count(term.String(), "> "), 4, "a prompt before each line and before Ctrl-D")
}
