#include "check.h"
#include "ragbox/common.h"

int main(void)
{
    CHECK_EQ_INT(RB_OK, 0);
    CHECK_STR(rb_status_name(RB_OK), "OK");
    CHECK_STR(rb_status_name(RB_ERR_NOT_FOUND), "ERR_NOT_FOUND");
    CHECK_STR(rb_status_str(RB_ERR_DIMENSION), "vector dimension mismatch");
    CHECK_STR(rb_status_name((enum rb_status)-9999), "UNKNOWN");
    /* every code is negative and unique */
#define X(name, value, text) CHECK(RB_##name <= 0);
    RB_STATUS_TABLE(X)
#undef X
    enum rb_log_level lvl;
    CHECK(rb_log_level_parse("info", &lvl) == RB_OK && lvl == RB_LOG_INFO);
    CHECK(rb_log_level_parse("WARNING", &lvl) == RB_OK && lvl == RB_LOG_WARN);
    CHECK(rb_log_level_parse("loud", &lvl) == RB_ERR_INVALID);
    struct rb_errmsg e;
    CHECK(rb_errmsg_set(&e, RB_ERR_IO, "file %s", "x") == RB_ERR_IO);
    CHECK_STR(e.text, "file x");
    return check_finish();
}
