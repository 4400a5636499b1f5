/* The `ragbox` CLI forms relied on by external checks: collection create/list/
 * delete, index add (JSONL), search --json, index stats --json, index verify
 * exit codes (after corrupting things), index rebuild, and --help. */
#include <sys/wait.h>

#include "helpers.h"

static char g_data[4200];
static const char *g_bin;

/* Runs `ragbox --data DIR ARGS`, captures stdout (caller frees) and the exit code. */
static int run(const char *args, char **out)
{
    char cmd[16384], tmp[4400];
    snprintf(tmp, sizeof tmp, "%s/out.txt", g_data);
    snprintf(cmd, sizeof cmd, "'%s' --data '%s' %s > '%s' 2>>'%s/err.txt'", g_bin, g_data, args,
             tmp, g_data);
    int status = system(cmd);
    if (out) {
        size_t len;
        if (rb_fs_read_file(tmp, 64 << 20, out, &len) != RB_OK)
            *out = rb_strdup("");
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static cJSON *run_json(const char *args, int *rc)
{
    char *out;
    *rc = run(args, &out);
    cJSON *j = cJSON_Parse(out);
    if (!j)
        fprintf(stderr, "not JSON from %s:\n%s\n", args, out);
    free(out);
    return j;
}

int main(void)
{
    g_bin = getenv("RAGBOX_BIN");
    if (!g_bin || !file_exists(g_bin))
        CHECK_SKIP("RAGBOX_BIN not built");
    snprintf(g_data, sizeof g_data, "%s", check_tmpdir("cli"));
    char path[4400];
    /* JSONL input with English and Chinese text and 4-d embeddings. */
    snprintf(path, sizeof path, "%s/in.jsonl", g_data);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fputs("{\"source\":\"reports/annual.pdf\",\"title\":\"Annual report\",\"mime\":\"application/"
          "pdf\",\"chunks\":[{\"text\":\"Net interest income rose on higher rates\",\"page\":3,"
          "\"section\":\"Results\",\"embedding\":[1,0,0,0]},{\"text\":\"Credit impairment "
          "charges fell\",\"page\":4,\"embedding\":[0,1,0,0]}]}\n",
          f);
    fputs("{\"source\":\"https://intranet/policy/zh\",\"language\":\"zh\",\"chunks\":[{\"text\":"
          "\"中华人民共和国个人所得税法规定了综合所得的税率\",\"page\":1,\"embedding\":[0,0,1,0]}]}"
          "\n",
          f);
    fputs("\n{\"source\":\"memo.txt\",\"chunks\":[{\"text\":\"Board memo on liquidity\","
          "\"embedding\":[0,0,0,1]}]}\n",
          f);
    fclose(f);

    char *out;
    CHECK_EQ_INT(run("collection create finance", &out), 0);
    free(out);
    CHECK_EQ_INT(run("collection create finance", NULL), 1); /* exists */
    CHECK_EQ_INT(run("collection create 'bad name'", NULL), 1);
    CHECK_EQ_INT(run("collection create --dim 8 --factory HNSW16,Flat other", NULL), 0);
    char args[8192];
    snprintf(args, sizeof args, "index add --collection finance '%s'", path);
    CHECK_EQ_INT(run(args, &out), 0);
    CHECK(strstr(out, "added 3 documents") != NULL);
    free(out);

    int rc;
    cJSON *j = run_json("search --collection finance --json -k 5 'interest income'", &rc);
    CHECK_EQ_INT(rc, 0);
    REQUIRE(cJSON_IsArray(j) && cJSON_GetArraySize(j) >= 1);
    cJSON *h = cJSON_GetArrayItem(j, 0);
    CHECK_STR(rb_json_str(h, "document"), "reports/annual.pdf");
    CHECK_EQ_INT(rb_json_num(h, "page", -1), 3);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(h, "chunk_id")));
    CHECK(cJSON_IsNumber(cJSON_GetObjectItem(h, "score")));
    CHECK(strstr(rb_json_str(h, "text"), "Net interest income") != NULL);
    CHECK_STR(rb_json_str(h, "section"), "Results");
    cJSON_Delete(j);
    j = run_json("search --collection finance --json 个人所得税", &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK(cJSON_GetArraySize(j) == 1);
    CHECK_STR(rb_json_str(cJSON_GetArrayItem(j, 0), "document"), "https://intranet/policy/zh");
    cJSON_Delete(j);
    /* Vector and hybrid with a query vector file; wrong dimension fails clearly. */
    snprintf(path, sizeof path, "%s/q.json", g_data);
    f = fopen(path, "w");
    fputs("[0.1, 0.9, 0, 0]", f);
    fclose(f);
    snprintf(args, sizeof args, "search --collection finance --mode vector --vector '%s' --json -k 1",
             path);
    j = run_json(args, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK(cJSON_GetArraySize(j) == 1);
    CHECK(strstr(rb_json_str(cJSON_GetArrayItem(j, 0), "text"), "Credit impairment") != NULL);
    cJSON_Delete(j);
    snprintf(args, sizeof args, "search --collection finance --vector '%s' --json liquidity",
             path);
    j = run_json(args, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK(cJSON_GetArraySize(j) >= 2);
    CHECK(rb_json_num(cJSON_GetArrayItem(j, 0), "vector_rank", 0) > 0);
    cJSON_Delete(j);
    f = fopen(path, "w");
    fputs("[1, 2, 3]", f);
    fclose(f);
    snprintf(args, sizeof args, "search --collection finance --mode vector --vector '%s' x", path);
    CHECK_EQ_INT(run(args, NULL), 1);
    /* Hostile query syntax: no error. */
    j = run_json("search --collection finance --json '\"NEAR(* text: (('", &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK(cJSON_IsArray(j));
    cJSON_Delete(j);
    CHECK_EQ_INT(run("search --collection nosuch x", NULL), 1);
    CHECK_EQ_INT(run("search x", NULL), 2);

    j = run_json("index stats --json", &rc);
    CHECK_EQ_INT(rc, 0);
    REQUIRE(cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2);
    cJSON *s = cJSON_GetArrayItem(j, 0);
    CHECK_STR(rb_json_str(s, "collection"), "finance");
    CHECK_EQ_INT(rb_json_num(s, "documents", -1), 3);
    CHECK_EQ_INT(rb_json_num(s, "chunks", -1), 4);
    CHECK_EQ_INT(rb_json_num(s, "vectors", -1), 4);
    cJSON_Delete(j);
    j = run_json("index stats --collection other --json", &rc);
    CHECK(cJSON_GetArraySize(j) == 1);
    cJSON_Delete(j);

    /* verify: 0 when consistent, 1 after corrupting the FAISS file, 0 after rebuild. */
    CHECK_EQ_INT(run("index verify", &out), 0);
    free(out);
    snprintf(path, sizeof path, "%s/faiss/1.faiss", g_data);
    REQUIRE(file_exists(path));
    f = fopen(path, "r+b");
    fseek(f, 50, SEEK_SET);
    fputs("XXXXXXXX", f);
    fclose(f);
    CHECK_EQ_INT(run("index verify", &out), 1);
    CHECK(strstr(out, "checksum") != NULL);
    free(out);
    CHECK_EQ_INT(run("index rebuild", &out), 0);
    free(out);
    CHECK_EQ_INT(run("index verify", NULL), 0);
    /* Remove the FAISS file: verify fails; any command reopening rebuilds it. */
    REQUIRE(unlink(path) == 0);
    CHECK_EQ_INT(run("index verify", NULL), 0); /* open rebuilt the missing file first */
    CHECK(file_exists(path));

    CHECK_EQ_INT(run("collection delete finance", NULL), 0);
    CHECK(!file_exists(path));
    j = run_json("index stats --json", &rc);
    CHECK(cJSON_GetArraySize(j) == 1);
    cJSON_Delete(j);
    CHECK_EQ_INT(run("collection list", &out), 0);
    CHECK(strstr(out, "other") != NULL);
    free(out);

    /* --help for every command. */
    const char *cmds[] = {"collection create", "collection list", "collection delete",
                          "index add", "search", "index stats", "index verify", "index rebuild"};
    for (size_t i = 0; i < RB_ARRAY_LEN(cmds); i++) {
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        CHECK_EQ_INT(run(args, &out), 0);
        CHECK_MSG(strstr(out, "Usage: ragbox") != NULL, "%s", cmds[i]);
        free(out);
    }

    /* A foreign database file: a clear error, exit 1. */
    snprintf(path, sizeof path, "%s/ragbox.db", g_data);
    f = fopen(path, "wb");
    fputs("definitely not sqlite, just some text that is long enough to be a header......", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/ragbox.db-wal", g_data);
    unlink(path);
    snprintf(path, sizeof path, "%s/ragbox.db-shm", g_data);
    unlink(path);
    snprintf(path, sizeof path, "%s/err.txt", g_data);
    unlink(path);
    CHECK_EQ_INT(run("index verify", NULL), 1);
    size_t len;
    char *err = NULL;
    REQUIRE(rb_fs_read_file(path, 1 << 20, &err, &len) == RB_OK);
    CHECK(strstr(err, "not a ragbox database") != NULL);
    free(err);
    return check_finish();
}
