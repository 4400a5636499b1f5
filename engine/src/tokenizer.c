/* Tokenizers built from GGUF metadata: SentencePiece BPE ("llama"), byte-level
 * BPE ("gpt2") with per-family pre-tokenizer regexes (PCRE2, UTF + UCP), and
 * WordPiece ("bert", ICU for NFD / categories / lower-casing).
 *
 * The behaviour follows the reference implementation the test vectors came from
 * (llama.cpp): the same special-token partitioning, BOS/EOS rules, byte
 * fallback and detokenisation clean-up, so token ids match exactly.
 *
 * Speed: vocabulary and merge lookups are hash lookups; SPM and BPE merging use
 * a binary heap of candidate pairs (O(n log n) per word); nothing scans the
 * vocabulary per input.
 *
 * Thread-safety: the tokenizer is immutable after load; every tokenize call
 * uses its own scratch memory and its own PCRE2 match data.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>

#include "strmap.h"
#include "tokenizer-ugm.h"
#include "tokenizer.h"

/* Input bound: keeps every symbol index (SPM triples spaces into U+2581) in int32. */
#define TOK_MAX_INPUT ((size_t)256 << 20)

/* ============================================================== structures */

struct tok_entry {
    uint32_t off; /* into text arena (NUL-terminated) */
    uint32_t len;
    uint32_t piece_off; /* into piece arena: the bytes this token produces */
    uint32_t piece_len;
    float score;
    uint8_t attr;
};

enum pre_kind {
    PRE_DEFAULT,
    PRE_LLAMA3,
    PRE_DEEPSEEK_LLM,
    PRE_DEEPSEEK_CODER,
    PRE_DEEPSEEK3,
    PRE_FALCON,
    PRE_STARCODER,
    PRE_GPT2,
    PRE_QWEN2,
    PRE_PORO,
    PRE_CHATGLM4,
    PRE_TEKKEN,
    PRE_GPT4O,
    PRE_SEED_CODER,
    PRE_BAILINGMOE,
};

struct rb_engine_tokenizer {
    enum rb_engine_vocab_type type;
    char *model_name;
    char *pre_name;
    enum pre_kind pre;
    uint32_t n_vocab;
    struct tok_entry *tokens;
    char *text_arena;
    char *piece_arena;
    struct rb_strmap vocab_map; /* text -> id (keys in text_arena) */
    char *merge_arena;
    struct rb_strmap merge_map; /* "left right" -> rank */
    uint32_t n_merges;
    int32_t bos, eos, eot, eom, unk, sep, pad, mask, nl;
    int32_t *eog;
    size_t n_eog;
    bool add_bos, add_eos, add_sep, add_space_prefix, clean_spaces, ignore_merges;
    bool lowercase, strip_accents;
    bool remove_extra_ws;   /* unigram: tokenizer.ggml.remove_extra_whitespaces */
    struct rb__ugm *ugm;    /* unigram ("t5") segmentation */
    int32_t *specials; /* control / user-defined / unknown tokens, longest text first */
    size_t n_specials;
    pcre2_code **regex;
    size_t n_regex;
    uint32_t max_token_len;
    char *chat_template;
    /* GPT-2 byte <-> unicode mapping */
    char byte_enc[256][3];
    uint8_t byte_enc_len[256];
    int16_t byte_dec[324]; /* code point -> byte, -1 where unmapped */
};

/* ================================================================ helpers */

/* token id arrays: struct rb__ivec (tokenizer-ugm.h) */
#define ivec rb__ivec
#define ivec_push rb__ivec_push

static const char *tok_text(const struct rb_engine_tokenizer *t, int32_t id)
{
    return t->text_arena + t->tokens[id].off;
}

static int32_t lookup(const struct rb_engine_tokenizer *t, const char *s, size_t len)
{
    uint32_t v;
    if (rb__strmap_get(&t->vocab_map, s, len, &v))
        return (int32_t)v;
    return RB_ENGINE_TOKEN_NONE;
}

/* UTF-8 sequence length from the lead byte (1 for continuation/invalid bytes). */
static size_t utf8_len(unsigned char c)
{
    static const uint8_t lookup_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup_len[c >> 4];
}

/* ========================================================= pre-tokenizers */

/* Pre-tokenizer regexes per family, applied in order, each splitting the pieces
 * the previous one left (unmatched stretches stay pieces of their own). These
 * are the patterns of the models' tokenizer.json files. */
static const char *const RX_LLAMA3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const RX_QWEN2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const RX_GPT2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

