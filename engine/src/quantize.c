/* Model quantization: GGUF (F32/F16/BF16) -> Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ggml-types.h"
#include "gguf.h"
#include "kernels.h"
#include "quant-block.h"
#include "ragbox/engine.h"

struct qplan {
    const struct rb_gguf_tensor *t;
    uint32_t new_type;
};

struct qctx {
    const struct rb_gguf *g;
    struct qplan *plan;
    size_t n;
    int n_threads;
};

/* ggml file type ids (general.file_type) */
enum { FT_Q4_0 = 2, FT_Q8_0 = 7, FT_Q4_K_M = 15, FT_Q5_K_M = 17, FT_Q6_K = 18 };

static bool more_bits(int il, int n_layer)
{
    return il < n_layer / 8 || il >= 7 * n_layer / 8 || (il - n_layer / 8) % 3 == 2;
}

static uint32_t fallback(uint32_t type, uint64_t ne0)
{
    const struct rb_ggml_type_traits *tr = rb_ggml_type_get(type);
    if (ne0 % tr->block_size == 0)
        return type;
    switch (type) {
    case RB_GGML_TYPE_Q4_K: return ne0 % 32 == 0 ? RB_GGML_TYPE_Q5_0 : RB_GGML_TYPE_F16;
    case RB_GGML_TYPE_Q5_K:
    case RB_GGML_TYPE_Q6_K: return ne0 % 32 == 0 ? RB_GGML_TYPE_Q8_0 : RB_GGML_TYPE_F16;
    default: return RB_GGML_TYPE_F16;
    }
}

static void quantize_row(uint32_t type, const float *x, void *out, int64_t n)
{
    uint8_t *o = out;
    switch (type) {
    case RB_GGML_TYPE_F32: memcpy(out, x, (size_t)n * 4); break;
    case RB_GGML_TYPE_F16:
        for (int64_t i = 0; i < n; i++)
            ((rb_half *)out)[i] = rb_fp32_to_fp16(x[i]);
        break;
    case RB_GGML_TYPE_Q8_0:
        for (int64_t i = 0; i < n / 32; i++)
            rb_quantw_q8_0(x + 32 * i, (struct rb_block_q8_0 *)o + i);
        break;
    case RB_GGML_TYPE_Q4_0:
        for (int64_t i = 0; i < n / 32; i++)
            rb_quantw_q4_0(x + 32 * i, (struct rb_block_q4_0 *)o + i);
        break;
    case RB_GGML_TYPE_Q5_0:
        for (int64_t i = 0; i < n / 32; i++)
            rb_quantw_q5_0(x + 32 * i, (struct rb_block_q5_0 *)o + i);
        break;
    case RB_GGML_TYPE_Q4_K:
        for (int64_t i = 0; i < n / 256; i++)
            rb_quantw_q4_k(x + 256 * i, (struct rb_block_q4_k *)o + i);
        break;
    case RB_GGML_TYPE_Q5_K:
        for (int64_t i = 0; i < n / 256; i++)
            rb_quantw_q5_k(x + 256 * i, (struct rb_block_q5_k *)o + i);
        break;
    case RB_GGML_TYPE_Q6_K:
        for (int64_t i = 0; i < n / 256; i++)
            rb_quantw_q6_k(x + 256 * i, (struct rb_block_q6_k *)o + i);
        break;
    default: break;
    }
}

struct fill_job {
    const struct rb_gguf_tensor *t;
    uint32_t new_type;
    uint8_t *buf;
    size_t out_row, in_row;
    int64_t n_rows;
    int nth;
    bool failed;
};

struct fill_part {
    struct fill_job *j;
    int ith;
};

static void *fill_part_main(void *arg)
{
    struct fill_part *p = arg;
    struct fill_job *j = p->j;
    const struct rb_type_ops *in = rb__type_ops(j->t->type);
    const int64_t ne0 = (int64_t)j->t->ne[0];
    float *row = malloc((size_t)ne0 * sizeof(float));
    if (!row) {
        j->failed = true;
        return NULL;
    }
    for (int64_t r = p->ith; r < j->n_rows; r += j->nth) {
        in->dequant_row((const uint8_t *)j->t->data + (size_t)r * j->in_row, row, ne0);
        quantize_row(j->new_type, row, j->buf + (size_t)r * j->out_row, ne0);
    }
    free(row);
    return NULL;
}

