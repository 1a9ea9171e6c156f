package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/train"
)

// RunFile is the file in a run directory that records what defines the run.
const RunFile = "run.json"

// RunDirOptions describe a training command's run directory.
type RunDirOptions struct {
	// Command names the command ("lm train"); a run directory of another
	// command is refused.
	Command string
	// Dir is the run directory (--out).
	Dir string
	// Resume continues the run in Dir (--resume); Overwrite replaces it
	// (--overwrite). Without either, a directory that holds a run is
	// refused.
	Resume, Overwrite bool
	// Defining are the flags whose values define the run (data, model,
	// schedule, batch, seed, …). On --resume a flag the user did not give
	// takes the saved value, and one given with another value is an error
	// naming both.
	Defining []string
	// Remembered are flags whose saved value a resumed run takes when the
	// user gives none, and which the user may change (--steps, to extend a
	// run; logging; samples): a change is noted. Flags in neither list are
	// not recorded.
	Remembered []string
	// Files are the run's own entries in Dir, which --overwrite removes
	// (nothing else in Dir is touched) when the new run is saved;
	// DefaultRunFiles when empty.
	Files []string
}

// DefaultRunFiles are the entries of a run directory written by a training
// loop with its checkpoints: the run file, "best" and "last" with the
// names a save in progress uses, and the loss curve.
func DefaultRunFiles() []string {
	files := []string{RunFile, "loss.png"}
	for _, name := range []string{train.BestCheckpoint, train.LastCheckpoint} {
		files = append(files, name, "."+name+".new", "."+name+".old")
	}
	return files
}

// definingFlags are the flags of fs that define a run of a command whose
// every flag does but the remembered ones and the run directory's own
// (--out, --resume, --overwrite, --help).
func definingFlags(fs *pflag.FlagSet, remembered []string) []string {
	skip := map[string]bool{"out": true, "resume": true, "overwrite": true, "help": true}
	for _, n := range remembered {
		skip[n] = true
	}
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if !skip[f.Name] {
			names = append(names, f.Name)
		}
	})
	return names
}

// runRecord is the run file's content.
type runRecord struct {
	Command string `json:"command"`
	// Flags are the defining flags' values, as the flag set prints them.
	Flags map[string]string `json:"flags"`
	// Facts are what the flags do not say: the data's hash, the model
	// configuration the flags resolved to, …
	Facts map[string]json.RawMessage `json:"facts"`
}

// RunDir is a training run's directory. OpenRunDir settles whether the
// command starts a run or continues one; Fact compares (when resuming) or
// records what the flags do not say; Save writes the run file. A command
// uses it as
//
//	rd, err := OpenRunDir(cmd.Flags(), RunDirOptions{Command: "lm train", Dir: out,
//		Resume: resume, Overwrite: overwrite, Defining: []string{"data", "lr", "seed"}})
//	… // the flags now hold the saved run's values where the user gave none
//	if err := rd.Fact("data", dataHash); err != nil { … }
//	if err := rd.Save(); err != nil { … } // before the first step
//
// A new run refuses a directory that holds one (any of Files: its run
// file, a checkpoint, its loss curve) unless Overwrite, which removes
// those entries — and only those — when Save writes the new run file.
// Resume refuses a directory without a run. Flags that are neither
// Defining nor Remembered are not recorded.
type RunDir struct {
	opts    RunDirOptions
	fs      *pflag.FlagSet
	saved   *runRecord // the run file read when resuming (nil: none, or a new run)
	facts   map[string]json.RawMessage
	remove  []string // the old run's entries, removed by Save (--overwrite)
	Resumed bool
	// Notes are things the user should know (printed by the command): a
	// free flag that changed, a run without a run file resumed.
	Notes []string
}

// OpenRunDir opens o.Dir for a run of o.Command whose flags are fs.
func OpenRunDir(fs *pflag.FlagSet, o RunDirOptions) (*RunDir, error) {
	if len(o.Files) == 0 {
		o.Files = DefaultRunFiles()
	}
	for _, name := range append(append([]string(nil), o.Defining...), o.Remembered...) {
		if fs.Lookup(name) == nil {
			panic("seq2gpt: OpenRunDir: no flag --" + name) // a programming error
		}
	}
	rd := &RunDir{opts: o, fs: fs, facts: map[string]json.RawMessage{}}
	if o.Resume && o.Overwrite {
		return nil, errors.New("--resume and --overwrite: give one (continue the run, or replace it)")
	}
	rec, err := readRunRecord(o.Dir)
	if err != nil {
		return nil, err
	}
	held := heldEntries(o.Dir, o.Files)
	switch {
	case o.Resume:
		if rec == nil && !hasCheckpoint(o.Dir) {
			return nil, errors.Errorf("--resume: %s holds no run (no %s and no checkpoint)", o.Dir, RunFile)
		}
		rd.Resumed = true
		if rec == nil {
			rd.Notes = append(rd.Notes, fmt.Sprintf("%s has a checkpoint but no %s (an older run): resuming with the flags given, which it records now", o.Dir, RunFile))
			return rd, nil
		}
		if rec.Command != o.Command {
			return nil, errors.Errorf("--resume: %s holds a %q run, not %q", o.Dir, rec.Command, o.Command)
		}
		rd.saved = rec
		if err := rd.applySaved(); err != nil {
			return nil, err
		}
	case len(held) > 0 && !o.Overwrite:
		return nil, errors.Errorf("%s holds a run (%s): continue it with --resume, or replace it with --overwrite",
			o.Dir, strings.Join(held, ", "))
	case o.Overwrite:
		// Removed only when the new run is saved, so that a run refused
		// for a bad flag or file leaves the old one.
		rd.remove = held
	}
	return rd, nil
}

