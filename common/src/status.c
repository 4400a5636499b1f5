/* Status code names: generated from the X-macro table in status.h. */
#include "ragbox/common.h"

const char *rb_status_name(enum rb_status status)
{
    switch (status) {
#define RB__STATUS_NAME(name, value, text)                                                         \
    case RB_##name:                                                                                \
        return #name;
        RB_STATUS_TABLE(RB__STATUS_NAME)
#undef RB__STATUS_NAME
    }
    return "UNKNOWN";
}

const char *rb_status_str(enum rb_status status)
{
    switch (status) {
#define RB__STATUS_TEXT(name, value, text)                                                         \
    case RB_##name:                                                                                \
        return text;
        RB_STATUS_TABLE(RB__STATUS_TEXT)
#undef RB__STATUS_TEXT
    }
    return "unknown status";
}
