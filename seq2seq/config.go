package seq2seq

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// ModelType is config.json's "model_type" for both architectures of this
// package; "arch" tells them apart.
const ModelType = "seq2seq"

// The architectures (Config.Arch).
const (
	// Fixed is the fixed-context encoder–decoder of Sutskever, Vinyals &
	// Le (2014) and Cho et al. (2014): c = h_m.
	Fixed = "fixed"
	// Attention is the encoder–decoder with attention of Bahdanau, Cho &
	// Bengio (2015): c_i = Σ_j α_ij h_j.
	Attention = "attention"
)

// Config is a model's configuration, saved as config.json beside its
// weights. Sizes follow torch's nn.LSTM and nn.Embedding argument names.
type Config struct {
	// ModelType is always "seq2seq" (ModelType) and Arch "fixed" or
	// "attention": a directory of another model is refused by name.
	ModelType string `json:"model_type"`
	Arch      string `json:"arch"`

	SrcVocab int `json:"src_vocab_size"`
	TgtVocab int `json:"tgt_vocab_size"`
	// Embed is the embedding size E of both sides, Hidden the LSTM size H
	// (of each direction), Layers the depth L of the encoder and of the
	// decoder.
	Embed  int `json:"embed_dim"`
	Hidden int `json:"hidden_size"`
	Layers int `json:"num_layers"`
	// Dropout is applied to the embeddings, between LSTM layers and to the
	// output features before the projection, in training graphs.
	Dropout float64 `json:"dropout"`

	// ReverseSource reads each source sentence backwards (Sutskever et
	// al.'s trick; fixed context only).
	ReverseSource bool `json:"reverse_source"`
	// FeedContext gives the decoder c at every step, as input and to the
	// output layer, as Cho et al. do (fixed context only; attention always
	// feeds its c_i).
	FeedContext bool `json:"feed_context"`

	// Unidirectional makes the attention model's encoder read left to
	// right only (h_j = h→_j) instead of Bahdanau's bidirectional
	// h_j = [h→_j; h←_j].
	Unidirectional bool `json:"unidirectional"`
	// Score is the attention score: "additive" (Bahdanau, the default),
	// "dot" or "general" (Luong).
	Score blocks.Score `json:"score,omitempty"`
	// AttentionDim is the additive score's inner size A (0: Hidden).
	AttentionDim int `json:"attention_dim,omitempty"`

	// TieEmbeddings uses the target embedding as the output projection
	// (Press & Wolf 2017), through a bias-free projection of the output
	// features to Embed when their size differs (fairseq's LSTM decoder
	// does the same).
	TieEmbeddings bool `json:"tie_embeddings"`

	// PadID, BOSID and EOSID are the target vocabulary's padding, start
	// and end tokens; EOSID also ends every source (see Model.Source).
	PadID int `json:"pad_token_id"`
	BOSID int `json:"bos_token_id"`
	EOSID int `json:"eos_token_id"`
	// SrcEOSID is the source vocabulary's end token (equal to EOSID with a
	// joint vocabulary).
	SrcEOSID int `json:"src_eos_token_id"`
}

// WithDefaults fills ModelType, the attention score and AttentionDim.
func (c Config) WithDefaults() Config {
	if c.ModelType == "" {
		c.ModelType = ModelType
	}
	if c.Arch == Attention {
		if c.Score == "" {
			c.Score = blocks.Additive
		}
		if c.AttentionDim == 0 {
			c.AttentionDim = c.Hidden
		}
	}
	return c
}

// EncoderDim is the size of each encoder state h_j: 2H for Bahdanau's
// bidirectional encoder, else H.
func (c Config) EncoderDim() int {
	if c.Arch == Attention && !c.Unidirectional {
		return 2 * c.Hidden
	}
	return c.Hidden
}

// OutputDim is the size of the output features o_i the projection reads:
// [s_i; c_i] with attention or FeedContext, s_i alone otherwise.
func (c Config) OutputDim() int {
	if c.Arch == Attention {
		return c.Hidden + c.EncoderDim()
	}
	if c.FeedContext {
		return 2 * c.Hidden
	}
	return c.Hidden
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, errors.Errorf(format, args...).Error()) }
	if c.ModelType != ModelType {
		add("model_type %q is not %q", c.ModelType, ModelType)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"src_vocab_size", c.SrcVocab}, {"tgt_vocab_size", c.TgtVocab}, {"embed_dim", c.Embed}, {"hidden_size", c.Hidden}, {"num_layers", c.Layers}} {
		if f.v <= 0 {
			add("%s must be positive, got %d", f.name, f.v)
		}
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		add("dropout %v is not in [0, 1)", c.Dropout)
	}
	for _, id := range []struct {
		name  string
		v, of int
	}{{"pad_token_id", c.PadID, c.TgtVocab}, {"bos_token_id", c.BOSID, c.TgtVocab}, {"eos_token_id", c.EOSID, c.TgtVocab}, {"src_eos_token_id", c.SrcEOSID, c.SrcVocab}} {
		if id.of > 0 && (id.v < 0 || id.v >= id.of) {
			add("%s %d is outside its vocabulary [0, %d)", id.name, id.v, id.of)
		}
	}
	switch c.Arch {
	case Fixed:
		if c.Unidirectional || c.Score != "" || c.AttentionDim != 0 {
			add("unidirectional, score and attention_dim belong to the attention architecture, not fixed")
		}
	case Attention:
		if c.ReverseSource || c.FeedContext {
			add("reverse_source and feed_context belong to the fixed architecture (attention reads the source both ways and always feeds c_i)")
		}
		switch c.Score {
		case blocks.Additive, blocks.General:
		case blocks.Dot:
			if c.EncoderDim() != c.Hidden {
				add("the dot score needs encoder states of the decoder's size %d, but the bidirectional encoder's are %d (use score general, or unidirectional)", c.Hidden, c.EncoderDim())
			}
		default:
			add("score %q is not additive, dot or general", c.Score)
		}
		if c.AttentionDim < 0 {
			add("attention_dim must be positive, got %d", c.AttentionDim)
		}
	default:
		add("arch %q is not %q or %q", c.Arch, Fixed, Attention)
	}
	if len(errs) > 0 {
		return errors.New("seq2seq: invalid config: " + strings.Join(errs, "; "))
	}
	return nil
}

// ConfigFile is the configuration's file name in a model directory.
const ConfigFile = "config.json"

// ReadConfig reads dir/config.json. A directory of another model (another
// model_type, such as "openai-gpt" or "transformer") is refused by name.
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, errors.Wrap(err, "seq2seq: model config")
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, errors.Wrapf(err, "seq2seq: %s", path)
	}
	if c.ModelType != ModelType {
		return Config{}, &WrongModelError{Path: path, ModelType: c.ModelType, Arch: c.Arch}
	}
	return c, errors.Wrapf(c.Validate(), "seq2seq: %s", path)
}

// WrongModelError says a model directory holds another kind of model.
type WrongModelError struct {
	Path      string
	ModelType string // what config.json names
	Arch      string
}

func (e *WrongModelError) Error() string {
	if e.ModelType == "" {
		return "seq2seq: " + e.Path + " has no model_type; want \"" + ModelType + "\" (arch fixed or attention)"
	}
	return "seq2seq: " + e.Path + " is a model of type \"" + e.ModelType + "\", not \"" + ModelType + "\" (arch fixed or attention)"
}
