/* ragbox engine: GGUF models, tokenizers, chat templates and inference.
 *
 * Placeholder header: the model-file, tokenizer and chat-template sections are
 * written by engine-gguf; the inference section at the bottom by engine-compute.
 */
#ifndef RAGBOX_ENGINE_H
#define RAGBOX_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ragbox/common.h"

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
/* Number of tokens `text` becomes (with the model's BOS rule), for context budgeting. */
RB_NODISCARD enum rb_status rb_engine_model_count_tokens(struct rb_engine_model *m,
                                                         const char *text, size_t len,
                                                         size_t *n_tokens);
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
