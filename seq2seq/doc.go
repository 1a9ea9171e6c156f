// Package seq2seq is the LSTM encoder–decoder in its two historical forms:
// the fixed-context model of Sutskever, Vinyals & Le ("Sequence to Sequence
// Learning with Neural Networks", 2014) and Cho et al. ("Learning Phrase
// Representations using RNN Encoder–Decoder", 2014), and its successor with
// attention, Bahdanau, Cho & Bengio ("Neural Machine Translation by Jointly
// Learning to Align and Translate", 2015), with Luong, Pham & Manning's
// ("Effective Approaches to Attention-based NMT", 2015) dot and general
// scores as options.
//
// # Fixed context (Config.Arch "fixed")
//
// The encoder reads x_1 … x_m (reversed, with Config.ReverseSource, as
// Sutskever et al. found easier to learn) and its last state is the whole
// sentence:
//
//	h_j = LSTM_enc(h_{j−1}, E_src x_j)              c = h_m
//	s_0 = h_m  (every layer's state, and cell)
//	s_i = LSTM_dec(s_{i−1}, E_tgt y_{i−1})          (Config.FeedContext: [E_tgt y_{i−1}; c], as Cho et al.)
//	P(y_i | y_<i, x) = softmax(W_out o_i + b_out),   o_i = s_i  (with FeedContext [s_i; c])
//
// # Attention (Config.Arch "attention")
//
// A bidirectional encoder annotates every source word with both of its
// contexts, and the decoder looks back at all of them at every step:
//
//	h→_j = LSTM→(h→_{j−1}, E_src x_j),  h←_j = LSTM←(h←_{j+1}, E_src x_j),  h_j = [h→_j; h←_j]
//	s_0 = tanh(W_s h←_1 + b_s)
//	e_ij = vᵀ tanh(W s_{i−1} + U h_j)                (U h_j computed once per source)
//	α_ij = exp(e_ij) / Σ_k exp(e_ik)                 (over the real source tokens only)
//	c_i = Σ_j α_ij h_j
//	s_i = LSTM_dec(s_{i−1}, [E_tgt y_{i−1}; c_i])
//	P(y_i | y_<i, x) = softmax(W_out [s_i; c_i] + b_out)
//
// Config.Score "dot" (e_ij = s_{i−1}ᵀ h_j) and "general" (s_{i−1}ᵀ W_a h_j)
// change only the score. Model.Readout says why the output layer is the
// linear one over [s_i; c_i] rather than Bahdanau's maxout. With
// Config.TieEmbeddings the projection is E_tgt itself, after a bias-free
// W_p: o_i → E when the sizes differ.
//
// Both models stack Config.Layers LSTM layers with dropout between them,
// on the embeddings and before the projection. Padded batches carry masks
// everywhere: the encoder carries its state over padding (the backward
// direction of each row starts at its own last real token, as
// pack_padded_sequence gives), α is zero on padding and padded targets
// have no loss. Every source ends with the end token (Model.Source), every
// target too (Model.Target); the decoder starts from Config.BOSID.
//
// # PyTorch
//
// Parameters carry the state-dict names of the torch module Seq2Seq in
// testdata/gen_seq2seq.py, built from nn.Embedding, nn.LSTM and nn.Linear:
//
//	src_embed.weight, tgt_embed.weight                       nn.Embedding(V, E)
//	encoder.weight_ih_l0, …_hh_l0, bias_ih_l0, bias_hh_l0,   nn.LSTM(E, H, L, batch_first=True,
//	  encoder.weight_ih_l0_reverse, …  (bidirectional)          bidirectional=…, dropout=p)
//	decoder.weight_ih_l0, …                                   nn.LSTM(E [+ d_h], H, L)
//	attention.W.weight, attention.U.weight, attention.v.weight   bias-free nn.Linear (additive)
//	attention.W_a.weight                                      bias-free nn.Linear (general)
//	bridge.weight, bridge.bias                                nn.Linear(H, L·H): s_0
//	out.weight, out.bias                                      nn.Linear(d_o, V)
//	out_proj.weight, out.bias  (tied)                         bias-free nn.Linear(d_o, E); F.linear(·, tgt_embed.weight, out.bias)
//
// Save writes config.json (Config's keys) and model.safetensors; the torch
// module loads them with load_state_dict (strict), and the fixtures of that
// script pin the whole models: loss and every gradient within 1e-5, greedy
// ids and α equal.
//
// # Engine and decoding
//
// Model implements train.Model (Build): KindLoss is teacher forcing with
// cross-entropy (ignore index, label smoothing in training), built per
// (batch, source bucket, target bucket); Batch makes its inputs from a
// datasets.Batch; Data feeds train.Run; LossEvaluator gives validation
// loss. Decoder is a decode.Model — the encoder runs once per batch of
// sources (KindEncode), then one KindDecode step per token for every row —
// so decode.Greedy, decode.Generate and decode.BeamSearch translate, and
// with attention every one of them returns α for each token.
package seq2seq
