/* Tokenizer construction from hand-built GGUF metadata: score-ordered SPM
 * merges, byte fallback, BPE merge ranks, WordPiece, special-token flags; and
 * refusal of hostile or inconsistent metadata with a clear message. */
#include <time.h>

#include "check.h"
#include "gguf.h"
#include "tokenizer.h"

static const char *dir;
static int file_no;

typedef void (*meta_fn)(struct rb_gguf_writer *w);

/* Writes a GGUF with the metadata from fn, then builds its tokenizer. */
static enum rb_status build(meta_fn fn, struct rb_engine_tokenizer **tok, struct rb_errmsg *err)
{
    struct rb_gguf_writer *w = NULL;
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    REQUIRE(rb_gguf_writer_set_str(w, "general.architecture", "llama", 5) == RB_OK);
    fn(w);
    char path[600];
    snprintf(path, sizeof path, "%s/t%d.gguf", dir, file_no++);
    REQUIRE(rb_gguf_writer_write(w, path) == RB_OK);
    rb_gguf_writer_free(w);
    return rb_engine_tokenizer_load(path, tok, err);
}

/* ---- SPM */
static const char *spm_tokens[] = {"<unk>",
                                   "<s>",
                                   "</s>",
                                   "\xe2\x96\x81",
                                   "a",
                                   "b",
                                   "c",
                                   "ab",
                                   "bc",
                                   "abc",
                                   ("\xe2\x96\x81"
                                    "abc"),
                                   "<0x41>",
                                   "<0xC3>",
                                   "<0xA9>",
                                   "<ctl>"};
static void spm_meta(struct rb_gguf_writer *w)
{
    size_t n = RB_ARRAY_LEN(spm_tokens);
    float scores[16] = {0, 0, 0, -1, -5, -5, -5, -2, -1, -3, -0.5f, 0, 0, 0, 0};
    int32_t types[16] = {2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, 6, 6, 3};
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", spm_tokens, NULL, n) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.scores", RB_GGUF_TYPE_FLOAT32, scores, n) ==
            RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", RB_GGUF_TYPE_INT32, types, n) ==
            RB_OK);
}

static void expect_ids(struct rb_engine_tokenizer *tok, const char *text, unsigned flags,
                       const int32_t *want, size_t nwant)
{
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(rb_engine_tokenize(tok, text, strlen(text), flags, &ids, &n) == RB_OK);
    bool same = n == nwant && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    CHECK_MSG(same, "'%s': got %zu ids (first %d), want %zu", text, n, n ? ids[0] : -1, nwant);
    free(ids);
}

static void test_spm(void)
{
    struct rb_engine_tokenizer *tok = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(build(spm_meta, &tok, &err) == RB_OK);
    /* "abc" -> " abc" -> ▁abc (best score merges: bc(-1) then a+bc? no: ▁a missing;
       pairs: ▁+a none, a+b ab(-2), b+c bc(-1): bc first, then a+bc=abc(-3),
       then ▁+abc = ▁abc(-0.5) */
    expect_ids(tok, "abc", 0, (int32_t[]){10}, 1);
    expect_ids(tok, "abc", RB_ENGINE_TOKENIZE_ADD_SPECIAL, (int32_t[]){1, 10}, 2);
    expect_ids(tok, "", RB_ENGINE_TOKENIZE_ADD_SPECIAL, (int32_t[]){1}, 1);
    expect_ids(tok, "", 0, NULL, 0);
    /* byte fallback: A -> <0x41>; é (C3 A9) -> two byte tokens; z has no byte token -> unk */
    expect_ids(tok, "A\xc3\xa9z", 0, (int32_t[]){3, 11, 12, 13, 0}, 5);
    /* control token only with parse_special */
    expect_ids(tok, "<ctl>", RB_ENGINE_TOKENIZE_PARSE_SPECIAL, (int32_t[]){14}, 1);
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(rb_engine_tokenize(tok, "<ctl>", 5, 0, &ids, &n) == RB_OK && n > 1);
    free(ids);
    /* detokenize: byte tokens reassemble the character */
    char *text = NULL;
    size_t len = 0;
    int32_t seq[] = {1, 10, 3, 12, 13};
    CHECK(rb_engine_detokenize(tok, seq, 5, RB_ENGINE_DETOKENIZE_REMOVE_SPECIAL, &text, &len) ==
          RB_OK);
    CHECK_STR(text, "abc \xc3\xa9");
    free(text);
    CHECK(rb_engine_detokenize(tok, seq, 5, RB_ENGINE_DETOKENIZE_UNPARSE_SPECIAL, &text, &len) ==
          RB_OK);
    CHECK_STR(text, "<s> abc \xc3\xa9");
    free(text);
    CHECK(rb_engine_token_is_eog(tok, 2));
    CHECK(!rb_engine_token_is_eog(tok, 4));
    CHECK_EQ_INT(rb_engine_token_nl(tok), RB_ENGINE_TOKEN_NONE); /* no <0x0A>, no pad */
    /* malformed UTF-8 does not break anything */
    CHECK(rb_engine_tokenize(tok, "\xff\xfe\xc3", 3, 0, &ids, &n) == RB_OK);
    free(ids);
    rb_engine_tokenizer_free(tok);
}

