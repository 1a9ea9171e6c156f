package train_test

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
	"github.com/seq2gpt/seq2gpt/train"
)

// bigram predicts the next token from the current one: logits = W·E[id] + b.
type bigram struct {
	store *blocks.Store
	emb   *blocks.Embedding
	head  *blocks.Linear
	vocab int
}

func (m *bigram) Store() *blocks.Store { return m.store }

func (m *bigram) Build(g *blocks.Graph, k train.Key) (train.Built, error) {
	n := k.Batch * k.Len
	ids, err := g.Input("ids", tensor.Shape{n}, tensor.Int)
	if err != nil {
		return train.Built{}, err
	}
	targets, err := g.Input("targets", tensor.Shape{n})
	if err != nil {
		return train.Built{}, err
	}
	x, err := m.emb.Forward(g, ids, k.Batch, k.Len)
	if err != nil {
		return train.Built{}, err
	}
	logits, err := m.head.Forward(g, x)
	if err != nil {
		return train.Built{}, err
	}
	flat, err := G.Reshape(logits, tensor.Shape{n, m.vocab})
	if err != nil {
		return train.Built{}, err
	}
	loss, err := ops.CrossEntropy(flat, targets, -100, 0)
	return train.Built{Loss: loss, Inputs: map[string]*G.Node{"ids": ids, "targets": targets}}, err
}

// batch is rows of the cycle 0 → 1 → … → vocab−1 → 0.
func batch(vocab, rows, steps, start int) train.Batch {
	ids := make([]int, 0, rows*steps)
	tg := make([]float32, 0, rows*steps)
	for r := 0; r < rows; r++ {
		for s := 0; s < steps; s++ {
			id := (start + r + s) % vocab
			ids = append(ids, id)
			tg = append(tg, float32((id+1)%vocab))
		}
	}
	return train.Batch{
		Key: train.Key{Batch: rows, Len: steps},
		Inputs: map[string]G.Value{
			"ids":     tensor.New(tensor.WithShape(len(ids)), tensor.WithBacking(ids)),
			"targets": tensor.New(tensor.WithShape(len(tg)), tensor.WithBacking(tg)),
		},
		Weight: float64(len(tg)),
	}
}

func Example() {
	const vocab = 10
	store, err := blocks.NewStore(tensor.Float32, 1)
	if err != nil {
		log.Fatal(err)
	}
	emb, err := blocks.NewEmbedding(store, "embed", vocab, 8, nil)
	if err != nil {
		log.Fatal(err)
	}
	head, err := blocks.NewLinear(store, "head", blocks.LinearConfig{In: 8, Out: vocab})
	if err != nil {
		log.Fatal(err)
	}
	model := &bigram{store: store, emb: emb, head: head, vocab: vocab}

	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.98, Eps: 1e-9, WeightDecay: 0.01})
	if err != nil {
		log.Fatal(err)
	}
	sched, err := train.NewWarmupDecay(0.05, 0, 10, 200, train.Cosine)
	if err != nil {
		log.Fatal(err)
	}
	tr, err := train.New(model, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()

	var first, last train.StepResult
	for i := 0; i < 100; i++ {
		// Two micro-batches of different lengths make one update.
		r, err := tr.Step(batch(vocab, 4, 6, i), batch(vocab, 4, 3, i+5))
		if err != nil {
			log.Fatal(err)
		}
		if i == 0 {
			first = r
		}
		last = r
	}
	fmt.Println("steps:", last.Step)
	fmt.Println("loss fell below a tenth:", last.Loss < first.Loss/10)
	fmt.Printf("programs built: %d, runs: %d\n", tr.Stats().Builds, tr.Stats().Runs)

	dir, err := os.MkdirTemp("", "checkpoint")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := tr.Save(dir, map[string]int{"vocab": vocab}, json.RawMessage(`{"next": 100}`)); err != nil {
		log.Fatal(err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, n := range names {
		fmt.Println(filepath.Base(n))
	}
	// Output:
	// steps: 100
	// loss fell below a tenth: true
	// programs built: 2, runs: 200
	// config.json
	// model.safetensors
	// optimizer.safetensors
	// trainer.json
}
