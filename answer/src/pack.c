/* Context packing, source labels, citation parsing and refusal texts. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer-impl.h"

void rb_answer_passage_clear(struct rb_answer_passage *p)
{
    if (!p)
        return;
    free(p->document);
    free(p->doc_hash);
    free(p->collection);
    free(p->section);
    free(p->text);
    memset(p, 0, sizeof *p);
}

size_t rb__estimate_tokens(const char *text, size_t len)
{
    size_t n = 0, other = 0;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        int m = rb_utf8_decode(text + i, len - i, &cp);
        if (rb_utf8_is_cjk(cp))
            n++;
        else
            other += (size_t)m;
        i += (size_t)m;
    }
    return n + (other + 3) / 4;
}

char *rb_answer_source_label(const struct rb_answer_passage *p)
{
    struct rb_buf b;
    rb_buf_init(&b, 4096);
    enum rb_status st = rb_buf_append_str(&b, p->document && *p->document ? p->document
                                                                          : "(untitled)");
    if (st == RB_OK && p->page > 0)
        st = rb_buf_printf(&b, " p. %d", p->page);
    if (st == RB_OK && p->section && *p->section) {
        size_t sl = rb_utf8_truncate(p->section, strlen(p->section), 120);
        st = rb_buf_printf(&b, " \xC2\xA7%.*s", (int)sl, p->section);
    }
    if (st != RB_OK) {
        rb_buf_free(&b);
        return NULL;
    }
    return rb_buf_steal(&b);
}

/* -------------------------------------------------------------------- pack */

static size_t count_with(rb_answer_count_fn count, void *user, const char *t, size_t len)
{
    return count ? count(user, t, len) : rb__estimate_tokens(t, len);
}

/* Fraction of a's distinct terms that b also has. */
static double containment(const struct rb__termset *a, const struct rb__termset *b)
{
    if (!a->n)
        return 1;
    size_t inter = 0;
    for (size_t h = 0; h < a->cap; h++)
        if (a->slot[h] && rb__termset_count(b, a->slot[h]))
            inter++;
    return (double)inter / (double)a->n;
}

