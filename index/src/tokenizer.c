/* The keyword tokenizer "ragbox_cjk", registered with FTS5 on every connection.
 *
 * Latin/Greek/Cyrillic and other alphabetic scripts: words are maximal runs of
 * letters and digits, folded unicode61-style (lower case, common diacritics
 * removed, full-width forms mapped to ASCII). Han, kana and hangul have no
 * spaces, so a run of them becomes overlapping bigrams ("中华人民" -> 中华 华人
 * 人民); a run of one character is emitted as a unigram. Queries go through the
 * same code, so a query bigram matches a document bigram; a one-character query
 * run becomes a prefix query that matches every bigram starting with it. */
#include <stdlib.h>
#include <string.h>

#include "index-impl.h"

#define TOKEN_MAX_BYTES 64 /* longer words are truncated (at a code point boundary) */

static bool is_cjk_letter(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2FA1F) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x3040 && c <= 0x309F && c != 0x309B && c != 0x309C) || /* hiragana */
           (c >= 0x30A1 && c <= 0x30FA) || c == 0x30FC ||                 /* katakana */
           (c >= 0x31F0 && c <= 0x31FF) || (c >= 0xFF66 && c <= 0xFF9D) || /* half-width kana */
           (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) ||
           (c >= 0x3130 && c <= 0x318F) || c == 0x3005 || c == 0x3007;
}

/* Letters and digits of non-CJK scripts (a coarse but safe approximation of
 * Unicode L and N classes: everything that is not a known separator/symbol). */
static bool is_word_char(uint32_t c)
{
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c < 0xC0)
        return c == 0xAA || c == 0xB5 || c == 0xBA || c == 0xB2 || c == 0xB3 || c == 0xB9;
    if (c == 0xD7 || c == 0xF7)
        return false;
    if (c >= 0x2000 && c <= 0x2BFF) /* punctuation, symbols, arrows, math, boxes */
        return false;
    if (c >= 0x3000 && c <= 0x303F) /* CJK symbols and punctuation */
        return false;
    if (c >= 0xFE30 && c <= 0xFE4F) /* CJK compatibility forms */
        return false;
    if (c >= 0xFF00 && c <= 0xFFEF) /* full-width: only letters and digits */
        return (c >= 0xFF10 && c <= 0xFF19) || (c >= 0xFF21 && c <= 0xFF3A) ||
               (c >= 0xFF41 && c <= 0xFF5A);
    if (c >= 0xD800 && c <= 0xDFFF)
        return false;
    if (c == 0xFFFD || c == 0xFEFF || (c >= 0xE000 && c <= 0xF8FF))
        return false;
    if (c >= 0x1F000) /* emoji and pictographs */
        return false;
    if (c >= 0x0300 && c <= 0x036F) /* combining marks: dropped by folding */
        return true;
    return true;
}

/* Case and diacritic folding of one code point; 0 means "drop" (combining mark). */
static uint32_t fold(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c >= 0x0300 && c <= 0x036F)
        return 0;
    if (c >= 0xFF10 && c <= 0xFF19)
        return '0' + (c - 0xFF10);
    if (c >= 0xFF21 && c <= 0xFF3A)
        return 'a' + (c - 0xFF21);
    if (c >= 0xFF41 && c <= 0xFF5A)
        return 'a' + (c - 0xFF41);
    if (c >= 0xC0 && c <= 0xFF) {
        static const char latin1[] = "aaaaaaaceeeeiiii"  /* C0-CF */
                                     "dnooooo\0ouuuuyts" /* D0-DF (D7 x, DE thorn, DF ss) */
                                     "aaaaaaaceeeeiiii"  /* E0-EF */
                                     "dnooooo\0ouuuuyty";/* F0-FF */
        char m = latin1[c - 0xC0];
        if (c == 0xC6 || c == 0xE6)
            return 0xE6; /* æ stays one letter */
        if (c == 0xDE || c == 0xFE)
            return 0xFE;
        if (c == 0xDF)
            return 0xDF;
        return m ? (uint32_t)(unsigned char)m : c;
    }
    if (c >= 0x100 && c <= 0x17F) { /* Latin Extended-A: pairs upper/lower, base letters */
        static const char base[] = "aaaaaaccccccccdddd"    /* 100-111 */
                                   "eeeeeeeeee"            /* 112-11B */
                                   "gggggggghhhh"          /* 11C-127 */
                                   "iiiiiiiiii"            /* 128-131 */
                                   "\0\0jjkkk"             /* 132-138 (ĳ kept) */
                                   "llllllllll"            /* 139-142 */
                                   "nnnnnnnnn"             /* 143-14B */
                                   "oooooo\0\0"            /* 14C-153 (œ kept) */
                                   "rrrrrr"                /* 154-159 */
                                   "ssssssss"              /* 15A-161 */
                                   "tttttt"                /* 162-167 */
                                   "uuuuuuuuuuuu"          /* 168-173 */
                                   "wwyyy"                 /* 174-178 */
                                   "zzzzzzs";              /* 179-17F */
        size_t i = c - 0x100;
        if (i < sizeof base - 1 && base[i])
            return (uint32_t)(unsigned char)base[i];
        return (c & 1) ? c : c + 1;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 32; /* Greek capitals */
    if (c >= 0x3AC && c <= 0x3CE) { /* Greek accented lower -> plain */
        switch (c) {
        case 0x3AC: return 0x3B1;
        case 0x3AD: return 0x3B5;
        case 0x3AE: return 0x3B7;
        case 0x3AF: return 0x3B9;
        case 0x3CC: return 0x3BF;
        case 0x3CD: return 0x3C5;
        case 0x3CE: return 0x3C9;
        case 0x3C2: return 0x3C3; /* final sigma */
        default: return c;
        }
    }
    if (c >= 0x410 && c <= 0x42F)
        return c + 32; /* Cyrillic capitals */
    if (c >= 0x400 && c <= 0x40F)
        return c + 80;
    return c;
}

