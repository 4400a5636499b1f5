/* The public inference API: model handles, embeddings, generation and the scheduler
 * that batches many sequences into shared decode steps. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend-cuda.h"
#include "backend.h"
#include "model.h"
#include "ragbox/engine.h"
#include "sampler.h"
#include "tokenizer.h"

#define RB_PREFILL_BATCH 512 /* tokens per prefill forward pass */

struct rb_engine_model {
    struct rb_gguf *gguf;
    struct rb__model *m;
    struct rb_engine_tokenizer *tok;
    const struct rb_backend_i *backend;
    int n_ctx;
    pthread_mutex_t lock; /* one forward pass at a time */
    struct rb_errmsg err;
};

void rb_engine_model_params_default(struct rb_engine_model_params *p)
{
    p->n_threads = 0;
    p->n_ctx = 0;
}

void rb_engine_gen_params_default(struct rb_engine_gen_params *p)
{
    memset(p, 0, sizeof *p);
    p->max_tokens = 256;
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
}

const char *rb_engine_finish_name(enum rb_engine_finish f)
{
    switch (f) {
    case RB_ENGINE_FINISH_LENGTH: return "length";
    case RB_ENGINE_FINISH_EOS: return "eos";
    case RB_ENGINE_FINISH_STOP: return "stop";
    case RB_ENGINE_FINISH_CONTEXT: return "context";
    case RB_ENGINE_FINISH_CANCELLED: return "cancelled";
    case RB_ENGINE_FINISH_ERROR: return "error";
    default: return "none";
    }
}

enum rb_status rb_engine_model_open(const char *path, const struct rb_engine_model_params *params,
                                    struct rb_engine_model **out, struct rb_errmsg *err)
{
    *out = NULL;
    struct rb_engine_model_params p;
    rb_engine_model_params_default(&p);
    if (params)
        p = *params;
    if (p.n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        p.n_threads = n > 0 ? (int)n : 1;
    }
    struct rb_engine_model *em = calloc(1, sizeof *em);
    if (!em)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    enum rb_status st = rb_gguf_open(path, &em->gguf, err);
    if (st == RB_OK)
        st = rb__model_load(em->gguf, p.n_threads, &em->m, err);
    if (st == RB_OK)
        st = rb__tokenizer_from_gguf(em->gguf, path, &em->tok, err);
    if (st == RB_OK && (int)rb_engine_tokenizer_n_vocab(em->tok) > em->m->n_vocab)
        st = rb_errmsg_set(err, RB_ERR_MODEL, "%s: vocabulary (%u) larger than the embedding "
                           "matrix (%d rows)", path, rb_engine_tokenizer_n_vocab(em->tok),
                           em->m->n_vocab);
    if (st != RB_OK) {
        if (em->m)
            rb__model_free(em->m);
        rb_engine_tokenizer_free(em->tok);
        rb_gguf_close(em->gguf);
        free(em);
        return st;
    }
    em->backend = rb__backend_cpu();
    const char *gpu_mode = getenv("RAGBOX_GPU");
    bool gpu_off = gpu_mode && strcmp(gpu_mode, "off") == 0;
    bool gpu_require = gpu_mode && strcmp(gpu_mode, "require") == 0;
    if (!gpu_off) {
        int n_dev = 0;
        const char *why = NULL;
        const struct rb_backend_i *gpu = rb__backend_cuda();
        enum rb_status gst = rb__cuda_backend(&n_dev, &why) && n_dev > 0 ? gpu->init(em->m)
                                                                          : RB_ERR_UNSUPPORTED;
        if (gst == RB_OK) {
            em->backend = gpu;
        } else if (gpu_require) {
            rb__model_free(em->m);
            rb_engine_tokenizer_free(em->tok);
            rb_gguf_close(em->gguf);
            free(em);
            return rb_errmsg_set(err, RB_ERR_UNSUPPORTED, "%s: cannot run on a GPU: %s", path,
                                 why && *why ? why : rb_status_str(gst));
        } else if (n_dev > 0) {
            RB_INFO("engine", "%s: GPU present but the model stays on the CPU (%s)", path,
                    rb_status_str(gst));
        } else {
            RB_DEBUG("engine", "CPU backend (%s)", why && *why ? why : "no GPU");
        }
    }
    if (em->backend == rb__backend_cpu()) {
        st = em->backend->init(em->m);
        if (st != RB_OK) {
            rb_errmsg_set(err, st, "%s: backend %s cannot take the model", path,
                          em->backend->name);
            rb__model_free(em->m);
            rb_engine_tokenizer_free(em->tok);
            rb_gguf_close(em->gguf);
            free(em);
            return st;
        }
    }
    int n_ctx = p.n_ctx > 0 ? p.n_ctx : (em->m->n_ctx_train < 4096 ? em->m->n_ctx_train : 4096);
    if (em->m->arch == RB_ARCH_BERT || n_ctx > em->m->n_ctx_train)
        n_ctx = n_ctx > em->m->n_ctx_train ? em->m->n_ctx_train : n_ctx;
    em->n_ctx = n_ctx;
    pthread_mutex_init(&em->lock, NULL);
    *out = em;
    return RB_OK;
}

