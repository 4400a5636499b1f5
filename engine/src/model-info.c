/* rb_engine_model_info_read: a GGUF model's description without loading weights. */
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "ragbox/engine.h"

void rb_engine_model_info_free(struct rb_engine_model_info *info)
{
    if (!info)
        return;
    free(info->path);
    free(info->architecture);
    free(info->name);
    free(info->tokenizer_model);
    free(info->tokenizer_pre);
    free(info->chat_template);
    free(info->types);
    free(info);
}

static char *opt_str(const struct rb_gguf *g, const char *key)
{
    char *s = NULL;
    return rb_gguf_get_strdup(g, key, &s) == RB_OK ? s : NULL;
}

static uint32_t opt_arch_u32(const struct rb_gguf *g, const char *suffix, uint32_t def)
{
    uint32_t v;
    return rb_gguf_get_arch_u32(g, suffix, &v) == RB_OK ? v : def;
}

enum rb_status rb_engine_model_info_read(const char *path, struct rb_engine_model_info **out,
                                         struct rb_errmsg *err)
{
    *out = NULL;
    struct rb_gguf *g = NULL;
    enum rb_status st = rb_gguf_open(path, &g, err);
    if (st != RB_OK)
        return st;
    struct rb_engine_model_info *m = calloc(1, sizeof *m);
    if (!m) {
        rb_gguf_close(g);
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    m->path = rb_strdup(path);
    m->gguf_version = rb_gguf_version(g);
    m->file_size = rb_gguf_file_size(g);
    m->architecture = opt_str(g, "general.architecture");
    m->name = opt_str(g, "general.name");
    m->n_tensors = rb_gguf_tensor_count(g);
    m->n_kv = rb_gguf_kv_count(g);
    m->context_length = opt_arch_u32(g, "context_length", 0);
    m->embedding_length = opt_arch_u32(g, "embedding_length", 0);
    m->block_count = opt_arch_u32(g, "block_count", 0);
    m->head_count = opt_arch_u32(g, "attention.head_count", 0);
    m->head_count_kv = opt_arch_u32(g, "attention.head_count_kv", m->head_count);
    if (rb_gguf_get_u32(g, "general.file_type", &m->file_type) != RB_OK)
        m->file_type = UINT32_MAX;
    m->tokenizer_model = opt_str(g, "tokenizer.ggml.model");
    m->tokenizer_pre = opt_str(g, "tokenizer.ggml.pre");
    m->chat_template = opt_str(g, "tokenizer.chat_template");
    const struct rb_gguf_kv *kv;
    if (rb_gguf_get_arr(g, "tokenizer.ggml.tokens", &kv) == RB_OK)
        m->n_vocab = (uint32_t)RB_MIN(kv->n, UINT32_MAX);
    if (rb_gguf_get_arr(g, "tokenizer.ggml.merges", &kv) == RB_OK)
        m->n_merges = (uint32_t)RB_MIN(kv->n, UINT32_MAX);
    struct rb_engine_tensor_type_count by_type[RB_GGML_TYPE_COUNT];
    memset(by_type, 0, sizeof by_type);
    for (size_t i = 0; i < rb_gguf_tensor_count(g); i++) {
        const struct rb_gguf_tensor *t = rb_gguf_tensor_at(g, i);
        struct rb_engine_tensor_type_count *c = &by_type[t->type];
        c->n_tensors++;
        c->n_elements += t->n_elements;
        c->n_bytes += t->size;
        m->n_params += t->n_elements;
    }
    m->types = calloc(RB_GGML_TYPE_COUNT, sizeof *m->types);
    if (!m->types || !m->path) {
        rb_gguf_close(g);
        rb_engine_model_info_free(m);
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    }
    for (uint32_t ty = 0; ty < RB_GGML_TYPE_COUNT; ty++) {
        if (!by_type[ty].n_tensors)
            continue;
        struct rb_engine_tensor_type_count *c = &m->types[m->n_types++];
        *c = by_type[ty];
        rb_strlcpy(c->type, rb_ggml_type_name(ty), sizeof c->type);
    }
    rb_gguf_close(g);
    *out = m;
    return RB_OK;
}
