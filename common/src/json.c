/* JSON helpers over cJSON: bounded parsing with a depth limit and clear errors. */
#include <stdlib.h>
#include <string.h>

#include "ragbox/common.h"

/* Nesting depth of a JSON text, counted on the raw bytes (strings skipped),
 * so that a hostile document is refused before cJSON recurses into it. */
static int json_depth(const char *s, size_t len, int limit, size_t *where)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max) {
                max = depth;
                if (max > limit) {
                    *where = i;
                    return max;
                }
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

enum rb_status rb_json_parse(const char *text, size_t len, int max_depth, cJSON **out,
                             struct rb_errmsg *err)
{
    *out = NULL;
    if (max_depth <= 0)
        max_depth = 64;
    size_t where = 0;
    if (json_depth(text, len, max_depth, &where) > max_depth)
        return rb_errmsg_set(err, RB_ERR_TOO_LARGE,
                             "JSON nested deeper than %d levels (at byte %zu)", max_depth, where);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        size_t off = end ? (size_t)(end - text) : 0;
        return rb_errmsg_set(err, RB_ERR_FORMAT, "invalid JSON at byte %zu", off);
    }
    /* Only whitespace may follow the value. */
    if (end) {
        for (const char *p = end; p < text + len; p++) {
            if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p != '\0') {
                cJSON_Delete(root);
                return rb_errmsg_set(err, RB_ERR_FORMAT,
                                     "unexpected data after JSON value at byte %zu",
                                     (size_t)(p - text));
            }
        }
    }
    *out = root;
    return RB_OK;
}

const char *rb_json_str(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

double rb_json_num(const cJSON *obj, const char *key, double def)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(item) ? item->valuedouble : def;
}

bool rb_json_bool(const cJSON *obj, const char *key, bool def)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(item))
        return cJSON_IsTrue(item);
    return def;
}

char *rb_json_print(const cJSON *obj)
{
    return cJSON_PrintUnformatted(obj);
}