static const char *const *pre_regexes(enum pre_kind k, size_t *n)
{
    static const char *const dflt[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", RX_GPT2, "\\p{N}+",
                                       "[0-9][0-9][0-9]"};
    static const char *const llama3[] = {RX_LLAMA3};
    static const char *const qwen2[] = {RX_QWEN2};
    static const char *const gpt2[] = {RX_GPT2};
    static const char *const starcoder[] = {"\\p{N}", RX_GPT2};
    static const char *const falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RX_GPT2, "[0-9][0-9][0-9]"};
    static const char *const deepseek_coder[] = {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
                                                 "[一-龥ࠀ-一가-퟿]+", "\\p{N}"};
    static const char *const deepseek_llm[] = {
        "[\r\n]",
        ("\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-"
         "Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-"
         "ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-"
         "ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-"
         "ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-"
         "𑣟𞤀-𞥃]+"),
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
        "\\s+$",
        "[一-龥ࠀ-一가-퟿]+",
        "\\p{N}+",
    };
    static const char *const deepseek3[] = {
        "\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
        ("[!\"#$%&'()*+,\\-./"
         ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
         " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+")};
    static const char *const poro[] = {" ?[^(\\s|.,!?…。，、।۔،)]+"};
    static const char *const tekken[] = {
        "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]"
        "?"
        "((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
        "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
    static const char *const gpt4o[] = {
        "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR]"
        "[eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=["
        "\\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}|"
        " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
    static const char *const seed_coder[] = {
        "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
        "\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
    static const char *const bailing[] = {
        "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s"
        "\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"};
#define RET(arr)                                                                                   \
    do {                                                                                           \
        *n = RB_ARRAY_LEN(arr);                                                                    \
        return arr;                                                                                \
    } while (0)
    switch (k) {
    case PRE_LLAMA3:
    case PRE_CHATGLM4:
        RET(llama3);
    case PRE_QWEN2:
        RET(qwen2);
    case PRE_GPT2:
        RET(gpt2);
    case PRE_STARCODER:
        RET(starcoder);
    case PRE_FALCON:
        RET(falcon);
    case PRE_DEEPSEEK_CODER:
        RET(deepseek_coder);
    case PRE_DEEPSEEK_LLM:
        RET(deepseek_llm);
    case PRE_DEEPSEEK3:
        RET(deepseek3);
    case PRE_PORO:
        RET(poro);
    case PRE_TEKKEN:
        RET(tekken);
    case PRE_GPT4O:
        RET(gpt4o);
    case PRE_SEED_CODER:
        RET(seed_coder);
    case PRE_BAILINGMOE:
        RET(bailing);
    case PRE_DEFAULT:
    default:
        RET(dflt);
    }
#undef RET
}

/* tokenizer.ggml.pre -> family and its flags (as the reference sets them). */
struct pre_def {
    const char *name;
    enum pre_kind kind;
    bool clean_spaces;
    bool ignore_merges;
    bool add_bos; /* default add_bos before metadata */
};
static const struct pre_def PRE_DEFS[] = {
    {"default", PRE_DEFAULT, true, false, false},
    {"llama3", PRE_LLAMA3, true, true, true},
    {"llama-v3", PRE_LLAMA3, true, true, true},
    {"llama-bpe", PRE_LLAMA3, true, true, true},
    {"falcon3", PRE_LLAMA3, true, true, true},
    {"pixtral", PRE_LLAMA3, true, true, true},
    {"deepseek-llm", PRE_DEEPSEEK_LLM, false, false, false},
    {"deepseek-coder", PRE_DEEPSEEK_CODER, false, false, false},
    {"deepseek-v3", PRE_DEEPSEEK3, false, false, false},
    {"falcon", PRE_FALCON, true, false, false},
    {"mpt", PRE_GPT2, true, false, false},
    {"starcoder", PRE_STARCODER, true, false, false},
    {"gpt-2", PRE_GPT2, true, false, false},
    {"phi-2", PRE_GPT2, true, false, false},
    {"jina-es", PRE_GPT2, true, false, false},
    {"jina-de", PRE_GPT2, true, false, false},
    {"jina-v2-es", PRE_GPT2, true, false, false},
    {"jina-v2-de", PRE_GPT2, true, false, false},
    {"olmo", PRE_GPT2, true, false, false},
    {"refact", PRE_STARCODER, true, false, false},
    {"command-r", PRE_STARCODER, false, false, false},
    {"qwen2", PRE_QWEN2, false, false, false},
    {"deepseek-r1-qwen", PRE_QWEN2, false, false, false},
    {"megrez", PRE_QWEN2, true, false, false},
    {"stablelm2", PRE_QWEN2, true, false, false},
    {"dbrx", PRE_LLAMA3, true, false, false},
    {"smaug-bpe", PRE_LLAMA3, true, false, false},
    {"poro-chat", PRE_PORO, false, false, false},
    {"bloom", PRE_PORO, true, false, false},
    {"gpt3-finnish", PRE_PORO, true, false, false},
    {"chatglm-bpe", PRE_CHATGLM4, true, false, false},
    {"glm4", PRE_CHATGLM4, true, false, false},
    {"tekken", PRE_TEKKEN, false, true, true},
    {"smollm", PRE_STARCODER, false, false, false},
    {"codeshell", PRE_STARCODER, true, false, false},
    {"exaone", PRE_STARCODER, true, false, false},
    {"minerva-7b", PRE_STARCODER, true, false, false},
    {"gpt-4o", PRE_GPT4O, false, false, false},
    {"llama4", PRE_GPT4O, false, false, false},
    {"seed-coder", PRE_SEED_CODER, false, false, false},
    {"bailingmoe", PRE_BAILINGMOE, false, false, false},
};

/* ====================================================== special partition */

struct frag {
    int32_t token; /* RB_ENGINE_TOKEN_NONE: raw text [off, off+len) */
    size_t off, len;
};

struct fvec {
    struct frag *v;
    size_t n, cap;
};

static bool fvec_push(struct fvec *a, int32_t token, size_t off, size_t len)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct frag *p = realloc(a->v, cap * sizeof *p);
        if (!p)
            return false;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = (struct frag){token, off, len};
    return true;
}

/* Splits the text at every occurrence of each special token, longest tokens
 * first; control/unknown tokens only when parse_special. */
static enum rb_status partition(const struct rb_engine_tokenizer *t, const char *text, size_t len,
                                bool parse_special, struct fvec *out)
{
    struct fvec cur = {0}, next = {0};
    if (len && !fvec_push(&cur, RB_ENGINE_TOKEN_NONE, 0, len))
        return RB_ERR_NOMEM;
    for (size_t s = 0; s < t->n_specials && cur.n; s++) {
        int32_t id = t->specials[s];
        const struct tok_entry *e = &t->tokens[id];
        if (!parse_special &&
            (e->attr & (RB_ENGINE_TOKEN_ATTR_CONTROL | RB_ENGINE_TOKEN_ATTR_UNKNOWN)))
            continue;
        const char *stext = tok_text(t, id);
        size_t slen = e->len;
        next.n = 0;
        bool any = false;
        for (size_t f = 0; f < cur.n; f++) {
            struct frag fr = cur.v[f];
            if (fr.token != RB_ENGINE_TOKEN_NONE) {
                if (!fvec_push(&next, fr.token, 0, 0))
                    goto nomem;
                continue;
            }
            size_t off = fr.off, flen = fr.len;
            for (;;) {
                const char *m = flen >= slen ? memmem(text + off, flen, stext, slen) : NULL;
                if (!m) {
                    if (flen && !fvec_push(&next, RB_ENGINE_TOKEN_NONE, off, flen))
                        goto nomem;
                    break;
                }
                any = true;
                size_t mpos = (size_t)(m - text);
                size_t left = mpos - off;
                if (e->attr & RB_ENGINE_TOKEN_ATTR_LSTRIP)
                    while (left > 0 && isspace((unsigned char)text[off + left - 1]))
                        left--;
                if (left && !fvec_push(&next, RB_ENGINE_TOKEN_NONE, off, left))
                    goto nomem;
                if (!fvec_push(&next, id, 0, 0))
                    goto nomem;
                size_t roff = mpos + slen, rlen = off + flen - roff;
                if (e->attr & RB_ENGINE_TOKEN_ATTR_RSTRIP)
                    while (rlen > 0 && isspace((unsigned char)text[roff])) {
                        roff++;
                        rlen--;
                    }
                off = roff;
                flen = rlen;
                if (!flen)
                    break;
            }
        }
        if (any) {
            struct fvec tmp = cur;
            cur = next;
            next = tmp;
        }
    }
    free(next.v);
    *out = cur;
    return RB_OK;
nomem:
    free(cur.v);
    free(next.v);
    return RB_ERR_NOMEM;
}

/* ===================================================================== SPM */

struct sym {
    int32_t prev, next;
    uint32_t off; /* into the word buffer */
    uint32_t n;   /* bytes; 0 once merged away */
};

struct symvec {
    struct sym *v;
    size_t n, cap;
};

static bool sym_push(struct symvec *a, struct sym s)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        struct sym *p = realloc(a->v, cap * sizeof *p);
        if (!p)
            return false;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = s;
    return true;
}

/* A candidate merge: SPM orders by score (high first), BPE by rank (low
 * first); ties go to the leftmost pair. `key` is -score or rank. */
struct pair {
    float key;
    int32_t rank;
    int32_t left, right;
    uint32_t size;
};

struct heap {
    struct pair *v;
    size_t n, cap;
};

static bool pair_before(const struct pair *a, const struct pair *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    if (a->rank != b->rank)
        return a->rank < b->rank;
    return a->left < b->left;
}

static bool heap_push(struct heap *h, struct pair p)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct pair *q = realloc(h->v, cap * sizeof *q);
        if (!q)
            return false;
        h->v = q;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(&p, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = p;
    return true;
}

static struct pair heap_pop(struct heap *h)
{
    struct pair top = h->v[0];
    struct pair last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct pair *best = &last;
        if (l < h->n && pair_before(&h->v[l], best)) {
            m = l;
            best = &h->v[l];
        }
        if (r < h->n && pair_before(&h->v[r], best))
            m = r;
        if (m == i)
            break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

struct scratch {
    struct symvec syms;
    struct heap heap;
    struct rb_buf word;
    struct rb_buf key;
};

static void scratch_free(struct scratch *s)
{
    free(s->syms.v);
    free(s->heap.v);
    rb_buf_free(&s->word);
    rb_buf_free(&s->key);
}

static int32_t spm_byte_token(const struct rb_engine_tokenizer *t, unsigned char c)
{
    char buf[8];
    snprintf(buf, sizeof buf, "<0x%02X>", c);
    int32_t id = lookup(t, buf, 6);
    if (id == RB_ENGINE_TOKEN_NONE)
        id = lookup(t, (const char *)&c, 1);
    return id;
}

static bool spm_try_pair(const struct rb_engine_tokenizer *t, struct scratch *s, int32_t left,
                         int32_t right)
{
    if (left < 0 || right < 0)
        return true;
    const struct sym *a = &s->syms.v[left], *b = &s->syms.v[right];
    int32_t id = lookup(t, s->word.data + a->off, a->n + b->n);
    if (id == RB_ENGINE_TOKEN_NONE)
        return true;
    struct pair p = {
        .key = -t->tokens[id].score, .rank = 0, .left = left, .right = right, .size = a->n + b->n};
    return heap_push(&s->heap, p);
}

/* Tokenizes one raw fragment (already with the optional leading space). */
static enum rb_status spm_fragment(const struct rb_engine_tokenizer *t, struct scratch *s,
                                   const char *text, size_t len, bool prefix_space,
                                   struct ivec *out)
{
    /* escape spaces as U+2581 */
    rb_buf_reset(&s->word);
    if (prefix_space && rb_buf_append(&s->word, "\xe2\x96\x81", 3) != RB_OK)
        return RB_ERR_NOMEM;
    for (size_t i = 0; i < len; i++) {
        enum rb_status st = text[i] == ' ' ? rb_buf_append(&s->word, "\xe2\x96\x81", 3)
                                           : rb_buf_append(&s->word, &text[i], 1);
        if (st != RB_OK)
            return st;
    }
    size_t n = s->word.len;
    if (n == 0)
        return RB_OK;
    if (n > UINT32_MAX)
        return RB_ERR_TOO_LARGE;
    s->syms.n = 0;
    s->heap.n = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = RB_MIN(utf8_len((unsigned char)s->word.data[off]), n - off);
        struct sym sy = {.prev = (int32_t)s->syms.n - 1, .off = (uint32_t)off, .n = (uint32_t)cl};
        off += cl;
        sy.next = off == n ? -1 : (int32_t)s->syms.n + 1;
        if (!sym_push(&s->syms, sy))
            return RB_ERR_NOMEM;
    }
    for (size_t i = 1; i < s->syms.n; i++)
        if (!spm_try_pair(t, s, (int32_t)i - 1, (int32_t)i))
            return RB_ERR_NOMEM;
    while (s->heap.n) {
        struct pair p = heap_pop(&s->heap);
        struct sym *a = &s->syms.v[p.left], *b = &s->syms.v[p.right];
        if (a->n == 0 || b->n == 0 || a->n + b->n != p.size)
            continue;
        a->n += b->n;
        b->n = 0;
        a->next = b->next;
        if (b->next >= 0)
            s->syms.v[b->next].prev = p.left;
        if (!spm_try_pair(t, s, a->prev, p.left) || !spm_try_pair(t, s, p.left, a->next))
            return RB_ERR_NOMEM;
    }
    for (int32_t i = 0; i != -1; i = s->syms.v[i].next) {
        const struct sym *sy = &s->syms.v[i];
        int32_t id = lookup(t, s->word.data + sy->off, sy->n);
        if (id != RB_ENGINE_TOKEN_NONE) {
            if (!ivec_push(out, id))
                return RB_ERR_NOMEM;
            continue;
        }
        for (uint32_t j = 0; j < sy->n; j++) {
            int32_t b = spm_byte_token(t, (unsigned char)s->word.data[sy->off + j]);
            if (b == RB_ENGINE_TOKEN_NONE)
                b = t->unk;
            if (b != RB_ENGINE_TOKEN_NONE && !ivec_push(out, b))
                return RB_ERR_NOMEM;
        }
    }
    return RB_OK;
}

