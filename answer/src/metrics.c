/* Evaluation metrics: recall@k, MRR, nDCG@10 and short-answer matching. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "answer-impl.h"

void rb_answer_rank_metrics(const bool *ranked, size_t n_ranked, size_t n_relevant,
                            struct rb_answer_ranking *out)
{
    memset(out, 0, sizeof *out);
    if (n_relevant == 0)
        return;
    size_t hits = 0;
    double dcg = 0;
    for (size_t i = 0; i < n_ranked; i++) {
        if (!ranked[i])
            continue;
        hits++;
        if (out->mrr == 0)
            out->mrr = 1.0 / (double)(i + 1);
        if (i < 10)
            dcg += 1.0 / log2((double)i + 2.0);
        for (size_t k = i + 1; k <= 20; k++)
            out->recall_at[k] = (double)(hits > n_relevant ? n_relevant : hits) /
                                (double)n_relevant;
    }
    double idcg = 0;
    for (size_t i = 0; i < n_relevant && i < 10; i++)
        idcg += 1.0 / log2((double)i + 2.0);
    out->ndcg10 = idcg > 0 ? dcg / idcg : 0;
    if (out->ndcg10 > 1)
        out->ndcg10 = 1;
}

/* Lower-case letters, digits and CJK characters only. Caller frees. */
static char *normalise(const char *s)
{
    size_t len = strlen(s), ll = 0;
    char *lower = rb_utf8_lower(s, len, &ll);
    if (!lower)
        return NULL;
    char *out = malloc(ll + 1);
    size_t o = 0;
    for (size_t i = 0; out && i < ll;) {
        uint32_t cp;
        int n = rb_utf8_decode(lower + i, ll - i, &cp);
        if ((cp < 0x80 && isalnum((int)cp)) || (cp >= 0x80 && rb_utf8_is_cjk(cp) &&
                                                !(cp >= 0x3000 && cp <= 0x303F) &&
                                                !(cp >= 0xFF00 && cp <= 0xFFEF)) ||
            (cp >= 0xC0 && cp < 0x3000)) {
            memcpy(out + o, lower + i, (size_t)n);
            o += (size_t)n;
        }
        i += (size_t)n;
    }
    if (out)
        out[o] = '\0';
    free(lower);
    return out;
}

/* All numbers in s ("1,234.5", "-3", "(2,727)" as 2727), up to max. */
static size_t numbers(const char *s, double *out, size_t max)
{
    size_t n = 0;
    for (const char *p = s; *p && n < max;) {
        if (isdigit((unsigned char)*p)) {
            char buf[64];
            size_t b = 0;
            bool neg = p > s && p[-1] == '-';
            while (*p && b + 1 < sizeof buf &&
                   (isdigit((unsigned char)*p) ||
                    ((*p == ',' || *p == '.') && isdigit((unsigned char)p[1])))) {
                if (*p != ',')
                    buf[b++] = *p;
                p++;
            }
            buf[b] = '\0';
            char *end;
            double v = strtod(buf, &end);
            out[n++] = neg ? -v : v;
        } else {
            p++;
        }
    }
    return n;
}

static bool is_figure(const char *g)
{
    /* "$1,234.5 million", "12.5%", "-3.2" : digits with only units around */
    bool digit = false;
    for (const char *p = g; *p; p++) {
        if (isdigit((unsigned char)*p))
            digit = true;
        else if (isalpha((unsigned char)*p)) {
            static const char *const units[] = {"million", "billion", "thousand", "percent",
                                                "m", "bn", "k", "usd", "rmb", "eur"};
            size_t w = 0;
            while (isalpha((unsigned char)p[w]))
                w++;
            bool unit = false;
            for (size_t u = 0; u < RB_ARRAY_LEN(units) && !unit; u++)
                unit = strlen(units[u]) == w && strncasecmp(p, units[u], w) == 0;
            if (!unit)
                return false;
            p += w - 1;
        }
    }
    return digit;
}

/* The verdict an answer states: 1 yes, 0 no, 2 maybe, -1 none. */
static int verdict(const char *a)
{
    char *n = rb_utf8_lower(a, strlen(a), &(size_t){0});
    if (!n)
        return -1;
    int v = -1;
    const char *p = n;
    while (*p && !isalnum((unsigned char)*p) && (unsigned char)*p < 0x80)
        p++;
    if (strncmp(p, "yes", 3) == 0)
        v = 1;
    else if (strncmp(p, "no", 2) == 0 && !isalpha((unsigned char)p[2]))
        v = 0;
    else if (strncmp(p, "maybe", 5) == 0)
        v = 2;
    else if (strncmp(p, "不是", 6) == 0 || strncmp(p, "否", 3) == 0 || strncmp(p, "没有", 6) == 0)
        v = 0;
    else if (strncmp(p, "是", 3) == 0 || strncmp(p, "对", 3) == 0 || strncmp(p, "有", 3) == 0)
        v = 1;
    else if (strstr(p, "answer is yes"))
        v = 1;
    else if (strstr(p, "answer is no"))
        v = 0;
    else if (strstr(p, "answer is maybe"))
        v = 2;
    free(n);
    return v;
}

int rb_answer_match_gold(const char *answer, const char *gold)
{
    if (!answer || !gold)
        return -1;
    size_t gl = strlen(gold);
    if (strcasecmp(gold, "yes") == 0)
        return verdict(answer) == 1;
    if (strcasecmp(gold, "no") == 0)
        return verdict(answer) == 0;
    if (strcasecmp(gold, "maybe") == 0)
        return verdict(answer) == 2;
    size_t words = 1;
    for (const char *p = gold; *p; p++)
        words += *p == ' ';
    if (words > 12 || rb_utf8_count(gold, gl) > 40)
        return -1;
    if (is_figure(gold)) {
        double g[4], a[256];
        size_t ng = numbers(gold, g, 4), na = numbers(answer, a, 256);
        if (ng == 0)
            return -1;
        for (size_t i = 0; i < na; i++) {
            double tol = fabs(g[0]) * 0.005;
            if (tol < 1e-9)
                tol = 1e-9;
            if (fabs(fabs(a[i]) - fabs(g[0])) <= tol)
                return 1;
        }
        return 0;
    }
    char *ng = normalise(gold), *na = normalise(answer);
    int r = ng && na && *ng ? strstr(na, ng) != NULL : -1;
    free(ng);
    free(na);
    return r;
}