void rb_engine_model_close(struct rb_engine_model *em)
{
    if (!em)
        return;
    if (em->backend->release)
        em->backend->release(em->m);
    rb__model_free(em->m);
    rb_engine_tokenizer_free(em->tok);
    rb_gguf_close(em->gguf);
    pthread_mutex_destroy(&em->lock);
    free(em);
}

enum rb_engine_model_kind rb_engine_model_kind(const struct rb_engine_model *em)
{
    return em->m->arch == RB_ARCH_BERT ? RB_ENGINE_MODEL_EMBED : RB_ENGINE_MODEL_GENERATE;
}
int rb_engine_model_dim(const struct rb_engine_model *em) { return em->m->n_embd; }
int rb_engine_model_n_ctx(const struct rb_engine_model *em) { return em->n_ctx; }
int rb_engine_model_n_vocab(const struct rb_engine_model *em) { return em->m->n_vocab; }
const char *rb_engine_model_arch(const struct rb_engine_model *em) { return em->m->arch_name; }
const char *rb_engine_model_backend(const struct rb_engine_model *em) { return em->backend->name; }
const char *rb_engine_model_errmsg(const struct rb_engine_model *em) { return em->err.text; }
const struct rb_engine_tokenizer *rb_engine_model_tokenizer(const struct rb_engine_model *em)
{
    return em->tok;
}

/* Prompt text -> tokens with the model's BOS rule; special-token markers in the text
 * (from a chat template) become their ids. A template that already starts with BOS
 * does not get a second one. */
static enum rb_status tokenize_prompt(struct rb_engine_model *em, const char *text, int32_t **ids,
                                      size_t *n)
{
    enum rb_status st = rb_engine_tokenize(em->tok, text, strlen(text),
                                           RB_ENGINE_TOKENIZE_ADD_SPECIAL |
                                               RB_ENGINE_TOKENIZE_PARSE_SPECIAL,
                                           ids, n);
    if (st != RB_OK)
        return rb_errmsg_set(&em->err, st, "tokenization failed");
    const int32_t bos = rb_engine_token_bos(em->tok);
    if (*n >= 2 && bos >= 0 && (*ids)[0] == bos && (*ids)[1] == bos) {
        memmove(*ids, *ids + 1, (*n - 1) * sizeof **ids);
        (*n)--;
    }
    return RB_OK;
}

enum rb_status rb_engine_model_count_tokens(struct rb_engine_model *em, const char *text,
                                            size_t len, size_t *n_tokens)
{
    return rb_engine_token_count(em->tok, text, len,
                                 RB_ENGINE_TOKENIZE_ADD_SPECIAL | RB_ENGINE_TOKENIZE_PARSE_SPECIAL,
                                 n_tokens);
}

/* ============================================================ embeddings */

