/* ragbox engine: our own GGUF model runtime.
 *
 * What is here, top to bottom:
 *   - model files: open a GGUF file and describe it (architecture, sizes,
 *     tensor types, vocabulary, chat template) without loading weights;
 *   - tokenizers built from a model's GGUF metadata: SentencePiece-style
 *     ("llama"), byte-level BPE ("gpt2", with the pre-tokenizer regexes of each
 *     family) and WordPiece ("bert"); special tokens; detokenisation;
 *   - chat templates: recognise the template stored in a model and render a
 *     conversation into the prompt text the model was trained on;
 *   - inference (written by engine-compute): model graphs, sampling, scheduler.
 *
 * Thread-safety: a struct rb_engine_model_info and a struct
 * rb_engine_tokenizer are immutable after creation; any number of threads may
 * call the tokenize/detokenize/lookup functions on one tokenizer at once.
 *
 * Ownership: "caller frees" means free(); pointers marked borrowed stay valid
 * until the owning handle is freed. Every create/load function leaves *out NULL
 * on failure and fills err (may be NULL) with a message naming the file and
 * what is wrong.
 */
#ifndef RAGBOX_ENGINE_H
#define RAGBOX_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"

/* ==================================================================== model files */

/* Summary of a GGUF model file (no weights are loaded). */
struct rb_engine_tensor_type_count {
    char type[16];          /* ggml type name: "f32", "q4_K", ... */
    uint32_t n_tensors;
    uint64_t n_elements;    /* parameters stored in this type */
    uint64_t n_bytes;
};

struct rb_engine_model_info {
    char *path;             /* owned */
    uint32_t gguf_version;
    uint64_t file_size;
    char *architecture;     /* general.architecture ("llama", "qwen2", "bert" ...), owned, or NULL */
    char *name;             /* general.name, owned, or NULL */
    uint64_t n_params;      /* sum of tensor elements */
    uint64_t n_tensors;
    uint64_t n_kv;          /* metadata entries */
    uint32_t context_length;   /* <arch>.context_length, 0 if absent */
    uint32_t embedding_length; /* <arch>.embedding_length, 0 if absent */
    uint32_t block_count;      /* <arch>.block_count, 0 if absent */
    uint32_t head_count;       /* <arch>.attention.head_count, 0 if absent */
    uint32_t head_count_kv;    /* <arch>.attention.head_count_kv (= head_count if absent) */
    uint32_t file_type;        /* general.file_type, UINT32_MAX if absent */
    char *tokenizer_model;     /* tokenizer.ggml.model ("llama", "gpt2", "bert"), owned, or NULL */
    char *tokenizer_pre;       /* tokenizer.ggml.pre, owned, or NULL */
    uint32_t n_vocab;          /* entries in tokenizer.ggml.tokens */
    uint32_t n_merges;         /* entries in tokenizer.ggml.merges */
    char *chat_template;       /* tokenizer.chat_template, owned, or NULL */
    struct rb_engine_tensor_type_count *types; /* owned array of n_types, by type id */
    size_t n_types;
};

/* Opens and validates path (the full GGUF validation of the loader) and fills a
 * summary. Caller frees with rb_engine_model_info_free. */
RB_NODISCARD enum rb_status rb_engine_model_info_read(const char *path,
                                                      struct rb_engine_model_info **out,
                                                      struct rb_errmsg *err);
void rb_engine_model_info_free(struct rb_engine_model_info *info);

/* ===================================================================== tokenizers */

/* Token ids are int32_t; RB_ENGINE_TOKEN_NONE marks "no such token". */
#define RB_ENGINE_TOKEN_NONE (-1)

enum rb_engine_vocab_type {
    RB_ENGINE_VOCAB_SPM = 1, /* "llama": SentencePiece BPE with scores and byte fallback */
    RB_ENGINE_VOCAB_BPE = 2, /* "gpt2": byte-level BPE with merges and a pre-tokenizer */
    RB_ENGINE_VOCAB_WPM = 3, /* "bert": WordPiece */
    RB_ENGINE_VOCAB_UGM = 4, /* "t5": SentencePiece unigram (T5, XLM-RoBERTa, bge-m3) */
};

