#include "check.h"
#include "ragbox/common.h"

int main(void)
{
    struct rb_errmsg err;
    cJSON *j;
    const char *ok = "{\"a\": \"x\", \"n\": 3, \"b\": true, \"z\": \"中文\"}";
    REQUIRE(rb_json_parse(ok, strlen(ok), 8, &j, &err) == RB_OK);
    CHECK_STR(rb_json_str(j, "a"), "x");
    CHECK_STR(rb_json_str(j, "z"), "中文");
    CHECK(rb_json_str(j, "n") == NULL);
    CHECK_NEAR(rb_json_num(j, "n", 0), 3, 0);
    CHECK(rb_json_bool(j, "b", false));
    char *s = rb_json_print(j);
    CHECK(s && strstr(s, "\"n\":3"));
    free(s);
    cJSON_Delete(j);

    char deep[300];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 99);
    deep[299] = 0;
    CHECK(rb_json_parse(deep, strlen(deep), 64, &j, &err) == RB_ERR_TOO_LARGE);
    CHECK(j == NULL);
    CHECK_MSG(strstr(err.text, "deeper than 64"), "%s", err.text);
    /* brackets inside strings do not count as depth */
    const char *str = "{\"k\": \"[[[[[[[[[[[[\"}";
    CHECK(rb_json_parse(str, strlen(str), 2, &j, &err) == RB_OK);
    cJSON_Delete(j);
    CHECK(rb_json_parse("{\"a\":", 5, 8, &j, &err) == RB_ERR_FORMAT);
    CHECK(rb_json_parse("{} junk", 7, 8, &j, &err) == RB_ERR_FORMAT);
    CHECK_MSG(strstr(err.text, "byte 3"), "%s", err.text);
    return check_finish();
}
