/* The access store on a real SQLite file: users and Argon2id passwords,
 * sessions, API keys, scopes, groups, grants and the access check, history,
 * and refusal of foreign databases. */
#include <sqlite3.h>

#include "check.h"
#include "ragbox/web.h"

static struct rb_web_auth *open_store(const char *db, struct rb_config *cfg)
{
    struct rb_web_auth *a = NULL;
    struct rb_errmsg err;
    struct rb_web_auth_options o = {.db_path = db, .config = cfg};
    enum rb_status st = rb_web_auth_open(&o, &a, &err);
    if (st != RB_OK)
        fprintf(stderr, "open: %s\n", err.text);
    return a;
}

int main(void)
{
    const char *tmp = getenv("RAGBOX_TEST_TMP");
    if (!tmp)
        return 77;
    REQUIRE(rb_fs_mkdirs(tmp, 0700) == RB_OK);
    char db[1024], foreign[1024];
    snprintf(db, sizeof db, "%s/ragbox.db", tmp);
    snprintf(foreign, sizeof foreign, "%s/foreign.db", tmp);
    unlink(db);
    unlink(foreign);
    struct rb_config *cfg = NULL;
    struct rb_errmsg err;
    REQUIRE(rb_config_parse("t", "[web]\nargon2_t_cost=1\nargon2_m_cost_kib=1024\n", &cfg,
                            &err) == RB_OK);
    struct rb_web_auth *a = open_store(db, cfg);
    REQUIRE(a);

    /* Scopes and roles. */
    unsigned sc = 0;
    CHECK(rb_web_scope_parse("read,openai", &sc) == RB_OK);
    CHECK_EQ_INT(sc, RB_WEB_SCOPE_READ | RB_WEB_SCOPE_OPENAI);
    char buf[48];
    rb_web_scope_format(sc, buf, sizeof buf);
    CHECK_STR(buf, "read,openai");
    CHECK(rb_web_scope_parse("read,root", &sc) == RB_ERR_INVALID);
    CHECK(rb_web_scope_parse("", &sc) == RB_ERR_INVALID);
    CHECK(rb_web_scope_parse("read,,write", &sc) == RB_ERR_INVALID);
    enum rb_web_role role;
    CHECK(rb_web_role_parse("auditor", &role) == RB_OK && role == RB_WEB_ROLE_AUDITOR);
    CHECK(rb_web_role_parse("Admin", &role) == RB_ERR_INVALID);

    /* Users and passwords. */
    int64_t alice = 0, bob = 0, root = 0;
    CHECK(rb_web_user_add(a, "alice", RB_WEB_ROLE_USER, "alice-password", &alice) == RB_OK);
    CHECK(rb_web_user_add(a, "bob", RB_WEB_ROLE_USER, "bob-password", &bob) == RB_OK);
    CHECK(rb_web_user_add(a, "root", RB_WEB_ROLE_ADMIN, "root-password", &root) == RB_OK);
    CHECK(rb_web_user_add(a, "alice", RB_WEB_ROLE_USER, "other-password", NULL) == RB_ERR_EXISTS);
    CHECK(rb_web_user_add(a, "-x", RB_WEB_ROLE_USER, "other-password", NULL) == RB_ERR_INVALID);
    CHECK(rb_web_user_add(a, "a/b", RB_WEB_ROLE_USER, "other-password", NULL) == RB_ERR_INVALID);
    CHECK(rb_web_user_add(a, "carol", RB_WEB_ROLE_USER, "1234567", NULL) == RB_ERR_INVALID);
    struct rb_web_user u;
    CHECK(rb_web_user_verify(a, "alice", "alice-password", &u) == RB_OK && u.id == alice);
    CHECK(rb_web_user_verify(a, "alice", "alice-passwore", &u) == RB_ERR_AUTH);
    CHECK(rb_web_user_verify(a, "nobody", "alice-password", &u) == RB_ERR_AUTH);
    CHECK(rb_web_user_verify(a, NULL, NULL, &u) == RB_ERR_AUTH);
    /* Only an Argon2id hash is stored. */
    sqlite3 *s = NULL;
    REQUIRE(sqlite3_open(db, &s) == SQLITE_OK);
    sqlite3_stmt *st = NULL;
    REQUIRE(sqlite3_prepare_v2(s, "SELECT pw_hash FROM web_users WHERE name='alice'", -1, &st,
                               NULL) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    const char *h = (const char *)sqlite3_column_text(st, 0);
    CHECK(h && strncmp(h, "$argon2id$", 10) == 0 && !strstr(h, "alice-password"));
    sqlite3_finalize(st);
    sqlite3_close(s);

    /* Sessions. */
    char sid[65], csrf[65], csrf2[65];
    CHECK(rb_web_session_create(a, alice, sid, csrf) == RB_OK);
    CHECK(strlen(sid) == 64 && strlen(csrf) == 64 && strcmp(sid, csrf) != 0);
    CHECK(rb_web_session_check(a, sid, &u, csrf2) == RB_OK && u.id == alice);
    CHECK_STR(csrf2, csrf);
    CHECK(rb_web_session_check(a, "short", &u, csrf2) == RB_ERR_AUTH);
    char wrong[65];
    memcpy(wrong, sid, 65);
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    CHECK(rb_web_session_check(a, wrong, &u, csrf2) == RB_ERR_AUTH);
    /* A password change ends the sessions; disabling blocks login. */
    CHECK(rb_web_user_set_password(a, "alice", "new-alice-password") == RB_OK);
    CHECK(rb_web_session_check(a, sid, &u, csrf2) == RB_ERR_AUTH);
    CHECK(rb_web_user_verify(a, "alice", "new-alice-password", &u) == RB_OK);
    CHECK(rb_web_user_set_disabled(a, "bob", true) == RB_OK);
    CHECK(rb_web_user_verify(a, "bob", "bob-password", &u) == RB_ERR_AUTH);
    CHECK(rb_web_user_set_disabled(a, "bob", false) == RB_OK);
    CHECK(rb_web_session_create(a, bob, sid, csrf) == RB_OK);
    CHECK(rb_web_session_delete(a, sid) == RB_OK);
    CHECK(rb_web_session_check(a, sid, &u, csrf2) == RB_ERR_AUTH);

    /* API keys. */
    char *key = NULL;
    int64_t kid = 0;
    unsigned scopes = 0;
    CHECK(rb_web_apikey_create(a, "bob", "ci", RB_WEB_SCOPE_READ, &key, &kid) == RB_OK);
    REQUIRE(key);
    CHECK(strncmp(key, "rbk_", 4) == 0 && strlen(key) == 68);
    CHECK(rb_web_apikey_check(a, key, &u, &scopes, NULL) == RB_OK && u.id == bob &&
          scopes == RB_WEB_SCOPE_READ);
    char *key2 = NULL;
    CHECK(rb_web_apikey_create(a, "ghost", "x", RB_WEB_SCOPE_READ, &key2, NULL) ==
          RB_ERR_NOT_FOUND);
    CHECK(key2 == NULL);
    CHECK(rb_web_apikey_create(a, "bob", "x", 0, &key2, NULL) == RB_ERR_INVALID);
    CHECK(rb_web_apikey_check(a, "rbk_nothex", &u, &scopes, NULL) == RB_ERR_AUTH);
    CHECK(rb_web_apikey_revoke(a, kid, alice) == RB_ERR_NOT_FOUND); /* not alice's */
    cJSON *keys = NULL;
    CHECK(rb_web_apikey_list(a, bob, &keys) == RB_OK && cJSON_GetArraySize(keys) == 1);
    char *keys_text = cJSON_PrintUnformatted(keys);
    CHECK(keys_text && !strstr(keys_text, key + 12)); /* only the prefix is listed */
    free(keys_text);
    cJSON_Delete(keys);
    CHECK(rb_web_apikey_revoke(a, kid, bob) == RB_OK);
    CHECK(rb_web_apikey_check(a, key, &u, &scopes, NULL) == RB_ERR_AUTH);
    CHECK(rb_web_apikey_revoke(a, kid, 0) == RB_ERR_NOT_FOUND);
    free(key);

    /* Groups, grants and the access check. */
    CHECK(rb_web_group_add(a, "analysts", NULL) == RB_OK);
    CHECK(rb_web_group_add(a, "analysts", NULL) == RB_ERR_EXISTS);
    CHECK(rb_web_group_member_add(a, "analysts", "bob") == RB_OK);
    CHECK(rb_web_group_member_add(a, "analysts", "ghost") == RB_ERR_NOT_FOUND);
    CHECK(rb_web_grant_set(a, 7, RB_WEB_PRINCIPAL_GROUP, "analysts", true, false) == RB_OK);
    CHECK(rb_web_grant_set(a, 8, RB_WEB_PRINCIPAL_USER, "alice", true, true) == RB_OK);
    CHECK(rb_web_grant_set(a, 8, RB_WEB_PRINCIPAL_USER, "ghost", true, true) == RB_ERR_NOT_FOUND);
    CHECK(rb_web_auth_can(a, bob, 7, false) && !rb_web_auth_can(a, bob, 7, true));
    CHECK(!rb_web_auth_can(a, bob, 8, false));
    CHECK(rb_web_auth_can(a, alice, 8, false) && rb_web_auth_can(a, alice, 8, true));
    CHECK(!rb_web_auth_can(a, alice, 7, false));
    CHECK(rb_web_auth_can(a, root, 7, true) && rb_web_auth_can(a, root, 99, false)); /* admin */
    CHECK(!rb_web_auth_can(a, 0, 7, false) && !rb_web_auth_can(a, 12345, 7, false));
    /* Membership removed: access gone at once. */
    CHECK(rb_web_group_member_remove(a, "analysts", "bob") == RB_OK);
    CHECK(!rb_web_auth_can(a, bob, 7, false));
    CHECK(rb_web_group_member_add(a, "analysts", "bob") == RB_OK);
    CHECK(rb_web_user_set_disabled(a, "bob", true) == RB_OK);
    CHECK(!rb_web_auth_can(a, bob, 7, false)); /* disabled users read nothing */
    CHECK(rb_web_user_set_disabled(a, "bob", false) == RB_OK);
    cJSON *grants = NULL;
    CHECK(rb_web_grant_list(a, 0, &grants) == RB_OK && cJSON_GetArraySize(grants) == 2);
    cJSON_Delete(grants);
    CHECK(rb_web_grant_set(a, 8, RB_WEB_PRINCIPAL_USER, "alice", false, false) == RB_OK);
    CHECK(!rb_web_auth_can(a, alice, 8, false));
    CHECK(rb_web_grant_drop_collection(a, 7) == RB_OK);
    CHECK(!rb_web_auth_can(a, bob, 7, false));
    CHECK(rb_web_group_delete(a, "analysts") == RB_OK);
    CHECK(rb_web_group_delete(a, "analysts") == RB_ERR_NOT_FOUND);

    /* History. */
    int64_t hid = 0, n = 0;
    CHECK(rb_web_history_add(a, alice, "c", "q1", "a1", "[1]", &hid) == RB_OK);
    CHECK(rb_web_history_add(a, alice, "c", "q2", NULL, NULL, NULL) == RB_OK);
    CHECK(rb_web_history_add(a, bob, "c", "bob's", NULL, NULL, NULL) == RB_OK);
    cJSON *hist = NULL;
    CHECK(rb_web_history_list(a, alice, 0, &hist) == RB_OK && cJSON_GetArraySize(hist) == 2);
    CHECK_STR(rb_json_str(cJSON_GetArrayItem(hist, 0), "question"), "q2"); /* newest first */
    cJSON_Delete(hist);
    CHECK(rb_web_history_delete(a, bob, hid, &n) == RB_OK && n == 0); /* not bob's */
    CHECK(rb_web_history_delete(a, alice, hid, &n) == RB_OK && n == 1);
    CHECK(rb_web_history_delete(a, alice, 0, &n) == RB_OK && n == 1);
    CHECK(rb_web_history_list(a, bob, 0, &hist) == RB_OK && cJSON_GetArraySize(hist) == 1);
    cJSON_Delete(hist);

    /* Deleting a user removes everything of theirs. */
    CHECK(rb_web_user_delete(a, "bob") == RB_OK);
    CHECK(rb_web_user_get(a, "bob", &u) == RB_ERR_NOT_FOUND);
    CHECK(rb_web_user_delete(a, "bob") == RB_ERR_NOT_FOUND);
    struct rb_web_user *all = NULL;
    size_t nu = 0;
    CHECK(rb_web_user_list(a, &all, &nu) == RB_OK && nu == 2);
    free(all);
    rb_web_auth_close(a);

    /* Reopening keeps everything (schema version 1 already there). */
    a = open_store(db, cfg);
    REQUIRE(a);
    CHECK(rb_web_user_verify(a, "alice", "new-alice-password", &u) == RB_OK);
    rb_web_auth_close(a);

    /* Another program's SQLite file and a non-SQLite file are refused. */
    REQUIRE(sqlite3_open(foreign, &s) == SQLITE_OK);
    REQUIRE(sqlite3_exec(s, "CREATE TABLE customers(id INTEGER)", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(s);
    struct rb_web_auth_options o = {.db_path = foreign, .config = cfg};
    a = (void *)1;
    CHECK(rb_web_auth_open(&o, &a, &err) == RB_ERR_FORMAT && a == NULL);
    CHECK(strstr(err.text, "not a ragbox database") != NULL);
    REQUIRE(rb_fs_write_atomic(foreign, "this is not sqlite at all, just text.......", 44) ==
            RB_OK);
    CHECK(rb_web_auth_open(&o, &a, &err) != RB_OK && a == NULL);
    rb_config_free(cfg);
    return check_finish();
}
