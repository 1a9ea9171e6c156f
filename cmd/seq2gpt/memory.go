package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/gpt"
)

// memoryEstimate is what training a model takes, in bytes, by part.
type memoryEstimate struct {
	Weights, Gradients, Optimizer, Activations float64
}

func (m memoryEstimate) total() float64 {
	return m.Weights + m.Gradients + m.Optimizer + m.Activations
}

// trainMemory estimates the memory of training cfg on micro-batches of
// batch windows, in float32: the weights, their gradients, AdamW's two
// moments, and the values the compiled training and evaluation graphs
// hold for a batch. Per layer the forward pass keeps about 30 tensors of
// [B, T, d] (the Q, K, V projection and its heads, the attention's output
// and projection, the FFN's 4d-wide hidden values, residual sums,
// LayerNorms, dropout masks) and 4 of the attention's [B, h, T, T]
// (scores, softmax, dropout mask and output); the head keeps 3 of
// [B, T, V] (logits, log-softmax, its gradient). The backward pass holds
// as many again, and the evaluation program a forward pass. It is a lower
// bound in spirit: the graph holds a few more small values.
func trainMemory(cfg gpt.Config, batch int) memoryEstimate {
	const f32 = 4
	p := float64(cfg.VocabSize+cfg.NPositions)*float64(cfg.NEmbd) +
		float64(cfg.NLayer)*(12*float64(cfg.NEmbd)*float64(cfg.NEmbd)+13*float64(cfg.NEmbd))
	btd := float64(batch) * float64(cfg.NPositions) * float64(cfg.NEmbd)
	bhtt := float64(batch) * float64(cfg.NHead) * float64(cfg.NPositions) * float64(cfg.NPositions)
	btv := float64(batch) * float64(cfg.NPositions) * float64(cfg.VocabSize)
	forward := float64(cfg.NLayer)*(30*btd+4*bhtt) + 3*btv + 4*btd
	return memoryEstimate{
		Weights:     f32 * p,
		Gradients:   f32 * p,
		Optimizer:   2 * f32 * p,
		Activations: f32 * 2.5 * forward, // forward + backward (training) + forward (evaluation)
	}
}

// availableMemory is the memory the process may still use: the kernel's
// MemAvailable, or what the cgroup's limit leaves when that is lower. what
// says which.
func availableMemory() (bytes float64, what string, err error) {
	avail, err := memAvailable("/proc/meminfo")
	if err != nil {
		return 0, "", err
	}
	bytes, what = avail, "MemAvailable in /proc/meminfo"
	if left, ok := cgroupLeft("/sys/fs/cgroup"); ok && left < bytes {
		bytes, what = left, "the cgroup's memory.max less its memory.current"
	}
	return bytes, what, nil
}

func memAvailable(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, errors.Wrap(err, "memory")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemAvailable:" {
			kb, err := strconv.ParseFloat(fields[1], 64)
			if err != nil {
				return 0, errors.Wrapf(err, "%s: MemAvailable", path)
			}
			return kb * 1024, nil
		}
	}
	return 0, errors.Errorf("%s has no MemAvailable", path)
}

// cgroupLeft is a cgroup v2 limit less its usage (ok false without a
// limit).
func cgroupLeft(dir string) (float64, bool) {
	read := func(name string) (float64, bool) {
		b, err := os.ReadFile(dir + "/" + name)
		if err != nil {
			return 0, false
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		return v, err == nil
	}
	limit, ok := read("memory.max") // "max" when unlimited: not a number
	if !ok {
		return 0, false
	}
	used, _ := read("memory.current")
	return math.Max(0, limit-used), true
}

// checkTrainMemory refuses a model and batch whose estimate exceeds the
// memory available, before anything is allocated.
func checkTrainMemory(cfg gpt.Config, batch int) error {
	need := trainMemory(cfg, batch)
	have, what, err := availableMemory()
	if err != nil {
		return nil // no way to know: let it run
	}
	if need.total() <= have {
		return nil
	}
	return errors.Errorf("training this model needs about %s (weights %s, gradients %s, AdamW moments %s, "+
		"activations for a batch of %d × %d tokens %s), more than the %s available (%s): "+
		"use a smaller model (n_embd, n_layer, vocabulary) or a smaller --batch",
		gib(need.total()), gib(need.Weights), gib(need.Gradients), gib(need.Optimizer), batch, cfg.NPositions,
		gib(need.Activations), gib(have), what)
}

func gib(b float64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	default:
		return fmt.Sprintf("%.0f MiB", b/(1<<20))
	}
}
