// Package train is seq2gpt's training engine: optimizers that update a
// blocks.Store in place (Adam, AdamW, SGD with momentum, with PyTorch's
// semantics), learning-rate schedules (Noam, warm-up with linear or cosine
// decay), global gradient-norm clipping, a Trainer that compiles one Gorgonia
// program per Key (mode, graph kind, batch size and the lengths the graph is
// built for: window or target, source, choices, cache) and reuses it every
// step from a bounded least-recently-used Cache, gradient accumulation over
// micro-batches, a typed error for a refused non-finite step
// (NonFiniteError), checkpoints (safetensors weights and optimizer state,
// sealed by a manifest, swapped into place whole) with enough trainer state
// for a bit-identical resume, weight loading with every mismatch named,
// losses (MSELoss here; cross-entropy is ops.CrossEntropy), and a training
// loop (Run, Resume) with evaluation, best and last checkpoints, early
// stopping and hooks.
//
// The file format is package safetensors'; pictures of a model's graph are
// package viz's.
//
// Program is the one way to run a compiled graph: the Trainer's steps and
// evaluations run programs, and so do a model's decoders (gpt.Decoder), all
// built by the model's one adapter, a Model: Build(graph, key) adds the
// graph for a key and names its inputs and outputs. Pad batches to a few
// bucket lengths (datasets.Buckets) so that a few keys serve every batch.
//
// Why the optimizers are our own: Gorgonia's solvers update nodes, not the
// store's tensors that several graphs share, its AdamW never changes the
// weights and WithClip clamps each element instead of the global norm (see
// shared/GORGONIA-NOTES.md).
package train
