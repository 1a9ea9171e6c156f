package main

import (
	"fmt"

	"github.com/pkg/errors"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/bert"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/tasks"
	"github.com/seq2gpt/seq2gpt/train"
)

// modelKind is what a model directory's config.json says it holds: its
// model_type ("openai-gpt", or "" for an older GPT config without one;
// "bert") and its first architecture ("" when none is written).
type modelKind struct {
	Type, Arch string
}

func readModelKind(dir string) (modelKind, error) {
	var k struct {
		ModelType     string   `json:"model_type"`
		Architectures []string `json:"architectures"`
	}
	if err := train.LoadConfig(dir, &k); err != nil {
		return modelKind{}, err
	}
	mk := modelKind{Type: k.ModelType}
	if len(k.Architectures) > 0 {
		mk.Arch = k.Architectures[0]
	}
	return mk, nil
}

// BERT says whether the directory holds a BERT.
func (k modelKind) BERT() bool { return k.Type == bert.ModelType }

func (k modelKind) String() string {
	name := "a GPT"
	if k.BERT() {
		name = "a BERT"
	} else if k.Type != "" && k.Type != gpt.ModelType {
		name = "a model"
	}
	s := fmt.Sprintf("%s (model_type %q", name, k.Type)
	if k.Arch != "" {
		s += ", " + k.Arch
	}
	return s + ")"
}

// requireKind refuses a model directory of the other family, naming what
// it found: a command that reads GPTs (lm eval, lm generate) given a BERT,
// or one that reads BERTs (mlm eval, mlm fill) given a GPT.
func requireKind(dir string, wantBERT bool) error {
	k, err := readModelKind(dir)
	if err != nil || k.BERT() == wantBERT {
		return nil // the model's own loader reports a missing or bad config
	}
	if wantBERT {
		return errors.Errorf("%s holds %s: this command reads a BERT (model_type %q, written by mlm train); a GPT's commands are lm eval and lm generate", dir, k, bert.ModelType)
	}
	return errors.Errorf("%s holds %s: this command reads a GPT (model_type %q, written by lm train); BERT cannot continue a prompt — its commands are mlm eval and mlm fill (and finetune)", dir, k, gpt.ModelType)
}

// bertSpecialsOf reads the tokenizer of a BERT directory with BERT's
// special tokens, which must fit the model's configuration.
func bertSpecialsOf(dir string, cfg bert.Config) (*datasets.BPE, bert.Specials, error) {
	tok, ok, err := loadTokenizer(dir)
	if err == nil && !ok {
		err = errors.Errorf("%s has no tokenizer files (vocab.json and merges.txt): seq2gpt's BERT reads the byte-level BPE mlm train writes, not WordPiece's vocab.txt", dir)
	}
	if err != nil {
		return nil, bert.Specials{}, err
	}
	sp, err := bert.AddSpecials(tok)
	if err != nil {
		return nil, bert.Specials{}, err
	}
	if tok.VocabSize() != cfg.VocabSize || sp.PAD != cfg.PadTokenID {
		return nil, sp, errors.Errorf("%s: the tokenizer (%d tokens with BERT's specials, [PAD] %d) does not fit the model (vocab_size %d, pad_token_id %d)",
			dir, tok.VocabSize(), sp.PAD, cfg.VocabSize, cfg.PadTokenID)
	}
	return tok, sp, nil
}

// pretrainedBERT is the BERT body a run fine-tunes from dir (a directory
// mlm train wrote, or a HuggingFace BertForPreTraining, BertForMaskedLM
// or BertModel directory with a byte-level BPE tokenizer): its encoder,
// the pre-training heads left behind, or with scratch fresh weights of
// its configuration.
func pretrainedBERT(dir string, k modelKind, scratch bool, seed uint64) (*tasks.BERT, *datasets.BPE, error) {
	if k.Arch == tasks.BertSequenceClassification || k.Arch == tasks.BertMultipleChoice {
		return nil, nil, errors.Errorf("--from %s holds a fine-tuned %s: fine-tune from a pre-trained BERT (%s or BertModel)", dir, k.Arch, bert.Architecture)
	}
	m, err := bert.LoadEncoder(dir, nil)
	if err != nil {
		return nil, nil, errors.Wrap(err, "--from")
	}
	tok, sp, err := bertSpecialsOf(dir, m.Config)
	if err != nil {
		return nil, nil, errors.Wrap(err, "--from")
	}
	if scratch {
		if m, err = bert.NewEncoder(m.Config, seed); err != nil {
			return nil, nil, err
		}
	}
	body, err := tasks.NewBERT(m, sp)
	return body, tok, err
}