enum rb_status rb_engine_embed(struct rb_engine_model *em, const char *const *texts, size_t n,
                               float *out)
{
    if (em->m->arch != RB_ARCH_BERT)
        return rb_errmsg_set(&em->err, RB_ERR_UNSUPPORTED, "%s is not an embedding model",
                             em->m->arch_name);
    enum rb_status st = RB_OK;
    pthread_mutex_lock(&em->lock);
    for (size_t i = 0; i < n && st == RB_OK; i++) {
        int32_t *ids = NULL;
        size_t nt = 0;
        st = rb_engine_tokenize(em->tok, texts[i], strlen(texts[i]),
                                RB_ENGINE_TOKENIZE_ADD_SPECIAL, &ids, &nt);
        if (st != RB_OK) {
            rb_errmsg_set(&em->err, st, "text %zu: tokenization failed", i);
            break;
        }
        if (nt == 0) {
            free(ids);
            st = rb_errmsg_set(&em->err, RB_ERR_INVALID, "text %zu tokenizes to nothing", i);
            break;
        }
        if (nt > (size_t)em->n_ctx) { /* truncate, keeping the closing separator */
            /* [SEP] (WordPiece) or the EOS a SentencePiece vocabulary appends (</s>) */
            const int32_t sep = rb_engine_token_sep(em->tok);
            const int32_t eos = rb_engine_tokenizer_add_eos(em->tok) ? rb_engine_token_eos(em->tok)
                                                                     : RB_ENGINE_TOKEN_NONE;
            const int32_t last = ids[nt - 1];
            const bool closing = last >= 0 && (last == sep || last == eos);
            nt = (size_t)em->n_ctx;
            if (closing)
                ids[nt - 1] = last;
        }
        st = em->backend->encode(em->m, ids, (int)nt, out + i * (size_t)em->m->n_embd);
        if (st != RB_OK)
            rb_errmsg_set(&em->err, st, "text %zu: encoder failed", i);
        free(ids);
    }
    pthread_mutex_unlock(&em->lock);
    return st;
}

/* ============================================================ sequences */

struct rb__seq {
    uint64_t id;
    struct rb__seq *next;
    struct rb_engine_gen_params params;
    char **stop_copies; /* scheduler: owned copies of the stop strings */
    const struct rb_backend_i *backend; /* owner of kv */
    struct rb__kv *kv;
    int32_t *tokens; /* prompt then generated; capacity n_ctx + 1 */
    int n_tokens, n_prompt, n_gen;
    int32_t next_tok; /* sampled, not yet fed to the model */
    struct rb__sampler sampler;
    struct rb__emitter emit;
    rb_engine_done_fn on_done;
    void *user;
    enum rb_engine_finish finish;
    enum rb_status status;
    bool cancel;
    double t_start, t_prefilled, t_end;
};

static void seq_free(struct rb__seq *s)
{
    if (!s)
        return;
    if (s->kv)
        s->backend->kv_free(s->kv);
    free(s->tokens);
    rb__sampler_free(&s->sampler);
    rb__emitter_free(&s->emit);
    if (s->stop_copies) {
        for (size_t i = 0; i < s->params.n_stop; i++)
            free(s->stop_copies[i]);
        free(s->stop_copies);
    }
    free(s);
}

static enum rb_status seq_create(struct rb_engine_model *em, const int32_t *prompt, size_t n,
                                 const struct rb_engine_gen_params *params, int n_ctx,
                                 rb_engine_token_fn cb, void *user, bool keep_text,
                                 struct rb__seq **out)
{
    *out = NULL;
    if (n == 0)
        return rb_errmsg_set(&em->err, RB_ERR_INVALID, "empty prompt");
    if (n >= (size_t)n_ctx)
        return rb_errmsg_set(&em->err, RB_ERR_CONTEXT_FULL,
                             "prompt of %zu tokens does not fit the context of %d", n, n_ctx);
    for (size_t i = 0; i < n; i++)
        if (prompt[i] < 0 || prompt[i] >= em->m->n_vocab)
            return rb_errmsg_set(&em->err, RB_ERR_INVALID, "token id %d out of range",
                                 (int)prompt[i]);
    struct rb__seq *s = calloc(1, sizeof *s);
    if (!s)
        return RB_ERR_NOMEM;
    s->params = *params;
    s->tokens = malloc(((size_t)n_ctx + 1) * sizeof *s->tokens);
    enum rb_status st = s->tokens ? RB_OK : RB_ERR_NOMEM;
    s->backend = em->backend;
    /* The KV cache is reserved whole, through the backend: on a GPU this is the
     * admission control that keeps the device from running out mid-request
     * (RB_ERR_BUSY when the page pool is full: the caller retries later). */
    if (st == RB_OK)
        st = em->backend->kv_create(em->m, n_ctx, &s->kv);
    if (st == RB_OK)
        st = rb__sampler_init(&s->sampler, params, em->m->n_vocab, n_ctx);
    if (st == RB_OK)
        st = rb__emitter_init(&s->emit, params->stop, params->n_stop, cb, user, keep_text);
    if (st != RB_OK) {
        seq_free(s);
        if (st == RB_ERR_BUSY)
            return rb_errmsg_set(&em->err, st, "the KV cache budget is in use by other requests: "
                                 "retry when one finishes");
        return rb_errmsg_set(&em->err, st, "cannot allocate a sequence of %d positions", n_ctx);
    }
    memcpy(s->tokens, prompt, n * sizeof *prompt);
    s->n_tokens = s->n_prompt = (int)n;
    for (size_t i = 0; i < n; i++)
        rb__sampler_accept(&s->sampler, prompt[i]);
    s->t_start = rb__now();
    *out = s;
    return RB_OK;
}

