// Package atomicfile replaces files so that a crash or a full disk leaves
// either the old file or the new one, never a torn one: the new contents go
// to a temporary file in the same directory, which is synced, renamed over
// the target, and the directory synced (so that the rename itself survives
// a power cut).
package atomicfile

import (
	"bufio"
	"io"
	"os"
	"path/filepath"

	"github.com/pkg/errors"
)

// WriteFile replaces path with data (mode 0644).
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces path (mode 0644) with what write writes to w, which is
// buffered. If write or any step after it fails, path keeps its old
// contents and the temporary file is removed.
func Write(path string, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err = write(bw); err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	if err = bw.Flush(); err != nil {
		return errors.Wrapf(err, "writing %s", path)
	}
	if err = f.Sync(); err != nil {
		return errors.Wrapf(err, "syncing %s", tmp)
	}
	if err = f.Close(); err != nil {
		return errors.Wrapf(err, "closing %s", tmp)
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return errors.Wrapf(err, "chmod %s", tmp)
	}
	if err = os.Rename(tmp, path); err != nil {
		return errors.Wrapf(err, "renaming %s to %s", tmp, path)
	}
	return SyncDir(dir)
}

// SyncDir flushes dir's list of entries to disk, so that a rename or a
// removal in it survives a power cut.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return errors.Wrapf(err, "opening directory %s", dir)
	}
	if err := d.Sync(); err != nil {
		_ = d.Close()
		return errors.Wrapf(err, "syncing directory %s", dir)
	}
	return errors.Wrapf(d.Close(), "closing directory %s", dir)
}
