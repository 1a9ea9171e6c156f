package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/safetensors"
)

// A checkpoint is a directory:
//
//	model.safetensors      the Store's tensors under their state-dict names
//	config.json            the caller's model configuration
//	optimizer.safetensors  the optimizer's slot tensors ("exp_avg.<name>", …)
//	trainer.json           step, optimizer kind and per-parameter counts,
//	                       dropout seed and call count, the caller's data
//	                       position, Run's best-evaluation state
//	…                      the caller's own files (SaveOptions.Files: a
//	                       tokenizer, say)
//	manifest.json          every other file's name, size and SHA-256
//
// Save removes the manifest first and writes it last, after every other
// file is written and synced: a checkpoint is complete exactly when its
// manifest is present and every file it lists has the listed size (Load
// checks the hashes too). A crash or a full disk mid-save leaves a
// directory without a manifest, which nothing loads. Run saves each
// checkpoint into a new directory and swaps it into place (see
// CheckpointPath), so the previous one stays whole until the new one is.
const (
	ModelFile     = "model.safetensors"
	ConfigFile    = "config.json"
	OptimizerFile = "optimizer.safetensors"
	TrainerFile   = "trainer.json"
	ManifestFile  = "manifest.json"

	checkpointFormat = "seq2gpt.train/1"
	manifestFormat   = "seq2gpt.checkpoint/1"
)

// trainerState is trainer.json.
type trainerState struct {
	Format         string           `json:"format"`
	Step           int              `json:"step"`
	ScheduleStep   int              `json:"schedule_step"`
	Optimizer      string           `json:"optimizer"`
	OptimizerSteps map[string]int64 `json:"optimizer_steps"`
	DropoutSeed    uint64           `json:"dropout_seed"`
	DropoutCalls   uint64           `json:"dropout_calls"`
	Dtype          string           `json:"dtype"`
	DataPosition   json.RawMessage  `json:"data_position,omitempty"`
	// Loop is Run's state: the best evaluation and the evaluations since.
	Loop *loopState `json:"loop,omitempty"`
}

// manifest is manifest.json: the files of a complete checkpoint.
type manifest struct {
	Format string         `json:"format"`
	Files  []manifestFile `json:"files"`
}