/* Token attributes (bit set), from tokenizer.ggml.token_type and known names. */
#define RB_ENGINE_TOKEN_ATTR_NORMAL 0x01u
#define RB_ENGINE_TOKEN_ATTR_UNKNOWN 0x02u
#define RB_ENGINE_TOKEN_ATTR_CONTROL 0x04u
#define RB_ENGINE_TOKEN_ATTR_USER_DEFINED 0x08u
#define RB_ENGINE_TOKEN_ATTR_UNUSED 0x10u
#define RB_ENGINE_TOKEN_ATTR_BYTE 0x20u
#define RB_ENGINE_TOKEN_ATTR_RSTRIP 0x40u /* eat whitespace after it when matched in text */
#define RB_ENGINE_TOKEN_ATTR_LSTRIP 0x80u /* eat whitespace before it */

struct rb_engine_tokenizer;

/* Builds the tokenizer of a GGUF model file (reads only its metadata; the
 * tokenizer keeps its own copy, the file is closed before returning). Refuses
 * unknown tokenizer models / pre-tokenizers with RB_ERR_UNSUPPORTED naming them,
 * inconsistent vocabularies with RB_ERR_CORRUPT. Caller frees. */
RB_NODISCARD enum rb_status rb_engine_tokenizer_load(const char *model_path,
                                                     struct rb_engine_tokenizer **out,
                                                     struct rb_errmsg *err);
void rb_engine_tokenizer_free(struct rb_engine_tokenizer *tok);

/* Tokenize flags. ADD_SPECIAL: add BOS/EOS/SEP as the model's metadata says
 * (tokenizer.ggml.add_bos_token ...; BERT adds [CLS] ... [SEP]). PARSE_SPECIAL:
 * control tokens written in the text ("<|im_start|>") become their ids;
 * without it they are tokenized as plain text (user-defined tokens always match). */
#define RB_ENGINE_TOKENIZE_ADD_SPECIAL 0x1u
#define RB_ENGINE_TOKENIZE_PARSE_SPECIAL 0x2u

/* Tokenizes text[0..len) (UTF-8; malformed bytes are handled like the reference
 * implementation; at most 256 MiB, else RB_ERR_TOO_LARGE). *ids: caller frees
 * (NULL when *n_ids == 0). */
RB_NODISCARD enum rb_status rb_engine_tokenize(const struct rb_engine_tokenizer *tok,
                                               const char *text, size_t len, unsigned flags,
                                               int32_t **ids, size_t *n_ids);
/* Number of tokens text would take (same flags). */
RB_NODISCARD enum rb_status rb_engine_token_count(const struct rb_engine_tokenizer *tok,
                                                  const char *text, size_t len, unsigned flags,
                                                  size_t *n_tokens);

/* Detokenize flags. REMOVE_SPECIAL: drop a leading BOS / trailing EOS the
 * tokenizer would add. UNPARSE_SPECIAL: render control tokens as their text
 * (otherwise they produce nothing). */
#define RB_ENGINE_DETOKENIZE_REMOVE_SPECIAL 0x1u
#define RB_ENGINE_DETOKENIZE_UNPARSE_SPECIAL 0x2u
/* ids -> text (bytes; may be invalid UTF-8 if the ids cut a character). Caller
 * frees *text (NUL-terminated; *len excludes the NUL). RB_ERR_INVALID for an id
 * outside the vocabulary. */
RB_NODISCARD enum rb_status rb_engine_detokenize(const struct rb_engine_tokenizer *tok,
                                                 const int32_t *ids, size_t n_ids,
                                                 unsigned flags, char **text, size_t *len);
/* The bytes one token produces when generated (byte tokens -> that byte, "▁" ->
 * space, byte-level BPE decoded; control tokens -> "" unless `special`). Borrowed,
 * *len set; NULL for an id outside the vocabulary. Streaming uses this. */
const char *rb_engine_token_piece(const struct rb_engine_tokenizer *tok, int32_t id, bool special,
                                  size_t *len);
/* The token's vocabulary text as stored in the model (borrowed, NUL-terminated), or NULL. */
const char *rb_engine_token_text(const struct rb_engine_tokenizer *tok, int32_t id);
/* Id of an exact vocabulary text, or RB_ENGINE_TOKEN_NONE. */
int32_t rb_engine_token_lookup(const struct rb_engine_tokenizer *tok, const char *text, size_t len);
unsigned rb_engine_token_attr(const struct rb_engine_tokenizer *tok, int32_t id);
float rb_engine_token_score(const struct rb_engine_tokenizer *tok, int32_t id);

