/* The unigram ("t5") tokenizer against SentencePiece itself: a unigram model is trained
 * here with Debian's spm_train (default nmt_nfkc normalisation, so its real
 * precompiled charsmap) on shared English / Chinese / multilingual text; the .model
 * protobuf is converted to a GGUF vocabulary as llama.cpp's converter does (pieces,
 * scores, types, charsmap, add_dummy_prefix, remove_extra_whitespaces); and every
 * test line must tokenize to exactly the ids spm_encode gives. Skipped (77) when the
 * sentencepiece tools are absent (scripts/setup.sh installs them). */
#include "check.h"
#include "gguf.h"
#include "ragbox/engine.h"

/* ---- minimal protobuf reading (wire format) */
static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int sh = 0; sh < 64 && *p < end; sh += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7F) << sh;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* next field: number, wire type, and for length-delimited the bytes */
static bool field(const uint8_t **p, const uint8_t *end, uint32_t *num, int *wt,
                  const uint8_t **data, size_t *len, uint64_t *val)
{
    uint64_t key;
    if (*p >= end || !varint(p, end, &key))
        return false;
    *num = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0:
        return varint(p, end, val);
    case 1:
        if (end - *p < 8)
            return false;
        *data = *p;
        *p += 8;
        return true;
    case 2: {
        uint64_t l;
        if (!varint(p, end, &l) || l > (uint64_t)(end - *p))
            return false;
        *data = *p;
        *len = (size_t)l;
        *p += l;
        return true;
    }
    case 5:
        if (end - *p < 4)
            return false;
        *data = *p;
        *p += 4;
        return true;
    default:
        return false;
    }
}

struct spm_model {
    char **pieces;
    size_t *lens;
    float *scores;
    int32_t *types;
    size_t n, cap;
    const uint8_t *charsmap;
    size_t charsmap_len;
    bool add_dummy_prefix, remove_extra_ws;
};

static bool parse_model(const uint8_t *buf, size_t len, struct spm_model *m)
{
    m->add_dummy_prefix = m->remove_extra_ws = true; /* proto defaults */
    const uint8_t *p = buf, *end = buf + len;
    uint32_t num;
    int wt;
    const uint8_t *d = NULL;
    size_t dl = 0;
    uint64_t v;
    while (p < end) {
        if (!field(&p, end, &num, &wt, &d, &dl, &v))
            return false;
        if (num == 1 && wt == 2) {
            if (m->n == m->cap) {
                m->cap = m->cap ? m->cap * 2 : 1024;
                m->pieces = realloc(m->pieces, m->cap * sizeof *m->pieces);
                m->lens = realloc(m->lens, m->cap * sizeof *m->lens);
                m->scores = realloc(m->scores, m->cap * sizeof *m->scores);
                m->types = realloc(m->types, m->cap * sizeof *m->types);
            }
            const uint8_t *q = d, *qe = d + dl;
            m->pieces[m->n] = NULL;
            m->lens[m->n] = 0;
            m->scores[m->n] = 0;
            m->types[m->n] = 1;
            while (q < qe) {
                const uint8_t *fd = NULL;
                size_t fl = 0;
                if (!field(&q, qe, &num, &wt, &fd, &fl, &v))
                    return false;
                if (num == 1 && wt == 2) {
                    m->pieces[m->n] = strndup((const char *)fd, fl);
                    m->lens[m->n] = fl;
                } else if (num == 2 && wt == 5) {
                    memcpy(&m->scores[m->n], fd, 4);
                } else if (num == 3 && wt == 0) {
                    m->types[m->n] = (int32_t)v;
                }
            }
            if (!m->pieces[m->n])
                return false;
            m->n++;
        } else if (num == 3 && wt == 2) {
            const uint8_t *q = d, *qe = d + dl;
            while (q < qe) {
                const uint8_t *fd = NULL;
                size_t fl = 0;
                if (!field(&q, qe, &num, &wt, &fd, &fl, &v))
                    return false;
                if (num == 2 && wt == 2) {
                    m->charsmap = fd;
                    m->charsmap_len = fl;
                } else if (num == 3 && wt == 0) {
                    m->add_dummy_prefix = v != 0;
                } else if (num == 4 && wt == 0) {
                    m->remove_extra_ws = v != 0;
                }
            }
        }
    }
    return m->n > 0;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        fclose(f);
        return NULL;
    }
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static const char *EXTRA[] = {
    "\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93 full width",
    "  leading   and   inner   spaces  ",
    "tab\tseparated\tcolumns",
    "\xef\xac\x81nance of\xc2\xa0the \xe2\x91\xa0 item",
    "emoji \xf0\x9f\x98\x80 and \xe2\x82\xac 12,345.67 USD",
    "\xe4\xb8\xad\xe5\x8d\x8e\xe4\xba\xba\xe6\xb0\x91\xe5\x85\xb1\xe5\x92\x8c\xe5\x9b\xbd "
    "2024\xe5\xb9\xb4",
    "caf\xc3\xa9 vs cafe\xcc\x81 (NFC vs NFD)",
    "x",
};