enum rb_status rb_answer_pack(const struct rb_answer_passage *passages, size_t n, size_t budget,
                              rb_answer_count_fn count, void *count_user,
                              struct rb_answer_packed *out)
{
    memset(out, 0, sizeof *out);
    struct rb_buf ctx;
    rb_buf_init(&ctx, 0);
    enum rb_status st = rb_buf_append(&ctx, "", 0);
    struct rb_answer_terms *terms = rb_calloc_array(n ? n : 1, sizeof *terms);
    struct rb__termset *sets = rb_calloc_array(n ? n : 1, sizeof *sets);
    size_t *kept = rb_calloc_array(n ? n : 1, sizeof *kept);
    out->passage_of = rb_calloc_array(n ? n : 1, sizeof *out->passage_of);
    if (!terms || !sets || !kept || !out->passage_of)
        st = RB_ERR_NOMEM;
    size_t n_kept = 0, used = 0;
    for (size_t i = 0; i < n && st == RB_OK; i++) {
        const struct rb_answer_passage *p = &passages[i];
        if (!p->text || !*p->text) {
            out->n_dropped++;
            continue;
        }
        /* duplicates: same chunk, or a passage whose terms are (almost) all in one kept */
        bool dup = false;
        for (size_t k = 0; k < n_kept && !dup; k++)
            dup = passages[kept[k]].chunk_id == p->chunk_id && p->chunk_id != 0;
        if ((st = rb_answer_terms_extract(p->text, strlen(p->text), &terms[i])) != RB_OK ||
            (st = rb__termset_init(&sets[i], &terms[i])) != RB_OK)
            break;
        for (size_t k = 0; k < n_kept && !dup; k++)
            dup = containment(&sets[i], &sets[kept[k]]) > 0.9 &&
                  containment(&sets[kept[k]], &sets[i]) > 0.9;
        if (dup) {
            out->n_dropped++;
            continue;
        }
        char *label = rb_answer_source_label(p);
        if (!label) {
            st = RB_ERR_NOMEM;
            break;
        }
        char head[64];
        snprintf(head, sizeof head, "[%zu] ", n_kept + 1);
        size_t head_tokens = count_with(count, count_user, head, strlen(head)) +
                             count_with(count, count_user, label, strlen(label)) + 2;
        size_t text_len = strlen(p->text);
        size_t text_tokens = count_with(count, count_user, p->text, text_len);
        if (used + head_tokens + text_tokens > budget) {
            size_t room = budget > used + head_tokens ? budget - used - head_tokens : 0;
            if (room < 200 || text_tokens == 0) {
                free(label);
                out->n_dropped++;
                continue;
            }
            /* cut on a sentence boundary within the room left (proportional estimate,
             * then shrink until it fits) */
            size_t cut = (size_t)((double)text_len * (double)room / (double)text_tokens);
            size_t *spans = NULL, ns = 0;
            if ((st = rb_answer_split_sentences(p->text, text_len, &spans, &ns)) != RB_OK) {
                free(label);
                break;
            }
            size_t best = 0;
            for (size_t s = 0; s < ns; s++)
                if (spans[2 * s + 1] <= cut)
                    best = spans[2 * s + 1];
            free(spans);
            while (best > 0 && count_with(count, count_user, p->text, best) > room)
                best = best * 3 / 4;
            best = rb_utf8_truncate(p->text, text_len, best);
            if (best == 0) {
                free(label);
                out->n_dropped++;
                continue;
            }
            text_len = best;
            text_tokens = count_with(count, count_user, p->text, best);
        }
        st = rb_buf_printf(&ctx, "%s%s%s\n%.*s\n", n_kept ? "\n" : "", head, label,
                           (int)text_len, p->text);
        free(label);
        if (st != RB_OK)
            break;
        used += head_tokens + text_tokens;
        kept[n_kept] = i;
        out->passage_of[n_kept] = i;
        n_kept++;
    }
    for (size_t i = 0; terms && sets && i < n; i++) {
        rb__termset_free(&sets[i]);
        rb_answer_terms_free(&terms[i]);
    }
    free(terms);
    free(sets);
    free(kept);
    if (st != RB_OK) {
        rb_buf_free(&ctx);
        rb_answer_packed_free(out);
        return st;
    }
    out->context = rb_buf_steal(&ctx);
    out->n_labels = n_kept;
    out->tokens = used;
    return RB_OK;
}

void rb_answer_packed_free(struct rb_answer_packed *p)
{
    if (!p)
        return;
    free(p->context);
    free(p->passage_of);
    memset(p, 0, sizeof *p);
}

/* --------------------------------------------------------------- citations */

static enum rb_status add_label(int **labels, size_t *n, size_t *cap, long v, size_t max_label,
                                size_t *invalid)
{
    if (v < 1 || (size_t)v > max_label) {
        (*invalid)++;
        return RB_OK;
    }
    for (size_t i = 0; i < *n; i++)
        if ((*labels)[i] == (int)v)
            return RB_OK;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        int *nl = realloc(*labels, c * sizeof *nl);
        if (!nl)
            return RB_ERR_NOMEM;
        *labels = nl;
        *cap = c;
    }
    (*labels)[(*n)++] = (int)v;
    return RB_OK;
}

/* Opening bracket at s: '[' or 【 (E3 80 90) or ［ (EF BC BB); returns its length. */
static size_t open_bracket(const char *s, size_t left)
{
    if (s[0] == '[')
        return 1;
    if (left >= 3 && memcmp(s, "\xE3\x80\x90", 3) == 0)
        return 3;
    if (left >= 3 && memcmp(s, "\xEF\xBC\xBB", 3) == 0)
        return 3;
    return 0;
}

static size_t close_bracket(const char *s, size_t left)
{
    if (s[0] == ']')
        return 1;
    if (left >= 3 && memcmp(s, "\xE3\x80\x91", 3) == 0)
        return 3;
    if (left >= 3 && memcmp(s, "\xEF\xBC\xBD", 3) == 0)
        return 3;
    return 0;
}