/* ===================================================================== BPE */

struct span {
    size_t off, len;
};

struct spanvec {
    struct span *v;
    size_t n, cap;
};

static bool span_push(struct spanvec *a, size_t off, size_t len)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        struct span *p = realloc(a->v, cap * sizeof *p);
        if (!p)
            return false;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = (struct span){off, len};
    return true;
}

/* Applies the pre-tokenizer regexes to text[0..len): result spans in *out. */
static enum rb_status bpe_split(const struct rb_engine_tokenizer *t, const char *text, size_t len,
                                struct spanvec *out)
{
    struct spanvec cur = {0}, next = {0};
    enum rb_status st = RB_OK;
    if (!span_push(&cur, 0, len))
        return RB_ERR_NOMEM;
    for (size_t r = 0; r < t->n_regex; r++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->regex[r], NULL);
        if (!md) {
            st = RB_ERR_NOMEM;
            break;
        }
        next.n = 0;
        for (size_t i = 0; i < cur.n && st == RB_OK; i++) {
            const char *subj = text + cur.v[i].off;
            size_t slen = cur.v[i].len, pos = 0, prev = 0;
            while (pos <= slen) {
                /* the fragment is valid UTF-8 (checked or sanitised by the caller): skip
                 * PCRE2's per-call whole-subject check, which is O(n) each time */
                int rc = pcre2_match(t->regex[r], (PCRE2_SPTR)subj, slen, pos, PCRE2_NO_UTF_CHECK,
                                     md, NULL);
                if (rc == PCRE2_ERROR_NOMATCH)
                    break;
                if (rc < 0) {
                    st = RB_ERR_INTERNAL;
                    break;
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                size_t ms = ov[0], me = ov[1];
                if (me == ms) { /* empty match: step one character */
                    if (ms >= slen)
                        break;
                    pos = ms + utf8_len((unsigned char)subj[ms]);
                    continue;
                }
                if (ms > prev && !span_push(&next, cur.v[i].off + prev, ms - prev))
                    st = RB_ERR_NOMEM;
                if (!span_push(&next, cur.v[i].off + ms, me - ms))
                    st = RB_ERR_NOMEM;
                prev = pos = me;
            }
            if (st == RB_OK && prev < slen && !span_push(&next, cur.v[i].off + prev, slen - prev))
                st = RB_ERR_NOMEM;
        }
        pcre2_match_data_free(md);
        struct spanvec tmp = cur;
        cur = next;
        next = tmp;
        if (st != RB_OK)
            break;
    }
    free(next.v);
    if (st != RB_OK) {
        free(cur.v);
        return st;
    }
    *out = cur;
    return RB_OK;
}

static bool bpe_try_pair(const struct rb_engine_tokenizer *t, struct scratch *s, int32_t left,
                         int32_t right)
{
    if (left < 0 || right < 0)
        return true;
    const struct sym *a = &s->syms.v[left], *b = &s->syms.v[right];
    rb_buf_reset(&s->key);
    if (rb_buf_append(&s->key, s->word.data + a->off, a->n) != RB_OK ||
        rb_buf_append(&s->key, " ", 1) != RB_OK ||
        rb_buf_append(&s->key, s->word.data + b->off, b->n) != RB_OK)
        return false;
    uint32_t rank;
    if (!rb__strmap_get(&t->merge_map, s->key.data, s->key.len, &rank))
        return true;
    struct pair p = {
        .key = 0, .rank = (int32_t)rank, .left = left, .right = right, .size = a->n + b->n};
    return heap_push(&s->heap, p);
}

/* One pre-tokenized word (raw bytes): byte-encode, merge, emit. */
static enum rb_status bpe_word(const struct rb_engine_tokenizer *t, struct scratch *s,
                               const char *w, size_t wlen, struct ivec *out)
{
    rb_buf_reset(&s->word);
    for (size_t i = 0; i < wlen; i++) {
        unsigned char c = (unsigned char)w[i];
        if (rb_buf_append(&s->word, t->byte_enc[c], t->byte_enc_len[c]) != RB_OK)
            return RB_ERR_NOMEM;
    }
    size_t n = s->word.len;
    if (n == 0)
        return RB_OK;
    if (n > UINT32_MAX)
        return RB_ERR_TOO_LARGE;
    if (t->ignore_merges) {
        int32_t id = lookup(t, s->word.data, n);
        if (id != RB_ENGINE_TOKEN_NONE)
            return ivec_push(out, id) ? RB_OK : RB_ERR_NOMEM;
    }
    s->syms.n = 0;
    s->heap.n = 0;
    for (size_t off = 0; off < n;) {
        size_t cl = RB_MIN(utf8_len((unsigned char)s->word.data[off]), n - off);
        struct sym sy = {.prev = (int32_t)s->syms.n - 1, .off = (uint32_t)off, .n = (uint32_t)cl};
        off += cl;
        sy.next = off == n ? -1 : (int32_t)s->syms.n + 1;
        if (!sym_push(&s->syms, sy))
            return RB_ERR_NOMEM;
    }
    for (size_t i = 1; i < s->syms.n; i++)
        if (!bpe_try_pair(t, s, (int32_t)i - 1, (int32_t)i))
            return RB_ERR_NOMEM;
    while (s->heap.n) {
        struct pair p = heap_pop(&s->heap);
        struct sym *a = &s->syms.v[p.left], *b = &s->syms.v[p.right];
        if (a->n == 0 || b->n == 0 || a->n + b->n != p.size)
            continue;
        a->n += b->n;
        b->n = 0;
        a->next = b->next;
        if (b->next >= 0)
            s->syms.v[b->next].prev = p.left;
        if (!bpe_try_pair(t, s, a->prev, p.left) || !bpe_try_pair(t, s, p.left, a->next))
            return RB_ERR_NOMEM;
    }
    for (int32_t i = 0; i != -1; i = s->syms.v[i].next) {
        const struct sym *sy = &s->syms.v[i];
        int32_t id = lookup(t, s->word.data + sy->off, sy->n);
        if (id != RB_ENGINE_TOKEN_NONE) {
            if (!ivec_push(out, id))
                return RB_ERR_NOMEM;
            continue;
        }
        /* not in the vocabulary: single bytes of the encoded text, where they exist */
        for (uint32_t j = 0; j < sy->n; j++) {
            int32_t b = lookup(t, s->word.data + sy->off + j, 1);
            if (b != RB_ENGINE_TOKEN_NONE && !ivec_push(out, b))
                return RB_ERR_NOMEM;
        }
    }
    return RB_OK;
}

static enum rb_status bpe_fragment(const struct rb_engine_tokenizer *t, struct scratch *s,
                                   const char *text, size_t len, struct ivec *out)
{
    /* malformed UTF-8 becomes U+FFFD, as the reference decodes it */
    char *clean = NULL;
    if (!rb_utf8_valid(text, len)) {
        size_t clen;
        clean = rb_utf8_sanitize(text, len, &clen);
        if (!clean)
            return RB_ERR_NOMEM;
        text = clean;
        len = clen;
    }
    struct spanvec words = {0};
    enum rb_status st = bpe_split(t, text, len, &words);
    for (size_t i = 0; st == RB_OK && i < words.n; i++)
        st = bpe_word(t, s, text + words.v[i].off, words.v[i].len, out);
    free(words.v);
    free(clean);
    return st;
}