type manifestFile struct {
	Name   string `json:"name"` // slash-separated, relative to the checkpoint
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// SaveOptions says what a checkpoint holds beside the trainer's own state.
type SaveOptions struct {
	// Config is written as config.json (any JSON-encodable value; nil:
	// none).
	Config any
	// DataPosition is an opaque value from the caller's data loader (epoch,
	// shuffle seed, offset) that Load hands back.
	DataPosition json.RawMessage
	// Files, if set, writes the caller's own files into dir before the
	// manifest seals the checkpoint; its error fails the save.
	Files func(dir string) error
}

// crashPoint is called at each step of a checkpoint save with the step's
// name; the crash tests kill the process there. Nil outside tests.
type crashPoint func(point string)

func (c crashPoint) at(point string) {
	if c != nil {
		c(point)
	}
}

// Save writes a checkpoint to dir (created if missing): the weights, the
// optimizer state and the trainer state, and what o adds (nil: nothing).
// Resuming from it continues bit for bit as if training had not stopped.
func (t *Trainer) Save(dir string, o *SaveOptions) error {
	return t.save(dir, o, nil)
}

func (t *Trainer) save(dir string, o *SaveOptions, crash crashPoint) error {
	if o == nil {
		o = &SaveOptions{}
	}
	if o.DataPosition != nil && !json.Valid(o.DataPosition) {
		return errors.Errorf("train: data position %q is not valid JSON", o.DataPosition)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrap(err, "train: checkpoint")
	}
	// Unseal first: from here until the new manifest the directory is
	// incomplete, whatever it held before.
	if err := os.Remove(filepath.Join(dir, ManifestFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errors.Wrap(err, "train: checkpoint")
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return errors.Wrap(err, "train: checkpoint")
	}
	crash.at("begin")
	sums := map[string]manifestFile{}
	write := func(name string, enc func(w io.Writer) error) error {
		err := atomicfile.Write(filepath.Join(dir, name), func(w io.Writer) error {
			h := &hashWriter{w: w, h: sha256.New()}
			if crash != nil {
				h.at = func() { crash.at(name + ":partial") }
			}
			if err := enc(h); err != nil {
				return err
			}
			sums[name] = manifestFile{Name: name, Size: h.n, SHA256: hex.EncodeToString(h.h.Sum(nil))}
			return nil
		})
		if err != nil {
			return errors.Wrap(err, "train: checkpoint")
		}
		crash.at(name)
		return nil
	}
	weights := map[string]*tensor.Dense{}
	for _, name := range t.store.Names() {
		weights[name], _ = t.store.Get(name)
	}
	if err := write(ModelFile, func(w io.Writer) error {
		return safetensors.Encode(w, weights, map[string]string{"format": "pt"})
	}); err != nil {
		return err
	}
	st := t.cfg.Optimizer.State()
	if err := write(OptimizerFile, func(w io.Writer) error {
		return safetensors.Encode(w, st.Tensors, map[string]string{"optimizer": t.cfg.Optimizer.Kind()})
	}); err != nil {
		return err
	}
	if o.Config != nil {
		b, err := json.MarshalIndent(o.Config, "", "  ")
		if err != nil {
			return errors.Wrap(err, "train: encoding the model config")
		}
		if err := write(ConfigFile, writeBytes(append(b, '\n'))); err != nil {
			return err
		}
	} else if err := os.Remove(filepath.Join(dir, ConfigFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return errors.Wrap(err, "train: removing a stale config")
	}
	ts := trainerState{
		Format: checkpointFormat, Step: t.step, ScheduleStep: t.step,
		Optimizer: t.cfg.Optimizer.Kind(), OptimizerSteps: st.Steps,
		DropoutSeed: t.cfg.DropoutSeed, DropoutCalls: t.dropout,
		Dtype: t.store.Dtype().String(), DataPosition: o.DataPosition,
	}
	if t.loop != (loopState{}) {
		ls := t.loop
		ts.Loop = &ls
	}
	b, err := json.MarshalIndent(ts, "", "  ")
	if err != nil {
		return errors.Wrap(err, "train: encoding the trainer state")
	}
	if err := write(TrainerFile, writeBytes(append(b, '\n'))); err != nil {
		return err
	}
	if o.Files != nil {
		if err := o.Files(dir); err != nil {
			return errors.Wrapf(err, "train: writing the checkpoint's own files into %s", dir)
		}
		crash.at("files")
	}
	m, err := listFiles(dir, sums)
	if err != nil {
		return err
	}
	b, err = json.MarshalIndent(m, "", "  ")
	if err != nil {
		return errors.Wrap(err, "train: encoding the manifest")
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ManifestFile), append(b, '\n')); err != nil {
		return errors.Wrap(err, "train: checkpoint")
	}
	crash.at(ManifestFile)
	return nil
}

func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}
}

// hashWriter hashes and counts what passes through it; at, if set, is
// called once, after the first write (the crash tests: a torn temporary
// file).
type hashWriter struct {
	w  io.Writer
	h  hash.Hash
	n  int64
	at func()
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	if hw.at != nil {
		hw.at()
		hw.at = nil
	}
	return n, err
}

// listFiles is the manifest of dir: every regular file in it (the
// manifest and atomic writes' temporary files left by a crash excepted),
// with the sums already known for the files Save wrote and the others
// read and hashed.
func listFiles(dir string, known map[string]manifestFile) (manifest, error) {
	m := manifest{Format: manifestFormat, Files: []manifestFile{}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			return nil
		case rel == ManifestFile || isTempFile(d.Name()):
			return nil
		case !d.Type().IsRegular():
			return errors.Errorf("%s is not a regular file", path)
		}
		if f, ok := known[rel]; ok {
			m.Files = append(m.Files, f)
			return nil
		}
		f, err := hashFile(path)
		if err != nil {
			return err
		}
		f.Name = rel
		m.Files = append(m.Files, f)
		return nil
	})
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Name < m.Files[j].Name })
	return m, errors.Wrapf(err, "train: listing the checkpoint %s", dir)
}