enum rb_status rb_answer_parse_citations(const char *answer, size_t max_label, int **labels,
                                         size_t *n, size_t *invalid)
{
    *labels = NULL;
    *n = 0;
    *invalid = 0;
    if (!answer)
        return RB_ERR_INVALID;
    size_t len = strlen(answer), cap = 0;
    for (size_t i = 0; i < len;) {
        size_t ob = open_bracket(answer + i, len - i);
        if (!ob) {
            i++;
            continue;
        }
        /* inside: digits separated by , ; - – and spaces; anything else = not a citation */
        size_t j = i + ob;
        long vals[64];
        char seps[64];
        size_t nv = 0;
        bool ok = true;
        size_t cb = 0;
        while (j < len && ok) {
            if ((cb = close_bracket(answer + j, len - j)) != 0)
                break;
            unsigned char ch = (unsigned char)answer[j];
            if (isdigit(ch)) {
                long v = 0;
                size_t d = 0;
                while (j < len && isdigit((unsigned char)answer[j]) && d < 6) {
                    v = v * 10 + (answer[j] - '0');
                    j++;
                    d++;
                }
                if (nv == 64 || (j < len && isdigit((unsigned char)answer[j]))) {
                    ok = false;
                    break;
                }
                seps[nv] = ',';
                vals[nv++] = v;
            } else if (ch == ',' || ch == ';' || ch == ' ') {
                j++;
            } else if (ch == '-' && nv > 0) {
                seps[nv - 1] = '-';
                j++;
            } else if (len - j >= 3 && (memcmp(answer + j, "\xE2\x80\x93", 3) == 0 ||
                                        memcmp(answer + j, "\xEF\xBC\x8C", 3) == 0 ||
                                        memcmp(answer + j, "\xE3\x80\x81", 3) == 0)) {
                if (memcmp(answer + j, "\xE2\x80\x93", 3) == 0 && nv > 0) /* en dash: a range */
                    seps[nv - 1] = '-';
                j += 3;
            } else {
                ok = false;
            }
        }
        if (!ok || !cb || nv == 0) {
            i += ob;
            continue;
        }
        for (size_t k = 0; k < nv; k++) {
            enum rb_status st;
            if (seps[k] == '-' && k + 1 < nv && vals[k + 1] >= vals[k] &&
                vals[k + 1] - vals[k] < 64) {
                for (long v = vals[k]; v <= vals[k + 1]; v++)
                    if ((st = add_label(labels, n, &cap, v, max_label, invalid)) != RB_OK)
                        goto fail;
                k++;
            } else if ((st = add_label(labels, n, &cap, vals[k], max_label, invalid)) != RB_OK) {
                goto fail;
            }
            continue;
        fail:
            free(*labels);
            *labels = NULL;
            *n = 0;
            return st;
        }
        i = j + cb;
    }
    return RB_OK;
}

/* ----------------------------------------------------------------- refusal */

const char *rb_answer_refusal_text(enum rb_answer_refusal reason, enum rb_answer_lang lang)
{
    bool zh = lang == RB_ANSWER_LANG_ZH;
    switch (reason) {
    case RB_ANSWER_REFUSE_NO_EVIDENCE:
        return zh ? "在可查阅的文档中没有找到足以回答该问题的依据，因此不作推测性回答。"
                  : "I could not find enough evidence in the documents you can access to "
                    "answer this question, so I will not guess.";
    case RB_ANSWER_REFUSE_UNCITED:
        return zh ? "生成的回答未能引用任何检索到的文档，无法核实，因此不予提供。请换一种问法或"
                    "缩小问题范围。"
                  : "The generated answer did not cite any of the retrieved documents, so it "
                    "cannot be verified and is withheld. Try rephrasing or narrowing the question.";
    case RB_ANSWER_REFUSE_POLICY:
        return zh ? "根据本系统的使用政策，无法回答该问题。"
                  : "This question cannot be answered under this system's usage policy.";
    case RB_ANSWER_REFUSE_NONE:
    default:
        return "";
    }
}

const char *rb_answer_refusal_name(enum rb_answer_refusal reason)
{
    switch (reason) {
    case RB_ANSWER_REFUSE_NO_EVIDENCE:
        return "no_evidence";
    case RB_ANSWER_REFUSE_UNCITED:
        return "uncited";
    case RB_ANSWER_REFUSE_POLICY:
        return "policy";
    case RB_ANSWER_REFUSE_NONE:
    default:
        return "none";
    }
}
