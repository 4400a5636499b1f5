/* SentencePiece unigram ("t5") tokenizer: a hand-built GGUF vocabulary with a
 * precompiled charsmap (a darts-clone double array built here) and hand-computed
 * segmentations (English, CJK, digits, unknown characters, special tokens,
 * whitespace rules, byte fallback); the Viterbi cross-checked against an exhaustive
 * search of all segmentations on random strings; hostile charsmaps refused. */
#include <float.h>

#include "check.h"
#include "gguf.h"
#include "ragbox/engine.h"
#include "tokenizer-ugm.h"
#include "tokenizer.h"

#define SP "\xe2\x96\x81" /* U+2581 */

/* ------------------------------------------------------------ vocabulary */
struct piece {
    const char *text;
    float score;
    int type; /* GGUF token type: 1 normal, 2 unknown, 3 control, 4 user-defined */
};

static const struct piece VOCAB[] = {
    {"<pad>", 0, 3},
    {"</s>", 0, 3},
    {"<unk>", 0, 2}, /* 0-2 */
    {SP, -2.0f, 1},
    {SP "the", -3.0f, 1},
    {"the", -4.0f, 1}, /* 3-5 */
    {"t", -5.0f, 1},
    {"h", -5.0f, 1},
    {"e", -5.0f, 1}, /* 6-8 */
    {SP "t", -4.5f, 1},
    {"he", -4.0f, 1},
    {"\xe4\xb8\xad", -6.0f, 1},             /* 9-11 中 */
    {"\xe5\x9b\xbd", -6.0f, 1},             /* 12 国 */
    {"\xe4\xb8\xad\xe5\x9b\xbd", -7.0f, 1}, /* 13 中国 */
    {"\xe4\xba\xba", -6.5f, 1},             /* 14 人 */
    {"1", -3.0f, 1},
    {"2", -3.0f, 1},
    {"12", -5.5f, 1}, /* 15-17 */
    {"3", -3.0f, 1},
    {"123", -9.75f, 1},
    {SP "1", -3.5f, 1}, /* 18-20 */
    {"[U]", 0, 4},
    {"a", -5.0f, 1},
    {"b", -5.0f, 1}, /* 21-23 */
    {"ab", -9.25f, 1},
    {"<mask>", 0, 3},
    {SP "a", -4.75f, 1}, /* 24-26 */
};
#define NV (sizeof VOCAB / sizeof VOCAB[0])

/* ----------------------------------------------------- charsmap builder */
/* A darts-clone double array (the format SentencePiece stores) over the keys, each
 * leaf holding the offset of its replacement in the string block after it. */
struct dict {
    uint32_t units[4096];
    bool used[4096];
    size_t n;
};

struct kv {
    const char *key, *value;
};

static void place(struct dict *d, size_t pos, const struct kv *keys, const uint32_t *vals,
                  const int *idx, int n, size_t depth)
{
    int labels[257], nl = 0;
    bool leaf = false;
    uint32_t leaf_val = 0;
    for (int i = 0; i < n; i++) {
        const char *k = keys[idx[i]].key;
        if (strlen(k) == depth) {
            leaf = true;
            leaf_val = vals[idx[i]];
            continue;
        }
        int c = (unsigned char)k[depth];
        bool seen = false;
        for (int j = 0; j < nl; j++)
            seen = seen || labels[j] == c;
        if (!seen)
            labels[nl++] = c;
    }
    /* find q with every q ^ label free (the leaf sits at q ^ 0 = q) */
    size_t q = 1;
    for (;; q++) {
        bool ok = q < 2048 && !(leaf && d->used[q]);
        for (int j = 0; ok && j < nl; j++)
            ok = (q ^ (size_t)labels[j]) != 0 && !d->used[q ^ (size_t)labels[j]];
        if (ok)
            break;
        REQUIRE(q < 2048);
    }
    const uint32_t offset = (uint32_t)(pos ^ q);
    REQUIRE(offset < (1u << 21));
    d->units[pos] |= offset << 10 | (leaf ? 1u << 8 : 0);
    if (leaf) {
        d->used[q] = true;
        d->units[q] = (1u << 31) | leaf_val;
    }
    for (int j = 0; j < nl; j++) {
        d->used[q ^ (size_t)labels[j]] = true;
        d->units[q ^ (size_t)labels[j]] = (uint32_t)labels[j];
    }
    if (q + 256 > d->n)
        d->n = q + 256;
    for (int j = 0; j < nl; j++) {
        int sub[64], ns = 0;
        for (int i = 0; i < n; i++) {
            const char *k = keys[idx[i]].key;
            if (strlen(k) > depth && (unsigned char)k[depth] == labels[j])
                sub[ns++] = idx[i];
        }
        place(d, q ^ (size_t)labels[j], keys, vals, sub, ns, depth + 1);
    }
}

