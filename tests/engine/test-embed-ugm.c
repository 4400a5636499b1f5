/* An XLM-RoBERTa / bge-m3-shaped embedding model: the shared BERT fixture's weights
 * with a SentencePiece unigram ("t5") vocabulary in place of its WordPiece one, as
 * llama.cpp's converter writes bge-m3 (architecture "bert", <s> ... </s> added,
 * position table already re-based past padding_idx + 1). It must open as an
 * embedding model, tokenize with the unigram tokenizer, and embed exactly as the
 * encoder does over the hand-computed ids; truncation keeps the closing </s>. */
#include "check.h"
#include "gguf.h"
#include "model.h"
#include "ragbox/engine.h"

#define SP "\xe2\x96\x81"

static const char *toks[] = {
    "<s>",    "<pad>", "</s>",         "<unk>",        SP,
    SP "the", "the",   "\xe4\xb8\xad", "\xe5\x9b\xbd", "\xe4\xb8\xad\xe5\x9b\xbd",
    "a",      SP "a",  "<mask>"};
static const float scores[] = {0, 0, 0, 0, -2, -3, -4, -6, -6, -7, -5, -4.5f, 0};
static const int32_t types[] = {3, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 3};
#define NTOK 13

int main(void)
{
    struct stat sb;
    const char *src = check_shared("models/fixtures/bert-bge-128.f16.gguf");
    if (stat(src, &sb) != 0)
        CHECK_SKIP("%s not found", src);
    setenv("RAGBOX_GPU", "off", 1);
    const char *dir = check_tmpdir("engine-embed-ugm");
    char path[600];
    snprintf(path, sizeof path, "%s/xlmr.gguf", dir);

    struct rb_errmsg err = {{0}};
    struct rb_gguf *g = NULL;
    REQUIRE(rb_gguf_open(src, &g, &err) == RB_OK);
    struct rb_gguf_writer *w = NULL;
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    for (size_t i = 0; i < rb_gguf_kv_count(g); i++) {
        const struct rb_gguf_kv *kv = rb_gguf_kv_at(g, i);
        if (strncmp(kv->key, "tokenizer.", 10) == 0)
            continue;
        REQUIRE(rb_gguf_writer_copy_kv(w, kv) == RB_OK);
    }
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "t5", 2) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, NTOK) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.scores", RB_GGUF_TYPE_FLOAT32, scores,
                                   NTOK) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", RB_GGUF_TYPE_INT32, types,
                                   NTOK) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 0) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 1) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 3) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.mask_token_id", 12) == RB_OK);
    REQUIRE(rb_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true) == RB_OK);
    REQUIRE(rb_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", true) == RB_OK);
    REQUIRE(rb_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", true) == RB_OK);
    REQUIRE(rb_gguf_writer_set_bool(w, "tokenizer.ggml.remove_extra_whitespaces", true) == RB_OK);
    for (size_t i = 0; i < rb_gguf_tensor_count(g); i++) {
        const struct rb_gguf_tensor *t = rb_gguf_tensor_at(g, i);
        REQUIRE(rb_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data,
                                          t->size) == RB_OK);
    }
    REQUIRE(rb_gguf_writer_write(w, path) == RB_OK);
    rb_gguf_writer_free(w);
    rb_gguf_close(g);

    /* the reference: the encoder run directly over the hand-computed ids */
    REQUIRE(rb_gguf_open(path, &g, &err) == RB_OK);
    struct rb__model *m = NULL;
    REQUIRE(rb__model_load(g, 2, &m, &err) == RB_OK);
    const int E = m->n_embd;
    /* "the  中国 a" -> <s> ▁the ▁ 中国 ▁a </s> */
    const int32_t want[] = {0, 5, 4, 9, 11, 2};
    float *ref = malloc((size_t)E * sizeof(float));
    REQUIRE(rb__encode(m, want, 6, ref) == RB_OK);
    /* truncated to 4 positions: <s> ▁the ▁ </s> */
    const int32_t want4[] = {0, 5, 4, 2};
    float *ref4 = malloc((size_t)E * sizeof(float));
    REQUIRE(rb__encode(m, want4, 4, ref4) == RB_OK);
    rb__model_free(m);
    rb_gguf_close(g);

    struct rb_engine_model_params mp;
    rb_engine_model_params_default(&mp);
    mp.n_threads = 2;
    struct rb_engine_model *em = NULL;
    CHECK_MSG(rb_engine_model_open(path, &mp, &em, &err) == RB_OK, "%s", err.text);
    REQUIRE(em);
    CHECK(rb_engine_model_kind(em) == RB_ENGINE_MODEL_EMBED);
    const struct rb_engine_tokenizer *tok = rb_engine_model_tokenizer(em);
    CHECK(rb_engine_tokenizer_type(tok) == RB_ENGINE_VOCAB_UGM);
    const char *text = "  the  \xe4\xb8\xad\xe5\x9b\xbd a ";
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(rb_engine_tokenize(tok, text, strlen(text), RB_ENGINE_TOKENIZE_ADD_SPECIAL, &ids, &n) ==
          RB_OK);
    CHECK(n == 6 && memcmp(ids, want, sizeof want) == 0);
    free(ids);
    float *v = malloc((size_t)E * sizeof(float));
    const char *texts[] = {text};
    CHECK(rb_engine_embed(em, texts, 1, v) == RB_OK);
    CHECK(memcmp(v, ref, (size_t)E * sizeof(float)) == 0);
    double norm = 0;
    for (int i = 0; i < E; i++)
        norm += (double)v[i] * v[i];
    CHECK_NEAR(norm, 1.0, 1e-4);
    rb_engine_model_close(em);

    mp.n_ctx = 4;
    CHECK(rb_engine_model_open(path, &mp, &em, &err) == RB_OK);
    if (em) {
        CHECK(rb_engine_embed(em, texts, 1, v) == RB_OK);
        CHECK(memcmp(v, ref4, (size_t)E * sizeof(float)) == 0);
        rb_engine_model_close(em);
    }
    free(v);
    free(ref);
    free(ref4);
    return check_finish();
}
