package transformer

import (
	"math"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/train"
)

// newDecoder is m's decoder, closed with the test.
func newDecoder(t *testing.T, m *Model, cfg DecoderConfig) *Decoder {
	d, err := m.NewDecoder(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

// TestGreedyEqualsTorch: on the torch fixtures' weights, greedy decoding
// with the cache and without it gives the tokens torch's own greedy loop
// gives (the whole prefix recomputed for every token), for the batch of
// three sources of lengths 5, 3, 1.
func TestGreedyEqualsTorch(t *testing.T) {
	for _, name := range []string{"model_post", "model_pre_shared_tied_learned"} {
		f := loadFixture(t, name)
		m, err := New(f.Config, 1)
		require.NoError(t, err)
		f.load(t, m)
		want := f.ints(t, "output:greedy")
		raw := make([][]int, len(f.Sources)) // the fixture's sources end with EOS, which Start appends
		for b, src := range f.Sources {
			require.Equal(t, m.Config.EOS, src[len(src)-1])
			raw[b] = src[:len(src)-1]
		}
		for _, noCache := range []bool{false, true} {
			out, err := decode.Greedy(newDecoder(t, m, DecoderConfig{NoCache: noCache}), raw, decode.Limits{MaxLen: 6})
			require.NoError(t, err)
			for b := range f.Sources {
				assert.Equal(t, want[b*6:(b+1)*6], out.Tokens[b], "%s row %d, noCache=%v", name, b, noCache)
			}
		}
	}
}

// randomModel is a small model with dropout 0.1 in its config (left out
// of the evaluation programs decoding runs).
func randomModel(t *testing.T, dt tensor.Dtype, modify func(*Config)) *Model {
	cfg := Tiny()
	cfg.SrcVocabSize, cfg.TgtVocabSize, cfg.DModel, cfg.NHead, cfg.DimFeedforward, cfg.MaxPositions = 23, 29, 16, 2, 32, 48
	cfg.ShareEmbeddings, cfg.TieOutput = false, false
	cfg.BOS, cfg.EOS, cfg.Pad = 1, 2, 0
	if modify != nil {
		modify(&cfg)
	}
	s, err := blocks.NewStore(dt, 4)
	require.NoError(t, err)
	m, err := NewWithStore(cfg, s)
	require.NoError(t, err)
	return m
}

// TestCachedAndUncachedLogitsAgree: the incremental step (encoder once,
// cached self-attention keys and values, cross-attention keys and values
// once per source) gives the logits and the attention that recomputing
// everything gives, at every step, for a batch of sources of different
// lengths, through cache capacities 16, 32 and the cap 47, in float32 and
// float64, post-LN and pre-LN.
func TestCachedAndUncachedLogitsAgree(t *testing.T) {
	for _, tc := range []struct {
		name string
		dt   tensor.Dtype
		tol  float64
		mod  func(*Config)
	}{
		{"float32", tensor.Float32, 1e-4, nil},
		{"float64-pre-ln-learned", tensor.Float64, 1e-9, func(c *Config) { c.NormFirst, c.Positions = true, Learned }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(t, tc.dt, tc.mod)
			sources := [][]int{{3, 4, 5, 6, 7, 8, 9, 10, 11}, {12}, {5, 5, 13}}
			cfg := decode.GenerateConfig{Limits: decode.Limits{MaxLen: 47}, KeepLogits: true,
				Sampling: decode.Sampling{Temperature: 1, TopK: 10, Seed: 3}}
			cached, err := decode.Generate(newDecoder(t, m, DecoderConfig{}), sources, cfg)
			require.NoError(t, err)
			full, err := decode.Generate(newDecoder(t, m, DecoderConfig{NoCache: true}), sources, cfg)
			require.NoError(t, err)
			assert.Equal(t, full.Tokens, cached.Tokens)
			for b, src := range sources {
				require.Len(t, cached.Logits[b], 47)
				for s := range cached.Logits[b] {
					require.InDeltaSlice(t, full.Logits[b][s], cached.Logits[b][s], tc.tol, "row %d step %d", b, s)
					require.Len(t, cached.Attention[b][s], len(src)+1, "α over the source and EOS")
					require.InDeltaSlice(t, full.Attention[b][s], cached.Attention[b][s], tc.tol, "α of row %d step %d", b, s)
					var sum float64
					for _, a := range cached.Attention[b][s] {
						sum += float64(a)
					}
					require.InDelta(t, 1, sum, 1e-5, "α of row %d step %d sums to 1 over the source", b, s)
				}
			}
			// 48 new tokens fit 48 positions (the last is never fed); 49 do not.
			_, err = decode.Greedy(newDecoder(t, m, DecoderConfig{}), sources, decode.Limits{MaxLen: 48})
			require.NoError(t, err)
			_, err = decode.Greedy(newDecoder(t, m, DecoderConfig{}), sources, decode.Limits{MaxLen: 49})
			assert.ErrorContains(t, err, "row 0 has 49 target tokens, which exceeds max_position_embeddings 48")
		})
	}
}

// TestBatchedEqualsAlone: decoding a batch gives each source the tokens
// it gets alone (padding and the other rows change nothing).
func TestBatchedEqualsAlone(t *testing.T) {
	m := randomModel(t, tensor.Float32, nil)
	dec := newDecoder(t, m, DecoderConfig{})
	sources := [][]int{{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, {12}, {5, 5, 13}, {22, 21}}
	lim := decode.Limits{MaxLen: 20, EOS: []int{m.Config.EOS}}
	all, err := decode.Greedy(dec, sources, lim)
	require.NoError(t, err)
	for b, src := range sources {
		one, err := decode.Greedy(dec, [][]int{src}, lim)
		require.NoError(t, err)
		assert.Equal(t, one.Tokens[0], all.Tokens[b], "source %d", b)
	}
}

// logitsOf runs the teacher-forced logits program for one source and the
// decoder inputs tgtIn (BOS first) and returns the log-probabilities at
// every position.
func logitsOf(t *testing.T, m *Model, srcs, tgtIn [][]int) [][][]float64 {
	B, S, T := len(srcs), 0, 0
	for i := range srcs {
		S, T = max(S, len(srcs[i])), max(T, len(tgtIn[i]))
	}
	b, err := Translator{m}.Batch(batchOf(srcs, tgtIn, m.Config.Pad))
	require.NoError(t, err)
	p, err := train.Compile(Translator{m}, train.Key{Mode: blocks.Eval, Kind: KindLogits, Batch: B, Source: S, Len: T}, 0)
	require.NoError(t, err)
	defer p.Close()
	// tgt_in is the decoder input itself here, not a target to shift.
	ids := make([]int, B*T)
	for r := range tgtIn {
		copy(ids[r*T:], tgtIn[r])
	}
	b.Inputs["tgt_in"] = tensor.New(tensor.WithShape(B*T), tensor.WithBacking(ids))
	delete(b.Inputs, "targets")
	require.NoError(t, let(p, b.Inputs))
	require.NoError(t, p.Run())
	v, err := p.Output("logits")
	require.NoError(t, err)
	l := floats(v)
	V := m.Config.TgtVocabSize
	out := make([][][]float64, B)
	for r := range out {
		for i := range tgtIn[r] {
			out[r] = append(out[r], logSoftmax(l[(r*T+i)*V:(r*T+i+1)*V]))
		}
	}
	return out
}

func logSoftmax(l []float32) []float64 {
	m := math.Inf(-1)
	for _, x := range l {
		m = math.Max(m, float64(x))
	}
	var s float64
	for _, x := range l {
		s += math.Exp(float64(x) - m)
	}
	out := make([]float64, len(l))
	for i, x := range l {
		out[i] = float64(x) - m - math.Log(s)
	}
	return out
}

// TestBeamSearchIsExact runs decode's beam search on the Transformer.
// Without end tokens and two new tokens, a beam as wide as the target
// vocabulary is exact: its n-best list is the exhaustive ranking of all V²
// continuations, computed here from teacher-forced passes, for two
// sources of different lengths in one batch (so Reorder copies the
// encoder's keys and values and the cache between rows). Beam 1 is greedy.
func TestBeamSearchIsExact(t *testing.T) {
	m := randomModel(t, tensor.Float32, nil)
	V, bos := m.Config.TgtVocabSize, m.Config.BOS
	sources := [][]int{{5, 9, 2, 14}, {17}}
	hyps, err := decode.BeamSearch(newDecoder(t, m, DecoderConfig{}), sources,
		decode.BeamConfig{Limits: decode.Limits{MaxLen: 2}, Beam: V, NBest: 10})
	require.NoError(t, err)
	for i, src := range sources {
		lp1 := logitsOf(t, m, [][]int{m.Source(src)}, [][]int{{bos}})[0][0]
		srcs, ins := make([][]int, V), make([][]int, V)
		for y := range V {
			srcs[y], ins[y] = m.Source(src), []int{bos, y}
		}
		lp2 := logitsOf(t, m, srcs, ins)
		type seq struct {
			y  []int
			lp float64
		}
		var want []seq
		for y1 := range V {
			for y2 := range V {
				want = append(want, seq{[]int{y1, y2}, lp1[y1] + lp2[y1][1][y2]})
			}
		}
		sort.SliceStable(want, func(a, b int) bool { return want[a].lp > want[b].lp })
		require.Len(t, hyps[i], 10)
		for k, h := range hyps[i] {
			assert.InDelta(t, want[k].lp, h.LogProb, 1e-4, "source %d rank %d", i, k)
			if want[k].lp-want[k+1].lp > 1e-3 && (k == 0 || want[k-1].lp-want[k].lp > 1e-3) {
				assert.Equal(t, want[k].y, h.Tokens, "source %d rank %d", i, k)
			}
			require.Len(t, h.Attention, 2, "one α per token")
			assert.Len(t, h.Attention[0], len(src)+1)
		}
	}
	lim := decode.Limits{MaxLen: 12, EOS: []int{m.Config.EOS}}
	g, err := decode.Greedy(newDecoder(t, m, DecoderConfig{}), sources, lim)
	require.NoError(t, err)
	one, err := decode.BeamSearch(newDecoder(t, m, DecoderConfig{}), sources, decode.BeamConfig{Limits: lim, Beam: 1})
	require.NoError(t, err)
	for i := range sources {
		want := g.Tokens[i]
		if want[len(want)-1] != m.Config.EOS {
			want = append(slices.Clone(want), m.Config.EOS)
		}
		assert.Equal(t, want, one[i][0].Tokens, "source %d", i)
	}
}

// TestDecoderValidatesAndCompilesFewPrograms: bad sources are errors that
// say which; a decoder keeps its programs across calls (an encoder and
// one step per cache capacity for a source bucket).
func TestDecoderValidatesAndCompilesFewPrograms(t *testing.T) {
	m := randomModel(t, tensor.Float32, nil)
	dec := newDecoder(t, m, DecoderConfig{})
	lim := decode.Limits{MaxLen: 3}
	for _, c := range []struct {
		sources [][]int
		want    string
	}{
		{[][]int{{1, 23}}, "source 0: token 23 at position 1 is outside the vocabulary [0, 23)"},
		{[][]int{make([]int, 48)}, "source 0 has 48 tokens and EOS, which exceeds max_position_embeddings 48"},
		{nil, "no inputs"},
	} {
		_, err := decode.Greedy(dec, c.sources, lim)
		assert.ErrorContains(t, err, c.want)
	}
	for range 3 {
		_, err := decode.Greedy(dec, [][]int{{3, 4}, {5}, {}}, decode.Limits{MaxLen: 20})
		require.NoError(t, err)
	}
	// Sources up to 8 tokens, 21 target positions: the encoder, capacities 16 and 32.
	assert.Equal(t, 3, dec.Stats().Builds)
	assert.Zero(t, dec.Stats().Evictions)
}