/* ---- BPE */
static void bpe_meta(struct rb_gguf_writer *w)
{
    /* GPT-2 byte alphabet for the printable ASCII we use, plus merges */
    const char *toks[] = {"a",
                          "b",
                          "c",
                          "\xc4\xa0",
                          "ab",
                          "abc",
                          ("\xc4\xa0"
                           "a"),
                          "bc",
                          "<|end|>"};
    const char *merges[] = {"b c", "a b", "ab c", "\xc4\xa0 a"};
    int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 1, 3};
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4) == RB_OK);
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2", 5) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 9) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", RB_GGUF_TYPE_INT32, types, 9) ==
            RB_OK);
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, 4) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 8) == RB_OK);
}

static void test_bpe(void)
{
    struct rb_engine_tokenizer *tok = NULL;
    struct rb_errmsg err = {{0}};
    CHECK_MSG(build(bpe_meta, &tok, &err) == RB_OK, "%s", err.text);
    if (!tok)
        return;
    /* rank order: "b c" (0) first -> a bc; "ab c" needs ab, never formed -> a, bc */
    expect_ids(tok, "abc", 0, (int32_t[]){0, 7}, 2);
    /* " a" -> Ġa via merge 3; then words split by the gpt-2 regex */
    expect_ids(tok, "abc a", 0, (int32_t[]){0, 7, 6}, 3);
    expect_ids(tok, "<|end|>", RB_ENGINE_TOKENIZE_PARSE_SPECIAL, (int32_t[]){8}, 1);
    CHECK(rb_engine_token_is_eog(tok, 8));
    char *text = NULL;
    size_t len;
    int32_t seq[] = {0, 7, 6};
    CHECK(rb_engine_detokenize(tok, seq, 3, 0, &text, &len) == RB_OK);
    CHECK_STR(text, "abc a");
    free(text);
    CHECK_STR(rb_engine_tokenizer_pre_name(tok), "gpt-2");

    /* long input: linear time (a per-call UTF check once made this quadratic) */
    size_t words = 200000, big_len = words * 4 - 1;
    char *big = malloc(big_len + 1);
    REQUIRE(big);
    memcpy(big, "abc", 3); /* "abc abc abc ...": a,bc then Ġa,bc per word */
    for (size_t i = 1; i < words; i++)
        memcpy(big + 3 + 4 * (i - 1), " abc", 4);
    big[big_len] = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t count = 0;
    CHECK(rb_engine_token_count(tok, big, big_len, 0, &count) == RB_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK_EQ_INT(count, 2 * words);
    CHECK_MSG(secs < 10, "800 KB took %.2f s", secs); /* ~0.2 s; the quadratic bug took minutes */
    fprintf(stderr, "BPE: %zu bytes -> %zu tokens in %.3f s\n", big_len, count, secs);
    free(big);
    rb_engine_tokenizer_free(tok);
}

/* ---- WordPiece */
static void wpm_meta(struct rb_gguf_writer *w)
{
    const char *toks[] = {"[PAD]",
                          "[UNK]",
                          "[CLS]",
                          "[SEP]",
                          ("\xe2\x96\x81"
                           "cafe"),
                          ("\xe2\x96\x81"
                           "un"),
                          "able",
                          ("\xe2\x96\x81"
                           ","),
                          "\xe2\x96\x81\xe4\xbd\xa0"};
    int32_t types[] = {3, 3, 3, 3, 1, 1, 1, 1, 1};
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "bert", 4) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 9) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", RB_GGUF_TYPE_INT32, types, 9) ==
            RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 1) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.cls_token_id", 2) == RB_OK); /* no bos key */
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 3) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0) == RB_OK);
}