// applySaved gives each defining flag the user did not set its saved value
// and refuses one set to another value.
func (rd *RunDir) applySaved() error {
	var conflicts []string
	for _, name := range rd.opts.Defining {
		saved, ok := rd.saved.Flags[name]
		if !ok {
			continue // a flag newer than the run: its default stands
		}
		f := rd.fs.Lookup(name)
		if f.Changed {
			if f.Value.String() != saved {
				conflicts = append(conflicts, fmt.Sprintf("--%s %s contradicts the run in %s, which has --%s %s",
					name, show(f.Value.String()), rd.opts.Dir, name, show(saved)))
			}
			continue
		}
		if err := rd.fs.Set(name, unbracket(f, saved)); err != nil {
			return errors.Wrapf(err, "%s: --%s %q", filepath.Join(rd.opts.Dir, RunFile), name, saved)
		}
	}
	for _, name := range rd.opts.Remembered {
		saved, ok := rd.saved.Flags[name]
		if !ok {
			continue
		}
		f := rd.fs.Lookup(name)
		if f.Changed {
			if f.Value.String() != saved {
				rd.Notes = append(rd.Notes, fmt.Sprintf("--%s %s (the run had %s)", name, show(f.Value.String()), show(saved)))
			}
			continue
		}
		if err := rd.fs.Set(name, unbracket(f, saved)); err != nil {
			return errors.Wrapf(err, "%s: --%s %q", filepath.Join(rd.opts.Dir, RunFile), name, saved)
		}
	}
	if len(conflicts) > 0 {
		return errors.Errorf("%s (continue it without these flags, or start another run with another --out or --overwrite)",
			strings.Join(conflicts, "; "))
	}
	return nil
}

// show quotes an empty value.
func show(v string) string {
	if v == "" {
		return `""`
	}
	return v
}

// unbracket turns a slice flag's printed value "[1,2]" back into what Set
// takes.
func unbracket(f *pflag.Flag, v string) string {
	if strings.HasSuffix(f.Value.Type(), "Slice") {
		return strings.Trim(v, "[]")
	}
	return v
}

// Fact records v (anything JSON) under name. When resuming a run whose run
// file has the fact, a different value is an error naming both.
func (rd *RunDir) Fact(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return errors.Wrapf(err, "run fact %s", name)
	}
	if rd.saved != nil {
		if old, ok := rd.saved.Facts[name]; ok && !jsonEqual(old, b) {
			return errors.Errorf("this is not the run in %s: %s", rd.opts.Dir, jsonDiff(name, old, b))
		}
	}
	rd.facts[name] = b
	return nil
}

// jsonDiff says how two JSON values differ: each differing key of two
// objects, or both values.
func jsonDiff(name string, saved, now []byte) string {
	var x, y map[string]any
	if json.Unmarshal(saved, &x) != nil || json.Unmarshal(now, &y) != nil {
		return fmt.Sprintf("its %s is %s, this run's %s", name, saved, now)
	}
	keys := map[string]bool{}
	for k := range x {
		keys[k] = true
	}
	for k := range y {
		keys[k] = true
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		a, _ := json.Marshal(x[k])
		b, _ := json.Marshal(y[k])
		if !bytes.Equal(a, b) {
			diffs = append(diffs, fmt.Sprintf("its %s.%s is %s, this run's %s", name, k, a, b))
		}
	}
	return strings.Join(diffs, "; ")
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// Save writes the run file: the defining flags' values now (defaults
// resolved by the command are recorded as set) and the facts.
func (rd *RunDir) Save() error {
	rec := runRecord{Command: rd.opts.Command, Flags: map[string]string{}, Facts: rd.facts}
	if rd.saved != nil {
		for k, v := range rd.saved.Facts {
			if _, ok := rec.Facts[k]; !ok {
				rec.Facts[k] = v
			}
		}
	}
	for _, name := range append(append([]string(nil), rd.opts.Defining...), rd.opts.Remembered...) {
		rec.Flags[name] = rd.fs.Lookup(name).Value.String()
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return errors.Wrap(err, "run file")
	}
	for _, name := range rd.remove {
		if err := os.RemoveAll(filepath.Join(rd.opts.Dir, name)); err != nil {
			return errors.Wrap(err, "--overwrite")
		}
	}
	rd.remove = nil
	if err := os.MkdirAll(rd.opts.Dir, 0o755); err != nil {
		return errors.Wrap(err, "run directory")
	}
	return atomicfile.WriteFile(filepath.Join(rd.opts.Dir, RunFile), append(b, '\n'))
}

// PrintNotes writes the notes to w, one a line.
func (rd *RunDir) PrintNotes(w io.Writer) {
	for _, n := range rd.Notes {
		fmt.Fprintln(w, "note:", n)
	}
}

func readRunRecord(dir string) (*runRecord, error) {
	path := filepath.Join(dir, RunFile)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, errors.Wrap(err, "run file")
	}
	var rec runRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, errors.Wrapf(err, "%s", path)
	}
	if rec.Command == "" || rec.Flags == nil {
		return nil, errors.Errorf("%s: no command or flags: not a run file", path)
	}
	return &rec, nil
}

// heldEntries are the entries of files that exist in dir, sorted.
func heldEntries(dir string, files []string) []string {
	var held []string
	for _, name := range files {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			held = append(held, name)
		}
	}
	sort.Strings(held)
	return held
}

func hasCheckpoint(dir string) bool {
	for _, name := range []string{train.LastCheckpoint, train.BestCheckpoint} {
		if _, err := train.CheckpointPath(dir, name); err == nil {
			return true
		}
	}
	return false
}
