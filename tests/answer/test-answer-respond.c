/* The respond step on real documents: cited extractive answers in English
 * (PubMedQA abstract, TAT-QA report) and Chinese (CAIL2019 judgment), the
 * vertical's disclaimer, refusals in the question's language when evidence
 * is missing, and streaming of the final text. */
#include "check.h"

#include "ragbox/answer.h"

static char *slurp(const char *rel)
{
    char *d = NULL;
    size_t n = 0;
    return rb_fs_read_file(check_shared(rel), 1 << 24, &d, &n) == RB_OK ? d : NULL;
}

/* A passage array (owned by respond) from shared documents. */
static struct rb_answer_passage *passages(const char *const *rel, size_t n)
{
    struct rb_answer_passage *p = calloc(n, sizeof *p);
    for (size_t i = 0; i < n; i++) {
        p[i].chunk_id = (int64_t)(100 + i);
        p[i].document_id = (int64_t)(10 + i);
        p[i].document = rb_strdup(rb_path_basename(rel[i]));
        p[i].text = slurp(rel[i]);
        p[i].page = (int)i + 1;
        p[i].section = rb_strdup("Results");
        p[i].score = 1.0 / (double)(i + 1);
        REQUIRE(p[i].text != NULL);
    }
    return p;
}

struct sink {
    struct rb_buf b;
    int calls;
};

static bool on_piece(void *user, const char *piece, size_t len)
{
    struct sink *s = user;
    s->calls++;
    return rb_buf_append(&s->b, piece, len) == RB_OK;
}

static void test_en(void)
{
    const char *docs[] = {"eval/tatqa/docs/tatqa-001e29d7-77e9-4434-9a3d-f72ef640fa79.txt",
                          "eval/pubmedqa/docs/pmid-10135926.txt"};
    struct rb_answer_policy pol = {.min_evidence = 0.3,
                                   .disclaimer = "This is not medical advice."};
    struct sink s = {0};
    rb_buf_init(&s.b, 0);
    struct rb_answer_respond_options o = {
        .question = "How long did in-flight intubation take compared with the control setting?",
        .policy = &pol,
        .on_piece = on_piece,
        .stream_user = &s};
    struct rb_answer_result r = {0};
    struct rb_errmsg err;
    enum rb_status st = rb_answer_respond(&o, passages(docs, 2), 2, &r, &err);
    REQUIRE(st == RB_OK);
    CHECK(!r.refused);
    CHECK_STR(r.mode_used, "extractive");
    CHECK_EQ_INT(r.lang, RB_ANSWER_LANG_EN);
    CHECK_MSG(strstr(r.answer, "25.9") != NULL, "answer: %s", r.answer);
    CHECK(strstr(r.answer, "[1]") != NULL);
    CHECK(strstr(r.answer, "This is not medical advice.") != NULL);
    REQUIRE(r.n_citations >= 1);
    CHECK_STR(r.citation[0].document, "pmid-10135926.txt");
    CHECK_EQ_INT(r.citation[0].page, 2);
    CHECK_EQ_INT(r.citation[0].chunk_id, 101);
    CHECK(strstr(r.citation[0].text, "helicopter") != NULL);
    CHECK(r.evidence >= 0.3);
    CHECK_EQ_INT(s.calls, 1);
    CHECK_STR(s.b.data, r.answer);
    cJSON *j = rb_answer_result_json(&r, true);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "refused")));
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "citations")) == (int)r.n_citations);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "retrieved")) == 2);
    cJSON_Delete(j);
    rb_answer_result_free(&r);
    rb_buf_free(&s.b);

    /* the same documents cannot answer a finance question about another company */
    memset(&r, 0, sizeof r);
    o.question = "What was Apple's iPhone revenue in fiscal 2022?";
    o.on_piece = NULL;
    REQUIRE(rb_answer_respond(&o, passages(docs, 2), 2, &r, &err) == RB_OK);
    CHECK(r.refused);
    CHECK_EQ_INT(r.refusal, RB_ANSWER_REFUSE_NO_EVIDENCE);
    CHECK_EQ_INT(r.n_citations, 0);
    CHECK(strstr(r.answer, "evidence") != NULL);
    CHECK(strstr(r.answer, "medical advice") == NULL); /* no disclaimer on a refusal */
    rb_answer_result_free(&r);

    /* nothing retrieved at all */
    memset(&r, 0, sizeof r);
    REQUIRE(rb_answer_respond(&o, NULL, 0, &r, &err) == RB_OK);
    CHECK(r.refused);
    rb_answer_result_free(&r);

    /* generation without a model is a configuration error, not a guess */
    memset(&r, 0, sizeof r);
    o.mode = RB_ANSWER_MODE_GENERATE;
    CHECK(rb_answer_respond(&o, NULL, 0, &r, &err) == RB_ERR_CONFIG);
    CHECK(strstr(err.text, "--extractive") != NULL);
    rb_answer_result_free(&r);
}

static void test_zh(void)
{
    /* find the CAIL2019 case of question cail2019-874_3 */
    const char *docs[] = {"eval/cail2019-zh/docs/cail2019-874.txt",
                          "eval/cail2019-zh/docs/cail2019-875.txt"};
    char *probe = slurp(docs[0]);
    if (!probe)
        CHECK_SKIP("cail2019 documents missing");
    free(probe);
    struct rb_answer_policy pol = {.min_evidence = 0.4};
    struct rb_answer_respond_options o = {.question = "被告人如何进入被告人家中?",
                                          .policy = &pol};
    struct rb_answer_result r = {0};
    struct rb_errmsg err;
    REQUIRE(rb_answer_respond(&o, passages(docs, 2), 2, &r, &err) == RB_OK);
    CHECK(!r.refused);
    CHECK_EQ_INT(r.lang, RB_ANSWER_LANG_ZH);
    CHECK_MSG(strstr(r.answer, "破门而入") != NULL, "answer: %s", r.answer);
    CHECK(strstr(r.answer, "[1]") != NULL);
    REQUIRE(r.n_citations >= 1);
    CHECK_STR(r.citation[0].document, "cail2019-874.txt");
    rb_answer_result_free(&r);

    /* a question the judgments do not answer: refusal in Chinese */
    memset(&r, 0, sizeof r);
    o.question = "2019年苹果公司iPhone的营业收入是多少？";
    REQUIRE(rb_answer_respond(&o, passages(docs, 2), 2, &r, &err) == RB_OK);
    CHECK(r.refused);
    CHECK_EQ_INT(r.lang, RB_ANSWER_LANG_ZH);
    CHECK(rb_answer_detect_lang(r.answer, strlen(r.answer)) == RB_ANSWER_LANG_ZH);
    rb_answer_result_free(&r);
}

int main(void)
{
    test_en();
    test_zh();
    return check_finish();
}