/* blob = u32 trie bytes | units | NUL-terminated replacements */
static size_t build_charsmap(const struct kv *keys, int n, uint8_t *blob, size_t cap)
{
    static struct dict d;
    memset(&d, 0, sizeof d);
    char repl[512];
    size_t rl = 0;
    uint32_t vals[64];
    int idx[64];
    for (int i = 0; i < n; i++) {
        vals[i] = (uint32_t)rl;
        size_t l = strlen(keys[i].value);
        memcpy(repl + rl, keys[i].value, l + 1);
        rl += l + 1;
        idx[i] = i;
    }
    d.used[0] = true;
    place(&d, 0, keys, vals, idx, n, 0);
    const uint32_t tb = (uint32_t)(d.n * 4);
    REQUIRE(4 + tb + rl <= cap);
    blob[0] = (uint8_t)tb;
    blob[1] = (uint8_t)(tb >> 8);
    blob[2] = (uint8_t)(tb >> 16);
    blob[3] = (uint8_t)(tb >> 24);
    for (size_t i = 0; i < d.n; i++)
        for (int b = 0; b < 4; b++)
            blob[4 + 4 * i + (size_t)b] = (uint8_t)(d.units[i] >> (8 * b));
    memcpy(blob + 4 + tb, repl, rl);
    return 4 + tb + rl;
}

static const struct kv CHARMAP[] = {
    {"\xef\xbd\x94", "t"},              /* ｔ */
    {"\xef\xbd\x88", "h"},              /* ｈ */
    {"\xef\xbd\x94\xef\xbd\x88", "th"}, /* ｔｈ: longer key wins */
    {"\xef\xbc\x91", "1"},              /* １ */
    {"\xe2\x91\xa0", "1"},              /* ① */
    {"\t", " "},                        /* tab -> space */
    {"\xe2\x80\x8b", ""},               /* zero-width space removed */
    {"\xef\xac\x81", "fi"},             /* ﬁ ligature */
    {"\xe3\x80\x80", " "},              /* ideographic space */
};
#define NCM ((int)(sizeof CHARMAP / sizeof CHARMAP[0]))

/* ------------------------------------------------------------- fixtures */
static const char *dir;
static int file_no;

struct opts {
    bool charsmap, add_prefix, merge_ws, add_bos, bytes;
    const uint8_t *raw_charsmap; /* overrides the built one */
    size_t raw_len;
};

static enum rb_status build(const struct opts *o, struct rb_engine_tokenizer **tok,
                            struct rb_errmsg *err)
{
    const char *strs[NV + 256];
    float scores[NV + 256];
    int32_t types[NV + 256];
    static char bytes[256][8];
    size_t n = 0;
    for (size_t i = 0; i < NV; i++, n++) {
        strs[n] = VOCAB[i].text;
        scores[n] = VOCAB[i].score;
        types[n] = VOCAB[i].type;
    }
    if (o->bytes)
        for (int b = 0; b < 256; b++, n++) {
            snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
            strs[n] = bytes[b];
            scores[n] = 0;
            types[n] = 6;
        }
    struct rb_gguf_writer *w = NULL;
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    REQUIRE(rb_gguf_writer_set_str(w, "general.architecture", "bert", 4) == RB_OK);
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "t5", 2) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, NULL, n) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.scores", RB_GGUF_TYPE_FLOAT32, scores, n) ==
            RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", RB_GGUF_TYPE_INT32, types, n) ==
            RB_OK);
    REQUIRE(rb_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", o->add_prefix) == RB_OK);
    REQUIRE(rb_gguf_writer_set_bool(w, "tokenizer.ggml.remove_extra_whitespaces", o->merge_ws) ==
            RB_OK);
    /* XLM-RoBERTa style: <s> ... </s> as CLS / SEP, here ids 25 and 1 */
    if (o->add_bos) {
        REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 25) == RB_OK);
        REQUIRE(rb_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true) == RB_OK);
    }
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 2) == RB_OK);
    uint8_t blob[20000];
    if (o->raw_charsmap) {
        REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.precompiled_charsmap", RB_GGUF_TYPE_UINT8,
                                       o->raw_charsmap, o->raw_len) == RB_OK);
    } else if (o->charsmap) {
        size_t bl = build_charsmap(CHARMAP, NCM, blob, sizeof blob);
        REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.precompiled_charsmap", RB_GGUF_TYPE_UINT8,
                                       blob, bl) == RB_OK);
    }
    char path[600];
    snprintf(path, sizeof path, "%s/u%d.gguf", dir, file_no++);
    REQUIRE(rb_gguf_writer_write(w, path) == RB_OK);
    rb_gguf_writer_free(w);
    return rb_engine_tokenizer_load(path, tok, err);
}

