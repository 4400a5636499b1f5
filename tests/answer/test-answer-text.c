/* Unit tests of the answer path's building blocks on real text: language
 * detection, terms, sentences, extractive selection, packing, citations,
 * refusal texts. Passages come from the shared eval documents. */
#include "check.h"

#include "ragbox/answer.h"

static bool has_term(const struct rb_answer_terms *t, const char *w)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->term[i], w) == 0)
            return true;
    return false;
}

static char *read_shared(const char *rel)
{
    char *data = NULL;
    size_t len = 0;
    if (rb_fs_read_file(check_shared(rel), 1 << 22, &data, &len) != RB_OK)
        return NULL;
    return data;
}

static void test_lang(void)
{
    const char *en = "What was the total revenue in 2019?";
    const char *zh = "被告人如何进入被告人家中?";
    const char *mixed = "请问 Apple 公司 2019 年的收入是多少？";
    CHECK_EQ_INT(rb_answer_detect_lang(en, strlen(en)), RB_ANSWER_LANG_EN);
    CHECK_EQ_INT(rb_answer_detect_lang(zh, strlen(zh)), RB_ANSWER_LANG_ZH);
    CHECK_EQ_INT(rb_answer_detect_lang(mixed, strlen(mixed)), RB_ANSWER_LANG_ZH);
    CHECK_EQ_INT(rb_answer_detect_lang("", 0), RB_ANSWER_LANG_EN);
    CHECK_STR(rb_answer_lang_code(RB_ANSWER_LANG_ZH), "zh");
}

static void test_terms(void)
{
    struct rb_answer_terms t;
    const char *q = "What was the company's revenue of $1,234.50 million in FY2019?";
    REQUIRE(rb_answer_terms_extract(q, strlen(q), &t) == RB_OK);
    CHECK(has_term(&t, "company"));
    CHECK(has_term(&t, "revenu")); /* stemmed */
    CHECK(has_term(&t, "1234.50"));
    CHECK(has_term(&t, "fy2019"));
    CHECK(!has_term(&t, "what"));
    CHECK(!has_term(&t, "the"));
    rb_answer_terms_free(&t);

    const char *zh = "被告人如何进入被告人家中";
    REQUIRE(rb_answer_terms_extract(zh, strlen(zh), &t) == RB_OK);
    CHECK(has_term(&t, "被告"));
    CHECK(has_term(&t, "告人"));
    CHECK(has_term(&t, "进入"));
    CHECK(!has_term(&t, "如何"));
    CHECK(!has_term(&t, "何进")); /* 如何 is a question word, removed before bigramming */
    rb_answer_terms_free(&t);

    /* malformed UTF-8 is handled, not a crash */
    const char bad[] = "abc \xff\xfe \xe4\xb8 def";
    REQUIRE(rb_answer_terms_extract(bad, sizeof bad - 1, &t) == RB_OK);
    CHECK(has_term(&t, "abc") && has_term(&t, "def"));
    rb_answer_terms_free(&t);
}

static void test_sentences(void)
{
    const char *en = "Revenue rose 3.5% to $24.9m, e.g. in the U.K. market. Costs fell! Why? "
                     "Because.\nTotal | 24.9 | 25.4\nUK | 24.5 | 24.9";
    size_t *sp = NULL, n = 0;
    REQUIRE(rb_answer_split_sentences(en, strlen(en), &sp, &n) == RB_OK);
    CHECK_EQ_INT(n, 6);
    if (n >= 1)
        CHECK(strncmp(en + sp[0], "Revenue rose 3.5% to $24.9m, e.g. in the U.K. market.",
                      sp[1] - sp[0]) == 0);
    if (n >= 6)
        CHECK(strncmp(en + sp[10], "UK | 24.5 | 24.9", sp[11] - sp[10]) == 0);
    free(sp);
    const char *zh = "被告人黄某持铁锤破门而入。随后离开！是否赔偿？";
    REQUIRE(rb_answer_split_sentences(zh, strlen(zh), &sp, &n) == RB_OK);
    CHECK_EQ_INT(n, 3);
    if (n == 3)
        CHECK(strncmp(zh + sp[0], "被告人黄某持铁锤破门而入。", sp[1] - sp[0]) == 0);
    free(sp);
}