static enum rb_status fill(void *user, const char *name, void *buf, uint64_t size)
{
    struct qctx *q = user;
    struct qplan *pl = NULL;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->plan[i].t->name, name) == 0)
            pl = &q->plan[i];
    if (!pl)
        return RB_ERR_INTERNAL;
    const struct rb_gguf_tensor *t = pl->t;
    uint64_t in_row, out_row;
    if (!rb_ggml_row_size(t->type, t->ne[0], &in_row) ||
        !rb_ggml_row_size(pl->new_type, t->ne[0], &out_row))
        return RB_ERR_INTERNAL;
    const int64_t n_rows = (int64_t)(t->n_elements / t->ne[0]);
    if ((uint64_t)n_rows * out_row != size)
        return RB_ERR_INTERNAL;
    if (pl->new_type == t->type) {
        memcpy(buf, t->data, size);
        return RB_OK;
    }
    struct fill_job j = {t, pl->new_type, buf, out_row, in_row, n_rows, q->n_threads, false};
    pthread_t th[64];
    struct fill_part parts[64];
    bool running[64] = {false};
    if (j.nth > 64)
        j.nth = 64;
    for (int i = 0; i < j.nth; i++)
        parts[i] = (struct fill_part){&j, i};
    for (int i = 1; i < j.nth; i++)
        running[i] = pthread_create(&th[i], NULL, fill_part_main, &parts[i]) == 0;
    fill_part_main(&parts[0]);
    for (int i = 1; i < j.nth; i++) {
        if (running[i])
            pthread_join(th[i], NULL);
        else
            fill_part_main(&parts[i]); /* thread creation failed: do its rows here */
    }
    return j.failed ? RB_ERR_NOMEM : RB_OK;
}

