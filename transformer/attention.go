package transformer

import (
	"strconv"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/train"
)

// AttentionMaps are every attention weight of one sentence pair, by layer
// and head, each a matrix of rows (queries) over columns (keys):
//
//	EncoderSelf[l][h]  [S][S]  the encoder's self-attention over the source (with its EOS)
//	DecoderSelf[l][h]  [T][T]  the decoder's masked self-attention (zero above the diagonal)
//	Cross[l][h]        [T][S]  encoder–decoder attention: row t is α for target token t
//
// Row t of the decoder's maps is the position that predicts target token
// t (its input is the token before it, BOS for the first).
type AttentionMaps struct {
	Source, Target []int // the source as the encoder read it, and the target
	EncoderSelf    [][][][]float32
	DecoderSelf    [][][][]float32
	Cross          [][][][]float32
}

// Attention runs the model over one source sentence and a target for it
// (a translation, ending with EOS or not) and returns every attention's
// weights, for pictures such as the translate command's --attention.
func (m *Model) Attention(source, target []int) (*AttentionMaps, error) {
	cfg := m.Config
	src := m.Source(source)
	if len(target) == 0 {
		return nil, errors.New("transformer: attention of an empty target")
	}
	S, T := len(src), len(target)
	if S > cfg.MaxPositions || T > cfg.MaxPositions {
		return nil, errors.Errorf("transformer: attention of %d source and %d target tokens: max_position_embeddings is %d", S, T, cfg.MaxPositions)
	}
	srcIDs, err := blocks.IDs(src, cfg.SrcVocabSize)
	if err != nil {
		return nil, errors.Wrap(err, "transformer: source")
	}
	tgtIn := append([]int{cfg.BOS}, target[:T-1]...)
	tgtIDs, err := blocks.IDs(tgtIn, cfg.TgtVocabSize)
	if err != nil {
		return nil, errors.Wrap(err, "transformer: target")
	}
	srcMask, memMask, err := SourceMasks(m.Store.Dtype(), []int{S}, S, T)
	if err != nil {
		return nil, err
	}
	p, err := train.Compile(Translator{m}, train.Key{Mode: blocks.Eval, Kind: KindLogits, Batch: 1, Source: S, Len: T}, 0)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if err := let(p, map[string]G.Value{"src": srcIDs, "tgt_in": tgtIDs, "src_mask": srcMask, "memory_mask": memMask}); err != nil {
		return nil, err
	}
	if err := p.Run(); err != nil {
		return nil, errors.Wrap(err, "transformer: attention")
	}
	a := &AttentionMaps{Source: src, Target: append([]int(nil), target...)}
	read := func(name string, L int) ([][][][]float32, error) {
		out := make([][][][]float32, L)
		for l := range out {
			v, err := p.Output(name + "." + strconv.Itoa(l))
			if err != nil {
				return nil, err
			}
			s := v.Shape() // [1, h, rows, cols]
			d := floats(v)
			out[l] = make([][][]float32, s[1])
			for h := range out[l] {
				out[l][h] = make([][]float32, s[2])
				for i := range out[l][h] {
					off := (h*s[2] + i) * s[3]
					out[l][h][i] = append([]float32(nil), d[off:off+s[3]]...)
				}
			}
		}
		return out, nil
	}
	if a.EncoderSelf, err = read("enc_self", cfg.NumEncoderLayers); err != nil {
		return nil, err
	}
	if a.DecoderSelf, err = read("dec_self", cfg.NumDecoderLayers); err != nil {
		return nil, err
	}
	if a.Cross, err = read("cross", cfg.NumDecoderLayers); err != nil {
		return nil, err
	}
	return a, nil
}
