/* Language detection, scoring terms (Latin words + CJK bigrams) and sentence
 * splitting for the answer path. Pure functions, thread-safe. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ragbox/answer.h"

enum rb_answer_lang rb_answer_detect_lang(const char *text, size_t len)
{
    if (!text || len == 0)
        return RB_ANSWER_LANG_EN;
    return rb_utf8_cjk_ratio(text, len) >= 0.30 ? RB_ANSWER_LANG_ZH : RB_ANSWER_LANG_EN;
}

const char *rb_answer_lang_code(enum rb_answer_lang lang)
{
    return lang == RB_ANSWER_LANG_ZH ? "zh" : "en";
}

/* ------------------------------------------------------------------ terms */

/* Words that carry no evidence: articles, auxiliaries, question words and
 * the phrasing of questions. */
static const char *const en_stop[] = {
    "a",       "about",   "after",  "all",      "also",   "am",      "an",     "and",
    "any",     "are",     "as",     "at",       "be",     "been",    "before", "being",
    "between", "both",    "but",    "by",       "can",    "could",   "did",    "do",
    "does",    "doing",   "during", "each",     "for",    "from",    "had",    "has",
    "have",    "having",  "he",     "her",      "here",   "hers",    "him",    "his",
    "how",     "i",       "if",     "in",       "into",   "is",      "it",     "its",
    "me",      "more",    "most",   "my",       "no",     "nor",     "not",    "of",
    "on",      "or",      "other",  "our",      "ours",   "over",    "please", "same",
    "shall",   "she",     "should", "so",       "some",   "such",    "than",   "that",
    "the",     "their",   "theirs", "them",     "then",   "there",   "these",  "they",
    "this",    "those",   "through", "to",      "under",  "until",   "up",     "us",
    "very",    "was",     "we",     "were",     "what",   "when",    "where",  "whether",
    "which",   "while",   "who",    "whom",     "whose",  "why",     "will",   "with",
    "would",   "you",     "your",   "yours",  "much",    "many",   "according",
};

static bool en_is_stop(const char *w)
{
    for (size_t i = 0; i < RB_ARRAY_LEN(en_stop); i++)
        if (strcmp(w, en_stop[i]) == 0)
            return true;
    return false;
}

/* Chinese function words and question phrasing, removed from CJK runs before
 * bigramming (longest first within each starting character). */
static const char *const zh_stop[] = {
    /* multi-character question words and pronouns; single characters only
     * where they are particles that never begin a content word */
    "什么", "多少", "哪些", "哪个", "哪里", "怎么", "怎样", "如何", "为什么", "是否",
    "是不是", "有没有", "请问", "这些", "那些", "我们", "他们", "一个", "的", "了", "吗", "呢",
    "吧", "啊",
};

static size_t zh_stop_at(const char *s, size_t len)
{
    size_t best = 0;
    for (size_t i = 0; i < RB_ARRAY_LEN(zh_stop); i++) {
        size_t n = strlen(zh_stop[i]);
        if (n <= len && n > best && memcmp(s, zh_stop[i], n) == 0)
            best = n;
    }
    return best;
}

struct term_list {
    char **v;
    size_t n, cap;
};

static enum rb_status push_term(struct term_list *l, const char *s, size_t n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        if (cap > ((size_t)1 << 24))
            return RB_ERR_TOO_LARGE;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return RB_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    char *t = rb_strndup(s, n);
    if (!t)
        return RB_ERR_NOMEM;
    l->v[l->n++] = t;
    return RB_OK;
}

/* A CJK run: code points in [s, s+len), with function words cut out; emits
 * bigrams of each remaining segment (a lone character stays a unigram). */
static enum rb_status emit_cjk_run(struct term_list *l, const char *s, size_t len)
{
    size_t seg_start[256], seg_len[256]; /* byte offsets of the current segment's chars */
    size_t nseg = 0;
    size_t i = 0;
    enum rb_status st = RB_OK;
    for (;;) {
        size_t stop = i < len ? zh_stop_at(s + i, len - i) : 0;
        bool end = i >= len || stop > 0 || nseg == RB_ARRAY_LEN(seg_start);
        if (end) {
            /* bigrams carry word-like precision, unigrams recall for words
             * written differently ("进入" vs "破门而入") */
            for (size_t k = 0; st == RB_OK && k < nseg; k++)
                st = push_term(l, s + seg_start[k], seg_len[k]);
            for (size_t k = 0; st == RB_OK && k + 1 < nseg; k++)
                st = push_term(l, s + seg_start[k], seg_len[k] + seg_len[k + 1]);
            if (st != RB_OK)
                return st;
            if (nseg == RB_ARRAY_LEN(seg_start) && stop == 0 && i < len) {
                /* keep the overlap across the split of a very long run */
                seg_start[0] = seg_start[nseg - 1];
                seg_len[0] = seg_len[nseg - 1];
                nseg = 1;
                continue;
            }
            nseg = 0;
            if (i >= len)
                break;
            i += stop;
            continue;
        }
        uint32_t cp;
        int n = rb_utf8_decode(s + i, len - i, &cp);
        seg_start[nseg] = i;
        seg_len[nseg] = (size_t)n;
        nseg++;
        i += (size_t)n;
    }
    return RB_OK;
}