enum rb_status rb_engine_quantize(const char *in_path, const char *out_path, const char *type,
                                  int n_threads, struct rb_errmsg *err)
{
    uint32_t base, file_type;
    bool kquant_m = false;
    if (strcasecmp(type, "Q8_0") == 0) {
        base = RB_GGML_TYPE_Q8_0;
        file_type = FT_Q8_0;
    } else if (strcasecmp(type, "Q4_0") == 0) {
        base = RB_GGML_TYPE_Q4_0;
        file_type = FT_Q4_0;
    } else if (strcasecmp(type, "Q4_K_M") == 0) {
        base = RB_GGML_TYPE_Q4_K;
        file_type = FT_Q4_K_M;
        kquant_m = true;
    } else if (strcasecmp(type, "Q5_K_M") == 0) {
        base = RB_GGML_TYPE_Q5_K;
        file_type = FT_Q5_K_M;
        kquant_m = true;
    } else if (strcasecmp(type, "Q6_K") == 0) {
        base = RB_GGML_TYPE_Q6_K;
        file_type = FT_Q6_K;
    } else {
        return rb_errmsg_set(err, RB_ERR_INVALID,
                             "unknown quantization type '%s' (Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K)",
                             type);
    }
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)(n > 64 ? 64 : n) : 1;
    }
    if (n_threads > 64)
        n_threads = 64;
    struct rb_gguf *g = NULL;
    enum rb_status st = rb_gguf_open(in_path, &g, err);
    if (st != RB_OK)
        return st;
    struct rb_gguf_writer *w = NULL;
    struct qctx q = {g, NULL, rb_gguf_tensor_count(g), n_threads};
    st = rb_gguf_writer_create(&w);
    if (st == RB_OK) {
        q.plan = calloc(q.n ? q.n : 1, sizeof *q.plan);
        if (!q.plan)
            st = RB_ERR_NOMEM;
    }
    if (st != RB_OK) {
        rb_gguf_writer_free(w);
        rb_gguf_close(g);
        return rb_errmsg_set(err, st, "out of memory");
    }
    uint32_t n_layer = 0;
    if (rb_gguf_get_arch_u32(g, "block_count", &n_layer) != RB_OK)
        n_layer = 0;
    const bool has_output = rb_gguf_find_tensor(g, "output.weight") != NULL;
    for (size_t i = 0; i < rb_gguf_kv_count(g) && st == RB_OK; i++) {
        const struct rb_gguf_kv *kv = rb_gguf_kv_at(g, i);
        if (strcmp(kv->key, "general.file_type") == 0 ||
            strcmp(kv->key, "general.quantization_version") == 0 ||
            strcmp(kv->key, "general.alignment") == 0)
            continue;
        st = rb_gguf_writer_copy_kv(w, kv);
    }
    if (st == RB_OK)
        st = rb_gguf_writer_set_u32(w, "general.file_type", file_type);
    if (st == RB_OK)
        st = rb_gguf_writer_set_u32(w, "general.quantization_version", 2);
    int warned = 0;
    for (size_t i = 0; i < q.n && st == RB_OK; i++) {
        const struct rb_gguf_tensor *t = rb_gguf_tensor_at(g, i);
        q.plan[i].t = t;
        uint32_t nt = t->type;
        const bool matrix = t->n_dims >= 2 && strstr(t->name, "_norm") == NULL;
        if (matrix && rb__type_ops(t->type)) {
            nt = base;
            const bool is_output = strcmp(t->name, "output.weight") == 0 ||
                                   (!has_output && strcmp(t->name, "token_embd.weight") == 0);
            int il = -1;
            if (sscanf(t->name, "blk.%d.", &il) != 1)
                il = -1;
            if (is_output && base != RB_GGML_TYPE_Q8_0)
                nt = RB_GGML_TYPE_Q6_K;
            else if (kquant_m && il >= 0 && n_layer > 0 &&
                     (strstr(t->name, "attn_v.weight") || strstr(t->name, "ffn_down.weight")) &&
                     more_bits(il, (int)n_layer))
                nt = RB_GGML_TYPE_Q6_K;
            if (strstr(t->name, "position_embd") || strstr(t->name, "token_types"))
                nt = t->type; /* small lookup tables stay exact */
            nt = fallback(nt, t->ne[0]);
            if (nt == RB_GGML_TYPE_F16 && t->type == RB_GGML_TYPE_BF16)
                nt = RB_GGML_TYPE_BF16;
            if (nt != t->type && t->type != RB_GGML_TYPE_F32 && t->type != RB_GGML_TYPE_F16 &&
                t->type != RB_GGML_TYPE_BF16 && !warned++)
                RB_WARN("engine", "%s: requantizing already quantized tensors (%s is %s)",
                        in_path, t->name, rb_ggml_type_name(t->type));
        } else if (!rb__type_ops(t->type) && matrix) {
            nt = t->type; /* a type we cannot compute: copied unchanged */
        }
        if (nt == RB_GGML_TYPE_BF16 && nt != t->type)
            nt = RB_GGML_TYPE_F16;
        q.plan[i].new_type = nt;
        st = rb_gguf_writer_add_tensor_cb(w, t->name, nt, t->n_dims, t->ne, fill, &q);
    }
    if (st == RB_OK)
        st = rb_gguf_writer_write(w, out_path);
    if (st != RB_OK && err && !err->text[0])
        rb_errmsg_set(err, st, "%s: %s", out_path,
                      rb_gguf_writer_errmsg(w) ? rb_gguf_writer_errmsg(w) : rb_status_str(st));
    else if (st != RB_OK && err)
        rb_errmsg_set(err, st, "%s: %s", out_path,
                      rb_gguf_writer_errmsg(w) ? rb_gguf_writer_errmsg(w) : rb_status_str(st));
    rb_gguf_writer_free(w);
    free(q.plan);
    rb_gguf_close(g);
    return st;
}
