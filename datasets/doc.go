// Package datasets turns text into batches of token ids, offline.
//
// It has three layers, each usable on its own:
//
//   - Tokenizers: a character tokenizer, a word tokenizer, and a byte-level BPE
//     tokenizer compatible with GPT-2 (it trains its own merges and reads and
//     writes GPT-2's encoder.json + vocab.bpe files, so the real GPT-2 vocabulary
//     gives the same ids as OpenAI's implementation).
//   - Loaders: parallel text (TSV, two line-aligned files, Ding's dictionary),
//     the GLUE tasks in their distributed layout, multiple-choice JSON lines and
//     plain text. Loaders return errors naming file, line and what was expected;
//     they never panic on user input.
//   - Batching: token-budget batching by length, padded to length buckets
//     (Buckets) so batches take a few shapes, with masks, seeded shuffles
//     and splits, a resumable iterator, and language-model windows.
//
// Real corpora with licences that permit redistribution are embedded
// (compressed) so examples and tests run with no download; see Corpora.
//
// The package imports no model code: it produces []int ids and masks that any
// model can consume.
package datasets
