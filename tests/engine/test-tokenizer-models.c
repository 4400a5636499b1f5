/* Every shared model's tokenizer reproduces the `tokens` of its *.ref.json for
 * each prompt (with the model's own BOS rule), and detokenizes them back to the
 * prompt text. Also checks special tokens and end-of-generation ids. */
#include <dirent.h>
#include <pthread.h>

#include "check.h"
#include "ragbox/engine.h"

static int n_models;

static void check_model(const char *dir, const char *name)
{
    char path[512], ref[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(ref, sizeof ref, "%s/%.*s.ref.json", dir, (int)(strlen(name) - 5), name);
    char *json = NULL;
    size_t jlen = 0;
    if (rb_fs_read_file(ref, 1 << 24, &json, &jlen) != RB_OK)
        return;
    cJSON *root = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_json_parse(json, jlen, 64, &root, &err) == RB_OK);
    struct rb_engine_tokenizer *tok = NULL;
    enum rb_status st = rb_engine_tokenizer_load(path, &tok, &err);
    CHECK_MSG(st == RB_OK, "%s: %s", name, err.text);
    if (st != RB_OK)
        goto out;
    n_models++;
    CHECK_EQ_INT(rb_engine_tokenizer_n_vocab(tok), (int)rb_json_num(root, "n_vocab", -1));
    const cJSON *prompts = cJSON_GetObjectItemCaseSensitive(root, "prompts");
    const cJSON *p;
    int n = 0;
    cJSON_ArrayForEach(p, prompts)
    {
        const char *text = rb_json_str(p, "text");
        bool add_special = rb_json_bool(p, "add_special", true);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(p, "tokens");
        REQUIRE(text && cJSON_IsArray(want));
        int32_t *ids = NULL;
        size_t nids = 0;
        CHECK(rb_engine_tokenize(tok, text, strlen(text),
                                 add_special ? RB_ENGINE_TOKENIZE_ADD_SPECIAL : 0, &ids,
                                 &nids) == RB_OK);
        bool same = (int)nids == cJSON_GetArraySize(want);
        for (size_t i = 0; same && i < nids; i++)
            same = ids[i] == (int32_t)cJSON_GetArrayItem(want, (int)i)->valuedouble;
        CHECK_MSG(same, "%s: prompt '%s' tokens differ", name, text);
        size_t count = 0;
        CHECK(rb_engine_token_count(tok, text, strlen(text),
                                    add_special ? RB_ENGINE_TOKENIZE_ADD_SPECIAL : 0,
                                    &count) == RB_OK &&
              count == nids);
        /* round trip (WordPiece lower-cases and re-spaces, so only the others) */
        if (rb_engine_tokenizer_type(tok) != RB_ENGINE_VOCAB_WPM) {
            char *back = NULL;
            size_t blen = 0;
            CHECK(rb_engine_detokenize(tok, ids, nids, RB_ENGINE_DETOKENIZE_REMOVE_SPECIAL, &back,
                                       &blen) == RB_OK);
            CHECK_MSG(back && strcmp(back, text) == 0, "%s: '%s' came back as '%s'", name, text,
                      back ? back : "(null)");
            free(back);
        }
        free(ids);
        n++;
    }
    CHECK(n >= 5);
    if (strcmp(rb_json_str(root, "kind") ? rb_json_str(root, "kind") : "", "generation") == 0)
        CHECK_MSG(rb_engine_token_is_eog(tok, rb_engine_token_eos(tok)), "%s: EOS not EOG", name);
    rb_engine_tokenizer_free(tok);
out:
    cJSON_Delete(root);
    free(json);
}

static void check_dir(const char *rel)
{
    const char *dir = check_shared(rel);
    DIR *d = opendir(dir);
    if (!d)
        CHECK_SKIP("no %s", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".gguf") == 0)
            check_model(dir, e->d_name);
    }
    closedir(d);
}