/* tokens of text (no specials) equal the -1-terminated list */
static void expect(struct rb_engine_tokenizer *tok, const char *text, unsigned flags,
                   const int32_t *want)
{
    int32_t *ids = NULL;
    size_t n = 0;
    enum rb_status st = rb_engine_tokenize(tok, text, strlen(text), flags, &ids, &n);
    size_t nw = 0;
    while (want[nw] >= 0)
        nw++;
    bool same = st == RB_OK && n == nw;
    for (size_t i = 0; same && i < n; i++)
        same = ids[i] == want[i];
    char got[512] = "";
    for (size_t i = 0; i < n && strlen(got) < 480; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", ids[i]);
    CHECK_MSG(same, "'%s' -> [%s] (status %d)", text, got, (int)st);
    free(ids);
}
#define EXPECT(tok, text, flags, ...)                                                              \
    do {                                                                                           \
        static const int32_t want_[] = {__VA_ARGS__, -1};                                          \
        expect(tok, text, flags, want_);                                                           \
    } while (0)

/* ------------------------------------------------------- exhaustive search */
static double unk_score(void)
{
    float mn = FLT_MAX;
    for (size_t i = 0; i < NV; i++)
        if (VOCAB[i].type == 1 && VOCAB[i].score < mn)
            mn = VOCAB[i].score;
    return (double)mn - 10.0;
}

static size_t cp_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* Best total score of any segmentation of s[0..n) into vocabulary pieces and unknown
 * code points (a code point may be unknown only when no piece is exactly it). */
static double brute(const char *s, size_t n)
{
    if (n == 0)
        return 0.0;
    double best = -DBL_MAX;
    const size_t cl = cp_len((unsigned char)s[0]);
    bool single = false;
    for (size_t i = 0; i < NV; i++) {
        if (VOCAB[i].type != 1 && VOCAB[i].type != 4)
            continue;
        size_t l = strlen(VOCAB[i].text);
        if (l > n || memcmp(VOCAB[i].text, s, l) != 0)
            continue;
        if (l == cl)
            single = true;
        double sc = (VOCAB[i].type == 4 ? 0.0 : VOCAB[i].score) + brute(s + l, n - l);
        if (sc > best)
            best = sc;
    }
    if (!single) {
        double sc = unk_score() + brute(s + cl, n - cl);
        if (sc > best)
            best = sc;
    }
    return best;
}

static void random_strings(void)
{
    static const char *alpha[] = {"t",
                                  "h",
                                  "e",
                                  " ",
                                  "1",
                                  "2",
                                  "3",
                                  "a",
                                  "b",
                                  "x",
                                  "\xe4\xb8\xad",
                                  "\xe5\x9b\xbd",
                                  "\xe4\xba\xba",
                                  "\xe2\x82\xac"};
    const int na = (int)(sizeof alpha / sizeof alpha[0]);
    struct rb__ugm_token ut[NV];
    for (size_t i = 0; i < NV; i++) {
        static const uint8_t attr[] = {0, RB_ENGINE_TOKEN_ATTR_NORMAL, RB_ENGINE_TOKEN_ATTR_UNKNOWN,
                                       RB_ENGINE_TOKEN_ATTR_CONTROL,
                                       RB_ENGINE_TOKEN_ATTR_USER_DEFINED};
        ut[i] = (struct rb__ugm_token){VOCAB[i].text, (uint32_t)strlen(VOCAB[i].text),
                                       VOCAB[i].score, attr[VOCAB[i].type]};
    }
    struct rb__ugm_options uo = {.unk = 2, .add_dummy_prefix = true};
    struct rb__ugm *u = NULL;
    struct rb_errmsg err;
    REQUIRE(rb__ugm_create(ut, NV, &uo, &u, &err) == RB_OK);
    unsigned seed = 12345;
    int mismatches = 0, checked = 0;
    for (int iter = 0; iter < 1500; iter++) {
        char s[128] = "";
        int len = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 9;
        for (int k = 0; k < len; k++)
            strcat(s, alpha[((seed = seed * 1103515245u + 12345u) >> 16) % (unsigned)na]);
        char *norm = NULL;
        size_t nl = 0;
        REQUIRE(rb__ugm_normalize(u, s, strlen(s), &norm, &nl) == RB_OK);
        double got = 0;
        REQUIRE(rb__ugm_best_score(u, s, strlen(s), &got) == RB_OK);
        double want = brute(norm, nl);
        if (!(fabs(got - want) < 1e-9)) {
            if (mismatches++ < 5)
                fprintf(stderr, "'%s': viterbi %.6f, exhaustive %.6f\n", s, got, want);
        }
        /* the returned pieces spell the normalised text when nothing is unknown */
        struct rb__ivec ids = {0};
        REQUIRE(rb__ugm_encode(u, s, strlen(s), &ids) == RB_OK);
        char cat[512] = "";
        double sum = 0;
        bool unknown = false;
        for (size_t i = 0; i < ids.n; i++) {
            if (ids.v[i] == 2) {
                unknown = true;
                break;
            }
            strcat(cat, VOCAB[ids.v[i]].text);
            sum += VOCAB[ids.v[i]].score;
        }
        if (!unknown) {
            CHECK_MSG(strcmp(cat, norm) == 0, "'%s': pieces spell '%s'", s, cat);
            CHECK_NEAR(sum, want, 1e-9);
        }
        free(ids.v);
        free(norm);
        checked++;
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(checked == 1500);
    rb__ugm_free(u);
}

int main(void)
{
    dir = check_tmpdir("engine-tokenizer-ugm");
    struct rb_errmsg err;
    struct rb_engine_tokenizer *tok = NULL;

    /* ---- defaults as SentencePiece writes them: dummy prefix, extra spaces kept */
    struct opts o = {.charsmap = true, .add_prefix = true};
    REQUIRE(build(&o, &tok, &err) == RB_OK);
    CHECK(rb_engine_tokenizer_type(tok) == RB_ENGINE_VOCAB_UGM);
    CHECK(!rb_engine_tokenizer_add_bos(tok) && rb_engine_tokenizer_add_eos(tok));
    CHECK_EQ_INT(rb_engine_token_eos(tok), 1);
    CHECK_EQ_INT(rb_engine_token_unk(tok), 2);
    /* ▁the (-3) beats ▁+the (-6), ▁t+he (-8.5) */
    EXPECT(tok, "the", 0, 4);
    EXPECT(tok, "the the", 0, 4, 4);
    /* ▁ (-2) + 中国 (-7) + 人 (-6.5) beats ▁ + 中 + 国 + 人 (-20.5) */
    EXPECT(tok, "\xe4\xb8\xad\xe5\x9b\xbd\xe4\xba\xba", 0, 3, 13, 14);
    /* digits: ▁1 2 3 (-9.5) beats ▁ 12 3 (-10.5), ▁ 123 (-11.75), ▁ 1 2 3 (-11) */
    EXPECT(tok, "123", 0, 20, 16, 18);
    /* "12" alone after a space: ▁ 12 (-7.5) loses to ▁1 2 (-6.5) */
    EXPECT(tok, "12", 0, 20, 16);
    /* a+b (-10) loses to ab (-9.25); ▁a b (-9.75) wins over ▁ ab (-11.25) */
    EXPECT(tok, "ab", 0, 26, 23);
    /* unknown code points: one <unk> per run (x, y, €) */
    EXPECT(tok, "x", 0, 3, 2);
    EXPECT(tok, "xy\xe2\x82\xac", 0, 3, 2);
    EXPECT(tok, "x\xe4\xb8\xady", 0, 3, 2, 11, 2);
    /* invalid UTF-8 becomes U+FFFD (unknown) */
    EXPECT(tok, "the\xff", 0, 4, 2);
    /* EOS appended with ADD_SPECIAL, no BOS by default */
    EXPECT(tok, "the", RB_ENGINE_TOKENIZE_ADD_SPECIAL, 4, 1);
    /* user-defined pieces are cut out first; each fragment gets its dummy prefix */
    EXPECT(tok, "the[U]the", 0, 4, 21, 4);
    /* control tokens only with PARSE_SPECIAL */
    EXPECT(tok, "<mask>the", RB_ENGINE_TOKENIZE_PARSE_SPECIAL, 25, 4);
    /* charsmap: ｔｈe -> "the" (the two-character key is the longest match) */
    EXPECT(tok,
           "\xef\xbd\x94\xef\xbd\x88"
           "e",
           0, 4);
    EXPECT(tok, "\xef\xbd\x94he", 0, 4);
    /* ① and １ -> 1; tab -> space; zero-width space dropped */
    EXPECT(tok, "\xe2\x91\xa0\xef\xbc\x91", 0, 20, 15);
    EXPECT(tok, "the\tthe", 0, 4, 4);
    EXPECT(tok,
           "th\xe2\x80\x8b"
           "e",
           0, 4);
    {
        char *back = NULL;
        size_t bl = 0;
        const int32_t ids[] = {4, 4, 1};
        CHECK(rb_engine_detokenize(tok, ids, 3, RB_ENGINE_DETOKENIZE_REMOVE_SPECIAL, &back, &bl) ==
              RB_OK);
        CHECK_STR(back, "the the");
        free(back);
    }
    /* extra spaces kept: "▁▁▁the▁▁" = ▁ ▁ ▁the ▁ ▁ */
    EXPECT(tok, "  the  ", 0, 3, 3, 4, 3, 3);
    rb_engine_tokenizer_free(tok);

    /* ---- remove_extra_whitespaces: leading/trailing dropped, runs merged */
    o = (struct opts){.charsmap = true, .add_prefix = true, .merge_ws = true};
    REQUIRE(build(&o, &tok, &err) == RB_OK);
    EXPECT(tok, "  the \t\xe3\x80\x80 the  ", 0, 4, 4);
    rb_engine_tokenizer_free(tok);

    /* ---- no dummy prefix */
    o = (struct opts){.charsmap = false, .add_prefix = false};
    REQUIRE(build(&o, &tok, &err) == RB_OK);
    EXPECT(tok, "the", 0, 5);
    EXPECT(tok, "the the", 0, 5, 4);
    /* without the charsmap, fullwidth letters are unknown */
    EXPECT(tok, "\xef\xbd\x94he", 0, 2, 10);
    rb_engine_tokenizer_free(tok);

    /* ---- BOS (XLM-RoBERTa <s>) + EOS */
    o = (struct opts){.charsmap = true, .add_prefix = true, .add_bos = true};
    REQUIRE(build(&o, &tok, &err) == RB_OK);
    EXPECT(tok, "the", RB_ENGINE_TOKENIZE_ADD_SPECIAL, 25, 4, 1);
    rb_engine_tokenizer_free(tok);

    /* ---- byte fallback: unknown code points become their UTF-8 bytes */
    o = (struct opts){.charsmap = true, .add_prefix = true, .bytes = true};
    REQUIRE(build(&o, &tok, &err) == RB_OK);
    EXPECT(tok, "x\xe2\x82\xac", 0, 3, (int32_t)NV + 'x', (int32_t)NV + 0xE2, (int32_t)NV + 0x82,
           (int32_t)NV + 0xAC);
    {
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(rb_engine_tokenize(tok, "x\xe2\x82\xac the", 8, 0, &ids, &n) == RB_OK);
        char *back = NULL;
        size_t bl = 0;
        CHECK(rb_engine_detokenize(tok, ids, n, 0, &back, &bl) == RB_OK);
        CHECK_STR(back, "x\xe2\x82\xac the");
        free(back);
        free(ids);
    }
    rb_engine_tokenizer_free(tok);

    /* ---- hostile charsmaps are refused with a message, never read out of bounds */
    {
        const uint8_t short_blob[3] = {1, 2, 3};
        o = (struct opts){.add_prefix = true, .raw_charsmap = short_blob, .raw_len = 3};
        CHECK(build(&o, &tok, &err) == RB_ERR_CORRUPT && !tok);
        CHECK(strstr(err.text, "charsmap") != NULL);
        const uint8_t big[12] = {0xF0, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0, 'a', 0, 0, 0};
        o.raw_charsmap = big;
        o.raw_len = sizeof big;
        CHECK(build(&o, &tok, &err) == RB_ERR_CORRUPT && !tok);
        /* a value unit pointing past the strings */
        uint8_t bad[4 + 8 + 2] = {8, 0, 0, 0};
        const uint32_t u0 = (1u << 10), u1 = (1u << 31) | 500u;
        for (int b = 0; b < 4; b++) {
            bad[4 + b] = (uint8_t)(u0 >> (8 * b));
            bad[8 + b] = (uint8_t)(u1 >> (8 * b));
        }
        bad[12] = 'x';
        o.raw_charsmap = bad;
        o.raw_len = sizeof bad;
        CHECK(build(&o, &tok, &err) == RB_ERR_CORRUPT && !tok);
        /* random trie units: built or refused, and tokenizing never reads out of bounds */
        struct rb__ugm_token ut[NV];
        for (size_t i = 0; i < NV; i++)
            ut[i] = (struct rb__ugm_token){VOCAB[i].text, (uint32_t)strlen(VOCAB[i].text),
                                           VOCAB[i].score, RB_ENGINE_TOKEN_ATTR_NORMAL};
        unsigned seed = 7;
        int built = 0;
        for (int it = 0; it < 2000; it++) {
            uint8_t rnd[4 + 64 + 16];
            rnd[0] = 64;
            rnd[1] = rnd[2] = rnd[3] = 0;
            for (size_t i = 4; i < sizeof rnd; i++)
                rnd[i] = (uint8_t)((seed = seed * 1103515245u + 12345u) >> 16);
            for (size_t i = 4; i < 68; i += 4)
                if (it % 2)
                    rnd[i + 3] &= 0x7F; /* half without value units (validated above) */
            struct rb__ugm_options uo = {
                .unk = 2, .add_dummy_prefix = true, .charsmap = rnd, .charsmap_len = sizeof rnd};
            struct rb__ugm *u = NULL;
            if (rb__ugm_create(ut, NV, &uo, &u, &err) == RB_OK) {
                built++;
                struct rb__ivec ids = {0};
                const char txt[] = "the \x01\x80\xc3\xa9 \xe4\xb8\xad";
                CHECK(rb__ugm_encode(u, txt, sizeof txt - 1, &ids) == RB_OK && ids.n > 0);
                free(ids.v);
                rb__ugm_free(u);
            }
        }
        CHECK(built > 0);
    }

    /* ---- duplicate pieces (the GGUF loader refuses them; the matcher must cope) */
    {
        const struct rb__ugm_token dup[] = {{"<unk>", 5, 0, RB_ENGINE_TOKEN_ATTR_UNKNOWN},
                                            {"a", 1, -1, RB_ENGINE_TOKEN_ATTR_NORMAL},
                                            {"a", 1, -1, RB_ENGINE_TOKEN_ATTR_NORMAL},
                                            {"ab", 2, -1, RB_ENGINE_TOKEN_ATTR_NORMAL},
                                            {"ab", 2, -1, RB_ENGINE_TOKEN_ATTR_NORMAL},
                                            {"b", 1, -1, RB_ENGINE_TOKEN_ATTR_NORMAL}};
        struct rb__ugm_options uo = {.unk = 0};
        struct rb__ugm *u = NULL;
        CHECK(rb__ugm_create(dup, 6, &uo, &u, &err) == RB_OK);
        struct rb__ivec ids = {0};
        CHECK(u && rb__ugm_encode(u, "abab", 4, &ids) == RB_OK);
        CHECK(ids.n == 2 && ids.v[0] == 3 && ids.v[1] == 3); /* the lowest id of "ab" */
        free(ids.v);
        rb__ugm_free(u);
    }

    /* ---- Viterbi == exhaustive search */
    random_strings();
    return check_finish();
}
