/* CLI: `ragbox tokenize` reproduces the shared tokenizer vectors from files and
 * stdin exactly (no newline stripping), adds BOS per the model's rule, and
 * `ragbox model info` describes models in text and JSON; errors exit non-zero. */
#include <sys/wait.h>

#include "check.h"
#include "ragbox/common.h"

#define SEP "\n__ggml_vocab_test__\n"

static const char *bin;
static const char *tmp;

/* Runs a shell command line; returns the exit status, stdout in *out (caller frees). */
static int run(const char *cmdline, char **out)
{
    char cmd[4096], outp[1024];
    snprintf(outp, sizeof outp, "%s/stdout", tmp);
    snprintf(cmd, sizeof cmd, "%s > '%s' 2> '%s/stderr'", cmdline, outp, tmp);
    int rc = system(cmd);
    size_t len;
    *out = NULL;
    if (rb_fs_read_file(outp, 1 << 24, out, &len) != RB_OK)
        *out = strdup("");
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static char *line_n(const char *text, size_t idx)
{
    const char *p = text;
    for (size_t i = 0; i < idx && p; i++)
        if ((p = strchr(p, '\n')))
            p++;
    if (!p)
        return strdup("");
    while (*p == ' ')
        p++;
    const char *e = strchr(p, '\n');
    return strndup(p, e ? (size_t)(e - p) : strlen(p));
}

static void vectors(const char *vocab, size_t max)
{
    char path[400], in_path[512], out_path[512];
    snprintf(path, sizeof path, "%s", check_shared("testvectors/tokenizer/"));
    snprintf(in_path, sizeof in_path, "%sggml-vocab-%s.gguf.inp", path, vocab);
    snprintf(out_path, sizeof out_path, "%sggml-vocab-%s.gguf.out", path, vocab);
    char *in = NULL, *want = NULL;
    size_t in_len, want_len;
    REQUIRE(rb_fs_read_file(in_path, 1 << 24, &in, &in_len) == RB_OK);
    REQUIRE(rb_fs_read_file(out_path, 1 << 24, &want, &want_len) == RB_OK);
    size_t pos = 0, idx = 0, done = 0;
    while (pos < in_len && done < max) {
        char *m = memmem(in + pos, in_len - pos, SEP, strlen(SEP));
        size_t end = m ? (size_t)(m - in) : in_len;
        /* every third string: includes the whitespace-only and newline cases */
        if (idx % 3 == 0 || idx < 12) {
            char f[1024];
            snprintf(f, sizeof f, "%s/input.txt", tmp);
            REQUIRE(rb_fs_write_atomic(f, in + pos, end - pos) == RB_OK);
            char cmd[2048];
            snprintf(cmd, sizeof cmd, "'%s' tokenize -m '%sggml-vocab-%s.gguf' --no-bos "
                     "--no-special '%s'", bin, path, vocab, f);
            char *out;
            CHECK_EQ_INT(run(cmd, &out), 0);
            char *exp = line_n(want, idx);
            size_t ol = strlen(out);
            CHECK_MSG(ol > 0 && out[ol - 1] == '\n', "%s #%zu: output not one line", vocab, idx);
            if (ol)
                out[ol - 1] = '\0';
            CHECK_MSG(strcmp(out, exp) == 0, "%s #%zu: got '%s' want '%s'", vocab, idx, out, exp);
            free(exp);
            free(out);
            done++;
        }
        idx++;
        if (!m)
            break;
        pos = end + strlen(SEP);
    }
    free(in);
    free(want);
}

int main(void)
{
    bin = getenv("RAGBOX_BIN");
    if (!bin || access(bin, X_OK) != 0)
        CHECK_SKIP("RAGBOX_BIN not built");
    tmp = check_tmpdir("cli-engine");
    vectors("llama-spm", 8);
    vectors("qwen2", 4);
    vectors("bert-bge", 6);

    char cmd[2048], *out;
    const char *spm = check_shared("testvectors/tokenizer/ggml-vocab-llama-spm.gguf");
    /* stdin, default BOS, text kept exactly (the trailing newline is a token) */
    snprintf(cmd, sizeof cmd, "printf 'Hello world\\n' | '%s' tokenize -m '%s' -", bin, spm);
    CHECK_EQ_INT(run(cmd, &out), 0);
    CHECK_STR(out, "1 15043 3186 13\n");
    free(out);
    snprintf(cmd, sizeof cmd, "printf '' | '%s' tokenize -m '%s'", bin, spm);
    CHECK_EQ_INT(run(cmd, &out), 0);
    CHECK_STR(out, "1\n");
    free(out);
    /* special markers: parsed by default, plain text with --no-special */
    const char *qwen = check_shared("models/fixtures/qwen2-64.q4_0.gguf");
    snprintf(cmd, sizeof cmd, "printf '<|im_start|>user' | '%s' tokenize -m '%s'", bin, qwen);
    CHECK_EQ_INT(run(cmd, &out), 0);
    CHECK(strncmp(out, "151644 ", 7) == 0);
    free(out);
    snprintf(cmd, sizeof cmd, "printf '<|im_start|>' | '%s' tokenize --no-special -m '%s'", bin,
             qwen);
    CHECK_EQ_INT(run(cmd, &out), 0);
    CHECK(strstr(out, "151644") == NULL && strlen(out) > 4);
    free(out);

    /* errors */
    snprintf(cmd, sizeof cmd, "'%s' tokenize -m /nonexistent.gguf /dev/null", bin);
    CHECK_EQ_INT(run(cmd, &out), 1);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize /dev/null", bin);
    CHECK_EQ_INT(run(cmd, &out), 2);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize -m '%s' /nonexistent.txt", bin, spm);
    CHECK_EQ_INT(run(cmd, &out), 1);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --help", bin);
    CHECK_EQ_INT(run(cmd, &out), 0);
    CHECK(strstr(out, "Usage: ragbox tokenize -m MODEL") != NULL);
    free(out);

    /* model info */
    snprintf(cmd, sizeof cmd, "'%s' model info '%s'", bin,
             check_shared("models/fixtures/llama-spm-256.q4_k_m.gguf"));
    CHECK_EQ_INT(run(cmd, &out), 0);
    CHECK(strstr(out, "architecture:    llama") && strstr(out, "q4_K") && strstr(out, "q6_K") &&
          strstr(out, "32000 tokens") && strstr(out, "context length:  2048"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' model info --json --hash '%s'", bin,
             check_shared("models/fixtures/qwen2-64.q4_0.gguf"));
    CHECK_EQ_INT(run(cmd, &out), 0);
    cJSON *j = NULL;
    struct rb_errmsg err;
    CHECK(rb_json_parse(out, strlen(out), 16, &j, &err) == RB_OK);
    if (j) {
        CHECK_STR(rb_json_str(j, "architecture"), "qwen2");
        CHECK_STR(rb_json_str(j, "chat_template"), "chatml");
        CHECK(strlen(rb_json_str(j, "sha256") ? rb_json_str(j, "sha256") : "") == 64);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "vocab");
        CHECK(rb_json_num(v, "n_tokens", 0) == 151936);
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "tensor_types")) == 3);
        cJSON_Delete(j);
    }
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' model info '%s'", bin,
             check_shared("models/fixtures/prompts.txt"));
    CHECK_EQ_INT(run(cmd, &out), 1);
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' model info --help", bin);
    CHECK_EQ_INT(run(cmd, &out), 0);
    CHECK(strstr(out, "Usage: ragbox model info") != NULL);
    free(out);
    return check_finish();
}