static bool is_cjk_letter(uint32_t cp)
{
    /* Han, kana and hangul but not CJK punctuation (U+3000..U+303F, full-width forms). */
    if (!rb_utf8_is_cjk(cp))
        return false;
    if (cp >= 0x3000 && cp <= 0x303F)
        return false;
    if (cp >= 0xFF00 && cp <= 0xFFEF)
        return false;
    return true;
}

static bool has_vowel(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strchr("aeiouy", w[i]))
            return true;
    return false;
}

/* A light English stemmer (plural and verb endings) applied alike to questions
 * and documents, so "takes"/"take", "compared"/"compare", "studies"/"study"
 * meet. Over-stemming is harmless here: both sides are stemmed the same way. */
static size_t stem(char *w, size_t n)
{
    if (n < 4 || isdigit((unsigned char)w[0]))
        return n;
    if (n > 4 && memcmp(w + n - 3, "ies", 3) == 0) {
        w[n - 3] = 'y';
        n -= 2;
    } else if (n > 4 && memcmp(w + n - 4, "sses", 4) == 0) {
        n -= 2;
    } else if (w[n - 1] == 's' && w[n - 2] != 's' && w[n - 2] != 'u' && w[n - 2] != 'i') {
        n -= 1;
    } else if (n > 5 && memcmp(w + n - 3, "ing", 3) == 0 && has_vowel(w, n - 3)) {
        n -= 3;
    } else if (n > 4 && memcmp(w + n - 2, "ed", 2) == 0 && has_vowel(w, n - 2)) {
        n -= 2;
    }
    /* "compar(e)" / "compar(ed)": drop a final silent e so both forms match */
    if (n > 4 && w[n - 1] == 'e')
        n -= 1;
    w[n] = '\0';
    return n;
}

enum rb_status rb_answer_terms_extract(const char *text, size_t len, struct rb_answer_terms *out)
{
    out->term = NULL;
    out->n = 0;
    if (!text)
        return RB_ERR_INVALID;
    size_t lower_len = 0;
    char *lower = rb_utf8_lower(text, len, &lower_len);
    if (!lower)
        return RB_ERR_NOMEM;
    struct term_list l = {0};
    enum rb_status st = RB_OK;
    char word[128];
    size_t i = 0;
    while (i < lower_len && st == RB_OK) {
        unsigned char c = (unsigned char)lower[i];
        if (c < 0x80 && (isalnum(c))) {
            /* ASCII word or number; numbers keep an inner '.' and drop ',' separators */
            size_t wl = 0;
            bool numeric = isdigit(c) != 0;
            while (i < lower_len) {
                unsigned char d = (unsigned char)lower[i];
                if (d < 0x80 && isalnum(d)) {
                    if (!isdigit(d))
                        numeric = false;
                } else if (numeric && (d == ',' || d == '.') && i + 1 < lower_len &&
                           isdigit((unsigned char)lower[i + 1])) {
                    if (d == ',') {
                        i++;
                        continue;
                    }
                } else if (d == '\'' || d == '-') {
                    /* "company's" -> company; "covid-19" -> covid, 19 */
                    break;
                } else {
                    break;
                }
                if (wl + 1 < sizeof word)
                    word[wl++] = (char)d;
                i++;
            }
            word[wl] = '\0';
            if (lower[i] == '\'' && i + 1 < lower_len && lower[i + 1] == 's')
                i += 2;
            /* trailing ".0" noise: "24.50" and "24.5" are the same figure */
            if (wl > 0 && !en_is_stop(word)) {
                wl = stem(word, wl);
                st = push_term(&l, word, wl);
            }
            continue;
        }
        uint32_t cp;
        int n = rb_utf8_decode(lower + i, lower_len - i, &cp);
        if (is_cjk_letter(cp)) {
            size_t start = i;
            while (i < lower_len) {
                int m = rb_utf8_decode(lower + i, lower_len - i, &cp);
                if (!is_cjk_letter(cp))
                    break;
                i += (size_t)m;
            }
            st = emit_cjk_run(&l, lower + start, i - start);
            continue;
        }
        i += (size_t)n;
    }
    free(lower);
    if (st != RB_OK) {
        for (size_t k = 0; k < l.n; k++)
            free(l.v[k]);
        free(l.v);
        return st;
    }
    out->term = l.v;
    out->n = l.n;
    return RB_OK;
}

void rb_answer_terms_free(struct rb_answer_terms *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->term[i]);
    free(t->term);
    t->term = NULL;
    t->n = 0;
}

