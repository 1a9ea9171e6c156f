package bert

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/safetensors"
	"github.com/seq2gpt/seq2gpt/train"
)

// logits runs KindLogits on rows and returns the MLM logits.
func logits(t *testing.T, m *Model, r Rows) []float64 {
	t.Helper()
	v, err := runRows(t, m, KindLogits, r).Output("logits")
	require.NoError(t, err)
	return asFloat64s(v.(tensor.Tensor))
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, nsp := range []bool{false, true} {
		cfg := Tiny()
		cfg.VocabSize, cfg.NumHiddenLayers, cfg.NSP = 40, 1, nsp
		m, err := New(cfg, 7)
		require.NoError(t, err)
		dir := t.TempDir()
		require.NoError(t, m.Save(dir))
		back, err := Load(dir)
		require.NoError(t, err)
		assert.Equal(t, m.Config, back.Config)
		assert.Equal(t, m.Store.Names(), back.Store.Names())
		for _, n := range m.Store.Names() {
			a, _ := m.Store.Get(n)
			b, _ := back.Store.Get(n)
			assert.Equal(t, a.Data(), b.Data(), n)
		}
		r, err := m.Pad([]Sequence{{IDs: []int{1, 5, 9, 2}}, {IDs: []int{1, 7, 2}, Segments: []int{0, 0, 1}}}, 2, 6)
		require.NoError(t, err)
		assert.Equal(t, logits(t, m, r), logits(t, back, r))
		b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
		require.NoError(t, err)
		assert.Contains(t, string(b), `"model_type": "bert"`)
		assert.Contains(t, string(b), `"architectures": [`+"\n"+`    "BertForPreTraining"`)
	}
}

// TestNewInitialisesAsHF: N(0, σ²) weights, zero biases, unit gains and a
// zero padding-token embedding, and HF's parameter names.
func TestNewInitialisesAsHF(t *testing.T) {
	cfg := Tiny()
	cfg.PadTokenID = 5
	m, err := New(cfg, 3)
	require.NoError(t, err)
	w, _ := m.Store.Get("bert.embeddings.word_embeddings.weight")
	d := w.Data().([]float32)
	assert.Equal(t, make([]float32, cfg.HiddenSize), d[5*cfg.HiddenSize:6*cfg.HiddenSize], "the [PAD] row is zero")
	var sq float64
	for _, v := range d {
		sq += float64(v * v)
	}
	assert.InDelta(t, cfg.InitializerRange, math.Sqrt(sq/float64(len(d)-cfg.HiddenSize)), 0.002)
	for _, n := range []string{"bert.encoder.layer.1.attention.self.key.bias", "cls.predictions.bias", "bert.pooler.dense.bias"} {
		v, ok := m.Store.Get(n)
		require.True(t, ok, n)
		assert.Equal(t, make([]float32, v.Shape()[0]), v.Data(), n)
	}
	g, _ := m.Store.Get("bert.encoder.layer.0.output.LayerNorm.weight")
	assert.Equal(t, float32(1), g.Data().([]float32)[0])
	i, _ := m.Store.Get("bert.encoder.layer.0.intermediate.dense.weight")
	assert.Equal(t, tensor.Shape{4 * cfg.HiddenSize, cfg.HiddenSize}, i.Shape(), "nn.Linear's [out, in]")
	_, ok := m.Store.Get("cls.seq_relationship.weight")
	assert.False(t, ok, "NSP is off by default")
}

// copyFixture copies testdata/hf-bert into a temporary directory, with the
// config changed by edit and the tensors renamed or dropped by rename
// ("" drops).
func copyFixture(t *testing.T, edit func(map[string]any), rename func(string) string, change func(string, *tensor.Dense) *tensor.Dense) string {
	t.Helper()
	src, dir := filepath.Join("testdata", "hf-bert"), t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, ConfigFile))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(b, &cfg))
	if edit != nil {
		edit(cfg)
	}
	b, err = json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o644))
	ts, _, err := safetensors.Read(filepath.Join(src, WeightsFile))
	require.NoError(t, err)
	out := map[string]*tensor.Dense{}
	for n, v := range ts {
		if rename != nil {
			n = rename(n)
		}
		if change != nil {
			v = change(n, v)
		}
		if n != "" && v != nil {
			out[n] = v
		}
	}
	require.NoError(t, safetensors.Write(filepath.Join(dir, WeightsFile), out, nil))
	return dir
}