static void test_wpm(void)
{
    struct rb_engine_tokenizer *tok = NULL;
    struct rb_errmsg err = {{0}};
    CHECK_MSG(build(wpm_meta, &tok, &err) == RB_OK, "%s", err.text);
    if (!tok)
        return;
    /* lower-casing, accent stripping (É -> e), punctuation split, CJK split, [UNK] */
    expect_ids(tok, "CAFÉ, Unable 你x", RB_ENGINE_TOKENIZE_ADD_SPECIAL,
               (int32_t[]){2, 4, 7, 5, 6, 8, 1, 3}, 8);
    rb_engine_tokenizer_free(tok);
}

/* ---- hostile metadata */
static void no_model(struct rb_gguf_writer *w)
{
    const char *toks[] = {"a"};
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 1) == RB_OK);
}
static void rwkv_model(struct rb_gguf_writer *w)
{
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "rwkv", 4) == RB_OK);
}
static void bad_pre(struct rb_gguf_writer *w)
{
    bpe_meta(w);
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.pre", "no-such-pre", 11) == RB_OK);
}
static void no_merges(struct rb_gguf_writer *w)
{
    const char *toks[] = {"a", "b"};
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 2) == RB_OK);
}
static void dup_tokens(struct rb_gguf_writer *w)
{
    const char *toks[] = {"<unk>", "<s>", "</s>", "x", "x"};
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 5) == RB_OK);
}
static void short_scores(struct rb_gguf_writer *w)
{
    spm_meta(w);
    float s[2] = {0, 0};
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.scores", RB_GGUF_TYPE_FLOAT32, s, 2) ==
            RB_OK);
}
static void tokens_not_strings(struct rb_gguf_writer *w)
{
    int32_t v[3] = {1, 2, 3};
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", RB_GGUF_TYPE_INT32, v, 3) == RB_OK);
}
static void bos_missing(struct rb_gguf_writer *w)
{
    const char *toks[] = {"a"}; /* default BOS id 1 does not exist */
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 1) == RB_OK);
}

static void test_hostile(void)
{
    struct {
        meta_fn fn;
        enum rb_status want;
        const char *needle;
    } cases[] = {
        {no_model, RB_ERR_UNSUPPORTED, "tokenizer.ggml.model"},
        {rwkv_model, RB_ERR_UNSUPPORTED, "'rwkv'"},
        {bad_pre, RB_ERR_UNSUPPORTED, "'no-such-pre'"},
        {no_merges, RB_ERR_CORRUPT, "merges"},
        {dup_tokens, RB_ERR_CORRUPT, "duplicate token"},
        {short_scores, RB_ERR_CORRUPT, "scores"},
        {tokens_not_strings, RB_ERR_CORRUPT, "tokenizer.ggml.tokens"},
        {bos_missing, RB_ERR_CORRUPT, "BOS"},
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(cases); i++) {
        struct rb_engine_tokenizer *tok = (struct rb_engine_tokenizer *)1;
        struct rb_errmsg err = {{0}};
        enum rb_status st = build(cases[i].fn, &tok, &err);
        CHECK_MSG(st == cases[i].want, "case %zu: status %d (%s)", i, st, err.text);
        CHECK(tok == NULL);
        CHECK_MSG(strstr(err.text, cases[i].needle) != NULL, "case %zu: '%s'", i, err.text);
    }
}

int main(void)
{
    dir = check_tmpdir("tokenizer");
    test_spm();
    test_bpe();
    test_wpm();
    test_hostile();
    return check_finish();
}