/* -------------------------------------------------------------- sentences */

static const char *const abbrev[] = {"e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr",
                                     "no",  "fig", "inc", "ltd", "co", "corp", "u.s", "st",
                                     "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
                                     "sept", "oct", "nov", "dec", "approx", "al", "ref", "vol"};

/* Whether the '.' at text[i] ends an abbreviation like "e.g." or "Inc.". */
static bool is_abbrev(const char *text, size_t i)
{
    size_t j = i;
    while (j > 0 && (isalpha((unsigned char)text[j - 1]) || text[j - 1] == '.'))
        j--;
    size_t n = i - j;
    if (n == 0 || n > 6)
        return false;
    if (n == 1)
        return true; /* single initial: "J. Smith", "p. 4" */
    if (memchr(text + j, '.', n))
        return true; /* initialism: "U.K.", "e.g.", "i.e." */
    char w[8];
    for (size_t k = 0; k < n; k++)
        w[k] = (char)tolower((unsigned char)text[j + k]);
    w[n] = '\0';
    for (size_t k = 0; k < RB_ARRAY_LEN(abbrev); k++)
        if (strcmp(w, abbrev[k]) == 0)
            return true;
    return false;
}

static bool blank_span(const char *s, size_t a, size_t b)
{
    for (size_t i = a; i < b; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

struct span_list {
    size_t *v;
    size_t n, cap; /* n spans; v holds 2n */
};

static enum rb_status push_span(struct span_list *l, const char *text, size_t a, size_t b)
{
    while (a < b && isspace((unsigned char)text[a]))
        a++;
    while (b > a && isspace((unsigned char)text[b - 1]))
        b--;
    if (a >= b || blank_span(text, a, b))
        return RB_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        if (cap > ((size_t)1 << 24))
            return RB_ERR_TOO_LARGE;
        size_t *v = realloc(l->v, cap * 2 * sizeof *v);
        if (!v)
            return RB_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[2 * l->n] = a;
    l->v[2 * l->n + 1] = b;
    l->n++;
    return RB_OK;
}

enum rb_status rb_answer_split_sentences(const char *text, size_t len, size_t **spans, size_t *n)
{
    *spans = NULL;
    *n = 0;
    if (!text)
        return RB_ERR_INVALID;
    struct span_list l = {0};
    enum rb_status st = RB_OK;
    size_t start = 0, i = 0;
    while (i < len && st == RB_OK) {
        unsigned char c = (unsigned char)text[i];
        size_t cut = 0; /* byte index just past the sentence end, 0 = none */
        if (c == '\n') {
            /* A line break ends a sentence when the line is a table row, a
             * heading, or a blank line follows; inside a wrapped paragraph
             * (PDF text) a single newline is just a space. */
            size_t ls = start;
            bool pipe_row = memchr(text + ls, '|', i - ls) != NULL;
            bool blank_next = i + 1 < len && (text[i + 1] == '\n' || text[i + 1] == '\r');
            bool short_line = i - ls < 60 && (i == 0 || text[i - 1] != ',');
            if (pipe_row || blank_next || short_line || i + 1 >= len)
                cut = i + 1;
            else if (i + 1 < len && (text[i + 1] == '|' || text[i + 1] == '-' ||
                                     text[i + 1] == '*' || text[i + 1] == '#'))
                cut = i + 1;
        } else if (c == '.' || c == '!' || c == '?') {
            bool next_space = i + 1 >= len || isspace((unsigned char)text[i + 1]) ||
                              text[i + 1] == '"' || text[i + 1] == ')';
            if (c == '.' && i + 1 < len && isdigit((unsigned char)text[i + 1]))
                next_space = false;
            if (next_space && !(c == '.' && is_abbrev(text, i)))
                cut = i + 1;
        } else if (c >= 0x80) {
            uint32_t cp;
            int m = rb_utf8_decode(text + i, len - i, &cp);
            /* 。！？；and full-width ! ? ; */
            if (cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F || cp == 0xFF1B) {
                size_t e = i + (size_t)m;
                /* keep a closing quote with its sentence */
                uint32_t q;
                if (e < len) {
                    int qm = rb_utf8_decode(text + e, len - e, &q);
                    if (q == 0x201D || q == 0x300D || q == 0xFF09)
                        e += (size_t)qm;
                }
                cut = e;
            }
            i += (size_t)m;
            if (cut) {
                st = push_span(&l, text, start, cut);
                start = i = cut;
            }
            continue;
        }
        i++;
        if (cut) {
            st = push_span(&l, text, start, cut);
            start = cut;
        }
    }
    if (st == RB_OK && start < len)
        st = push_span(&l, text, start, len);
    if (st != RB_OK) {
        free(l.v);
        return st;
    }
    *spans = l.v;
    *n = l.n;
    return RB_OK;
}