/* ===================================================================== WPM */

static bool is_ws(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static bool is_chinese(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Greedy longest-match WordPiece over "▁" + word. */
static enum rb_status wpm_word(const struct rb_engine_tokenizer *t, const char *w, size_t wlen,
                               struct rb_buf *tmp, struct ivec *out)
{
    rb_buf_reset(tmp);
    if (rb_buf_append(tmp, "\xe2\x96\x81", 3) != RB_OK || rb_buf_append(tmp, w, wlen) != RB_OK)
        return RB_ERR_NOMEM;
    size_t n = tmp->len, start = out->n;
    for (size_t i = 0; i < n; i++) {
        bool match = false;
        size_t hi = RB_MIN(n, i + t->max_token_len + 1);
        for (size_t j = hi; j > i; j--) {
            int32_t id = lookup(t, tmp->data + i, j - i);
            if (id != RB_ENGINE_TOKEN_NONE) {
                if (!ivec_push(out, id))
                    return RB_ERR_NOMEM;
                match = true;
                i = j - 1;
                break;
            }
        }
        if (!match) {
            out->n = start;
            break;
        }
    }
    if (out->n == start && !ivec_push(out, t->unk))
        return RB_ERR_NOMEM;
    return RB_OK;
}

static enum rb_status wpm_fragment(const struct rb_engine_tokenizer *t, const char *text,
                                   size_t len, struct ivec *out)
{
    UErrorCode uerr = U_ZERO_ERROR;
    const UNormalizer2 *nfd = t->strip_accents ? unorm2_getNFDInstance(&uerr) : NULL;
    if (U_FAILURE(uerr))
        return RB_ERR_INTERNAL;
    struct rb_buf word, tmp;
    rb_buf_init(&word, 0);
    rb_buf_init(&tmp, 0);
    enum rb_status st = RB_OK;
#define FLUSH()                                                                                    \
    do {                                                                                           \
        if (word.len) {                                                                            \
            st = wpm_word(t, word.data, word.len, &tmp, out);                                      \
            rb_buf_reset(&word);                                                                   \
        }                                                                                          \
    } while (0)
    for (size_t i = 0; i < len && st == RB_OK;) {
        uint32_t cp0;
        i += (size_t)rb_utf8_decode(text + i, len - i, &cp0);
        UChar32 cps[32];
        int ncp = 1;
        cps[0] = (UChar32)cp0;
        if (nfd) {
            UChar dec[64];
            UErrorCode e = U_ZERO_ERROR;
            int32_t dl = unorm2_getDecomposition(nfd, (UChar32)cp0, dec, 64, &e);
            if (dl > 0 && U_SUCCESS(e)) {
                ncp = 0;
                for (int32_t k = 0; k < dl && ncp < 32;) {
                    UChar32 c;
                    U16_NEXT(dec, k, dl, c);
                    cps[ncp++] = c;
                }
            }
        }
        for (int k = 0; k < ncp && st == RB_OK; k++) {
            uint32_t c = (uint32_t)cps[k];
            if (is_ws(c)) {
                FLUSH();
                continue;
            }
            int8_t cat = u_charType((UChar32)c);
            if (c == 0 || c == 0xFFFD || cat == U_CONTROL_CHAR || cat == U_FORMAT_CHAR ||
                cat == U_PRIVATE_USE_CHAR || cat == U_SURROGATE)
                continue;
            bool mark = cat == U_NON_SPACING_MARK || cat == U_ENCLOSING_MARK ||
                        cat == U_COMBINING_SPACING_MARK;
            if (t->strip_accents && mark)
                continue;
            uint32_t lc = t->lowercase ? (uint32_t)u_tolower((UChar32)c) : c;
            char enc[4];
            int el = rb_utf8_encode(lc, enc);
            bool punct = cat == U_DASH_PUNCTUATION || cat == U_START_PUNCTUATION ||
                         cat == U_END_PUNCTUATION || cat == U_CONNECTOR_PUNCTUATION ||
                         cat == U_OTHER_PUNCTUATION || cat == U_INITIAL_PUNCTUATION ||
                         cat == U_FINAL_PUNCTUATION;
            bool symbol = cat == U_MATH_SYMBOL || cat == U_CURRENCY_SYMBOL ||
                          cat == U_MODIFIER_SYMBOL || cat == U_OTHER_SYMBOL;
            if (punct || (c < 0x7F && symbol) || is_chinese(c)) {
                FLUSH();
                if (st == RB_OK && el > 0)
                    st = wpm_word(t, enc, (size_t)el, &tmp, out);
            } else if (el > 0 && rb_buf_append(&word, enc, (size_t)el) != RB_OK) {
                st = RB_ERR_NOMEM;
            }
        }
    }
    if (st == RB_OK)
        FLUSH();
#undef FLUSH
    rb_buf_free(&word);
    rb_buf_free(&tmp);
    return st;
}

/* =============================================================== tokenize */

static enum rb_status tokenize_impl(const struct rb_engine_tokenizer *t, const char *text,
                                    size_t len, unsigned flags, struct ivec *out)
{
    if (len > TOK_MAX_INPUT)
        return RB_ERR_TOO_LARGE;
    if (!text)
        len = 0;
    bool add_special = flags & RB_ENGINE_TOKENIZE_ADD_SPECIAL;
    struct fvec frags = {0};
    enum rb_status st = partition(t, text, len, flags & RB_ENGINE_TOKENIZE_PARSE_SPECIAL, &frags);
    if (st != RB_OK)
        return st;
    struct scratch s = {0};
    rb_buf_init(&s.word, 0);
    rb_buf_init(&s.key, 0);
    switch (t->type) {
    case RB_ENGINE_VOCAB_SPM: {
        bool prev_special = true; /* the first fragment gets the space prefix */
        if (add_special && t->add_bos && !ivec_push(out, t->bos))
            st = RB_ERR_NOMEM;
        for (size_t i = 0; i < frags.n && st == RB_OK; i++) {
            if (frags.v[i].token != RB_ENGINE_TOKEN_NONE) {
                if (!ivec_push(out, frags.v[i].token))
                    st = RB_ERR_NOMEM;
                prev_special = true;
                continue;
            }
            st = spm_fragment(t, &s, text + frags.v[i].off, frags.v[i].len,
                              t->add_space_prefix && prev_special, out);
            prev_special = false;
        }
        if (st == RB_OK && add_special && t->add_eos && !ivec_push(out, t->eos))
            st = RB_ERR_NOMEM;
        break;
    }
    case RB_ENGINE_VOCAB_BPE:
        if (add_special && t->add_bos && !ivec_push(out, t->bos))
            st = RB_ERR_NOMEM;
        for (size_t i = 0; i < frags.n && st == RB_OK; i++) {
            if (frags.v[i].token != RB_ENGINE_TOKEN_NONE)
                st = ivec_push(out, frags.v[i].token) ? RB_OK : RB_ERR_NOMEM;
            else
                st = bpe_fragment(t, &s, text + frags.v[i].off, frags.v[i].len, out);
        }
        if (st == RB_OK && add_special && t->add_eos && !ivec_push(out, t->eos))
            st = RB_ERR_NOMEM;
        break;
    case RB_ENGINE_VOCAB_UGM:
        if (add_special && t->add_bos && !ivec_push(out, t->bos))
            st = RB_ERR_NOMEM;
        for (size_t i = 0; i < frags.n && st == RB_OK; i++) {
            if (frags.v[i].token != RB_ENGINE_TOKEN_NONE)
                st = ivec_push(out, frags.v[i].token) ? RB_OK : RB_ERR_NOMEM;
            else
                st = rb__ugm_encode(t->ugm, text + frags.v[i].off, frags.v[i].len, out);
        }
        if (st == RB_OK && add_special && t->add_eos && !ivec_push(out, t->eos))
            st = RB_ERR_NOMEM;
        break;
    case RB_ENGINE_VOCAB_WPM:
        if (add_special && !ivec_push(out, t->bos))
            st = RB_ERR_NOMEM;
        for (size_t i = 0; i < frags.n && st == RB_OK; i++) {
            if (frags.v[i].token != RB_ENGINE_TOKEN_NONE)
                st = ivec_push(out, frags.v[i].token) ? RB_OK : RB_ERR_NOMEM;
            else
                st = wpm_fragment(t, text + frags.v[i].off, frags.v[i].len, out);
        }
        if (st == RB_OK && add_special && !ivec_push(out, t->sep))
            st = RB_ERR_NOMEM;
        break;
    }
    scratch_free(&s);
    free(frags.v);
    return st;
}

enum rb_status rb_engine_tokenize(const struct rb_engine_tokenizer *tok, const char *text,
                                  size_t len, unsigned flags, int32_t **ids, size_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    struct ivec out = {0};
    enum rb_status st = tokenize_impl(tok, text, len, flags, &out);
    if (st != RB_OK) {
        free(out.v);
        return st;
    }
    *ids = out.v;
    *n_ids = out.n;
    return RB_OK;
}

enum rb_status rb_engine_token_count(const struct rb_engine_tokenizer *tok, const char *text,
                                     size_t len, unsigned flags, size_t *n_tokens)
{
    struct ivec out = {0};
    enum rb_status st = tokenize_impl(tok, text, len, flags, &out);
    free(out.v);
    *n_tokens = st == RB_OK ? out.n : 0;
    return st;
}

/* ============================================================= detokenize */

const char *rb_engine_token_piece(const struct rb_engine_tokenizer *tok, int32_t id, bool special,
                                  size_t *len)
{
    if (id < 0 || (uint32_t)id >= tok->n_vocab) {
        *len = 0;
        return NULL;
    }
    const struct tok_entry *e = &tok->tokens[id];
    if (!special && (e->attr & (RB_ENGINE_TOKEN_ATTR_UNKNOWN | RB_ENGINE_TOKEN_ATTR_CONTROL))) {
        *len = 0;
        return "";
    }
    *len = e->piece_len;
    return tok->piece_arena + e->piece_off;
}

enum rb_status rb_engine_detokenize(const struct rb_engine_tokenizer *tok, const int32_t *ids,
                                    size_t n_ids, unsigned flags, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    bool remove_space = tok->add_space_prefix;
    if (flags & RB_ENGINE_DETOKENIZE_REMOVE_SPECIAL) {
        /* Unlike the reference (which keeps the prefix space once it drops the BOS),
         * the space the tokenizer itself added is removed either way: callers want
         * their text back. */
        if (tok->add_bos && n_ids > 0 && ids[0] == tok->bos) {
            ids++;
            n_ids--;
        }
        if (tok->add_eos && n_ids > 0 && ids[n_ids - 1] == tok->eos)
            n_ids--;
    }
    struct rb_buf b;
    rb_buf_init(&b, 0);
    for (size_t i = 0; i < n_ids; i++) {
        size_t pl;
        const char *p =
            rb_engine_token_piece(tok, ids[i], flags & RB_ENGINE_DETOKENIZE_UNPARSE_SPECIAL, &pl);
        if (!p) {
            rb_buf_free(&b);
            return RB_ERR_INVALID;
        }
        if (remove_space && pl && p[0] == ' ') {
            p++;
            pl--;
        }
        remove_space = false;
        if (rb_buf_append(&b, p, pl) != RB_OK) {
            rb_buf_free(&b);
            return RB_ERR_NOMEM;
        }
    }
    if (rb_buf_append(&b, "", 0) != RB_OK) {
        rb_buf_free(&b);
        return RB_ERR_NOMEM;
    }
    char *s = b.data;
    size_t total = b.len;
    if (tok->clean_spaces && total) {
        /* " ?" " !" " ." " ," lose the space */
        size_t n1 = total, w = 1;
        for (size_t i = 1; i < n1; i++) {
            char x = s[i];
            if (s[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
                w--;
            s[w++] = x;
        }
        /* " ' " -> "'" */
        size_t n2 = w;
        w = 1;
        for (size_t i = 1; i < n2; i++) {
            char x = s[i];
            if (x == '\'' && i + 1 < n2 && s[i - 1] == ' ' && s[i + 1] == ' ') {
                w--;
                s[++i] = '\0';
            }
            s[w++] = x;
        }
        /* " 's" " 'm" " 're" " 've" lose the space */
        size_t n3 = w;
        w = 1;
        for (size_t i = 1; i < n3; i++) {
            char x = s[i];
            if (s[i - 1] == ' ' && x == '\'' && i + 1 < n3) {
                char x1 = s[i + 1];
                if (x1 == 's' || x1 == 'm')
                    w--;
                else if (i + 2 < n3 &&
                         ((x1 == 'r' && s[i + 2] == 'e') || (x1 == 'v' && s[i + 2] == 'e')))
                    w--;
            }
            s[w++] = x;
        }
        total = w;
        s[total] = '\0';
    }
    *text = s;
    *len = total;
    return RB_OK;
}

/* ================================================================ getters */

const char *rb_engine_token_text(const struct rb_engine_tokenizer *tok, int32_t id)
{
    if (id < 0 || (uint32_t)id >= tok->n_vocab)
        return NULL;
    return tok_text(tok, id);
}

int32_t rb_engine_token_lookup(const struct rb_engine_tokenizer *tok, const char *text, size_t len)
{
    return lookup(tok, text, len);
}

unsigned rb_engine_token_attr(const struct rb_engine_tokenizer *tok, int32_t id)
{
    if (id < 0 || (uint32_t)id >= tok->n_vocab)
        return 0;
    return tok->tokens[id].attr;
}

float rb_engine_token_score(const struct rb_engine_tokenizer *tok, int32_t id)
{
    if (id < 0 || (uint32_t)id >= tok->n_vocab)
        return 0;
    return tok->tokens[id].score;
}

uint32_t rb_engine_tokenizer_n_vocab(const struct rb_engine_tokenizer *tok)
{
    return tok->n_vocab;
}
enum rb_engine_vocab_type rb_engine_tokenizer_type(const struct rb_engine_tokenizer *tok)
{
    return tok->type;
}
const char *rb_engine_tokenizer_model_name(const struct rb_engine_tokenizer *tok)
{
    return tok->model_name;
}
const char *rb_engine_tokenizer_pre_name(const struct rb_engine_tokenizer *tok)
{
    return tok->pre_name;
}
bool rb_engine_tokenizer_add_bos(const struct rb_engine_tokenizer *tok)
{
    return tok->add_bos;
}
bool rb_engine_tokenizer_add_eos(const struct rb_engine_tokenizer *tok)
{
    return tok->add_eos;
}
int32_t rb_engine_token_bos(const struct rb_engine_tokenizer *tok)
{
    return tok->bos;
}
int32_t rb_engine_token_eos(const struct rb_engine_tokenizer *tok)
{
    return tok->eos;
}
int32_t rb_engine_token_eot(const struct rb_engine_tokenizer *tok)
{
    return tok->eot;
}
int32_t rb_engine_token_unk(const struct rb_engine_tokenizer *tok)
{
    return tok->unk;
}
int32_t rb_engine_token_sep(const struct rb_engine_tokenizer *tok)
{
    return tok->sep;
}
int32_t rb_engine_token_pad(const struct rb_engine_tokenizer *tok)
{
    return tok->pad;
}
int32_t rb_engine_token_nl(const struct rb_engine_tokenizer *tok)
{
    return tok->nl;
}
bool rb_engine_token_is_eog(const struct rb_engine_tokenizer *tok, int32_t id)
{
    if (id < 0)
        return false;
    for (size_t i = 0; i < tok->n_eog; i++)
        if (tok->eog[i] == id)
            return true;
    return false;
}
const char *rb_engine_tokenizer_chat_template(const struct rb_engine_tokenizer *tok)
{
    return tok->chat_template;
}

/* =================================================================== load */

void rb_engine_tokenizer_free(struct rb_engine_tokenizer *t)
{
    if (!t)
        return;
    free(t->model_name);
    free(t->pre_name);
    free(t->tokens);
    free(t->text_arena);
    free(t->piece_arena);
    rb__strmap_free(&t->vocab_map);
    rb__strmap_free(&t->merge_map);
    free(t->merge_arena);
    free(t->eog);
    free(t->specials);
    for (size_t i = 0; i < t->n_regex; i++)
        pcre2_code_free(t->regex[i]);
    free(t->regex);
    free(t->chat_template);
    rb__ugm_free(t->ugm);
    free(t);
}

static void init_byte_encoding(struct rb_engine_tokenizer *t)
{
    uint32_t extra = 256;
    for (int b = 0; b < 256; b++) {
        uint32_t cp;
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
            cp = (uint32_t)b;
        else
            cp = extra++;
        t->byte_enc_len[b] = (uint8_t)rb_utf8_encode(cp, t->byte_enc[b]);
    }
    for (size_t i = 0; i < RB_ARRAY_LEN(t->byte_dec); i++)
        t->byte_dec[i] = -1;
    for (int b = 0; b < 256; b++) {
        uint32_t cp;
        rb_utf8_decode(t->byte_enc[b], t->byte_enc_len[b], &cp);
        t->byte_dec[cp] = (int16_t)b;
    }
}

/* Inverse of the GPT-2 byte encoding for one code point; -1 if not a mapped one. */
static int byte_dec(const struct rb_engine_tokenizer *t, const char *s, size_t len)
{
    uint32_t cp;
    int n = rb_utf8_decode(s, len, &cp);
    if ((size_t)n != len || cp >= RB_ARRAY_LEN(t->byte_dec))
        return -1;
    return t->byte_dec[cp];
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
    const struct rb_engine_tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->tokens[x].len != t->tokens[y].len)
        return t->tokens[x].len > t->tokens[y].len ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Reads an optional token-id key: keeps *id when absent or out of range. */
static void special_id(const struct rb_gguf *g, const char *key, uint32_t n_vocab, int32_t *id)
{
    uint32_t v;
    if (rb_gguf_get_u32(g, key, &v) == RB_OK && v < n_vocab)
        *id = (int32_t)v;
}

static bool name_in(const char *s, size_t len, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && memcmp(list[i], s, len) == 0)
            return true;
    return false;
}

/* Builds each token's output bytes (the piece arena). */
static enum rb_status build_pieces(struct rb_engine_tokenizer *t, size_t text_total)
{
    struct rb_buf b;
    rb_buf_init(&b, (size_t)UINT32_MAX);
    if (rb_buf_reserve(&b, text_total + 16) != RB_OK)
        return RB_ERR_NOMEM;
    for (uint32_t id = 0; id < t->n_vocab; id++) {
        struct tok_entry *e = &t->tokens[id];
        const char *s = tok_text(t, (int32_t)id);
        size_t start = b.len;
        enum rb_status st = RB_OK;
        if (e->attr & (RB_ENGINE_TOKEN_ATTR_UNKNOWN | RB_ENGINE_TOKEN_ATTR_CONTROL |
                       RB_ENGINE_TOKEN_ATTR_USER_DEFINED)) {
            st = rb_buf_append(&b, s, e->len);
        } else if (e->attr & RB_ENGINE_TOKEN_ATTR_BYTE) {
            unsigned v = 0;
            if (e->len == 6 && sscanf(s, "<0x%2X>", &v) == 1) {
                char c = (char)v;
                st = rb_buf_append(&b, &c, 1);
            } else {
                st = rb_buf_append(&b, s, e->len);
            }
        } else if (e->attr & RB_ENGINE_TOKEN_ATTR_NORMAL) {
            if (t->type == RB_ENGINE_VOCAB_BPE) {
                for (size_t i = 0; i < e->len && st == RB_OK;) {
                    size_t cl = RB_MIN(utf8_len((unsigned char)s[i]), e->len - i);
                    int d = byte_dec(t, s + i, cl);
                    if (d >= 0) {
                        char c = (char)d;
                        st = rb_buf_append(&b, &c, 1);
                    } else {
                        st = rb_buf_append(&b, s + i, cl);
                    }
                    i += cl;
                }
            } else {
                for (size_t i = 0; i < e->len && st == RB_OK;) {
                    if (e->len - i >= 3 && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                        st = rb_buf_append(&b, " ", 1);
                        i += 3;
                    } else {
                        st = rb_buf_append(&b, s + i, 1);
                        i++;
                    }
                }
            }
        }
        if (st != RB_OK) {
            rb_buf_free(&b);
            return st;
        }
        e->piece_off = (uint32_t)start;
        e->piece_len = (uint32_t)(b.len - start);
    }
    if (rb_buf_append(&b, "", 0) != RB_OK) {
        rb_buf_free(&b);
        return RB_ERR_NOMEM;
    }
    t->piece_arena = rb_buf_steal(&b);
    return RB_OK;
}

enum rb_status rb__tokenizer_from_gguf(const struct rb_gguf *g, const char *what,
                                       struct rb_engine_tokenizer **out, struct rb_errmsg *err)
{
    *out = NULL;
    if (!what)
        what = "model";
    struct rb_engine_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return rb_errmsg_set(err, RB_ERR_NOMEM, "out of memory");
    enum rb_status st;
#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        st = rb_errmsg_set(err, code, __VA_ARGS__);                                                \
        goto fail;                                                                                 \
    } while (0)
    st = rb_gguf_get_strdup(g, "tokenizer.ggml.model", &t->model_name);
    if (st == RB_ERR_NOT_FOUND)
        FAIL(RB_ERR_UNSUPPORTED, "%s: no tokenizer (tokenizer.ggml.model is absent)", what);
    if (st != RB_OK)
        FAIL(RB_ERR_CORRUPT, "%s: tokenizer.ggml.model is not a string", what);
    st = rb_gguf_get_strdup(g, "tokenizer.ggml.pre", &t->pre_name);
    if (st == RB_ERR_NOT_FOUND)
        t->pre_name = rb_strdup("default");
    else if (st != RB_OK)
        FAIL(RB_ERR_CORRUPT, "%s: tokenizer.ggml.pre is not a string", what);
    if (!t->pre_name)
        FAIL(RB_ERR_NOMEM, "out of memory");

    t->bos = t->eos = t->eot = t->eom = t->unk = t->sep = t->pad = t->mask = t->nl =
        RB_ENGINE_TOKEN_NONE;
    t->lowercase = true;
    if (strcmp(t->model_name, "llama") == 0) {
        t->type = RB_ENGINE_VOCAB_SPM;
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
        t->add_space_prefix = true;
        t->add_bos = true;
    } else if (strcmp(t->model_name, "bert") == 0) {
        t->type = RB_ENGINE_VOCAB_WPM;
        t->bos = 101;
        t->unk = 100;
        t->sep = 102;
        t->pad = 0;
        t->mask = 103;
        t->clean_spaces = true;
        t->add_bos = true;
        t->add_sep = true;
    } else if (strcmp(t->model_name, "gpt2") == 0) {
        t->type = RB_ENGINE_VOCAB_BPE;
        t->bos = t->eos = 11;
        const struct pre_def *pd = NULL;
        for (size_t i = 0; i < RB_ARRAY_LEN(PRE_DEFS); i++)
            if (strcmp(PRE_DEFS[i].name, t->pre_name) == 0)
                pd = &PRE_DEFS[i];
        if (!pd)
            FAIL(RB_ERR_UNSUPPORTED, "%s: unsupported pre-tokenizer '%s' (tokenizer.ggml.pre)",
                 what, t->pre_name);
        t->pre = pd->kind;
        t->clean_spaces = pd->clean_spaces;
        t->ignore_merges = pd->ignore_merges;
        t->add_bos = pd->add_bos;
    } else if (strcmp(t->model_name, "t5") == 0) {
        /* SentencePiece unigram (T5, XLM-RoBERTa / bge-m3): the reference's defaults,
         * then the metadata below */
        t->type = RB_ENGINE_VOCAB_UGM;
        t->eos = 1;
        t->unk = 2;
        t->pad = 0;
        t->add_space_prefix = true; /* SentencePiece's add_dummy_prefix default */
        t->add_bos = false;
        t->add_eos = true;
    } else {
        FAIL(RB_ERR_UNSUPPORTED,
             "%s: unsupported tokenizer model '%s' (llama, gpt2, bert, t5 are)",
             what, t->model_name);
    }

    /* ---- vocabulary */
    const struct rb_gguf_kv *toks = NULL, *scores = NULL, *types = NULL;
    if (rb_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks) != RB_OK ||
        toks->arr_type != RB_GGUF_TYPE_STRING)
        FAIL(RB_ERR_CORRUPT, "%s: tokenizer.ggml.tokens is missing or not a string array", what);
    if (toks->n == 0 || toks->n > (uint64_t)INT32_MAX)
        FAIL(RB_ERR_CORRUPT, "%s: vocabulary size %llu is out of range", what,
             (unsigned long long)toks->n);
    t->n_vocab = (uint32_t)toks->n;
    if (rb_gguf_get_arr(g, "tokenizer.ggml.scores", &scores) == RB_OK) {
        if ((scores->arr_type != RB_GGUF_TYPE_FLOAT32 && scores->arr_type != RB_GGUF_TYPE_INT32) ||
            scores->n < toks->n)
            FAIL(RB_ERR_CORRUPT, "%s: tokenizer.ggml.scores has the wrong type or length", what);
    } else {
        scores = NULL;
    }
    if (rb_gguf_get_arr(g, "tokenizer.ggml.token_type", &types) == RB_OK) {
        if (types->arr_type != RB_GGUF_TYPE_INT32 || types->n < toks->n)
            FAIL(RB_ERR_CORRUPT, "%s: tokenizer.ggml.token_type has the wrong type or length",
                 what);
    } else {
        types = NULL;
    }
    size_t total = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        size_t l = toks->strs[i].len ? (size_t)toks->strs[i].len : 24; /* "[EMPTY_i]" */
        if (!rb_size_add(total, l + 1, &total) || total > UINT32_MAX)
            FAIL(RB_ERR_TOO_LARGE, "%s: vocabulary text exceeds 4 GiB", what);
    }
    t->tokens = rb_calloc_array(t->n_vocab, sizeof *t->tokens);
    t->text_arena = malloc(total ? total : 1);
    if (!t->tokens || !t->text_arena || !rb__strmap_init(&t->vocab_map, t->n_vocab))
        FAIL(RB_ERR_NOMEM, "out of memory for the vocabulary");
    size_t pos = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        struct tok_entry *e = &t->tokens[i];
        e->off = (uint32_t)pos;
        if (toks->strs[i].len) {
            memcpy(t->text_arena + pos, toks->strs[i].ptr, (size_t)toks->strs[i].len);
            e->len = (uint32_t)toks->strs[i].len;
        } else {
            e->len = (uint32_t)snprintf(t->text_arena + pos, 24, "[EMPTY_%u]", i);
        }
        t->text_arena[pos + e->len] = '\0';
        pos += e->len + 1;
        if (e->len > t->max_token_len)
            t->max_token_len = e->len;
        e->score = scores ? rb_gguf_arr_f32(scores, i) : 0.0f;
        e->attr = RB_ENGINE_TOKEN_ATTR_NORMAL;
        if (types) {
            switch (rb_gguf_arr_i64(types, i)) {
            case 1:
                e->attr = RB_ENGINE_TOKEN_ATTR_NORMAL;
                break;
            case 2:
                e->attr = RB_ENGINE_TOKEN_ATTR_UNKNOWN;
                break;
            case 3:
                e->attr = RB_ENGINE_TOKEN_ATTR_CONTROL;
                break;
            case 4:
                e->attr = RB_ENGINE_TOKEN_ATTR_USER_DEFINED;
                break;
            case 5:
                e->attr = RB_ENGINE_TOKEN_ATTR_UNUSED;
                break;
            case 6:
                e->attr = RB_ENGINE_TOKEN_ATTR_BYTE;
                break;
            default:
                e->attr = 0; /* undefined */
                break;
            }
        }
        if (e->len > RB_STRMAP_MAX_KEY)
            FAIL(RB_ERR_CORRUPT, "%s: token %u is longer than 16 MiB", what, i);
        uint32_t prev;
        int r = rb__strmap_put(&t->vocab_map, t->text_arena + e->off, e->len, i, &prev);
        if (r == 0)
            FAIL(RB_ERR_CORRUPT, "%s: duplicate token in vocabulary: '%.64s' has ids %u and %u",
                 what, t->text_arena + e->off, prev, i);
        if (r < 0)
            FAIL(RB_ERR_INTERNAL, "vocabulary map full");
    }

    /* ---- merges (BPE) */
    if (t->type == RB_ENGINE_VOCAB_BPE) {
        const struct rb_gguf_kv *merges = NULL;
        if (rb_gguf_get_arr(g, "tokenizer.ggml.merges", &merges) != RB_OK ||
            merges->arr_type != RB_GGUF_TYPE_STRING)
            FAIL(RB_ERR_CORRUPT, "%s: tokenizer.ggml.merges is missing or not a string array",
                 what);
        if (merges->n > (uint64_t)INT32_MAX)
            FAIL(RB_ERR_CORRUPT, "%s: too many merges", what);
        size_t mtotal = 1;
        for (uint64_t i = 0; i < merges->n; i++)
            if (!rb_size_add(mtotal, (size_t)merges->strs[i].len + 1, &mtotal))
                FAIL(RB_ERR_TOO_LARGE, "%s: merges too large", what);
        t->merge_arena = malloc(mtotal);
        if (!t->merge_arena || !rb__strmap_init(&t->merge_map, (size_t)merges->n))
            FAIL(RB_ERR_NOMEM, "out of memory for the merges");
        size_t mp = 0;
        for (uint64_t i = 0; i < merges->n; i++) {
            const struct rb_gguf_str *m = &merges->strs[i];
            /* "left right", split at the first space after the first byte */
            const char *sp = m->len > 1 ? memchr(m->ptr + 1, ' ', (size_t)m->len - 1) : NULL;
            if (!sp)
                continue; /* the reference keeps an empty pair that can never match */
            if (m->len > RB_STRMAP_MAX_KEY)
                FAIL(RB_ERR_CORRUPT, "%s: merge %llu is longer than 16 MiB", what,
                     (unsigned long long)i);
            memcpy(t->merge_arena + mp, m->ptr, (size_t)m->len);
            if (rb__strmap_put(&t->merge_map, t->merge_arena + mp, (size_t)m->len, (uint32_t)i,
                               NULL) < 0)
                FAIL(RB_ERR_INTERNAL, "merge map full");
            mp += (size_t)m->len + 1;
        }
        t->n_merges = (uint32_t)merges->n;
        size_t nrx;
        const char *const *rx = pre_regexes(t->pre, &nrx);
        t->regex = calloc(nrx, sizeof *t->regex);
        if (!t->regex)
            FAIL(RB_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < nrx; i++) {
            int ec;
            PCRE2_SIZE eo;
            t->regex[i] =
                pcre2_compile((PCRE2_SPTR)rx[i], PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
            if (!t->regex[i]) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(ec, msg, sizeof msg);
                FAIL(RB_ERR_INTERNAL, "pre-tokenizer regex %zu of '%s': %s at %zu", i, t->pre_name,
                     (const char *)msg, (size_t)eo);
            }
            t->n_regex++;
            (void)pcre2_jit_compile(t->regex[i], PCRE2_JIT_COMPLETE); /* optional speed-up */
        }
        init_byte_encoding(t);
    }

    /* ---- flags and special ids from the metadata */
    bool bv;
    if (rb_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &bv) == RB_OK)
        t->add_space_prefix = bv;
    if (rb_gguf_get_bool(g, "tokenizer.ggml.remove_extra_whitespaces", &bv) == RB_OK)
        t->remove_extra_ws = bv;
    static const struct {
        const char *key;
        size_t field;
    } keys[] = {
        {"tokenizer.ggml.bos_token_id", offsetof(struct rb_engine_tokenizer, bos)},
        {"tokenizer.ggml.eos_token_id", offsetof(struct rb_engine_tokenizer, eos)},
        {"tokenizer.ggml.eot_token_id", offsetof(struct rb_engine_tokenizer, eot)},
        {"tokenizer.ggml.eom_token_id", offsetof(struct rb_engine_tokenizer, eom)},
        {"tokenizer.ggml.unknown_token_id", offsetof(struct rb_engine_tokenizer, unk)},
        {"tokenizer.ggml.seperator_token_id", offsetof(struct rb_engine_tokenizer, sep)},
        {"tokenizer.ggml.padding_token_id", offsetof(struct rb_engine_tokenizer, pad)},
        {"tokenizer.ggml.mask_token_id", offsetof(struct rb_engine_tokenizer, mask)},
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(keys); i++) {
        int32_t *id = (int32_t *)((char *)t + keys[i].field);
        if (*id >= 0 && (uint32_t)*id >= t->n_vocab)
            *id = RB_ENGINE_TOKEN_NONE;
        special_id(g, keys[i].key, t->n_vocab, id);
    }
    /* WordPiece starts with [CLS]: converters that store only cls_token_id mean it as BOS */
    if (t->type == RB_ENGINE_VOCAB_WPM && !rb_gguf_find(g, "tokenizer.ggml.bos_token_id"))
        special_id(g, "tokenizer.ggml.cls_token_id", t->n_vocab, &t->bos);
    if (rb_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &bv) == RB_OK)
        t->add_bos = bv;
    if (rb_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &bv) == RB_OK)
        t->add_eos = bv;
    if (rb_gguf_get_bool(g, "tokenizer.ggml.add_sep_token", &bv) == RB_OK)
        t->add_sep = bv;
    if (rb_gguf_get_bool(g, "tokenizer.ggml.normalizer.lowercase", &bv) == RB_OK)
        t->lowercase = bv;
    t->strip_accents = t->lowercase;
    if (rb_gguf_get_bool(g, "tokenizer.ggml.normalizer.strip_accents", &bv) == RB_OK)
        t->strip_accents = bv;
    if ((t->add_bos || t->type == RB_ENGINE_VOCAB_WPM) && t->bos == RB_ENGINE_TOKEN_NONE)
        FAIL(RB_ERR_CORRUPT, "%s: the tokenizer adds a BOS token but has none", what);
    if (t->add_eos && t->eos == RB_ENGINE_TOKEN_NONE)
        FAIL(RB_ERR_CORRUPT, "%s: the tokenizer adds an EOS token but has none", what);
    if (t->type == RB_ENGINE_VOCAB_WPM &&
        (t->sep == RB_ENGINE_TOKEN_NONE || t->unk == RB_ENGINE_TOKEN_NONE))
        FAIL(RB_ERR_CORRUPT, "%s: WordPiece vocabulary without [SEP] or [UNK]", what);

    /* ---- end-of-generation tokens, recognised by name as the reference does */
    {
        static const char *const eot_names[] = {"<|eot_id|>",
                                                "<|im_end|>",
                                                "<|end|>",
                                                "<end_of_turn>",
                                                "<|endoftext|>",
                                                "<|end_of_text|>",
                                                "<EOT>",
                                                "_<EOT>",
                                                "<｜end▁of▁sentence｜>",
                                                "<end_of_utterance>"};
        static const char *const eog_names[] = {
            "<|eot_id|>",      "<|im_end|>",         "<|end|>",    "<end_of_turn>",
            "<|endoftext|>",   "<|eom_id|>",         "<EOT>",      "_<EOT>",
            "<|end_of_text|>", "<end_of_utterance>", "<|return|>", "<|call|>"};
        t->eog = calloc(RB_ARRAY_LEN(eog_names) + 3, sizeof *t->eog);
        if (!t->eog)
            FAIL(RB_ERR_NOMEM, "out of memory");
        for (uint32_t i = 0; i < t->n_vocab; i++) {
            struct tok_entry *e = &t->tokens[i];
            const char *s = t->text_arena + e->off;
            if (e->len > 32)
                continue;
            if (t->eot == RB_ENGINE_TOKEN_NONE &&
                name_in(s, e->len, eot_names, RB_ARRAY_LEN(eot_names))) {
                t->eot = (int32_t)i;
                e->attr |= RB_ENGINE_TOKEN_ATTR_CONTROL;
            }
            if (t->eom == RB_ENGINE_TOKEN_NONE && e->len == 10 &&
                memcmp(s, "<|eom_id|>", 10) == 0) {
                t->eom = (int32_t)i;
                e->attr |= RB_ENGINE_TOKEN_ATTR_CONTROL;
            }
            if (name_in(s, e->len, eog_names, RB_ARRAY_LEN(eog_names)) &&
                t->n_eog < RB_ARRAY_LEN(eog_names)) {
                t->eog[t->n_eog++] = (int32_t)i;
                e->attr |= RB_ENGINE_TOKEN_ATTR_CONTROL;
            }
        }
        int32_t extra[3] = {t->eos, t->eot, t->eom};
        for (int k = 0; k < 3; k++)
            if (extra[k] != RB_ENGINE_TOKEN_NONE && !rb_engine_token_is_eog(t, extra[k]))
                t->eog[t->n_eog++] = extra[k];
    }
    /* control tokens named "unused" are unused */
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        struct tok_entry *e = &t->tokens[i];
        if ((e->attr & RB_ENGINE_TOKEN_ATTR_CONTROL) && strstr(t->text_arena + e->off, "unused"))
            e->attr |= RB_ENGINE_TOKEN_ATTR_UNUSED;
    }

    /* ---- special tokens, longest first */
    size_t nsp = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++)
        if (t->tokens[i].attr & (RB_ENGINE_TOKEN_ATTR_CONTROL | RB_ENGINE_TOKEN_ATTR_USER_DEFINED |
                                 RB_ENGINE_TOKEN_ATTR_UNKNOWN))
            nsp++;
    t->specials = rb_malloc_array(nsp ? nsp : 1, sizeof *t->specials);
    if (!t->specials)
        FAIL(RB_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < t->n_vocab; i++)
        if (t->tokens[i].attr & (RB_ENGINE_TOKEN_ATTR_CONTROL | RB_ENGINE_TOKEN_ATTR_USER_DEFINED |
                                 RB_ENGINE_TOKEN_ATTR_UNKNOWN))
            t->specials[t->n_specials++] = (int32_t)i;
    qsort_r(t->specials, t->n_specials, sizeof *t->specials, cmp_special, t);

    /* Phi-3 vocabularies strip the whitespace after special tokens (model-name rule). */
    {
        char *name = NULL;
        if (rb_gguf_get_strdup(g, "general.name", &name) == RB_OK && name) {
            for (char *p = name; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            if (strstr(name, "phi-3") || strstr(name, "phi3")) {
                for (size_t i = 0; i < t->n_specials; i++)
                    t->tokens[t->specials[i]].attr |= RB_ENGINE_TOKEN_ATTR_RSTRIP;
                const char *on[] = {"</s>"}, *off[] = {"<unk>", "<s>", "<|endoftext|>"};
                int32_t id = lookup(t, on[0], strlen(on[0]));
                if (id >= 0)
                    t->tokens[id].attr |= RB_ENGINE_TOKEN_ATTR_RSTRIP;
                for (size_t k = 0; k < RB_ARRAY_LEN(off); k++)
                    if ((id = lookup(t, off[k], strlen(off[k]))) >= 0)
                        t->tokens[id].attr &= (uint8_t)~RB_ENGINE_TOKEN_ATTR_RSTRIP;
            }
        }
        free(name);
    }

    if ((st = build_pieces(t, total)) != RB_OK)
        FAIL(st, "out of memory");

    if (t->type == RB_ENGINE_VOCAB_UGM) {
        const struct rb_gguf_kv *cm = NULL;
        const uint8_t *charsmap = NULL;
        size_t charsmap_len = 0;
        if (rb_gguf_get_arr(g, "tokenizer.ggml.precompiled_charsmap", &cm) == RB_OK) {
            if (cm->arr_type != RB_GGUF_TYPE_UINT8 && cm->arr_type != RB_GGUF_TYPE_INT8)
                FAIL(RB_ERR_CORRUPT, "%s: tokenizer.ggml.precompiled_charsmap is not a byte array",
                     what);
            charsmap = cm->data;
            charsmap_len = (size_t)cm->n;
        }
        struct rb__ugm_token *ut = rb_malloc_array(t->n_vocab, sizeof *ut);
        if (!ut)
            FAIL(RB_ERR_NOMEM, "out of memory");
        for (uint32_t i = 0; i < t->n_vocab; i++)
            ut[i] = (struct rb__ugm_token){tok_text(t, (int32_t)i), t->tokens[i].len,
                                           t->tokens[i].score, t->tokens[i].attr};
        struct rb__ugm_options uo = {.unk = t->unk,
                                     .add_dummy_prefix = t->add_space_prefix,
                                     .remove_extra_whitespaces = t->remove_extra_ws,
                                     .charsmap = charsmap,
                                     .charsmap_len = charsmap_len};
        struct rb_errmsg uerr;
        rb_errmsg_clear(&uerr);
        st = rb__ugm_create(ut, t->n_vocab, &uo, &t->ugm, &uerr);
        free(ut);
        if (st != RB_OK)
            FAIL(st, "%s: %s", what, uerr.text);
    }

    /* newline token */
    if (t->type == RB_ENGINE_VOCAB_SPM) {
        t->nl = spm_byte_token(t, '\n');
        if (t->nl == RB_ENGINE_TOKEN_NONE)
            t->nl = t->pad;
    } else if (t->type == RB_ENGINE_VOCAB_WPM) {
        t->nl = t->pad;
    } else {
        int32_t *ids = NULL;
        size_t n = 0;
        if (rb_engine_tokenize(t, "\n", 1, 0, &ids, &n) == RB_OK && n > 0)
            t->nl = ids[0];
        else
            t->nl = t->pad;
        free(ids);
    }

    {
        char *tmpl = NULL;
        st = rb_gguf_get_strdup(g, "tokenizer.chat_template", &tmpl);
        if (st == RB_OK)
            t->chat_template = tmpl;
        else if (st != RB_ERR_NOT_FOUND)
            RB_WARN("engine", "%s: tokenizer.chat_template is not a usable string; ignored", what);
    }
    *out = t;
    return RB_OK;
fail:
    rb_engine_tokenizer_free(t);
    return st;
#undef FAIL
}

enum rb_status rb_engine_tokenizer_load(const char *model_path, struct rb_engine_tokenizer **out,
                                        struct rb_errmsg *err)
{
    *out = NULL;
    struct rb_gguf *g = NULL;
    enum rb_status st = rb_gguf_open(model_path, &g, err);
    if (st != RB_OK)
        return st;
    st = rb__tokenizer_from_gguf(g, model_path, out, err);
    rb_gguf_close(g);
    return st;
}