uint32_t rb_engine_tokenizer_n_vocab(const struct rb_engine_tokenizer *tok);
enum rb_engine_vocab_type rb_engine_tokenizer_type(const struct rb_engine_tokenizer *tok);
/* "llama", "gpt2", "bert" and the pre-tokenizer name ("default" when absent). Borrowed. */
const char *rb_engine_tokenizer_model_name(const struct rb_engine_tokenizer *tok);
const char *rb_engine_tokenizer_pre_name(const struct rb_engine_tokenizer *tok);
bool rb_engine_tokenizer_add_bos(const struct rb_engine_tokenizer *tok);
bool rb_engine_tokenizer_add_eos(const struct rb_engine_tokenizer *tok);
/* Special token ids (RB_ENGINE_TOKEN_NONE when the model has none). */
int32_t rb_engine_token_bos(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_eos(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_eot(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_unk(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_sep(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_pad(const struct rb_engine_tokenizer *tok);
int32_t rb_engine_token_nl(const struct rb_engine_tokenizer *tok);
/* End of generation: EOS, EOT and the turn-end tokens the model declares. */
bool rb_engine_token_is_eog(const struct rb_engine_tokenizer *tok, int32_t id);
/* tokenizer.chat_template of the model (borrowed), or NULL. */
const char *rb_engine_tokenizer_chat_template(const struct rb_engine_tokenizer *tok);

/* ================================================================= chat templates */

enum rb_engine_chat_kind {
    RB_ENGINE_CHAT_UNKNOWN = 0,
    RB_ENGINE_CHAT_CHATML,  /* <|im_start|>role\n...<|im_end|>\n (Qwen, SmolLM, ...) */
    RB_ENGINE_CHAT_LLAMA3,  /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    RB_ENGINE_CHAT_LLAMA2,  /* <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ...</s> */
    RB_ENGINE_CHAT_PHI3,    /* <|user|>\n...<|end|>\n<|assistant|>\n */
};

struct rb_engine_chat_message {
    const char *role;    /* "system", "user" or "assistant" (borrowed) */
    const char *content; /* UTF-8 (borrowed) */
};

/* Recognises a Jinja chat template by its markers. UNKNOWN for NULL or an
 * unrecognised template. */
enum rb_engine_chat_kind rb_engine_chat_detect(const char *chat_template);
/* "chatml", "llama3", "llama2", "phi3", "unknown". */
const char *rb_engine_chat_kind_name(enum rb_engine_chat_kind kind);
/* Kind from its name (as above); UNKNOWN if none. */
enum rb_engine_chat_kind rb_engine_chat_kind_from_name(const char *name);

/* Renders messages (n >= 1) in the given style, ending with the assistant
 * header when add_generation_prompt. The text contains the special-token
 * markers: tokenize it with RB_ENGINE_TOKENIZE_PARSE_SPECIAL (and without
 * ADD_SPECIAL for llama2/llama3, whose text carries its own BOS). Caller frees
 * *out. RB_ERR_INVALID for an unknown role or kind. */
RB_NODISCARD enum rb_status rb_engine_chat_render(enum rb_engine_chat_kind kind,
                                                  const struct rb_engine_chat_message *msgs,
                                                  size_t n, bool add_generation_prompt,
                                                  char **out, struct rb_errmsg *err);

/* The model's own template: detects tokenizer.chat_template and renders it.
 * A model without a template, or with one not recognised, is RB_ERR_UNSUPPORTED
 * with a message naming the template's start — unless fallback is not
 * RB_ENGINE_CHAT_UNKNOWN, in which case that style is used (callers that accept
 * a guess pass RB_ENGINE_CHAT_CHATML, the most common style). *used (may be
 * NULL) receives the style actually rendered. */
RB_NODISCARD enum rb_status rb_engine_chat_apply(const struct rb_engine_tokenizer *tok,
                                                 const struct rb_engine_chat_message *msgs,
                                                 size_t n, bool add_generation_prompt,
                                                 enum rb_engine_chat_kind fallback,
                                                 enum rb_engine_chat_kind *used, char **out,
                                                 struct rb_errmsg *err);

/* ==== inference (engine-compute) ==== */
/* ==== inference ==== */
/*
 * Running models: a struct rb_engine_model holds one GGUF model's weights (memory
 * mapped, never copied for the CPU backend), its tokenizer, and a worker thread
 * pool. Generation models (llama, qwen2, qwen3 families) produce text; embedding
 * models (bert family) produce one pooled, L2-normalised vector per input text.
 *
 * Thread-safety: a model handle may be used from any number of threads.
 * rb_engine_generate and rb_engine_embed serialise on the model's compute lock
 * (one forward pass at a time uses all n_threads cores); for many concurrent
 * generations, use the scheduler (rb_engine_sched_*), which batches them into
 * shared decode steps. Callbacks run on the thread doing the compute.
 *
 * KV cache: F16 (half the memory of F32; the reference implementation's default),
 * one per sequence, n_ctx positions. When a sequence's context is full generation
 * stops with finish reason RB_ENGINE_FINISH_CONTEXT (never a silent shift); a
 * prompt longer than n_ctx is refused with RB_ERR_CONTEXT_FULL.
 */

struct rb_engine_model;

enum rb_engine_model_kind {
    RB_ENGINE_MODEL_GENERATE = 1, /* causal LM: rb_engine_generate, scheduler */
    RB_ENGINE_MODEL_EMBED = 2,    /* encoder: rb_engine_embed */
};

struct rb_engine_model_params {
    int n_threads; /* compute threads; <= 0: number of online CPUs */
    int n_ctx;     /* context positions per sequence; <= 0: the model's own context
                      length capped at 4096 */
};
/* Where a model runs is chosen at open by the environment variable RAGBOX_GPU:
 * "auto" (default: the CUDA backend when a GPU is usable, else the CPU with a log
 * line), "off" (CPU only) or "require" (opening fails when the model cannot run on
 * a GPU). `ragbox serve` and the other commands set it from [engine] gpu. */
/* Fills defaults (n_threads 0, n_ctx 0). */
void rb_engine_model_params_default(struct rb_engine_model_params *p);

/* Loads a GGUF model. params may be NULL (defaults). On failure *out is NULL and err
 * (may be NULL) says why (unsupported architecture / tensor type, missing tensor, ...). */
RB_NODISCARD enum rb_status rb_engine_model_open(const char *path,
                                                 const struct rb_engine_model_params *params,
                                                 struct rb_engine_model **out,
                                                 struct rb_errmsg *err);
void rb_engine_model_close(struct rb_engine_model *m); /* NULL is a no-op */

enum rb_engine_model_kind rb_engine_model_kind(const struct rb_engine_model *m);
/* Embedding dimension (embedding models) / hidden size (generation models). */
int rb_engine_model_dim(const struct rb_engine_model *m);
int rb_engine_model_n_ctx(const struct rb_engine_model *m);
int rb_engine_model_n_vocab(const struct rb_engine_model *m);
/* general.architecture, borrowed until close. */
const char *rb_engine_model_arch(const struct rb_engine_model *m);
/* "cpu" or "cuda": the backend running this model's forward passes. */
const char *rb_engine_model_backend(const struct rb_engine_model *m);
/* Number of tokens `text` becomes (with the model's BOS rule), for context budgeting. */
RB_NODISCARD enum rb_status rb_engine_model_count_tokens(struct rb_engine_model *m,
                                                         const char *text, size_t len,
                                                         size_t *n_tokens);
/* The model's tokenizer (borrowed, valid until close): tokenize, detokenize, and
 * rb_engine_chat_apply to format chat messages for rb_engine_generate. */
const struct rb_engine_tokenizer *rb_engine_model_tokenizer(const struct rb_engine_model *m);
/* Text of the last error on this handle (borrowed; valid until the next call). */
const char *rb_engine_model_errmsg(const struct rb_engine_model *m);

/* ---- embeddings */

/* Embeds n texts (NUL-terminated UTF-8) into out (caller-owned, n * dim floats, row i
 * is text i), each pooled as the model file says (CLS / mean) and L2-normalised.
 * Texts longer than the model's context are truncated to it (the usual embedding
 * policy; the vector then represents the first n_ctx tokens). */
RB_NODISCARD enum rb_status rb_engine_embed(struct rb_engine_model *m, const char *const *texts,
                                            size_t n, float *out);

/* ---- generation */

struct rb_engine_gen_params {
    int max_tokens;          /* tokens to generate at most; <= 0: until EOS / context end */
    float temperature;       /* <= 0: greedy */
    int top_k;               /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off; divides positive / multiplies negative logits */
    int repeat_last_n;       /* tokens the penalties look back over (0: off, -1: context) */
    float presence_penalty;  /* 0: off; subtracted once per token present */
    float frequency_penalty; /* 0: off; subtracted per occurrence */
    uint64_t seed;           /* sampling RNG seed: same seed + same input = same output */
    const char *const *stop; /* borrowed; n_stop stop strings, matched across token
                                boundaries; the stop string is not emitted */
    size_t n_stop;
    bool ignore_eos;         /* keep going past end-of-generation tokens */
};
/* Defaults: max_tokens 256, temperature 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * repeat_penalty 1.0, repeat_last_n 64, presence/frequency 0, seed 0, no stop. */
void rb_engine_gen_params_default(struct rb_engine_gen_params *p);

/* Streaming callback: `piece` is the next bytes of the output (never split inside a
 * UTF-8 character; never containing a pending partial stop-string match). Return false
 * to stop generation (finish reason CANCELLED). piece is borrowed for the call. */
typedef bool (*rb_engine_token_fn)(void *user, const char *piece, size_t len);

enum rb_engine_finish {
    RB_ENGINE_FINISH_NONE = 0,
    RB_ENGINE_FINISH_LENGTH,    /* max_tokens reached */
    RB_ENGINE_FINISH_EOS,       /* the model ended its turn */
    RB_ENGINE_FINISH_STOP,      /* a stop string matched */
    RB_ENGINE_FINISH_CONTEXT,   /* the context window is full */
    RB_ENGINE_FINISH_CANCELLED, /* callback returned false / rb_engine_sched_cancel */
    RB_ENGINE_FINISH_ERROR,     /* see the status passed with it */
};
/* "length", "eos", "stop", "context", "cancelled", "error", "none". */
const char *rb_engine_finish_name(enum rb_engine_finish f);

struct rb_engine_gen_result {
    char *text;               /* the whole output (NUL-terminated); caller frees with free();
                                 NULL when not requested (rb_engine_sched: always NULL) */
    size_t text_len;
    enum rb_engine_finish finish;
    int n_prompt_tokens;
    int n_gen_tokens;
    double prompt_ms;         /* prefill wall time */
    double gen_ms;            /* decode wall time */
};

/* Generates a continuation of `prompt` (plain text, already formatted: apply a chat
 * template first for chat models; BOS is added per the model's rule). cb may be NULL.
 * res (may be NULL) receives the result; its text when want_text. */
RB_NODISCARD enum rb_status rb_engine_generate(struct rb_engine_model *m, const char *prompt,
                                               const struct rb_engine_gen_params *params,
                                               rb_engine_token_fn cb, void *user,
                                               bool want_text, struct rb_engine_gen_result *res);
/* Same from prompt token ids (caller-owned array of n). */
RB_NODISCARD enum rb_status rb_engine_generate_tokens(struct rb_engine_model *m,
                                                      const int32_t *tokens, size_t n,
                                                      const struct rb_engine_gen_params *params,
                                                      rb_engine_token_fn cb, void *user,
                                                      bool want_text,
                                                      struct rb_engine_gen_result *res);

/* ---- benchmarking (ragbox bench, bench/engine) */

/* One timed run, llama-bench style, with random token ids: n_gen == 0 measures the
 * prefill of n_prompt tokens (embedding models: encoding a sequence of n_prompt tokens);
 * n_gen > 0 decodes n_gen tokens one at a time after a prompt of n_prompt tokens (not
 * timed). *tokens_per_s gets the rate. Serialised like generate. */
RB_NODISCARD enum rb_status rb_engine_bench_once(struct rb_engine_model *m, int n_prompt,
                                                 int n_gen, uint64_t seed,
                                                 double *tokens_per_s);

/* ---- quantization (ragbox model quantize) */

/* Writes a quantized copy of the GGUF model at in_path to out_path (atomically).
 * type: "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M" or "Q6_K" (case-insensitive). Tensor choices
 * follow the reference quantizer's usual rules: 1-D tensors (norms, biases) stay F32;
 * the output matrix (or the tied token embedding) gets Q6_K for the k-quant and Q4_0
 * types; Q4_K_M / Q5_K_M give attn_v and ffn_down Q6_K in the first and last eighth of
 * the layers and every third layer between; a matrix whose rows do not split into
 * 256-blocks falls back to Q5_0 / Q8_0, into 32-blocks stays as it is. Inputs of type
 * F32, F16, BF16 (already-quantized tensors are requantized from their dequantized
 * values, with a warning). n_threads <= 0: all CPUs. */
RB_NODISCARD enum rb_status rb_engine_quantize(const char *in_path, const char *out_path,
                                               const char *type, int n_threads,
                                               struct rb_errmsg *err);

/* ---- scheduler: many sequences, one model, batched decode steps
 *
 * Requests are submitted from any thread; one driver thread calls rb_engine_sched_step
 * (or rb_engine_sched_run) which prefills newly admitted requests and then decodes one
 * token for every active sequence in a single batched pass. New requests join between
 * steps. Each request has its own sampler (params, seed) and callbacks; its output
 * does not depend on what else runs (batched == single-stream, token for token).
 * At most max_seqs sequences are active; more wait in FIFO order. */
struct rb_engine_sched;

/* Called once when a request ends (any reason), on the driver thread. res->text is NULL. */
typedef void (*rb_engine_done_fn)(void *user, enum rb_status status,
                                  const struct rb_engine_gen_result *res);

struct rb_engine_sched_params {
    int max_seqs; /* concurrently active sequences (each holds an n_ctx KV cache); <= 0: 4 */
    int n_ctx;    /* per-sequence context; <= 0: the model's n_ctx */
};

RB_NODISCARD enum rb_status rb_engine_sched_create(struct rb_engine_model *m,
                                                   const struct rb_engine_sched_params *params,
                                                   struct rb_engine_sched **out);
/* Cancels everything still queued or active (their done callbacks run) and frees. */
void rb_engine_sched_free(struct rb_engine_sched *s);
/* Queues a request; *id (may be NULL) gets its id (> 0). prompt and params are copied.
 * Thread-safe. */
RB_NODISCARD enum rb_status rb_engine_sched_submit(struct rb_engine_sched *s, const char *prompt,
                                                   const struct rb_engine_gen_params *params,
                                                   rb_engine_token_fn on_piece,
                                                   rb_engine_done_fn on_done, void *user,
                                                   uint64_t *id);
/* Marks a request cancelled; it ends at the next step. RB_ERR_NOT_FOUND if unknown or
 * finished. Thread-safe. */
RB_NODISCARD enum rb_status rb_engine_sched_cancel(struct rb_engine_sched *s, uint64_t id);
/* One scheduling step (driver thread only). *n_pending (may be NULL) gets the number
 * of requests still active or queued afterwards. */
RB_NODISCARD enum rb_status rb_engine_sched_step(struct rb_engine_sched *s, int *n_pending);
/* Steps until no request is pending. */
RB_NODISCARD enum rb_status rb_engine_sched_run(struct rb_engine_sched *s);
/* Blocks until a request is pending or timeout_ms passes (-1: forever); returns the
 * pending count. For a driver thread: for (;;) { wait; step; }. Thread-safe. */
int rb_engine_sched_wait(struct rb_engine_sched *s, int timeout_ms);

/* ==== GPU backend (CUDA, loaded at run time) ==== */

/* What the engine found when it looked for a GPU. The CUDA backend is a separate
 * shared object loaded on demand; without it, without a driver or without a device
 * the engine runs on the CPU, and `reason` says why. */
struct rb_engine_gpu_status {
    bool built;           /* this build has a CUDA backend (RAGBOX_CUDA) */
    bool loaded;          /* librb_cuda.so loaded and its ABI matches */
    int n_devices;        /* usable CUDA devices */
    char backend[16];     /* "cuda" or "cpu": what inference would use */
    char library[512];    /* path of the loaded librb_cuda.so, or "" */
    char device[256];     /* first device's name, or "" */
    size_t total_bytes;   /* its memory */
    size_t free_bytes;
    int cc_major, cc_minor; /* its compute capability */
    char reason[512];     /* why the CPU is used, or "" */
};
/* Probes once per process (thread-safe) and fills *out. */
void rb_engine_gpu_probe(struct rb_engine_gpu_status *out);

#endif
