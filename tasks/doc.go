// Package tasks is supervised fine-tuning: a pre-trained body, a linear
// head, the input transforms that turn a task's text into token
// sequences, the losses, the batching and the metrics. It is GPT-1's
// recipe (Radford et al. 2018, §3.2–3.3, Figure 1):
//
//	classification   [s] text [e]                      → softmax(h_l^[e]·W_y)
//	entailment       [s] premise $ hypothesis [e]      → softmax over the labels
//	similarity       [s] A $ B [e] and [s] B $ A [e]   → h_AB + h_BA, then the head
//	multiple choice  [s] context $ answer_k [e]        → a score per k, softmax over k
//	regression       the similarity transform          → one output, squared error (STS-B)
//
// trained on L₃(C) = L₂(C) + λ·L₁(C): the task's loss plus λ (0.5) times
// the language-model loss on the same sequences, with the paper's recipe
// (PaperRecipe: Adam at 6.25e-5, linear warm-up over 0.2% of training and
// linear decay, batches of 32, 3 epochs, dropout 0.1 on the head).
//
// The body is an interface (Body): GPT is one (the special tokens are
// appended to its pre-trained vocabulary, the feature is the final state
// at [e], L₁ its auxiliary loss), and an encoder such as BERT is another
// (its [CLS] pooled feature, [SEP] and segment ids, no auxiliary loss,
// one order for a pair). Everything else here — Encode (tokenize, lay
// out, truncate), the heads and their losses (Model, the engine's one
// adapter), Data and Evaluator for train.Run, Predictor, and each task's
// metrics (Task.Score, on metrics/) — is the same for both.
//
// A fine-tuned GPT saves as HuggingFace's OpenAIGPTForSequenceClassification
// ("score.weight", no bias) or, for multiple choice,
// OpenAIGPTDoubleHeadsModel ("multiple_choice_head.summary.weight" and
// ".bias"), with config.json as transformers writes it, so it loads in
// transformers, and directories transformers wrote load here (Save,
// LoadGPT).
//
// BERT (NewBERT, Devlin et al. 2018 §4) reads [CLS] text [SEP] and
// [CLS] a [SEP] b [SEP] with segment ids 0 through the first [SEP] and
// 1 after it, under a padding mask; the feature is the pooled [CLS]
// state; a pair is read in one order; multiple choice is HF's
// BertForMultipleChoice (one score per [CLS] context [SEP] answer_k [SEP]
// from its pooled state, softmax over k). BERT has no auxiliary loss: it
// is fine-tuned on L₂ alone, and New refuses a λ other than 0 for it. It
// saves as BertForSequenceClassification or BertForMultipleChoice
// ("bert.…", "classifier.weight" and ".bias"; LoadBERT).
package tasks