// bertLMCoef settles λ for a BERT run: BERT has no auxiliary loss, so a
// non-zero --lm-coef is refused rather than ignored, and the run records
// 0 (GPT's default 0.5 does not apply).
func bertLMCoef(fs *pflag.FlagSet, f *finetuneFlags) error {
	if fs.Changed("lm-coef") && f.lmCoef != 0 {
		return errors.Errorf("--lm-coef %g: BERT has no auxiliary language-model loss (it is fine-tuned on the task's loss alone), so λ has no effect: leave --lm-coef out or give 0", f.lmCoef)
	}
	return fs.Set("lm-coef", "0")
}

// loadTaskModel reads a fine-tuned model directory of either body — a
// checkpoint of finetune train, its exported "model", or a HuggingFace
// directory of one of the head classes — with its tokenizer.
func loadTaskModel(dir string) (*tasks.Model, *datasets.BPE, error) {
	k, err := readModelKind(dir)
	if err != nil {
		return nil, nil, err
	}
	if k.BERT() {
		cfg, err := bert.ReadConfig(dir)
		if err != nil {
			return nil, nil, err
		}
		tok, sp, err := bertSpecialsOf(dir, cfg)
		if err != nil {
			return nil, nil, err
		}
		m, err := tasks.LoadBERT(dir, sp, nil)
		return m, tok, err
	}
	m, err := tasks.LoadGPT(dir, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	tok, ok, err := loadTokenizer(dir)
	if err == nil && !ok {
		err = errors.Errorf("%s has no tokenizer files (vocab.json and merges.txt)", dir)
	}
	return m, tok, err
}

// describeModel is what a run records of its model and the line it
// prints.
func describeModel(model *tasks.Model, how string) (fact any, line string) {
	params := float64(model.Store().NumElements()) / 1e6
	switch b := model.Body.(type) {
	case *tasks.BERT:
		c := b.Model.Config
		return c, fmt.Sprintf("model: BERT, %d layers, d %d, %d heads, d_ff %d, %d positions, vocabulary %d (with [PAD] [CLS] [SEP] [MASK]), %.2fM parameters, %s",
			c.NumHiddenLayers, c.HiddenSize, c.NumAttentionHeads, c.IntermediateSize, c.MaxPositionEmbeddings, c.VocabSize, params, how)
	case *tasks.GPT:
		c := b.Model.Config
		return c, fmt.Sprintf("model: %d layers, d %d, %d heads, context %d, vocabulary %d (with [s] $ [e] and pad), %.2fM parameters, %s",
			c.NLayer, c.NEmbd, c.NHead, c.NPositions, c.VocabSize, params, how)
	}
	return nil, fmt.Sprintf("model: a %T body, %.2fM parameters, %s", model.Body, params, how)
}

// lambdaNote is how the training line states the objective.
func lambdaNote(model *tasks.Model) string {
	if _, ok := model.Body.(*tasks.BERT); ok {
		return "no auxiliary loss (BERT: the task's loss alone)"
	}
	return fmt.Sprintf("λ %g", model.Config.LMCoef)
}

// hfClass is the HuggingFace class a fine-tuned model is saved as.
func hfClass(model *tasks.Model) string {
	_, isBERT := model.Body.(*tasks.BERT)
	switch {
	case isBERT && model.Task.Kind == tasks.MultipleChoice:
		return tasks.BertMultipleChoice
	case isBERT:
		return tasks.BertSequenceClassification
	case model.Task.Kind == tasks.MultipleChoice:
		return tasks.DoubleHeads
	}
	return tasks.SequenceClassification
}