static void test_extract_en(void)
{
    char *doc = read_shared("eval/tatqa/docs/tatqa-001e29d7-77e9-4434-9a3d-f72ef640fa79.txt");
    if (!doc)
        CHECK_SKIP("tatqa document missing");
    char other[] = "The Group's pension scheme was closed to new members in 2012. The trustees "
                   "meet quarterly to review investments.";
    struct rb_answer_passage p[2] = {{0}};
    p[0].chunk_id = 11;
    p[0].text = other;
    p[1].chunk_id = 12;
    p[1].text = doc;
    struct rb_answer_extract ex;
    const char *q = "What was the maximum exposure to credit risk at 31 March 2019?";
    REQUIRE(rb_answer_extract(q, p, 2, NULL, &ex) == RB_OK);
    REQUIRE(ex.n >= 1);
    CHECK_EQ_INT(ex.sentence[0].passage, 1);
    CHECK_MSG(strstr(ex.sentence[0].text, "59.1m") != NULL, "best: %s", ex.sentence[0].text);
    CHECK(ex.best_coverage > 0.8);
    rb_answer_extract_free(&ex);

    /* a question about something absent: low coverage */
    const char *off = "Is oral endotracheal intubation impaired in a helicopter?";
    REQUIRE(rb_answer_extract(off, p, 2, NULL, &ex) == RB_OK);
    CHECK_MSG(ex.best_coverage < 0.2, "coverage %g", ex.best_coverage);
    rb_answer_extract_free(&ex);
    free(doc);
}

static void test_extract_zh(void)
{
    char a[] = "平阳县人民检察院指控：2015年7月12日凌晨1时许，被告人黄某、金某经预谋，窜至周某家中，"
               "持铁锤破门而入，损毁门窗、玻璃等物品。被告人金某于2016年1月被抓获。";
    char b[] = "原告诉称，双方于2014年签订房屋租赁合同，约定月租金3000元。";
    struct rb_answer_passage p[2] = {{0}};
    p[0].chunk_id = 1;
    p[0].text = b;
    p[1].chunk_id = 2;
    p[1].text = a;
    struct rb_answer_extract ex;
    const char *q = "被告人如何进入周某家中?";
    REQUIRE(rb_answer_extract(q, p, 2, NULL, &ex) == RB_OK);
    REQUIRE(ex.n >= 1);
    CHECK_EQ_INT(ex.sentence[0].passage, 1);
    CHECK_MSG(strstr(ex.sentence[0].text, "破门而入") != NULL, "best: %s", ex.sentence[0].text);
    rb_answer_extract_free(&ex);
}

static void test_pack(void)
{
    char t1[] = "Revenue was $10m in 2019.";
    char t2[] = "Revenue was $10m in 2019."; /* duplicate text, other chunk */
    char t3[] = "Costs were $4m in 2019, mostly staff.";
    char d1[] = "report.pdf", s1[] = "Results";
    struct rb_answer_passage p[3] = {{0}};
    p[0] = (struct rb_answer_passage){.chunk_id = 1, .document = d1, .page = 3, .section = s1,
                                      .text = t1};
    p[1] = (struct rb_answer_passage){.chunk_id = 2, .document = d1, .page = 4, .text = t2};
    p[2] = (struct rb_answer_passage){.chunk_id = 3, .document = d1, .text = t3};
    struct rb_answer_packed pk;
    REQUIRE(rb_answer_pack(p, 3, 1000, NULL, NULL, &pk) == RB_OK);
    CHECK_EQ_INT(pk.n_labels, 2);
    CHECK_EQ_INT(pk.n_dropped, 1);
    CHECK(strstr(pk.context, "[1] report.pdf p. 3 \xC2\xA7Results\nRevenue was $10m") != NULL);
    CHECK(strstr(pk.context, "[2] report.pdf\nCosts were") != NULL);
    CHECK_EQ_INT(pk.passage_of[1], 2);
    rb_answer_packed_free(&pk);
    /* a budget too small for anything */
    REQUIRE(rb_answer_pack(p, 3, 5, NULL, NULL, &pk) == RB_OK);
    CHECK_EQ_INT(pk.n_labels, 0);
    rb_answer_packed_free(&pk);
    /* truncation on a sentence boundary within the budget */
    char *doc = read_shared("eval/pubmedqa/docs/pmid-10135926.txt");
    if (doc) {
        struct rb_answer_passage big = {.chunk_id = 9, .document = d1, .text = doc};
        REQUIRE(rb_answer_pack(&big, 1, 250, NULL, NULL, &pk) == RB_OK);
        CHECK_EQ_INT(pk.n_labels, 1);
        CHECK(pk.tokens <= 250);
        size_t cl = strlen(pk.context);
        CHECK(cl > 200 && cl < strlen(doc));
        CHECK(pk.context[cl - 2] == '.');
        rb_answer_packed_free(&pk);
        free(doc);
    }
}

