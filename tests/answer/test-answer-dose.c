/* The healthcare pack never passes on an invented dose: a generated answer
 * stating a dose that no cited source states (same number, same unit —
 * single digits included, which the figure check alone would miss) is
 * refused and withheld; the same answer quoting the source's dose is given
 * with the pack's disclaimer. Real abstract (PubMedQA), the real pack and
 * audit trail, generation over a loopback OpenAI-compatible server whose
 * model copies the sentence it is asked about from the prompt's sources, and
 * in "hallucinate" mode alters its dose, as a model might. */
#include <arpa/inet.h>

#include "check.h"

#include "openai-server.h"
#include "ragbox/answer.h"
#include "ragbox/index.h"

static const char *ALTER_FROM, *ALTER_TO; /* dose rewrite, NULL = faithful */

/* Answers with the sentence of the prompt's sources mentioning "midazolam". */
static bool copyist(void *user, const cJSON *req, struct rb_buf *pieces, size_t *ends,
                    size_t *n_pieces, size_t max, char *error, size_t esize)
{
    (void)user;
    const cJSON *msgs = cJSON_GetObjectItem(req, "messages");
    const cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
    const char *content = last ? rb_json_str(last, "content") : NULL;
    const char *hit = content ? strstr(content, "midazolam") : NULL;
    if (!hit) {
        snprintf(error, esize, "no source about midazolam in the prompt");
        return false;
    }
    const char *a = hit, *b = hit;
    while (a > content && a[-1] != '\n' && !(a[-1] == ' ' && a > content + 1 && a[-2] == '.'))
        a--;
    while (*b && *b != '\n' && !(b[0] == '.' && (b[1] == ' ' || b[1] == '\n' || !b[1])))
        b++;
    /* the label [n] of the block the sentence is in */
    const char *lab = a;
    while (lab > content && !(lab[0] == '[' && lab[-1] == '\n'))
        lab--;
    int label = lab[0] == '[' ? atoi(lab + 1) : 1;
    char *sentence = rb_strndup(a, (size_t)(b - a));
    while (*sentence == ' ')
        memmove(sentence, sentence + 1, strlen(sentence));
    char *alt = sentence;
    if (ALTER_FROM) {
        const char *at = strstr(sentence, ALTER_FROM);
        REQUIRE(at != NULL);
        alt = rb_asprintf("%.*s%s%s", (int)(at - sentence), sentence, ALTER_TO,
                          at + strlen(ALTER_FROM));
    }
    char *text = rb_asprintf("%s [%d].", alt, label);
    *n_pieces = 0;
    size_t len = strlen(text);
    for (size_t i = 0; i < len && *n_pieces < max;) {
        size_t j = i + 1;
        while (j < len && text[j] != ' ')
            j++;
        (void)!rb_buf_append(pieces, text + i, j - i);
        ends[(*n_pieces)++] = pieces->len;
        i = j;
    }
    if (alt != sentence)
        free(alt);
    free(sentence);
    free(text);
    return true;
}

int main(void)
{
    const char *doc = check_shared("eval/pubmedqa/docs/pmid-10456814.txt");
    char *text = NULL;
    size_t len = 0;
    if (rb_fs_read_file(doc, 1 << 20, &text, &len) != RB_OK)
        CHECK_SKIP("pmid-10456814.txt missing");
    const char *data = check_tmpdir("answer-dose");
    struct rb_index_options xo = {.data_dir = data};
    struct rb_index *idx = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_index_open(&xo, &idx, &err) == RB_OK);
    int64_t coll;
    REQUIRE(rb_index_collection_create(idx, "med", NULL, &coll) == RB_OK);
    /* one chunk per paragraph */
    struct rb_index_chunk ch[16];
    size_t n = 0;
    char *save = NULL;
    for (char *para = strtok_r(text, "\n", &save); para && n < 16; para = strtok_r(NULL, "\n", &save)) {
        if (!*para)
            continue;
        memset(&ch[n], 0, sizeof ch[n]);
        ch[n].text = para;
        ch[n].ordinal = (int32_t)n;
        n++;
    }
    struct rb_index_document d = {.collection_id = coll, .source = "pmid-10456814.txt",
                                  .title = "pmid-10456814.txt", .state = RB_INDEX_DOC_INDEXED};
    REQUIRE(rb_index_document_put(idx, &d, ch, n, NULL, NULL) == RB_OK);

    struct rb_answer_env_options eo = {.data_dir = data, .audit = true};
    struct rb_answer_env *env = NULL;
    REQUIRE(rb_answer_env_open(&eo, &env, &err) == RB_OK);
    struct oai_server srv = {.generate = copyist};
    if (!oai_server_start(&srv))
        CHECK_SKIP("cannot listen on loopback");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", srv.port);
    struct rb_answer_remote_options ro = {.base_url = url, .model = "copyist", .retries = 0,
                                          .context_tokens = 4096};
    struct rb_answer_backend *b = NULL;
    REQUIRE(rb_answer_backend_open_remote(&ro, &b, &err) == RB_OK);
    struct rb_answerer_options ao = {.index = idx, .backend = b};
    rb_answer_env_apply(env, &ao);
    struct rb_answerer *a = NULL;
    REQUIRE(rb_answerer_open(&ao, &a, &err) == RB_OK);
    const char *cols[] = {"med"};
    struct rb_answer_request rq = {
        .question = "What doses of sufentanil, midazolam and atracurium were used to induce "
                    "anesthesia in the desflurane study?",
        .collections = cols, .n_collections = 1, .vertical = "healthcare", .user = "nurse"};

    static const struct {
        const char *from, *to;
        bool refused;
    } cases[] = {
        {NULL, NULL, false},                     /* the source's doses: answered */
        {"midazolam 0.3 mg/kg", "midazolam 3 mg/kg", true},   /* single digit: refused */
        {"atracurium 0.5 mg/kg", "atracurium 0.5 g/kg", true}, /* unit changed: refused */
        {"midazolam 0.3 mg/kg", "midazolam 0.30 mg/kg", true}, /* not as the source says */
        {"midazolam 0.3 mg/kg", "midazolam 0.3 mg/kg (0.3 milligram per kilogram)", false},
    };
    for (size_t i = 0; i < RB_ARRAY_LEN(cases); i++) {
        ALTER_FROM = cases[i].from;
        ALTER_TO = cases[i].to;
        struct rb_answer_result r;
        CHECK_MSG(rb_answerer_ask(a, &rq, &r, &err) == RB_OK, "%s", err.text);
        CHECK_MSG(r.refused == cases[i].refused, "case %zu: %s / %s", i, r.answer,
                  r.withheld ? r.withheld : "");
        if (cases[i].refused) {
            CHECK_EQ_INT(r.refusal, RB_ANSWER_REFUSE_POLICY);
            CHECK(r.withheld && strstr(r.withheld, cases[i].to));
            CHECK(strstr(r.answer, cases[i].to) == NULL);
            CHECK_EQ_INT(r.n_citations, 0);
        } else {
            CHECK(strstr(r.answer, "0.3 mg/kg") && r.n_citations == 1);
            CHECK(strstr(r.answer, "not medical advice") || strstr(r.answer, "medical advice"));
        }
        CHECK(r.audit_id[0] != '\0');
        rb_answer_result_free(&r);
    }
    rb_answerer_close(a);
    rb_answer_backend_close(b);
    oai_server_stop(&srv);
    rb_answer_env_close(env);
    rb_index_close(idx);
    free(text);
    return check_finish();
}