struct tok_state {
    rb__tok_emit emit;
    void *ctx;
    int rc;
    size_t count;
};

static int emit_tok(struct tok_state *s, const char *t, size_t len, size_t start, size_t end,
                    bool prefix)
{
    if (s->rc)
        return s->rc;
    s->count++;
    if (s->emit)
        s->rc = s->emit(s->ctx, t, len, start, end, prefix);
    return s->rc;
}

int rb__tokenize(const char *text, size_t len, int flags, rb__tok_emit emit, void *ctx)
{
    struct tok_state s = {emit, ctx, 0, 0};
    size_t i = 0;
    /* The CJK run: positions (byte offset, length) of the previous character. */
    size_t prev_off = 0, prev_len = 0, run = 0;
    char word[TOKEN_MAX_BYTES + 8];
    while (i < len && !s.rc) {
        uint32_t c;
        int n = rb_utf8_decode(text + i, len - i, &c);
        if (is_cjk_letter(c)) {
            if (run >= 1) {
                char bi[8];
                memcpy(bi, text + prev_off, prev_len);
                memcpy(bi + prev_len, text + i, (size_t)n);
                emit_tok(&s, bi, prev_len + (size_t)n, prev_off, i + (size_t)n, false);
            }
            prev_off = i;
            prev_len = (size_t)n;
            run++;
            i += (size_t)n;
            /* A run of exactly one character: emit the unigram when the run ends. */
            if (run == 1) {
                uint32_t c2 = 0;
                int n2 = i < len ? rb_utf8_decode(text + i, len - i, &c2) : 0;
                if (n2 == 0 || !is_cjk_letter(c2))
                    emit_tok(&s, text + prev_off, prev_len, prev_off, i,
                             (flags & RB__TOK_QUERY) != 0);
            }
            continue;
        }
        run = 0;
        if (!is_word_char(c)) {
            i += (size_t)n;
            continue;
        }
        /* A word: fold its code points into `word`. */
        size_t start = i, wlen = 0;
        bool full = false;
        while (i < len) {
            uint32_t d;
            int m = rb_utf8_decode(text + i, len - i, &d);
            if (is_cjk_letter(d) || !is_word_char(d))
                break;
            uint32_t f = fold(d);
            char enc[4];
            int el = f ? rb_utf8_encode(f, enc) : 0;
            if (!full && el > 0) {
                if (wlen + (size_t)el <= TOKEN_MAX_BYTES) {
                    memcpy(word + wlen, enc, (size_t)el);
                    wlen += (size_t)el;
                } else {
                    full = true;
                }
            }
            i += (size_t)m;
        }
        if (wlen > 0)
            emit_tok(&s, word, wlen, start, i, false);
    }
    return s.rc ? s.rc : (int)(s.count > (size_t)0x7fffffff ? 0x7fffffff : s.count);
}

/* ------------------------------------------------------------ public wrapper */

struct pub_ctx {
    void (*emit)(void *, const char *, size_t, size_t, size_t);
    void *ctx;
};
static int pub_emit(void *c, const char *t, size_t n, size_t s, size_t e, bool prefix)
{
    (void)prefix;
    struct pub_ctx *p = c;
    p->emit(p->ctx, t, n, s, e);
    return 0;
}

size_t rb_index_tokenize(const char *text, size_t len,
                         void (*emit)(void *ctx, const char *token, size_t token_len,
                                      size_t start, size_t end),
                         void *ctx)
{
    struct pub_ctx p = {emit, ctx};
    int n = rb__tokenize(text, len, 0, emit ? pub_emit : NULL, &p);
    return n > 0 ? (size_t)n : 0;
}

/* ---------------------------------------------------------- FTS5 tokenizer */

struct fts_tok {
    int unused;
};
struct fts_ctx {
    void *pctx;
    int (*xToken)(void *, int, const char *, int, int, int);
};

static int fts_create(void *ud, const char **argv, int argc, Fts5Tokenizer **out)
{
    (void)ud;
    (void)argv;
    if (argc != 0)
        return SQLITE_ERROR;
    struct fts_tok *t = calloc(1, sizeof *t);
    if (!t)
        return SQLITE_NOMEM;
    *out = (Fts5Tokenizer *)t;
    return SQLITE_OK;
}