/* Handles the token just sampled: end conditions, streaming. Returns true when the
 * sequence goes on (next_tok must then be fed). */
static bool seq_take(struct rb_engine_model *em, struct rb__seq *s, int32_t tok)
{
    if (s->cancel) {
        s->finish = RB_ENGINE_FINISH_CANCELLED;
        return false;
    }
    bool eog = false;
    for (int i = 0; i < em->m->n_eos; i++)
        eog |= em->m->eos_ids[i] == tok;
    eog |= rb_engine_token_is_eog(em->tok, tok);
    if (eog && !s->params.ignore_eos) {
        s->finish = RB_ENGINE_FINISH_EOS;
        return false;
    }
    s->n_gen++;
    s->tokens[s->n_tokens++] = tok;
    rb__sampler_accept(&s->sampler, tok);
    size_t len = 0;
    const char *piece = rb_engine_token_piece(em->tok, tok, false, &len);
    enum rb_status st = piece ? rb__emitter_push(&s->emit, piece, len) : RB_OK;
    if (st != RB_OK) {
        s->status = st;
        s->finish = RB_ENGINE_FINISH_ERROR;
        return false;
    }
    if (s->emit.stopped) {
        s->finish = RB_ENGINE_FINISH_STOP;
        return false;
    }
    if (s->emit.cancelled) {
        s->finish = RB_ENGINE_FINISH_CANCELLED;
        return false;
    }
    if (s->params.max_tokens > 0 && s->n_gen >= s->params.max_tokens) {
        s->finish = RB_ENGINE_FINISH_LENGTH;
        return false;
    }
    if (s->n_tokens >= s->kv->n_ctx) {
        s->finish = RB_ENGINE_FINISH_CONTEXT;
        return false;
    }
    s->next_tok = tok;
    return true;
}

/* Prefills the prompt (in batches) and samples the first token. */
static enum rb_status seq_prefill(struct rb_engine_model *em, struct rb__seq *s, float *logits)
{
    int pos[RB_PREFILL_BATCH];
    struct rb__kv *kvs[RB_PREFILL_BATCH];
    for (int i = 0; i < RB_PREFILL_BATCH; i++)
        kvs[i] = s->kv;
    for (int start = 0; start < s->n_prompt; start += RB_PREFILL_BATCH) {
        const int nb = s->n_prompt - start < RB_PREFILL_BATCH ? s->n_prompt - start
                                                               : RB_PREFILL_BATCH;
        for (int i = 0; i < nb; i++)
            pos[i] = start + i;
        struct rb__batch b = {nb, s->tokens + start, pos, kvs, NULL, logits};
        enum rb_status st = em->backend->forward(em->m, &b);
        if (st != RB_OK)
            return st;
        s->kv->n_past = start + nb;
    }
    s->t_prefilled = rb__now();
    return RB_OK;
}

static void seq_result(const struct rb__seq *s, struct rb_engine_gen_result *r)
{
    memset(r, 0, sizeof *r);
    r->finish = s->finish;
    r->n_prompt_tokens = s->n_prompt;
    r->n_gen_tokens = s->n_gen;
    r->prompt_ms = (s->t_prefilled - s->t_start) * 1e3;
    r->gen_ms = (s->t_end - s->t_prefilled) * 1e3;
}