int main(void)
{
    if (access("/usr/bin/spm_train", X_OK) != 0 || access("/usr/bin/spm_encode", X_OK) != 0)
        CHECK_SKIP("sentencepiece tools (spm_train, spm_encode) not installed");
    const char *dir = check_tmpdir("engine-tokenizer-spm-ref");
    const char *domain = check_shared("testvectors/tokenizer/domain.inp");
    const char *udhr = check_shared("docs/txt/UDHR_first_article_all.txt");
    struct stat sb;
    if (stat(domain, &sb) != 0 || stat(udhr, &sb) != 0)
        CHECK_SKIP("shared texts not found");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cat '%s' '%s' > '%s/train.txt' && spm_train --input='%s/train.txt' "
             "--model_prefix='%s/m' --vocab_size=3000 --model_type=unigram "
             "--character_coverage=0.98 --num_threads=2 --minloglevel=2 >/dev/null 2>&1",
             domain, udhr, dir, dir, dir);
    REQUIRE(system(cmd) == 0);

    /* test lines: the domain set, every 7th UDHR line, the edge cases */
    char lines_path[600];
    snprintf(lines_path, sizeof lines_path, "%s/lines.txt", dir);
    FILE *lf = fopen(lines_path, "w");
    REQUIRE(lf);
    size_t len;
    char *txt = slurp(domain, &len);
    REQUIRE(txt);
    fputs(txt, lf);
    if (len && txt[len - 1] != '\n')
        fputc('\n', lf);
    free(txt);
    txt = slurp(udhr, &len);
    REQUIRE(txt);
    int ln = 0;
    for (char *s = strtok(txt, "\n"); s; s = strtok(NULL, "\n"))
        if (ln++ % 7 == 0 && *s)
            fprintf(lf, "%s\n", s);
    free(txt);
    for (size_t i = 0; i < sizeof EXTRA / sizeof EXTRA[0]; i++)
        fprintf(lf, "%s\n", EXTRA[i]);
    fclose(lf);
    snprintf(cmd, sizeof cmd,
             "spm_encode --model='%s/m.model' --output_format=id < '%s' > '%s/ids.txt'", dir,
             lines_path, dir);
    REQUIRE(system(cmd) == 0);

    /* .model -> GGUF */
    char model_path[600], gguf_path[600], ids_path[600];
    snprintf(model_path, sizeof model_path, "%s/m.model", dir);
    snprintf(gguf_path, sizeof gguf_path, "%s/m.gguf", dir);
    snprintf(ids_path, sizeof ids_path, "%s/ids.txt", dir);
    char *mbuf = slurp(model_path, &len);
    REQUIRE(mbuf);
    struct spm_model sm = {0};
    REQUIRE(parse_model((const uint8_t *)mbuf, len, &sm));
    CHECK(sm.charsmap_len > 1000); /* nmt_nfkc */
    int32_t unk = -1, eos = -1;
    for (size_t i = 0; i < sm.n; i++) {
        if (sm.types[i] == 2 && unk < 0)
            unk = (int32_t)i;
        if (strcmp(sm.pieces[i], "</s>") == 0)
            eos = (int32_t)i;
    }
    REQUIRE(unk >= 0 && eos >= 0);
    struct rb_gguf_writer *w = NULL;
    REQUIRE(rb_gguf_writer_create(&w) == RB_OK);
    REQUIRE(rb_gguf_writer_set_str(w, "general.architecture", "t5", 2) == RB_OK);
    REQUIRE(rb_gguf_writer_set_str(w, "tokenizer.ggml.model", "t5", 2) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)sm.pieces,
                                       sm.lens, sm.n) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.scores", RB_GGUF_TYPE_FLOAT32, sm.scores,
                                   sm.n) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", RB_GGUF_TYPE_INT32, sm.types,
                                   sm.n) == RB_OK);
    REQUIRE(rb_gguf_writer_set_arr(w, "tokenizer.ggml.precompiled_charsmap", RB_GGUF_TYPE_UINT8,
                                   sm.charsmap, sm.charsmap_len) == RB_OK);
    REQUIRE(rb_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", sm.add_dummy_prefix) ==
            RB_OK);
    REQUIRE(rb_gguf_writer_set_bool(w, "tokenizer.ggml.remove_extra_whitespaces",
                                    sm.remove_extra_ws) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk) == RB_OK);
    REQUIRE(rb_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos) == RB_OK);
    REQUIRE(rb_gguf_writer_write(w, gguf_path) == RB_OK);
    rb_gguf_writer_free(w);

    struct rb_engine_tokenizer *tok = NULL;
    struct rb_errmsg err = {{0}};
    REQUIRE(rb_engine_tokenizer_load(gguf_path, &tok, &err) == RB_OK);
    CHECK(rb_engine_tokenizer_type(tok) == RB_ENGINE_VOCAB_UGM);

    size_t ll, il;
    char *lines = slurp(lines_path, &ll), *ids = slurp(ids_path, &il);
    REQUIRE(lines && ids);
    char *ls = NULL, *is = NULL;
    char *line = strtok_r(lines, "\n", &ls), *idl = strtok_r(ids, "\n", &is);
    int n_lines = 0, n_bad = 0;
    size_t n_tokens = 0;
    while (line && idl) {
        int32_t *got = NULL;
        size_t ng = 0;
        CHECK(rb_engine_tokenize(tok, line, strlen(line), 0, &got, &ng) == RB_OK);
        char buf[16384] = "";
        size_t bl = 0;
        for (size_t i = 0; i < ng && bl + 16 < sizeof buf; i++)
            bl += (size_t)snprintf(buf + bl, sizeof buf - bl, i ? " %d" : "%d", got[i]);
        if (strcmp(buf, idl) != 0) {
            if (n_bad++ < 5)
                fprintf(stderr, "line %d '%s'\n  spm:  %s\n  ours: %s\n", n_lines, line, idl, buf);
        }
        n_tokens += ng;
        free(got);
        n_lines++;
        line = strtok_r(NULL, "\n", &ls);
        idl = strtok_r(NULL, "\n", &is);
    }
    fprintf(stderr, "%d lines, %zu tokens compared with SentencePiece\n", n_lines, n_tokens);
    CHECK_EQ_INT(n_bad, 0);
    CHECK(n_lines >= 40);
    free(lines);
    free(ids);
    rb_engine_tokenizer_free(tok);
    for (size_t i = 0; i < sm.n; i++)
        free(sm.pieces[i]);
    free(sm.pieces);
    free(sm.lens);
    free(sm.scores);
    free(sm.types);
    free(mbuf);
    return check_finish();
}