// isTempFile tells an atomic write's temporary file (".name.tmp-123").
func isTempFile(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

func hashFile(path string) (manifestFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return manifestFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return manifestFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, err
}

// readManifest reads dir's manifest and checks that every file it lists is
// there with its size, and, with hashes, its SHA-256.
func readManifest(dir string, hashes bool) (manifest, error) {
	var m manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, errors.Errorf("train: %s is not a complete checkpoint: it has no %s", dir, ManifestFile)
	}
	if err != nil {
		return m, errors.Wrap(err, "train: checkpoint")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, errors.Wrapf(err, "train: %s", filepath.Join(dir, ManifestFile))
	}
	if m.Format != manifestFormat {
		return m, errors.Errorf("train: %s: format %q, want %q", filepath.Join(dir, ManifestFile), m.Format, manifestFormat)
	}
	var bad []string
	listed := false
	for _, f := range m.Files {
		listed = listed || f.Name == TrainerFile
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if !filepath.IsLocal(filepath.FromSlash(f.Name)) {
			bad = append(bad, fmt.Sprintf("%q is not a name inside the checkpoint", f.Name))
			continue
		}
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s is missing", f.Name))
			continue
		case !fi.Mode().IsRegular():
			bad = append(bad, fmt.Sprintf("%s is not a regular file", f.Name))
			continue
		case fi.Size() != f.Size:
			bad = append(bad, fmt.Sprintf("%s has %d bytes, the manifest says %d", f.Name, fi.Size(), f.Size))
			continue
		}
		if hashes {
			got, err := hashFile(path)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", f.Name, err))
			} else if got.SHA256 != f.SHA256 {
				bad = append(bad, fmt.Sprintf("%s has SHA-256 %s, the manifest says %s", f.Name, got.SHA256, f.SHA256))
			}
		}
	}
	if !listed {
		bad = append(bad, "the manifest lists no "+TrainerFile)
	}
	if len(bad) > 0 {
		return m, errors.Errorf("train: %s is not a complete checkpoint: %s", dir, strings.Join(bad, "; "))
	}
	return m, nil
}

// Load restores a checkpoint that Save wrote into this Trainer — weights,
// optimizer state, step, dropout state — and returns the data position saved
// with it. The checkpoint must be complete, every file with the size and
// hash its manifest lists. The Trainer must have the same model parameters,
// optimizer kind and dropout seed; compiled programs stay valid (they share
// the Store's tensors, which Load overwrites in place). On error the
// Trainer is unchanged.
func (t *Trainer) Load(dir string) (json.RawMessage, error) {
	if _, err := readManifest(dir, true); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, TrainerFile))
	if err != nil {
		return nil, errors.Wrap(err, "train: checkpoint")
	}
	var ts trainerState
	if err := json.Unmarshal(b, &ts); err != nil {
		return nil, errors.Wrapf(err, "train: %s", filepath.Join(dir, TrainerFile))
	}
	if ts.Format != checkpointFormat {
		return nil, errors.Errorf("train: checkpoint format %q, want %q", ts.Format, checkpointFormat)
	}
	if kind := t.cfg.Optimizer.Kind(); ts.Optimizer != kind {
		return nil, errors.Errorf("train: checkpoint optimizer is %s, this trainer's is %s", ts.Optimizer, kind)
	}
	if ts.DropoutSeed != t.cfg.DropoutSeed {
		return nil, errors.Errorf("train: checkpoint dropout seed is %d, this trainer's is %d", ts.DropoutSeed, t.cfg.DropoutSeed)
	}
	if ts.Dtype != t.store.Dtype().String() {
		return nil, errors.Errorf("train: checkpoint dtype is %s, the store's is %v", ts.Dtype, t.store.Dtype())
	}
	if ts.Step < 0 || ts.ScheduleStep != ts.Step {
		return nil, errors.Errorf("train: checkpoint step %d and schedule step %d", ts.Step, ts.ScheduleStep)
	}
	opt, _, err := safetensors.Read(filepath.Join(dir, OptimizerFile))
	if err != nil {
		return nil, errors.Wrap(err, "train: checkpoint")
	}
	if ts.OptimizerSteps == nil {
		ts.OptimizerSteps = map[string]int64{}
	}
	// The optimizer state first: SetState validates it and copies it in,
	// and the old state comes back if the weights then fail.
	before := t.cfg.Optimizer.State()
	if err := t.cfg.Optimizer.SetState(State{Steps: ts.OptimizerSteps, Tensors: opt}); err != nil {
		return nil, errors.Wrapf(err, "train: %s", filepath.Join(dir, OptimizerFile))
	}
	if _, err := LoadWeights(filepath.Join(dir, ModelFile), t.store, nil); err != nil {
		if rerr := t.cfg.Optimizer.SetState(before); rerr != nil {
			return nil, errors.Wrapf(err, "train: and restoring the optimizer state failed (%v)", rerr)
		}
		return nil, err
	}
	t.step, t.dropout = ts.Step, ts.DropoutCalls
	t.loop = loopState{}
	if ts.Loop != nil {
		t.loop = *ts.Loop
	}
	return ts.DataPosition, nil
}

// LoadConfig decodes dir's config.json into v.
func LoadConfig(dir string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return errors.Wrap(err, "train: checkpoint config")
	}
	return errors.Wrapf(json.Unmarshal(b, v), "train: %s", filepath.Join(dir, ConfigFile))
}