enum rb_status rb_engine_generate_tokens(struct rb_engine_model *em, const int32_t *tokens,
                                         size_t n, const struct rb_engine_gen_params *params,
                                         rb_engine_token_fn cb, void *user, bool want_text,
                                         struct rb_engine_gen_result *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    if (em->m->arch == RB_ARCH_BERT)
        return rb_errmsg_set(&em->err, RB_ERR_UNSUPPORTED, "%s is an embedding model",
                             em->m->arch_name);
    struct rb_engine_gen_params p;
    rb_engine_gen_params_default(&p);
    if (params)
        p = *params;
    struct rb__seq *s = NULL;
    enum rb_status st = seq_create(em, tokens, n, &p, em->n_ctx, cb, user, want_text, &s);
    if (st != RB_OK)
        return st;
    float *logits = malloc((size_t)em->m->n_vocab * sizeof(float));
    if (!logits) {
        seq_free(s);
        return RB_ERR_NOMEM;
    }
    pthread_mutex_lock(&em->lock);
    st = seq_prefill(em, s, logits);
    bool go = st == RB_OK && seq_take(em, s, rb__sampler_sample(&s->sampler, logits));
    while (st == RB_OK && go) {
        int pos = s->n_tokens - 1;
        struct rb__kv *kv = s->kv;
        struct rb__batch b = {1, &s->next_tok, &pos, &kv, NULL, logits};
        st = em->backend->forward(em->m, &b);
        if (st != RB_OK)
            break;
        s->kv->n_past = s->n_tokens;
        go = seq_take(em, s, rb__sampler_sample(&s->sampler, logits));
    }
    pthread_mutex_unlock(&em->lock);
    s->t_end = rb__now();
    if (st == RB_OK && s->status != RB_OK)
        st = s->status;
    if (st == RB_OK)
        st = rb__emitter_flush(&s->emit);
    if (st != RB_OK)
        rb_errmsg_set(&em->err, st, "generation failed: %s", rb_status_str(st));
    if (res) {
        seq_result(s, res);
        if (st == RB_OK && want_text) {
            res->text_len = s->emit.all.len;
            res->text = rb_buf_steal(&s->emit.all);
            if (!res->text)
                res->text = rb_strdup("");
        }
    }
    free(logits);
    seq_free(s);
    return st;
}

enum rb_status rb_engine_generate(struct rb_engine_model *em, const char *prompt,
                                  const struct rb_engine_gen_params *params,
                                  rb_engine_token_fn cb, void *user, bool want_text,
                                  struct rb_engine_gen_result *res)
{
    if (res)
        memset(res, 0, sizeof *res);
    int32_t *ids = NULL;
    size_t n = 0;
    enum rb_status st = tokenize_prompt(em, prompt, &ids, &n);
    if (st != RB_OK)
        return st;
    st = rb_engine_generate_tokens(em, ids, n, params, cb, user, want_text, res);
    free(ids);
    return st;
}

/* ============================================================ scheduler */

struct rb_engine_sched {
    struct rb_engine_model *em;
    int max_seqs, n_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rb__seq *queue_head, *queue_tail; /* submitted, not yet admitted (mu) */
    struct rb__seq **active;                 /* driver thread only */
    int n_active;
    uint64_t next_id;
    uint64_t *cancel_ids; /* ids cancelled while active (mu) */
    size_t n_cancel, cap_cancel;
    int n_pending; /* queued + active (mu) */
    uint64_t *live_ids; /* ids of admitted, unfinished sequences (mu); max_seqs slots, 0 = free */
    float *logits; /* max_seqs * n_vocab */
};