static void test_citations(void)
{
    int *l = NULL;
    size_t n = 0, bad = 0;
    REQUIRE(rb_answer_parse_citations("Revenue was $10m [2]. Costs [1, 3][2] and [4-5] [x] "
                                      "[12] a[b]",
                                      5, &l, &n, &bad) == RB_OK);
    CHECK_EQ_INT(n, 5);
    if (n == 5) {
        CHECK_EQ_INT(l[0], 2);
        CHECK_EQ_INT(l[1], 1);
        CHECK_EQ_INT(l[2], 3);
        CHECK_EQ_INT(l[3], 4);
        CHECK_EQ_INT(l[4], 5);
    }
    CHECK_EQ_INT(bad, 1); /* [12] */
    free(l);
    REQUIRE(rb_answer_parse_citations("被告人持铁锤破门而入【1】【2，3】。", 3, &l, &n, &bad) ==
            RB_OK);
    CHECK_EQ_INT(n, 3);
    free(l);
    REQUIRE(rb_answer_parse_citations("No citations here.", 3, &l, &n, &bad) == RB_OK);
    CHECK_EQ_INT(n, 0);
    free(l);
    REQUIRE(rb_answer_parse_citations("[", 3, &l, &n, &bad) == RB_OK);
    CHECK_EQ_INT(n, 0);
    free(l);
}

static void test_refusal(void)
{
    const char *en = rb_answer_refusal_text(RB_ANSWER_REFUSE_NO_EVIDENCE, RB_ANSWER_LANG_EN);
    const char *zh = rb_answer_refusal_text(RB_ANSWER_REFUSE_NO_EVIDENCE, RB_ANSWER_LANG_ZH);
    CHECK(rb_answer_detect_lang(en, strlen(en)) == RB_ANSWER_LANG_EN);
    CHECK(rb_answer_detect_lang(zh, strlen(zh)) == RB_ANSWER_LANG_ZH);
    CHECK_STR(rb_answer_refusal_name(RB_ANSWER_REFUSE_UNCITED), "uncited");
}

static void test_metrics(void)
{
    struct rb_answer_ranking m;
    bool r1[] = {false, false, true, false};
    rb_answer_rank_metrics(r1, 4, 1, &m);
    CHECK_NEAR(m.mrr, 1.0 / 3, 1e-9);
    CHECK_NEAR(m.recall_at[1], 0, 1e-9);
    CHECK_NEAR(m.recall_at[3], 1, 1e-9);
    CHECK_NEAR(m.recall_at[10], 1, 1e-9);
    CHECK_NEAR(m.ndcg10, 0.5, 1e-9); /* 1/log2(4) */
    bool r2[] = {true, false, true};
    rb_answer_rank_metrics(r2, 3, 2, &m);
    CHECK_NEAR(m.recall_at[1], 0.5, 1e-9);
    CHECK_NEAR(m.recall_at[3], 1, 1e-9);
    CHECK_NEAR(m.ndcg10, (1 + 0.5) / (1 + 1 / log2(3)), 1e-9);
    rb_answer_rank_metrics(r2, 0, 1, &m);
    CHECK_NEAR(m.mrr, 0, 1e-9);

    CHECK_EQ_INT(rb_answer_match_gold("Yes, intubation took twice as long [1].", "yes"), 1);
    CHECK_EQ_INT(rb_answer_match_gold("No. The difference was not significant [2].", "yes"), 0);
    CHECK_EQ_INT(rb_answer_match_gold("No. The difference was not significant [2].", "no"), 1);
    CHECK_EQ_INT(rb_answer_match_gold("Nothing was found.", "no"), 0);
    CHECK_EQ_INT(rb_answer_match_gold("是的，被告人承认。", "YES"), 1);
    CHECK_EQ_INT(rb_answer_match_gold("Revenue was $1,577.0 million in FY2018 [1].", "$1577.00"), 1);
    CHECK_EQ_INT(rb_answer_match_gold("The change was (2,727) thousand.", "-2727"), 1);
    CHECK_EQ_INT(rb_answer_match_gold("Revenue was $1,600 million.", "$1577.00"), 0);
    CHECK_EQ_INT(rb_answer_match_gold("被告人持铁锤破门而入【1】。", "持铁锤破门而入"), 1);
    CHECK_EQ_INT(rb_answer_match_gold("He left by car.", "持铁锤破门而入"), 0);
    CHECK_EQ_INT(rb_answer_match_gold("x", "a very long gold answer that goes on and on with more "
                                           "than twelve words in it for sure"),
                 -1);
}

int main(void)
{
    test_metrics();
    test_lang();
    test_terms();
    test_sentences();
    test_extract_en();
    test_extract_zh();
    test_pack();
    test_citations();
    test_refusal();
    return check_finish();
}