func TestLoadVariantsOfHFLayout(t *testing.T) {
	ref := loadReference(t, filepath.Join("testdata", "hf-bert"))
	want, err := Load(filepath.Join("testdata", "hf-bert"))
	require.NoError(t, err)
	wantLogits := logits(t, want, ref.rows())
	word := "bert.embeddings.word_embeddings.weight"
	for _, tc := range []struct {
		name   string
		rename func(string) string
		change func(string, *tensor.Dense) *tensor.Dense
		nsp    bool
	}{
		{"TensorFlow-converted gamma and beta", func(n string) string {
			return strings.NewReplacer("LayerNorm.weight", "LayerNorm.gamma", "LayerNorm.bias", "LayerNorm.beta").Replace(n)
		}, nil, true},
		{"tied decoder and position_ids written out", nil, func(n string, v *tensor.Dense) *tensor.Dense { return v }, true},
		{"no NSP head (as BertForMaskedLM plus a pooler)", func(n string) string {
			if strings.HasPrefix(n, "cls.seq_relationship") {
				return ""
			}
			return n
		}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyFixture(t, nil, tc.rename, tc.change)
			if tc.change != nil { // add the tied copies and the buffer HF may write
				ts, _, err := safetensors.Read(filepath.Join(dir, WeightsFile))
				require.NoError(t, err)
				ts["cls.predictions.decoder.weight"] = ts[word].Clone().(*tensor.Dense)
				ts["cls.predictions.decoder.bias"] = ts["cls.predictions.bias"].Clone().(*tensor.Dense)
				ts["bert.embeddings.position_ids"] = tensor.New(tensor.WithShape(1, 40), tensor.WithBacking(make([]int64, 40)))
				require.NoError(t, safetensors.Write(filepath.Join(dir, WeightsFile), ts, nil))
			}
			m, err := Load(dir)
			require.NoError(t, err)
			assert.Equal(t, tc.nsp, m.Config.NSP)
			assert.Equal(t, wantLogits, logits(t, m, ref.rows()))
		})
	}
}

func TestLoadReportsAllMismatches(t *testing.T) {
	dir := copyFixture(t, func(c map[string]any) { c["hidden_size"], c["num_hidden_layers"] = 16, 3 }, nil, nil)
	_, err := Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bert.embeddings.word_embeddings.weight has shape (50, 32), the config needs (50, 16)")
	assert.Contains(t, err.Error(), "missing tensor bert.encoder.layer.2.output.LayerNorm.bias")

	// BertModel's names (no "bert." prefix, no heads): the MLM head is missing.
	dir = copyFixture(t, nil, func(n string) string {
		if strings.HasPrefix(n, "cls.") {
			return ""
		}
		return strings.TrimPrefix(n, "bert.")
	}, nil)
	_, err = Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the file has no MLM head (cls.predictions.*)")

	dir = copyFixture(t, nil, nil, nil)
	ts, _, err := safetensors.Read(filepath.Join(dir, WeightsFile))
	require.NoError(t, err)
	ts["cls.predictions.decoder.weight"] = tensor.New(tensor.WithShape(50, 32), tensor.WithBacking(make([]float32, 50*32)))
	ts["cls.extra.weight"] = tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2}))
	require.NoError(t, safetensors.Write(filepath.Join(dir, WeightsFile), ts, nil))
	_, err = Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cls.predictions.decoder.weight differs from bert.embeddings.word_embeddings.weight: BERT ties them")
	assert.Contains(t, err.Error(), "unexpected tensor cls.extra.weight")

	dir = copyFixture(t, func(c map[string]any) { c["model_type"] = "gpt2" }, nil, nil)
	_, err = Load(dir)
	assert.ErrorContains(t, err, `model_type "gpt2" is not "bert"`)
	w, err := os.ReadFile(filepath.Join("testdata", "hf-bert", WeightsFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, WeightsFile), w[:len(w)/2], 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"vocab_size": 50}`), 0o644))
	_, err = Load(dir)
	assert.Error(t, err, "a truncated file")
}

// TestNumParams: the formula counts what New allocates.
func TestNumParams(t *testing.T) {
	for _, nsp := range []bool{false, true} {
		c := Tiny()
		c.IntermediateSize, c.NSP = 100, nsp
		m, err := New(c, 1)
		require.NoError(t, err)
		n, err := c.NumParams()
		require.NoError(t, err)
		assert.Equal(t, m.Store.NumElements(), n, "nsp %v", nsp)
	}
	n, err := Base().NumParams()
	require.NoError(t, err)
	assert.Equal(t, 109482240+622650, n, "BERT-base: BertModel (pooler included) and the MLM head")
	c := Base()
	c.HiddenSize, c.NumAttentionHeads = 1<<31, 1
	assert.ErrorContains(t, c.Validate(), "make more than")
}

// TestParseConfigRefusesUnknownKeys: a key neither BertConfig's nor one
// transformers writes is an error (GPT's name of a key says BERT's); the
// keys HF writes into a fine-tuned model's config.json are accepted.
func TestParseConfigRefusesUnknownKeys(t *testing.T) {
	_, err := ParseConfig([]byte(`{"n_embd": 64, "num_layers": 2, "hidden_size": 64}`), Tiny())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown key "n_embd" (GPT's name: BERT's is "hidden_size")`)
	assert.Contains(t, err.Error(), `unknown key "num_layers"`)
	c, err := ParseConfig([]byte(`{"hidden_size": 32, "num_attention_heads": 4, "id2label": {"0": "a"}, "classifier_dropout": null,
		"transformers_version": "4.40.0", "architectures": ["BertForSequenceClassification"], "model_type": "bert"}`), Tiny())
	require.NoError(t, err)
	assert.Equal(t, 32, c.HiddenSize)
	assert.Equal(t, Tiny().NumHiddenLayers, c.NumHiddenLayers, "absent keys keep the base's")
	_, err = ParseConfig([]byte(`{"hidden_size": 31}`), Tiny())
	assert.ErrorContains(t, err, "hidden_size 31 is not divisible by num_attention_heads 2")
}