static void check_specials(void)
{
    struct rb_engine_tokenizer *tok = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_engine_tokenizer_load(check_shared("models/fixtures/qwen2-64.q4_0.gguf"), &tok,
                                     &err) == RB_OK);
    const char *chat = "<|im_start|>user\nHi<|im_end|>\n";
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(rb_engine_tokenize(tok, chat, strlen(chat), RB_ENGINE_TOKENIZE_PARSE_SPECIAL, &ids,
                             &n) == RB_OK);
    CHECK(n >= 5 && ids[0] == 151644 && ids[n - 2] == 151645);
    int32_t im_end = rb_engine_token_lookup(tok, "<|im_end|>", 10);
    CHECK_EQ_INT(im_end, 151645);
    CHECK(rb_engine_token_is_eog(tok, im_end));
    CHECK(rb_engine_token_attr(tok, im_end) & RB_ENGINE_TOKEN_ATTR_CONTROL);
    free(ids);
    /* without parse_special the markers are plain text */
    CHECK(rb_engine_tokenize(tok, chat, strlen(chat), 0, &ids, &n) == RB_OK);
    for (size_t i = 0; i < n; i++)
        CHECK(ids[i] != 151644 && ids[i] != 151645);
    free(ids);
    size_t plen = 0;
    const char *piece = rb_engine_token_piece(tok, im_end, false, &plen);
    CHECK(piece && plen == 0);
    piece = rb_engine_token_piece(tok, im_end, true, &plen);
    CHECK(piece && plen == 10 && memcmp(piece, "<|im_end|>", 10) == 0);
    CHECK(rb_engine_tokenizer_chat_template(tok) != NULL);
    rb_engine_tokenizer_free(tok);

    /* SPM: byte fallback pieces and BOS handling */
    REQUIRE(rb_engine_tokenizer_load(check_shared("models/real/stories260K.gguf"), &tok, &err) ==
            RB_OK);
    CHECK(rb_engine_tokenizer_add_bos(tok) && rb_engine_token_bos(tok) == 1);
    const char *t = "Zoë 😀";
    CHECK(rb_engine_tokenize(tok, t, strlen(t), RB_ENGINE_TOKENIZE_ADD_SPECIAL, &ids, &n) ==
          RB_OK);
    CHECK(n > 4 && ids[0] == 1);
    char *back = NULL;
    size_t blen;
    CHECK(rb_engine_detokenize(tok, ids, n, RB_ENGINE_DETOKENIZE_REMOVE_SPECIAL, &back, &blen) ==
          RB_OK);
    CHECK_STR(back, t);
    free(back);
    free(ids);
    int32_t bad = 100000;
    CHECK(rb_engine_detokenize(tok, &bad, 1, 0, &back, &blen) == RB_ERR_INVALID);
    rb_engine_tokenizer_free(tok);

    CHECK(rb_engine_tokenizer_load(check_shared("models/fixtures/prompts.txt"), &tok, &err) ==
          RB_ERR_FORMAT);
    CHECK(tok == NULL);
}

/* One tokenizer shared by several threads gives each the same ids as a lone caller. */
struct job {
    const struct rb_engine_tokenizer *tok;
    const char *text;
    const int32_t *want;
    size_t n_want;
    int bad;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    for (int r = 0; r < 20; r++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (rb_engine_tokenize(j->tok, j->text, strlen(j->text),
                               RB_ENGINE_TOKENIZE_ADD_SPECIAL | RB_ENGINE_TOKENIZE_PARSE_SPECIAL,
                               &ids, &n) != RB_OK ||
            n != j->n_want || memcmp(ids, j->want, n * sizeof *ids) != 0)
            j->bad++;
        free(ids);
    }
    return NULL;
}

static void check_threads(void)
{
    static const char *const models[] = {"models/fixtures/qwen2-64.q4_0.gguf",
                                         "models/fixtures/bert-bge-128.f16.gguf",
                                         "models/real/stories260K.gguf"};
    static const char *const texts[] = {
        "<|im_start|>user\nThe bank's Tier 1 capital ratio was 13.2%<|im_end|>",
        "根据《个人信息保护法》第四十七条，个人有权要求删除其个人信息。",
        "Patients with type 2 diabetes should have HbA1c measured every 3 to 6 months.",
        "  tabs\tand\nnewlines  and émojis 😀 "};
    for (size_t m = 0; m < RB_ARRAY_LEN(models); m++) {
        struct rb_engine_tokenizer *tok = NULL;
        struct rb_errmsg err;
        REQUIRE(rb_engine_tokenizer_load(check_shared(models[m]), &tok, &err) == RB_OK);
        struct job jobs[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            int32_t *ids = NULL;
            size_t n = 0;
            REQUIRE(rb_engine_tokenize(tok, texts[i], strlen(texts[i]),
                                       RB_ENGINE_TOKENIZE_ADD_SPECIAL |
                                           RB_ENGINE_TOKENIZE_PARSE_SPECIAL,
                                       &ids, &n) == RB_OK);
            jobs[i] = (struct job){tok, texts[i], ids, n, 0};
        }
        for (int i = 0; i < 4; i++)
            REQUIRE(pthread_create(&th[i], NULL, worker, &jobs[i]) == 0);
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            CHECK_MSG(jobs[i].bad == 0, "%s: thread %d saw %d different results", models[m], i,
                      jobs[i].bad);
            free((void *)jobs[i].want);
        }
        rb_engine_tokenizer_free(tok);
    }
}

int main(void)
{
    check_dir("models/fixtures");
    check_dir("models/real");
    CHECK(n_models >= 16);
    check_specials();
    check_threads();
    return check_finish();
}