// SaveWeights writes the store's tensors to a safetensors file atomically,
// named as in the store (PyTorch state-dict names), with metadata format
// "pt" so that transformers-style loaders accept it.
func SaveWeights(path string, s *blocks.Store) error {
	ts := map[string]*tensor.Dense{}
	for _, name := range s.Names() {
		ts[name], _ = s.Get(name)
	}
	return errors.Wrap(safetensors.Write(path, ts, map[string]string{"format": "pt"}), "train")
}

// LoadOptions relaxes LoadWeights; nil is the strict default.
type LoadOptions struct {
	// Partial loads the tensors the file and the model share and reports
	// the model's tensors the file lacks (Missing) and the file's the model
	// lacks (Unexpected) instead of failing: new task heads on a pretrained
	// body, or a body without the pre-training head. Shape and dtype
	// mismatches of shared names are still errors.
	Partial bool
	// ConvertDtype accepts F32 tensors into a Float64 store and F64 into a
	// Float32 one (rounding), e.g. torch's float32 weights for a float64
	// gradient check.
	ConvertDtype bool
}

// LoadReport says what LoadWeights did: names in store order (Loaded,
// Missing) or sorted (Unexpected).
type LoadReport struct {
	Loaded, Missing, Unexpected []string
}

// LoadWeights sets the tensors of s from a safetensors file. By default (o
// nil) the file must hold exactly the store's names with the same shapes
// and element types; o relaxes that. Every name, shape and element type is
// checked against the file's header before any data is read, and all
// mismatches are reported in one error, each named (a checkpoint of another
// configuration usually differs in many tensors, and one error at a time
// would make fixing it a loop). On error nothing is set. A truncated or
// corrupt file is an error. Each tensor is copied in the store's own
// element type (Store.SetTensor).
func LoadWeights(path string, s *blocks.Store, o *LoadOptions) (LoadReport, error) {
	if o == nil {
		o = &LoadOptions{}
	}
	var rep LoadReport
	h, err := safetensors.ReadHeader(path)
	if err != nil {
		return rep, errors.Wrap(err, "train")
	}
	var problems []string
	for _, name := range s.Names() {
		w, _ := s.Get(name)
		f, ok := h.Tensors[name]
		if !ok {
			rep.Missing = append(rep.Missing, name)
			if !o.Partial {
				problems = append(problems, fmt.Sprintf("missing %q %v", name, w.Shape()))
			}
			continue
		}
		ok = true
		if shape := shapeOf(f); !w.Shape().Eq(shape) {
			problems = append(problems, fmt.Sprintf("%q has shape %v, the model's is %v", name, shape, w.Shape()))
			ok = false
		}
		switch {
		case f.Dtype != tensor.Float32 && f.Dtype != tensor.Float64:
			problems = append(problems, fmt.Sprintf("%q is %v, want a float type", name, f.Dtype))
			ok = false
		case f.Dtype != w.Dtype() && !o.ConvertDtype:
			problems = append(problems, fmt.Sprintf("%q is %v, the model's is %v (LoadOptions.ConvertDtype converts)",
				name, f.Dtype, w.Dtype()))
			ok = false
		}
		if ok {
			rep.Loaded = append(rep.Loaded, name)
		}
	}
	for _, name := range h.Names() {
		if _, ok := s.Get(name); !ok {
			rep.Unexpected = append(rep.Unexpected, name)
			if !o.Partial {
				problems = append(problems, fmt.Sprintf("unexpected %q %v", name, shapeOf(h.Tensors[name])))
			}
		}
	}
	if len(problems) > 0 {
		return LoadReport{}, errors.Errorf("train: %s does not match the model (%d problems): %s",
			path, len(problems), strings.Join(problems, "; "))
	}
	ts, _, err := safetensors.Read(path)
	if err != nil {
		return LoadReport{}, errors.Wrap(err, "train")
	}
	for _, name := range rep.Loaded {
		if err := s.SetTensor(name, ts[name]); err != nil {
			return LoadReport{}, errors.Wrapf(err, "train: %s", path)
		}
	}
	return rep, nil
}

// shapeOf is a header entry's shape as a tensor.Shape (a scalar is (1), as
// safetensors.Read makes it).
func shapeOf(i safetensors.Info) tensor.Shape {
	if len(i.Shape) == 0 {
		return tensor.Shape{1}
	}
	return tensor.Shape(i.Shape)
}