enum rb_status rb_engine_sched_create(struct rb_engine_model *em,
                                      const struct rb_engine_sched_params *params,
                                      struct rb_engine_sched **out)
{
    *out = NULL;
    if (em->m->arch == RB_ARCH_BERT)
        return rb_errmsg_set(&em->err, RB_ERR_UNSUPPORTED, "%s is an embedding model",
                             em->m->arch_name);
    struct rb_engine_sched *s = calloc(1, sizeof *s);
    if (!s)
        return RB_ERR_NOMEM;
    s->em = em;
    s->max_seqs = params && params->max_seqs > 0 ? params->max_seqs : 4;
    if (s->max_seqs > 256)
        s->max_seqs = 256;
    s->n_ctx = params && params->n_ctx > 0 ? params->n_ctx : em->n_ctx;
    if (s->n_ctx > em->m->n_ctx_train)
        s->n_ctx = em->m->n_ctx_train;
    s->active = calloc((size_t)s->max_seqs, sizeof *s->active);
    s->live_ids = calloc((size_t)s->max_seqs, sizeof *s->live_ids);
    s->logits = malloc((size_t)s->max_seqs * em->m->n_vocab * sizeof(float));
    if (!s->active || !s->logits || !s->live_ids) {
        free(s->live_ids);
        free(s->active);
        free(s->logits);
        free(s);
        return RB_ERR_NOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->next_id = 1;
    *out = s;
    return RB_OK;
}

static void sched_finish(struct rb_engine_sched *s, struct rb__seq *q, enum rb_status st)
{
    q->t_end = rb__now();
    if (st == RB_OK)
        st = rb__emitter_flush(&q->emit);
    if (st == RB_OK && q->status != RB_OK)
        st = q->status;
    if (st != RB_OK)
        q->finish = RB_ENGINE_FINISH_ERROR;
    struct rb_engine_gen_result r;
    seq_result(q, &r);
    if (q->on_done)
        q->on_done(q->user, st, &r);
    pthread_mutex_lock(&s->mu);
    s->n_pending--;
    for (int i = 0; i < s->max_seqs; i++)
        if (s->live_ids[i] == q->id)
            s->live_ids[i] = 0;
    pthread_mutex_unlock(&s->mu);
    seq_free(q);
}

void rb_engine_sched_free(struct rb_engine_sched *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_active; i++) {
        s->active[i]->finish = RB_ENGINE_FINISH_CANCELLED;
        sched_finish(s, s->active[i], RB_ERR_CANCELLED);
    }
    struct rb__seq *q = s->queue_head;
    while (q) {
        struct rb__seq *next = q->next;
        q->finish = RB_ENGINE_FINISH_CANCELLED;
        sched_finish(s, q, RB_ERR_CANCELLED);
        q = next;
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->cancel_ids);
    free(s->live_ids);
    free(s->active);
    free(s->logits);
    free(s);
}

enum rb_status rb_engine_sched_submit(struct rb_engine_sched *s, const char *prompt,
                                      const struct rb_engine_gen_params *params,
                                      rb_engine_token_fn on_piece, rb_engine_done_fn on_done,
                                      void *user, uint64_t *id)
{
    struct rb_engine_model *em = s->em;
    struct rb_engine_gen_params p;
    rb_engine_gen_params_default(&p);
    if (params)
        p = *params;
    int32_t *ids = NULL;
    size_t n = 0;
    /* tokenization only reads the immutable tokenizer: no lock needed */
    enum rb_status st = rb_engine_tokenize(em->tok, prompt, strlen(prompt),
                                           RB_ENGINE_TOKENIZE_ADD_SPECIAL |
                                               RB_ENGINE_TOKENIZE_PARSE_SPECIAL,
                                           &ids, &n);
    if (st != RB_OK)
        return st;
    const int32_t bos = rb_engine_token_bos(em->tok);
    if (n >= 2 && bos >= 0 && ids[0] == bos && ids[1] == bos) {
        memmove(ids, ids + 1, (n - 1) * sizeof *ids);
        n--;
    }
    /* copy the stop strings: the caller's array need not outlive this call */
    char **stops = NULL;
    if (p.n_stop) {
        stops = calloc(p.n_stop, sizeof *stops);
        if (!stops) {
            free(ids);
            return RB_ERR_NOMEM;
        }
        for (size_t i = 0; i < p.n_stop; i++)
            stops[i] = rb_strdup(p.stop[i] ? p.stop[i] : "");
        p.stop = (const char *const *)stops;
    }
    struct rb__seq *q = NULL;
    st = seq_create(em, ids, n, &p, s->n_ctx, on_piece, user, false, &q);
    free(ids);
    if (st != RB_OK) {
        if (stops) {
            for (size_t i = 0; i < p.n_stop; i++)
                free(stops[i]);
            free(stops);
        }
        return st;
    }
    q->stop_copies = stops;
    q->on_done = on_done;
    q->user = user;
    pthread_mutex_lock(&s->mu);
    q->id = s->next_id++;
    if (s->queue_tail)
        s->queue_tail->next = q;
    else
        s->queue_head = q;
    s->queue_tail = q;
    s->n_pending++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (id)
        *id = q->id;
    return RB_OK;
}

