package atomicfile

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.bin")
	require.NoError(t, WriteFile(path, []byte("one")))
	require.NoError(t, WriteFile(path, []byte("two")))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	// A failing writer leaves the old contents and no temporary file.
	err = Write(path, func(w io.Writer) error {
		_, _ = w.Write(bytes.Repeat([]byte("x"), 1<<20))
		return errors.New("disk full")
	})
	assert.ErrorContains(t, err, "writing "+path+": disk full")
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")

	assert.Error(t, WriteFile(filepath.Join(dir, "missing", "x"), nil))
	assert.ErrorContains(t, SyncDir(filepath.Join(dir, "missing")), "opening directory")
}

// crashEnv makes the test binary a child that rewrites one file in a loop
// until it is killed (see TestKillMidWrite).
const crashEnv = "SEQ2GPT_ATOMICFILE_CRASH_DIR"

// TestCrashHelper is the child process of TestKillMidWrite (the os/exec
// helper-process idiom); in a normal run it returns at once.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		return
	}
	big := make([]byte, 4<<20)
	for i := 0; ; i++ {
		for j := range big {
			big[j] = byte('a' + i%2)
		}
		require.NoError(t, WriteFile(filepath.Join(dir, "blob"), big))
		if i == 0 {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644))
		}
	}
}

// TestKillMidWrite kills (SIGKILL) a child process that keeps rewriting a
// 4 MiB file, at several moments: the file is always one whole version.
func TestKillMidWrite(t *testing.T) {
	for _, delay := range []time.Duration{0, 7 * time.Millisecond, 23 * time.Millisecond, 61 * time.Millisecond} {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		require.NoError(t, cmd.Start())
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "child never wrote")
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(delay)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()

		b, err := os.ReadFile(filepath.Join(dir, "blob"))
		require.NoError(t, err)
		require.Len(t, b, 4<<20, "delay %v", delay)
		assert.True(t, bytes.Count(b, b[:1]) == len(b), "one whole version (delay %v)", delay)
	}
}
