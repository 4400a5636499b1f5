#include "check.h"
#include "ragbox/common.h"

int main(void)
{
    const char *dir = check_tmpdir("fs");
    char *deep = rb_path_join(dir, "a/b/c");
    CHECK(rb_fs_mkdirs(deep, 0750) == RB_OK);
    CHECK(rb_fs_is_dir(deep));
    char *file = rb_path_join(deep, "x.bin");
    CHECK(rb_fs_write_atomic(file, "data\0more", 9) == RB_OK);
    char *data;
    size_t len;
    CHECK(rb_fs_read_file(file, 100, &data, &len) == RB_OK && len == 9);
    CHECK(memcmp(data, "data\0more", 9) == 0);
    free(data);
    CHECK(rb_fs_read_file(file, 4, &data, &len) == RB_ERR_TOO_LARGE);
    CHECK(data == NULL);
    CHECK(rb_fs_read_file("/nonexistent/x", 4, &data, &len) == RB_ERR_NOT_FOUND);
    CHECK(rb_fs_write_atomic(file, "new", 3) == RB_OK); /* replace */
    CHECK(rb_fs_read_file(file, 100, &data, &len) == RB_OK && len == 3);
    free(data);
    CHECK_STR(rb_path_basename("/x/y/report.pdf"), "report.pdf");
    char *j = rb_path_join("/a/", "/b");
    CHECK_STR(j, "/a/b");
    free(j);
    char ts[40];
    rb_time_format_utc(1764000000123456LL, ts, sizeof ts);
    CHECK_STR(ts, "2025-11-24T16:00:00.123456Z");
    setenv("RAGBOX_DATA", "/srv/rb", 1);
    char *d = rb_default_data_dir(NULL);
    CHECK_STR(d, "/srv/rb");
    free(d);
    d = rb_default_data_dir("/explicit");
    CHECK_STR(d, "/explicit");
    char *c = rb_default_config_path(NULL, d);
    CHECK_STR(c, "/explicit/ragbox.conf");
    free(c);
    free(d);
    free(deep);
    free(file);
    return check_finish();
}