func TestConfigValidation(t *testing.T) {
	c := Tiny()
	c.HiddenSize, c.NumAttentionHeads, c.HiddenAct, c.AttentionProbsDropoutProb = 60, 7, "swish", 1
	c.PadTokenID, c.PositionEmbeddingType, c.TypeVocabSize = 300, "relative_key", 0
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{"hidden_size 60 is not divisible by num_attention_heads 7", `hidden_act "swish"`,
		"attention_probs_dropout_prob 1 is not in [0, 1)", "pad_token_id 300 is outside the vocabulary [0, 256)",
		`position_embedding_type "relative_key"`, "type_vocab_size must be positive, got 0"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = Preset("huge")
	assert.ErrorContains(t, err, `unknown preset "huge"`)
	for _, p := range []string{"tiny", "small", "medium", "base", "large"} {
		c, err := Preset(p)
		require.NoError(t, err)
		require.NoError(t, c.Validate(), p)
	}
}

// TestBadInputsAreErrors: a wrong shape, id, segment or key is an error
// that names what is wrong, never a panic.
func TestBadInputsAreErrors(t *testing.T) {
	cfg := Tiny()
	cfg.VocabSize, cfg.NumHiddenLayers = 30, 1
	m, err := New(cfg, 1)
	require.NoError(t, err)

	g := blocks.NewGraph(m.Store, blocks.Eval, 0)
	in, err := m.NewInputs(g, 2, 3)
	require.NoError(t, err)
	in.Mask = blocks.Must(g.Input("bad_mask", tensor.Shape{2, 3, 4}))
	var h *G.Node
	require.NotPanics(t, func() { h, err = m.Encode(g, in) })
	assert.Nil(t, h)
	assert.ErrorContains(t, err, "bert.encoder.layer.0.attention.sdpa: attention mask has shape (2, 3, 4), want (2, 3, 3)")
	var se *blocks.ShapeError
	assert.True(t, errors.As(err, &se))
	_, err = m.Pool(g, in.IDs)
	assert.True(t, errors.As(err, &se), "pooling token ids")
	_, err = m.NewInputs(blocks.NewGraph(m.Store, blocks.Eval, 0), 2, 33)
	assert.ErrorContains(t, err, "at most max_position_embeddings 32")
	_, err = m.NSPLogits(g, nil)
	assert.ErrorContains(t, err, "no next-sentence head")

	_, err = m.Pad([]Sequence{{IDs: []int{1, 2, 3}}}, 1, 2)
	assert.ErrorContains(t, err, "sequence 0 has 3 tokens, more than the 2 steps")
	_, err = m.Pad([]Sequence{{IDs: []int{1, 2}, Segments: []int{0}}}, 1, 2)
	assert.ErrorContains(t, err, "2 tokens and 1 segment ids")
	_, err = m.Pad(make([]Sequence, 3), 2, 2)
	assert.ErrorContains(t, err, "3 sequences do not fit 2 rows")
	r, err := m.Pad([]Sequence{{IDs: []int{1, 30}}}, 1, 2)
	require.NoError(t, err)
	_, err = m.Values(r)
	assert.ErrorContains(t, err, "token id 30 at position 1 is outside the vocabulary [0, 30)")
	r, err = m.Pad([]Sequence{{IDs: []int{1, 2}, Segments: []int{0, 2}}}, 1, 2)
	require.NoError(t, err)
	_, err = m.Values(r)
	assert.ErrorContains(t, err, "segment id 2 at position 1 is outside [0, type_vocab_size 2)")

	mk, err := NewMasker(BERTMasking(), Specials{PAD: 0, CLS: 1, SEP: 2, MASK: 3}, 30, nil)
	require.NoError(t, err)
	l := MLM{Model: m, Masker: mk}
	for _, tc := range []struct {
		ex   Example
		want string
	}{
		{Example{Sequence: Sequence{IDs: []int{1, 5, 2}}, Positions: []int{3}, Targets: []int{5}}, "position 3 is outside its 3 tokens"},
		{Example{Sequence: Sequence{IDs: []int{1, 5, 2}}, Positions: []int{1}, Targets: []int{31}}, "target 31 at position 1 is outside the vocabulary"},
		{Example{Sequence: Sequence{IDs: []int{1, 5, 2}}, Positions: []int{1}}, "1 positions and 0 targets"},
		{Example{Sequence: Sequence{IDs: []int{1, 5, 6, 2}}, Positions: []int{1, 2}, Targets: []int{5, 6}}, "1 rows of 4 tokens hold at most 1 targets"},
		{Example{Sequence: Sequence{IDs: []int{1, 5, 2}}, NextLabel: 2}, "next-sentence label 2 is not 0 or 1"},
	} {
		_, err := l.Batch([]Example{tc.ex}, 1, 4)
		assert.ErrorContains(t, err, tc.want)
	}
	for _, key := range []train.Key{{Kind: "decode", Batch: 1, Len: 4}, {Batch: 1, Len: 4, Source: 3}, {Batch: 1, Len: 40}} {
		_, err := train.Compile(l, key, 0)
		assert.Error(t, err, "%v", key)
	}
	_, err = train.Compile(MLM{Model: m}, train.Key{Batch: 1, Len: 4}, 0)
	assert.ErrorContains(t, err, "pre-training needs a Masker")
	_, err = NewMasker(Masking{Rate: 0.15, Mask: 0.8, Random: 0.3}, mk.Specials, 30, nil)
	assert.ErrorContains(t, err, "sum to at most 1")
	_, err = NewMasker(BERTMasking(), Specials{PAD: 0, CLS: 1, SEP: 1, MASK: 3}, 30, nil)
	assert.ErrorContains(t, err, "[CLS] and [SEP] have the same id 1")
}

func TestSpecialsWithBPE(t *testing.T) {
	tok, err := datasets.TrainBPE([]string{"the cat sat on the mat [CLS] [MASK]"}, datasets.BPEConfig{Merges: 10})
	require.NoError(t, err)
	v := tok.VocabSize()
	sp, err := AddSpecials(tok)
	require.NoError(t, err)
	assert.Equal(t, Specials{PAD: v, CLS: v + 1, SEP: v + 2, MASK: v + 3}, sp)
	assert.Equal(t, v+4, tok.VocabSize())
	for _, id := range tok.Encode("[CLS] the [MASK] [SEP]") {
		assert.Less(t, id, v, "text never encodes to a special token")
	}
	again, err := AddSpecials(tok)
	require.NoError(t, err)
	assert.Equal(t, sp, again, "adding them again adds nothing")

	assert.Equal(t, Sequence{IDs: []int{sp.CLS, 10, 11, sp.SEP}, Segments: []int{0, 0, 0, 0}}, sp.Single([]int{10, 11, 12}, 4))
	p := sp.Pair([]int{10, 11, 12, 13}, []int{20, 21}, 7)
	assert.Equal(t, []int{sp.CLS, 10, 11, sp.SEP, 20, 21, sp.SEP}, p.IDs, "the longer part is cut first")
	assert.Equal(t, []int{0, 0, 0, 0, 1, 1, 1}, p.Segments)
	p = sp.Pair([]int{10, 11, 12}, []int{20, 21, 22, 23, 24}, 7)
	assert.Equal(t, []int{sp.CLS, 10, 11, sp.SEP, 20, 21, sp.SEP}, p.IDs)
}

// TestFillMaskMatchesTorch: FillMask's candidates at each [MASK] are the
// softmax of torch's MLM logits there, most likely first. (Any id can play
// [MASK]; the reference row's id 4 positions stand in for it.)
func TestFillMaskMatchesTorch(t *testing.T) {
	dir := filepath.Join("testdata", "hf-bert")
	ref := loadReference(t, dir)
	m, err := Load(dir)
	require.NoError(t, err)
	row := Sequence{IDs: ref.IDs[:ref.Steps], Segments: ref.Segments[:ref.Steps]}
	mask := row.IDs[4]
	got, err := m.FillMask(row, mask, 3)
	require.NoError(t, err)
	V := m.Config.VocabSize
	k := 0
	for i, id := range row.IDs {
		if id != mask {
			continue
		}
		z := ref.Logits[i*V : (i+1)*V]
		lse := logSumExp(z)
		require.Len(t, got[k], 3)
		assert.Equal(t, argmax(z), got[k][0].ID)
		for _, c := range got[k] {
			assert.InDelta(t, math.Exp(z[c.ID]-lse), c.Prob, 1e-5)
		}
		assert.GreaterOrEqual(t, got[k][0].Prob, got[k][1].Prob)
		k++
	}
	assert.Equal(t, len(got), k)
	absent := 0
	for slices.Contains(row.IDs, absent) {
		absent++
	}
	_, err = m.FillMask(row, absent, 3)
	assert.ErrorContains(t, err, "has no [MASK]")
}

// TestLoadEncoder reads the encoder of a BertForPreTraining directory, of
// a BertModel one (names without "bert.", no heads) and of a fine-tuned
// one (a "classifier" head, which a claim takes): the same hidden states
// and pooled outputs as torch's, no MLM head.
func TestLoadEncoder(t *testing.T) {
	ref := loadReference(t, filepath.Join("testdata", "hf-bert"))
	bertModel := copyFixture(t, nil, func(n string) string {
		if strings.HasPrefix(n, "cls.") {
			return ""
		}
		return strings.TrimPrefix(n, "bert.")
	}, nil)
	classifier := copyFixture(t, nil, func(n string) string {
		if strings.HasPrefix(n, "cls.seq_relationship.") {
			return strings.Replace(n, "cls.seq_relationship", "classifier", 1)
		}
		if strings.HasPrefix(n, "cls.") {
			return ""
		}
		return n
	}, nil)
	for _, dir := range []string{filepath.Join("testdata", "hf-bert"), bertModel, classifier} {
		claimed := map[string]bool{}
		m, err := LoadEncoder(dir, func(name string, _ *tensor.Dense) bool {
			claimed[name] = true
			return strings.HasPrefix(name, "classifier.")
		})
		require.NoError(t, err, dir)
		assert.False(t, m.HasMLMHead())
		assert.False(t, m.Config.NSP)
		for _, n := range m.Store.Names() {
			assert.True(t, strings.HasPrefix(n, "bert."), n)
		}
		n, err := m.Config.numParams(false)
		require.NoError(t, err)
		assert.Equal(t, n, m.Store.NumElements())
		p := runRows(t, m, KindEncode, ref.rows())
		for _, c := range []struct {
			out  string
			want []float64
		}{{"hidden", ref.Hidden}, {"pooled", ref.Pooled}} {
			v, err := p.Output(c.out)
			require.NoError(t, err)
			assert.Less(t, maxRelDiff(t, asFloat64s(v.(tensor.Tensor)), c.want), 1e-4, c.out)
		}
		_, err = train.Compile(MLM{Model: m}, train.Key{Mode: blocks.Eval, Kind: KindLogits, Batch: 1, Len: 4}, 0)
		assert.ErrorContains(t, err, "an encoder without the MLM head")
		if dir == classifier {
			assert.Equal(t, map[string]bool{"classifier.weight": true, "classifier.bias": true}, claimed)
		}
	}
	_, err := LoadEncoder(classifier, nil)
	assert.ErrorContains(t, err, "unexpected tensor classifier.bias")
	_, err = Load(classifier)
	assert.ErrorContains(t, err, "LoadEncoder reads it")
}
