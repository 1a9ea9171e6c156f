package train_test

import (
	"context"
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
	if err := tr.Save(dir, &train.SaveOptions{Config: map[string]int{"vocab": vocab}, DataPosition: json.RawMessage(`{"next": 100}`)}); err != nil {
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
	// manifest.json
	// model.safetensors
	// optimizer.safetensors
	// trainer.json
}

// cycleData serves one micro-batch per step from a counter, which is all a
// resumed run needs to continue with the right batch.
type cycleData struct{ next int }

func (d *cycleData) Next() ([]train.Batch, error) {
	d.next++
	return []train.Batch{batch(10, 4, 6, d.next)}, nil
}

func (d *cycleData) Position() (json.RawMessage, error) { return json.Marshal(d.next) }

func (d *cycleData) Restore(pos json.RawMessage) error { return json.Unmarshal(pos, &d.next) }

// ExampleRun trains with evaluation, best and last checkpoints, is
// interrupted half-way (as by Ctrl-C) and resumes.
func ExampleRun() {
	newTrainer := func() *train.Trainer {
		store, err := blocks.NewStore(tensor.Float32, 1)
		if err != nil {
			log.Fatal(err)
		}
		emb, err := blocks.NewEmbedding(store, "embed", 10, 8, nil)
		if err != nil {
			log.Fatal(err)
		}
		head, err := blocks.NewLinear(store, "head", blocks.LinearConfig{In: 8, Out: 10})
		if err != nil {
			log.Fatal(err)
		}
		opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.98, Eps: 1e-9, WeightDecay: 0.01,
			DecayMatricesOnly: true, NoDecay: []string{"embed.weight"}})
		if err != nil {
			log.Fatal(err)
		}
		tr, err := train.New(&bigram{store: store, emb: emb, head: head, vocab: 10},
			train.Config{Optimizer: opt, Schedule: train.Constant(0.02), ClipNorm: 1})
		if err != nil {
			log.Fatal(err)
		}
		return tr
	}
	validate := func(t *train.Trainer) (map[string]float64, error) {
		r, err := t.Evaluate(batch(10, 2, 6, 3))
		return map[string]float64{"loss": r.Loss}, err
	}
	dir, err := os.MkdirTemp("", "run")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg := train.LoopConfig{Steps: 60, EvalEvery: 20, Patience: 3, CheckpointDir: dir,
		Config: map[string]int{"vocab": 10}}

	// The first run is cancelled after step 30.
	ctx, cancel := context.WithCancel(context.Background())
	tr := newTrainer()
	sum, err := train.Run(ctx, tr, &cycleData{}, validate, cfg, train.Hooks{
		OnStep: func(s train.StepInfo) {
			if s.Step == 30 {
				cancel()
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	tr.Close()
	fmt.Printf("first run: %s after %d steps, %d tokens, %d evaluation\n", sum.Stopped, sum.Steps, sum.Tokens, sum.Evals)

	// A new process would do this: a fresh trainer, Resume, Run.
	tr = newTrainer()
	defer tr.Close()
	data := &cycleData{}
	step, err := train.Resume(tr, data, dir)
	if err != nil {
		log.Fatal(err)
	}
	sum, err = train.Run(context.Background(), tr, data, validate, cfg, train.Hooks{
		OnEval: func(e train.EvalInfo) { fmt.Printf("eval at step %d: best %v\n", e.Step, e.Best) },
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("resumed at step %d: %s after %d more steps\n", step, sum.Stopped, sum.Steps)
	fmt.Printf("best step %d, validation loss below 0.1: %v\n", sum.BestStep, sum.BestMetric < 0.1)
	for _, name := range []string{"best", "last"} {
		files, _ := filepath.Glob(filepath.Join(dir, name, "*"))
		fmt.Println(name, len(files), "files")
	}
	// Output:
	// first run: cancelled after 30 steps, 720 tokens, 1 evaluation
	// eval at step 40: best true
	// eval at step 60: best true
	// resumed at step 30: steps after 30 more steps
	// best step 60, validation loss below 0.1: true
	// best 5 files
	// last 5 files
}