enum rb_status rb_engine_sched_cancel(struct rb_engine_sched *s, uint64_t id)
{
    enum rb_status st = RB_ERR_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    for (struct rb__seq *q = s->queue_head; q; q = q->next)
        if (q->id == id) {
            q->cancel = true;
            st = RB_OK;
        }
    bool live = false;
    for (int i = 0; i < s->max_seqs; i++)
        live |= id != 0 && s->live_ids[i] == id;
    if (st != RB_OK && live) {
        /* possibly active: recorded, applied by the driver at the next step */
        if (s->n_cancel == s->cap_cancel) {
            size_t nc = s->cap_cancel ? s->cap_cancel * 2 : 16;
            uint64_t *p = realloc(s->cancel_ids, nc * sizeof *p);
            if (p) {
                s->cancel_ids = p;
                s->cap_cancel = nc;
            }
        }
        if (s->n_cancel < s->cap_cancel) {
            s->cancel_ids[s->n_cancel++] = id;
            st = RB_OK;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

enum rb_status rb_engine_sched_step(struct rb_engine_sched *s, int *n_pending)
{
    struct rb_engine_model *em = s->em;
    const int nv = em->m->n_vocab;
    /* take cancellations and admit queued requests */
    pthread_mutex_lock(&s->mu);
    for (size_t c = 0; c < s->n_cancel; c++)
        for (int i = 0; i < s->n_active; i++)
            if (s->active[i]->id == s->cancel_ids[c])
                s->active[i]->cancel = true;
    s->n_cancel = 0;
    struct rb__seq *admitted = NULL, **tail = &admitted;
    int room = s->max_seqs - s->n_active;
    while (room > 0 && s->queue_head) {
        struct rb__seq *q = s->queue_head;
        s->queue_head = q->next;
        if (!s->queue_head)
            s->queue_tail = NULL;
        q->next = NULL;
        *tail = q;
        tail = &q->next;
        room--;
        for (int i = 0; i < s->max_seqs; i++)
            if (s->live_ids[i] == 0) {
                s->live_ids[i] = q->id;
                break;
            }
    }
    pthread_mutex_unlock(&s->mu);

    enum rb_status st = RB_OK;
    pthread_mutex_lock(&em->lock);
    /* new sequences: prefill alone (its own batch), sample the first token */
    while (admitted) {
        struct rb__seq *q = admitted;
        admitted = q->next;
        q->next = NULL;
        if (q->cancel) {
            q->finish = RB_ENGINE_FINISH_CANCELLED;
            pthread_mutex_unlock(&em->lock);
            sched_finish(s, q, RB_OK);
            pthread_mutex_lock(&em->lock);
            continue;
        }
        enum rb_status pst = seq_prefill(em, q, s->logits);
        if (pst == RB_OK && seq_take(em, q, rb__sampler_sample(&q->sampler, s->logits))) {
            s->active[s->n_active++] = q;
        } else {
            pthread_mutex_unlock(&em->lock);
            sched_finish(s, q, pst);
            pthread_mutex_lock(&em->lock);
        }
    }
    /* one batched decode step for every active sequence */
    if (s->n_active > 0) {
        int32_t toks[256];
        int pos[256];
        struct rb__kv *kvs[256];
        bool want[256];
        int nb = 0;
        for (int i = 0; i < s->n_active; i++) {
            struct rb__seq *q = s->active[i];
            toks[nb] = q->next_tok;
            pos[nb] = q->n_tokens - 1;
            kvs[nb] = q->kv;
            want[nb] = true;
            nb++;
        }
        struct rb__batch b = {nb, toks, pos, kvs, want, s->logits};
        st = em->backend->forward(em->m, &b);
        int keep = 0;
        for (int i = 0; i < s->n_active; i++) {
            struct rb__seq *q = s->active[i];
            bool go = false;
            if (st == RB_OK) {
                q->kv->n_past = q->n_tokens;
                go = seq_take(em, q, rb__sampler_sample(&q->sampler, s->logits + (size_t)i * nv));
            }
            if (go) {
                s->active[keep++] = q;
            } else {
                pthread_mutex_unlock(&em->lock);
                sched_finish(s, q, st);
                pthread_mutex_lock(&em->lock);
            }
        }
        s->n_active = keep;
    }
    pthread_mutex_unlock(&em->lock);
    if (n_pending) {
        pthread_mutex_lock(&s->mu);
        *n_pending = s->n_pending;
        pthread_mutex_unlock(&s->mu);
    }
    return st;
}

enum rb_status rb_engine_sched_run(struct rb_engine_sched *s)
{
    int pending = 1;
    while (pending > 0) {
        enum rb_status st = rb_engine_sched_step(s, &pending);
        if (st != RB_OK)
            return st;
    }
    return RB_OK;
}

int rb_engine_sched_wait(struct rb_engine_sched *s, int timeout_ms)
{
    pthread_mutex_lock(&s->mu);
    if (s->n_pending == 0) {
        if (timeout_ms < 0) {
            while (s->n_pending == 0)
                pthread_cond_wait(&s->cv, &s->mu);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += timeout_ms / 1000;
            ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            while (s->n_pending == 0)
                if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
                    break;
        }
    }
    const int n = s->n_pending;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ============================================================ benchmark */

enum rb_status rb_engine_bench_once(struct rb_engine_model *em, int n_prompt, int n_gen,
                                    uint64_t seed, double *tokens_per_s)
{
    *tokens_per_s = 0;
    if (n_prompt < 0 || n_gen < 0 || n_prompt + n_gen <= 0)
        return rb_errmsg_set(&em->err, RB_ERR_INVALID, "nothing to measure");
    const int total = n_prompt + n_gen;
    if (total >= em->n_ctx && em->m->arch != RB_ARCH_BERT)
        return rb_errmsg_set(&em->err, RB_ERR_CONTEXT_FULL,
                             "%d tokens do not fit the context of %d", total, em->n_ctx);
    int32_t *toks = malloc((size_t)total * sizeof *toks);
    if (!toks)
        return RB_ERR_NOMEM;
    uint64_t x = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (int i = 0; i < total; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        toks[i] = (int32_t)((x >> 33) % (uint64_t)em->m->n_vocab);
    }
    enum rb_status st = RB_OK;
    pthread_mutex_lock(&em->lock);
    if (em->m->arch == RB_ARCH_BERT) {
        const int n = n_prompt > em->n_ctx ? em->n_ctx : (n_prompt > 0 ? n_prompt : 1);
        float *v = malloc((size_t)em->m->n_embd * sizeof(float));
        if (!v) {
            st = RB_ERR_NOMEM;
        } else {
            const double t0 = rb__now();
            st = em->backend->encode(em->m, toks, n, v);
            *tokens_per_s = n / (rb__now() - t0);
        }
        free(v);
    } else {
        struct rb__kv *kv = NULL;
        float *logits = malloc((size_t)em->m->n_vocab * sizeof(float));
        st = logits ? em->backend->kv_create(em->m, total + 1, &kv) : RB_ERR_NOMEM;
        int *pos = malloc(RB_PREFILL_BATCH * sizeof *pos);
        struct rb__kv **kvs = malloc(RB_PREFILL_BATCH * sizeof *kvs);
        if (st == RB_OK && (!pos || !kvs))
            st = RB_ERR_NOMEM;
        for (int i = 0; st == RB_OK && i < RB_PREFILL_BATCH; i++)
            kvs[i] = kv;
        const double t0 = rb__now();
        for (int start = 0; st == RB_OK && start < n_prompt; start += RB_PREFILL_BATCH) {
            const int nb = n_prompt - start < RB_PREFILL_BATCH ? n_prompt - start
                                                                : RB_PREFILL_BATCH;
            for (int i = 0; i < nb; i++)
                pos[i] = start + i;
            struct rb__batch b = {nb, toks + start, pos, kvs, NULL, logits};
            st = em->backend->forward(em->m, &b);
        }
        const double t1 = rb__now();
        for (int i = 0; st == RB_OK && i < n_gen; i++) {
            pos[0] = n_prompt + i;
            struct rb__batch b = {1, toks + n_prompt + i, pos, kvs, NULL, logits};
            st = em->backend->forward(em->m, &b);
        }
        const double t2 = rb__now();
        if (st == RB_OK)
            *tokens_per_s = n_gen > 0 ? n_gen / (t2 - t1) : n_prompt / (t1 - t0);
        if (kv)
            em->backend->kv_free(kv);
        free(logits);
        free(pos);
        free(kvs);
    }
    pthread_mutex_unlock(&em->lock);
    free(toks);
    return st;
}
