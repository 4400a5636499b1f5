/* Local generation backend: ragbox's own engine on a GGUF file. Chat models
 * get their own chat template (ChatML, Llama-3, Llama-2, Phi-3) rendered and
 * tokenized with their special tokens; a model without a chat template (a
 * base/completion model) gets the messages as plain text. */
#include <stdlib.h>
#include <string.h>

#include "answer-impl.h"
#include "ragbox/engine.h"

struct local {
    struct rb_answer_backend base;
    struct rb_engine_model *model;
    struct rb_engine_tokenizer *tok;
    enum rb_engine_chat_kind chat; /* UNKNOWN = no template: plain text */
};

static enum rb_status local_generate(struct rb_answer_backend *b,
                                     const struct rb_answer_message *msgs, size_t n_msgs,
                                     const struct rb_answer_gen_params *p,
                                     rb_answer_stream_fn on_piece, void *user, char **text)
{
    struct local *l = (struct local *)b;
    struct rb_engine_gen_params gp;
    rb_engine_gen_params_default(&gp);
    gp.max_tokens = p->max_tokens;
    gp.temperature = p->temperature;
    gp.top_p = p->top_p;
    gp.seed = p->seed;
    if (p->temperature <= 0) {
        gp.top_k = 0;
        gp.min_p = 0;
    }
    struct rb_engine_gen_result res = {0};
    enum rb_status st;
    if (l->chat != RB_ENGINE_CHAT_UNKNOWN) {
        struct rb_engine_chat_message cm[8];
        if (n_msgs > RB_ARRAY_LEN(cm))
            return rb_errmsg_set(&b->err, RB_ERR_INVALID, "local: too many messages");
        for (size_t i = 0; i < n_msgs; i++)
            cm[i] = (struct rb_engine_chat_message){msgs[i].role, msgs[i].content};
        char *prompt = NULL;
        if ((st = rb_engine_chat_render(l->chat, cm, n_msgs, true, &prompt, &b->err)) != RB_OK)
            return st;
        int32_t *ids = NULL;
        size_t n_ids = 0;
        /* Llama-2/3 templates carry their own BOS in the text */
        unsigned flags = RB_ENGINE_TOKENIZE_PARSE_SPECIAL;
        if (l->chat != RB_ENGINE_CHAT_LLAMA2 && l->chat != RB_ENGINE_CHAT_LLAMA3)
            flags |= RB_ENGINE_TOKENIZE_ADD_SPECIAL;
        st = rb_engine_tokenize(l->tok, prompt, strlen(prompt), flags, &ids, &n_ids);
        free(prompt);
        if (st != RB_OK)
            return rb_errmsg_set(&b->err, st, "local: tokenizing the prompt failed");
        st = rb_engine_generate_tokens(l->model, ids, n_ids, &gp, on_piece, user, text != NULL,
                                       &res);
        free(ids);
    } else {
        /* completion model: the messages as one text, the answer follows */
        struct rb_buf pr;
        rb_buf_init(&pr, 0);
        st = rb_buf_append(&pr, "", 0);
        for (size_t i = 0; i < n_msgs && st == RB_OK; i++)
            st = rb_buf_printf(&pr, "%s\n\n", msgs[i].content);
        if (st == RB_OK)
            st = rb_buf_append_str(&pr, "Answer:");
        if (st == RB_OK)
            st = rb_engine_generate(l->model, pr.data, &gp, on_piece, user, text != NULL, &res);
        rb_buf_free(&pr);
    }
    if (st != RB_OK) {
        free(res.text);
        return rb_errmsg_set(&b->err, st, "local: %s", rb_engine_model_errmsg(l->model));
    }
    if (res.finish == RB_ENGINE_FINISH_CANCELLED) {
        free(res.text);
        return rb_errmsg_set(&b->err, RB_ERR_CANCELLED, "local: generation cancelled");
    }
    if (text) {
        *text = res.text ? res.text : rb_strdup("");
        if (!*text)
            return RB_ERR_NOMEM;
    } else {
        free(res.text);
    }
    return RB_OK;
}

static size_t local_count(struct rb_answer_backend *b, const char *text, size_t len)
{
    struct local *l = (struct local *)b;
    size_t n = 0;
    if (rb_engine_token_count(l->tok, text, len, 0, &n) != RB_OK)
        return rb__estimate_tokens(text, len);
    return n;
}

static void local_close(struct rb_answer_backend *b)
{
    struct local *l = (struct local *)b;
    rb_engine_model_close(l->model);
    rb_engine_tokenizer_free(l->tok);
    free(l);
}

static const struct rb_answer_backend_ops local_ops = {
    .name = "local",
    .generate = local_generate,
    .count_tokens = local_count,
    .close = local_close,
};

enum rb_status rb_answer_backend_open_local(const struct rb_answer_local_options *o,
                                            struct rb_answer_backend **out, struct rb_errmsg *err)
{
    *out = NULL;
    if (!o || !o->model_path)
        return rb_errmsg_set(err, RB_ERR_INVALID, "local backend: a model file is required");
    struct local *l = calloc(1, sizeof *l);
    if (!l)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    l->base.ops = &local_ops;
    struct rb_engine_model_params mp;
    rb_engine_model_params_default(&mp);
    mp.n_threads = o->n_threads;
    mp.n_ctx = o->n_ctx;
    enum rb_status st = rb_engine_model_open(o->model_path, &mp, &l->model, err);
    if (st == RB_OK && rb_engine_model_kind(l->model) != RB_ENGINE_MODEL_GENERATE)
        st = rb_errmsg_set(err, RB_ERR_MODEL, "%s is an embedding model, not a generation model",
                           o->model_path);
    if (st == RB_OK)
        st = rb_engine_tokenizer_load(o->model_path, &l->tok, err);
    if (st == RB_OK)
        st = rb_sha256_file(o->model_path, l->base.model_hash);
    if (st != RB_OK) {
        local_close(&l->base);
        return st;
    }
    l->chat = rb_engine_chat_detect(rb_engine_tokenizer_chat_template(l->tok));
    if (l->chat == RB_ENGINE_CHAT_UNKNOWN && o->chat_template && *o->chat_template)
        l->chat = rb_engine_chat_kind_from_name(o->chat_template);
    l->base.context_tokens = (size_t)rb_engine_model_n_ctx(l->model);
    rb_strlcpy(l->base.model_id, rb_path_basename(o->model_path), sizeof l->base.model_id);
    *out = &l->base;
    return RB_OK;
}

enum rb_status rb_answer_engine_embed(void *user, const char *text, float **vec, int *dim)
{
    struct rb_engine_model *m = user;
    int d = rb_engine_model_dim(m);
    float *v = rb_malloc_array((size_t)d, sizeof *v);
    if (!v)
        return RB_ERR_NOMEM;
    const char *texts[1] = {text};
    enum rb_status st = rb_engine_embed(m, texts, 1, v);
    if (st != RB_OK) {
        free(v);
        return st;
    }
    *vec = v;
    *dim = d;
    return RB_OK;
}