static void fts_delete(Fts5Tokenizer *t)
{
    free(t);
}

static int fts_emit(void *c, const char *t, size_t n, size_t s, size_t e, bool prefix)
{
    struct fts_ctx *f = c;
    (void)prefix;
    return f->xToken(f->pctx, 0, t, (int)n, (int)s, (int)e);
}

static int fts_tokenize(Fts5Tokenizer *t, void *pctx, int flags, const char *text, int n,
                        int (*xToken)(void *, int, const char *, int, int, int))
{
    (void)t;
    struct fts_ctx f = {pctx, xToken};
    if (n <= 0)
        return SQLITE_OK;
    int rc = rb__tokenize(text, (size_t)n, (flags & FTS5_TOKENIZE_QUERY) ? RB__TOK_QUERY : 0,
                          fts_emit, &f);
    return rc < 0 ? rc : SQLITE_OK;
}

int rb__fts5_register(sqlite3 *db)
{
    fts5_api *api = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    if (!api || api->iVersion < 2)
        return SQLITE_ERROR;
    static fts5_tokenizer tok = {fts_create, fts_delete, fts_tokenize};
    return api->xCreateTokenizer(api, "ragbox_cjk", NULL, &tok, NULL);
}

/* ------------------------------------------------------------ MATCH builder */

static const char *const stop_words[] = {
    "a",    "an",   "and",  "are",  "as",   "at",   "be",   "but",   "by",    "can",  "did",
    "do",   "does", "for",  "from", "had",  "has",  "have", "how",   "i",     "if",   "in",
    "into", "is",   "it",   "its",  "of",   "on",   "or",   "our",   "so",    "such", "than",
    "that", "the",  "their", "then", "there", "these", "they", "this", "to",  "was",  "we",
    "were", "what", "when", "where", "which", "who", "whom", "why",  "will",  "with", "would",
    "you",  "your",
};

static bool is_stop(const char *t, size_t n)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(stop_words); i++)
        if (strlen(stop_words[i]) == n && memcmp(stop_words[i], t, n) == 0)
            return true;
    return false;
}

#define MATCH_MAX_TERMS 64

struct match_ctx {
    struct rb_buf all, content; /* with and without stop words */
    size_t n_all, n_content;
    char *seen[MATCH_MAX_TERMS * 2];
    size_t n_seen;
    bool oom;
};

static int match_emit(void *c, const char *t, size_t n, size_t s, size_t e, bool prefix)
{
    (void)s;
    (void)e;
    struct match_ctx *m = c;
    char key[TOKEN_MAX_BYTES + 16];
    if (n > TOKEN_MAX_BYTES + 8)
        return 0;
    memcpy(key, t, n);
    key[n] = prefix ? '*' : 0;
    key[n + 1] = 0;
    for (size_t i = 0; i < m->n_seen; i++)
        if (strcmp(m->seen[i], key) == 0)
            return 0;
    if (m->n_seen >= RB_ARRAY_LEN(m->seen))
        return 0;
    m->seen[m->n_seen] = rb_strdup(key);
    if (!m->seen[m->n_seen]) {
        m->oom = true;
        return 0;
    }
    m->n_seen++;
    /* Tokens contain no '"' (it is punctuation), so quoting is enough. */
    bool stop = !prefix && is_stop(t, n);
    struct rb_buf *bufs[2] = {&m->all, &m->content};
    size_t *counts[2] = {&m->n_all, &m->n_content};
    for (int b = 0; b < 2; b++) {
        if (b == 1 && stop)
            continue;
        if (*counts[b] >= MATCH_MAX_TERMS)
            continue;
        if ((*counts[b] && rb_buf_append_str(bufs[b], " OR ") != RB_OK) ||
            rb_buf_append_str(bufs[b], "\"") != RB_OK || rb_buf_append(bufs[b], t, n) != RB_OK ||
            rb_buf_append_str(bufs[b], prefix ? "\"*" : "\"") != RB_OK)
            m->oom = true;
        (*counts[b])++;
    }
    return 0;
}

char *rb__fts_match_expr(const char *text)
{
    struct match_ctx m;
    memset(&m, 0, sizeof m);
    rb_buf_init(&m.all, 1 << 16);
    rb_buf_init(&m.content, 1 << 16);
    size_t len = strlen(text);
    char *clean = rb_utf8_sanitize(text, len, &len);
    if (clean)
        rb__tokenize(clean, len, RB__TOK_QUERY, match_emit, &m);
    free(clean);
    for (size_t i = 0; i < m.n_seen; i++)
        free(m.seen[i]);
    char *out = NULL;
    if (!m.oom && clean) {
        if (m.n_content)
            out = rb_buf_steal(&m.content);
        else if (m.n_all)
            out = rb_buf_steal(&m.all);
    }
    rb_buf_free(&m.all);
    rb_buf_free(&m.content);
    return out;
}
