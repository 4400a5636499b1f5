#include "check.h"
#include "ragbox/common.h"

int main(void)
{
    struct rb_errmsg err;
    struct rb_config *cfg;
    const char *text = "; comment\n"
                       "[index]\n"
                       "rrf_k = 60\n"
                       "vector_weight = 1.5\n"
                       "\n"
                       "[web]\n"
                       "listen = 127.0.0.1:8080\n"
                       "tls = yes\n"
                       "threads = many\n";
    REQUIRE(rb_config_parse("test.conf", text, &cfg, &err) == RB_OK);
    CHECK_STR(rb_config_str(cfg, "web", "listen", NULL), "127.0.0.1:8080");
    CHECK_STR(rb_config_str(cfg, "web", "missing", "dflt"), "dflt");
    int64_t k;
    CHECK(rb_config_int(cfg, "index", "rrf_k", 10, 1, 1000, &k, &err) == RB_OK && k == 60);
    CHECK(rb_config_int(cfg, "index", "rrf_k", 10, 1, 50, &k, &err) == RB_ERR_CONFIG);
    CHECK_MSG(strstr(err.text, "test.conf:3") && strstr(err.text, "index.rrf_k"), "%s", err.text);
    double w;
    CHECK(rb_config_double(cfg, "index", "vector_weight", 1, 0, 10, &w, &err) == RB_OK);
    CHECK_NEAR(w, 1.5, 1e-12);
    bool tls;
    CHECK(rb_config_bool(cfg, "web", "tls", false, &tls, &err) == RB_OK && tls);
    int64_t th;
    CHECK(rb_config_int(cfg, "web", "threads", 4, 1, 64, &th, &err) == RB_ERR_CONFIG);
    CHECK_MSG(strstr(err.text, "test.conf:9") && strstr(err.text, "web.threads"), "%s", err.text);
    const char *known[] = {"index.*", "web.listen", "web.tls", NULL};
    CHECK(rb_config_check_known(cfg, known, &err) == RB_ERR_CONFIG);
    CHECK_MSG(strstr(err.text, "unknown key web.threads"), "%s", err.text);
    CHECK(rb_config_set(cfg, "web", "threads", "8") == RB_OK);
    CHECK(rb_config_int(cfg, "web", "threads", 4, 1, 64, &th, &err) == RB_OK && th == 8);
    char *ser = rb_config_serialize(cfg);
    struct rb_config *again;
    CHECK(rb_config_parse("again", ser, &again, &err) == RB_OK);
    CHECK_STR(rb_config_str(again, "index", "vector_weight", NULL), "1.5");
    free(ser);
    rb_config_free(again);
    rb_config_free(cfg);

    /* syntax errors name the line */
    CHECK(rb_config_parse("bad.conf", "[a]\nx = 1\nnot a key value line\n", &cfg, &err) ==
          RB_ERR_CONFIG);
    CHECK(cfg == NULL);
    CHECK_MSG(strstr(err.text, "bad.conf:3"), "%s", err.text);
    CHECK(rb_config_parse("bad.conf", "x = 1\n", &cfg, &err) == RB_ERR_CONFIG);
    CHECK(rb_config_parse("bad.conf", "[unterminated\n", &cfg, &err) == RB_ERR_CONFIG);
    CHECK(rb_config_load("/nonexistent/ragbox.conf", &cfg, &err) == RB_ERR_NOT_FOUND);
    return check_finish();
}
